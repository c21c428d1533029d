"""A model artifact from the registry is checked against the allow-listed catalog before it is
loaded; the artifact's own list of trusted types is never used."""

from __future__ import annotations

import operator

import numpy as np
import pytest
import skops.io
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlops_gitops.diagnostics import DiagnosticError
from mlops_gitops.model_files import check_model_files, load_checked

X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
Y = np.array([0, 1, 0, 1])


def artifact(folder, model, fmt="skops", name="model.skops", trusted=None):
    folder.mkdir()
    skops.io.dump(model, folder / "model.skops")
    flavor = {"pickled_model": name, "serialization_format": fmt,
              "skops_trusted_types": trusted}
    signature = {"inputs": '[{"type": "double", "name": "a"}, {"type": "double", "name": "b"}]'}
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"sklearn": flavor},
                                                    "signature": signature}))
    return folder


def test_an_allow_listed_pipeline_loads(tmp_path):
    model = make_pipeline(StandardScaler(), DecisionTreeClassifier()).fit(X, Y)
    files = check_model_files(artifact(tmp_path / "m", model), "m/1")
    assert files.trusted_types == ("sklearn.tree._tree.Tree",)
    assert load_checked(files).predict(X).tolist() == Y.tolist()


def test_a_crafted_artifact_is_refused_even_when_it_trusts_itself(tmp_path):
    hostile = make_pipeline(FunctionTransformer(func=operator.pos), LogisticRegression()).fit(X, Y)
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(hostile))
    assert "_operator.pos" in untrusted
    folder = artifact(tmp_path / "m", hostile, trusted=untrusted)  # it vouches for itself
    with pytest.raises(DiagnosticError) as caught:
        check_model_files(folder, "iris/7")
    message = caught.value.diagnostics[0].message
    assert "_operator.pos" in message and "not loaded" in message
    assert caught.value.diagnostics[0].file == "iris/7"


@pytest.mark.parametrize(("fmt", "name", "words"), [
    ("cloudpickle", "model.skops", "not a skops-serialized"),
    ("skops", "../../etc/passwd", "not a skops-serialized"),
    ("skops", "missing.skops", "cannot be read"),
])
def test_other_formats_and_paths_are_refused(tmp_path, fmt, name, words):
    folder = artifact(tmp_path / "m", make_pipeline(LogisticRegression()).fit(X, Y), fmt, name)
    with pytest.raises(DiagnosticError) as caught:
        check_model_files(folder, "m/1")
    assert words in caught.value.diagnostics[0].message


def test_a_folder_without_mlmodel_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiagnosticError) as caught:
        check_model_files(tmp_path / "empty", "m/1")
    assert "no readable MLmodel" in caught.value.diagnostics[0].message


def test_a_version_without_provenance_is_never_loaded():
    from mlops_gitops.evaluate.versions import load_version
    from mlops_gitops.registry.ports import ModelVersion

    from .eval_support import EvalRegistry

    registry = EvalRegistry()
    number = registry.add("iris", LogisticRegression().fit(X, Y), fingerprint="f" * 64,
                          lineage=None)
    assert load_version(registry, "iris", number).version == number
    registry.versions[("iris", number)] = ModelVersion("iris", number, None, "uploaded by hand",
                                                       {"mlops.status": "ready"})
    with pytest.raises(DiagnosticError) as caught:
        load_version(registry, "iris", number)
    assert "was not registered by mlops-gitops" in caught.value.diagnostics[0].message
