"""The fingerprint holds what changes the fitted artifact and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlops_gitops import identity
from mlops_gitops.identity import fingerprint
from mlops_gitops.spec.models import Dataset, Model
from tests.unit.support import REPO

MD5 = "0" * 32


def _specs() -> tuple[dict, dict]:
    import yaml

    model = yaml.safe_load((REPO / "specs/models/iris-classifier.yaml").read_text())
    dataset = yaml.safe_load((REPO / "specs/datasets/iris.yaml").read_text())
    return model, dataset


def _fp(model: dict, dataset: dict, md5: str = MD5) -> str:
    return fingerprint(Model.model_validate(model), Dataset.model_validate(dataset), md5)


@pytest.fixture
def base():
    model, dataset = _specs()
    return model, dataset, _fp(model, dataset)


KEPT = {
    "owner": lambda m, d: m["metadata"].update(owner="someone-else"),
    "description": lambda m, d: m["metadata"].update(description="new words"),
    "metrics": lambda m, d: m["spec"].update(metrics=["accuracy"]),
    "model tests": lambda m, d: m["spec"].update(tests=[]),
    "registered name": lambda m, d: m["spec"].update(registered_model="renamed"),
    "a column's bounds": lambda m, d: d["spec"]["columns"]["sepal_length"].update(max=99.0),
    "the contract's checks": lambda m, d: d["spec"].setdefault("checks", {}).update(min_rows=1),
    "the data path": lambda m, d: d["spec"].update(path="data/elsewhere.csv"),
    "generation 0": lambda m, d: m["spec"].update(retrain={"generation": 0, "reason": "x"}),
}

CHANGED = {
    "a hyperparameter": lambda m, d: m["spec"]["estimator"]["params"].update(C=0.123),
    "the seed": lambda m, d: m["spec"].update(seed=7),
    "the features": lambda m, d: m["spec"]["features"].pop(),
    "a read column's type": lambda m, d: d["spec"]["columns"]["sepal_length"].update(
        type="int"),
    "the split": lambda m, d: d["spec"].setdefault("split", {}).update(test_fraction=0.33),
    "a retraining proposal": lambda m, d: m["spec"].update(retrain={"generation": 1,
                                                                    "reason": "drift"}),
}


@pytest.mark.parametrize("edit", KEPT.values(), ids=KEPT.keys())
def test_what_does_not_change_the_artifact_keeps_the_fingerprint(base, edit):
    model, dataset, before = base
    edit(model, dataset)
    assert _fp(model, dataset) == before


@pytest.mark.parametrize("edit", CHANGED.values(), ids=CHANGED.keys())
def test_what_changes_the_artifact_changes_the_fingerprint(base, edit):
    model, dataset, before = base
    edit(model, dataset)
    assert _fp(model, dataset) != before


def test_new_data_and_other_library_versions_change_the_fingerprint(base, monkeypatch):
    model, dataset, before = base
    assert _fp(model, dataset, "1" * 32) != before
    for library in identity.TRAINING_LIBRARIES:
        real = identity.library_version

        def other(name, library=library, real=real):
            return "0.0.0" if name == library else real(name)

        monkeypatch.setattr(identity, "library_version", other)
        assert _fp(model, dataset) != before, library
        monkeypatch.setattr(identity, "library_version", real)
    assert _fp(model, dataset) == before


def test_the_training_code_digest_follows_the_code_not_its_comments(tmp_path, monkeypatch):
    package = Path(identity.__file__).parent
    assert all((package / relative).is_file() for relative in identity.TRAINING_CODE)
    source = (package / "train/pipeline.py").read_text()
    tree = ast.parse(source)
    first_function = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    copy = tmp_path / "mlops_gitops"
    for relative in identity.TRAINING_CODE:
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_bytes((package / relative).read_bytes())
    monkeypatch.setattr(identity, "__file__", str(copy / "identity.py"))

    def digest() -> str:
        identity.training_code_digest.cache_clear()
        return identity.training_code_digest()

    try:
        original = digest()
        (copy / "train/pipeline.py").write_text(
            "# a new comment\n" + source.replace('"""', '"""Reworded. ', 1) + "\n\n")
        assert digest() == original
        line = source.splitlines()[first_function.body[-1].lineno - 1]
        indent = line[:len(line) - len(line.lstrip())]
        lines = source.splitlines()
        lines.insert(first_function.body[-1].lineno - 1, f"{indent}_unused = 1")
        (copy / "train/pipeline.py").write_text("\n".join(lines) + "\n")
        assert digest() != original
    finally:
        identity.training_code_digest.cache_clear()
