"""The positive corpus and the repository's example project lint clean.

corpus/positive/ is one small, coherent project written to exercise the YAML reader: every kind,
multi-document files, anchors and merge keys, comments, quoted values, block scalars, a .yml file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from mlops_gitops.spec.loader import load_bytes
from mlops_gitops.spec.models import KINDS
from mlops_gitops.spec.project import load_project
from mlops_gitops.spec.schema import kind_schemas, schema_filename
from mlops_gitops.spec.yamlread import read_yaml

from .support import CORPUS, REPO, call_cli, run_cli

POSITIVE = CORPUS / "positive"
FILES = sorted(p for p in POSITIVE.iterdir() if p.suffix in (".yaml", ".yml"))


def _documents(path: Path) -> list:
    return list(yaml.safe_load_all(path.read_text(encoding="utf-8")))


def _as_project(root: Path) -> Path:
    """The corpus as a project: every file under specs/ (the kinds may live in any spec folder)."""
    (root / "specs").mkdir(parents=True)
    for path in FILES:
        shutil.copy2(path, root / "specs" / path.name)
    return root


def test_corpus_covers_every_kind_and_feature():
    kinds = {doc["kind"] for path in FILES for doc in _documents(path)}
    assert kinds == set(KINDS)
    text = "\n".join(p.read_text(encoding="utf-8") for p in FILES)
    for feature in ("<<: *", "&", "---", "...", "# ", '"', "'", ">\n", "|\n"):
        assert feature in text, feature
    assert any(p.suffix == ".yml" for p in FILES)
    assert any(len(_documents(p)) > 1 for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_file_loads_clean(path):
    specs, diagnostics = load_bytes(path.read_bytes(), path.name)
    assert diagnostics == []
    assert [s.kind for s in specs] == [d["kind"] for d in _documents(path)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_reader_agrees_with_pyyaml(path):
    """Anchors, merge keys, block scalars, quoting: the same data as yaml.safe_load_all."""
    documents, problems = read_yaml(path.read_bytes())
    assert problems == []
    assert [d.data for d in documents] == _documents(path)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("variant", ["crlf", "bom", "bom-crlf"])
def test_line_endings_and_bom_do_not_matter(path, variant):
    raw = path.read_bytes()
    if "crlf" in variant:
        raw = raw.replace(b"\n", b"\r\n")
    if "bom" in variant:
        raw = b"\xef\xbb\xbf" + raw
    expected, _ = load_bytes(path.read_bytes(), path.name)
    specs, diagnostics = load_bytes(raw, path.name)
    assert diagnostics == []
    assert [s.spec for s in specs] == [s.spec for s in expected]
    # positions are the same lines and columns
    assert [s.document.positions for s in specs] == [s.document.positions for s in expected]


def test_positions_point_at_the_values():
    path = POSITIVE / "environments.yaml"
    specs, _ = load_bytes(path.read_bytes(), path.name)
    production = next(s for s in specs if s.name == "production")
    lines = path.read_text(encoding="utf-8").splitlines()
    line, col = production.document.positions[("spec", "models", 0, "version")]
    assert lines[line - 1][col - 1:].startswith("7}")
    line, col = production.document.key_positions[("spec", "branch")]
    assert lines[line - 1][col - 1:].startswith("branch: release/production")


def test_merge_keys_resolve_with_overrides():
    specs, _ = load_bytes((POSITIVE / "datasets.yaml").read_bytes(), "datasets.yaml")
    houses = next(s.spec for s in specs if s.name == "houses")
    rooms = houses.spec.columns["rooms"]
    assert (rooms.type, rooms.min, rooms.max) == ("int", 0, 20)
    assert houses.spec.columns["price"].max == 10000.5
    assert houses.spec.checks.max_rows == 1_000_000
    churn = next(s.spec for s in specs if s.name == "churn")
    assert churn.spec.columns["churned"].allowed == ["yes", "no"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_valid_specs_pass_their_json_schema(path):
    schemas = kind_schemas()
    for doc in _documents(path):
        schema = schemas[schema_filename(doc["kind"])]
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(doc)]
        assert errors == [], (doc["metadata"]["name"], errors)


def test_corpus_project_lints_clean(tmp_path, monkeypatch):
    root = _as_project(tmp_path / "project")
    monkeypatch.chdir(root)
    project = load_project(root)
    assert project.diagnostics == []
    assert project.promotion_order() == ["dev", "staging", "production"]
    assert sorted(project.models) == ["churn-classifier", "house-price"]
    assert project.config.tracking_uri == "sqlite:///.mlops/mlflow.db"


def test_corpus_project_lints_clean_subprocess(tmp_path):
    root = _as_project(tmp_path / "project")
    result = run_cli("lint", cwd=root)
    assert result.returncode == 0, result.output
    assert result.stdout.strip() == "no problems found"
    assert "Traceback" not in result.output


def test_example_project_lints_clean_in_process():
    project = load_project(REPO)
    assert project.diagnostics == [], "\n".join(f"{d.location}: {d.message}"
                                                for d in project.diagnostics)
    assert set(project.models) >= {"iris-classifier", "diabetes-regressor"}
    assert project.promotion_order() == ["dev", "test", "prod"]


def test_example_project_lints_clean_subprocess():
    result = run_cli("lint", cwd=REPO)
    assert result.returncode == 0, result.output
    assert "no problems found" in result.stdout
    assert "Traceback" not in result.output


def test_example_project_lint_json_is_ok():
    result = call_cli("lint", "--format", "json", cwd=REPO)
    assert result.returncode == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "diagnostics": []}
