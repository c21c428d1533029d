"""JSON Schemas: the committed ones are fresh, and they agree with lint on valid and bad specs."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from jsonschema import Draft202012Validator

from mlops_gitops.spec.models import KINDS
from mlops_gitops.spec.schema import (
    COMBINED,
    DRAFT,
    all_schemas,
    kind_schemas,
    render_schema,
    schema_filename,
    stale_schemas,
)

from .support import CORPUS, REPO, call_cli

SCHEMAS = REPO / "schemas"


def _example_documents() -> list[tuple[str, int, dict]]:
    files = [REPO / "mlops-gitops.yaml"] + sorted(
        p for folder in ("specs", "policies", "environments")
        for p in (REPO / folder).rglob("*") if p.suffix in (".yaml", ".yml"))
    return [(str(path.relative_to(REPO)), i, doc) for path in files
            for i, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8")))]


EXAMPLES = _example_documents()


def _committed(kind: str) -> dict:
    return json.loads((SCHEMAS / schema_filename(kind)).read_text(encoding="utf-8"))


def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(_committed(kind))


def test_committed_schemas_are_fresh():
    assert stale_schemas(SCHEMAS) == [], "run: mlops-gitops schema --out schemas"


def test_one_schema_per_kind():
    assert sorted(kind_schemas()) == sorted(schema_filename(k) for k in KINDS)
    assert sorted(p.name for p in SCHEMAS.glob("*.schema.json")) == sorted(all_schemas())
    assert sorted(all_schemas()) == sorted([*kind_schemas(), COMBINED])


@pytest.mark.parametrize("kind", list(KINDS))
def test_schemas_are_valid_draft_2020_12(kind):
    for schema in (kind_schemas()[schema_filename(kind)], _committed(kind)):
        assert schema["$schema"] == DRAFT
        Draft202012Validator.check_schema(schema)


def test_examples_cover_every_kind():
    assert {doc["kind"] for _, _, doc in EXAMPLES} == set(KINDS)


@pytest.mark.parametrize("file, index, doc", EXAMPLES, ids=[f"{f}#{i}" for f, i, _ in EXAMPLES])
def test_example_validates_against_its_schema(file, index, doc):
    errors = [e.message for e in _validator(doc["kind"]).iter_errors(doc)]
    assert errors == []


@pytest.mark.parametrize("where", [(), ("metadata",), ("spec",)], ids=["root", "metadata", "spec"])
@pytest.mark.parametrize("file, index, doc", EXAMPLES, ids=[f"{f}#{i}" for f, i, _ in EXAMPLES])
def test_unknown_field_fails_the_schema(file, index, doc, where):
    doc = copy.deepcopy(doc)
    target = doc
    for key in where:
        target = target.setdefault(key, {})
    target["nmae"] = "typo"
    errors = [e.message for e in _validator(doc["kind"]).iter_errors(doc)]
    assert any("'nmae' was unexpected" in m for m in errors), errors


# Negative cases that are pure schema errors: JSON Schema rejects them too (editors and CI agree).
SCHEMA_CASES = ["unknown-field-near-miss", "unknown-field-nested", "missing-required-field",
                "wrong-type-integer", "wrong-type-list", "bad-metadata-name", "port-out-of-range",
                "unknown-test-type", "wrong-api-version", "label-key-path"]


@pytest.mark.parametrize("case", SCHEMA_CASES)
def test_schema_rejects_what_lint_rejects(case):
    doc = yaml.safe_load((CORPUS / "negative" / f"{case}.yaml").read_text(encoding="utf-8"))
    assert not _validator(doc["kind"]).is_valid(doc)


def test_schema_command_check(tmp_path):
    out = tmp_path / "schemas"
    written = call_cli("schema", "--out", str(out), cwd=tmp_path)
    assert written.returncode == 0, written.output
    assert sorted(p.name for p in out.iterdir()) == sorted(all_schemas())
    assert call_cli("schema", "--out", str(out), "--check", cwd=tmp_path).returncode == 0
    assert stale_schemas(out) == []

    model = out / schema_filename("Model")
    model.write_text(model.read_text(encoding="utf-8").replace('"Model"', '"Modle"'),
                     encoding="utf-8")
    (out / schema_filename("Project")).unlink()
    stale = call_cli("schema", "--out", str(out), "--check", cwd=tmp_path)
    assert stale.returncode == 1
    assert sorted(stale_schemas(out)) == sorted([schema_filename("Model"),
                                                 schema_filename("Project")])
    assert "model.schema.json: stale or missing" in stale.stdout
    assert "project.schema.json: stale or missing" in stale.stdout


def test_schema_command_prints_every_kind(tmp_path):
    result = call_cli("schema", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout) == all_schemas()


def test_schema_is_deterministic():
    """Rendering twice gives the same text (a stable --check, no spurious diffs)."""
    assert {n: render_schema(s) for n, s in all_schemas().items()} == {
        n: render_schema(s) for n, s in all_schemas().items()}


BAD_LABEL_KEYS = ["x/../y", "../x", "x/..", "/x", "x/", "a//b", "a/./b", ".x", "a..b"]


@pytest.mark.parametrize("key", BAD_LABEL_KEYS)
def test_label_keys_that_the_registry_refuses_fail_lint(key):
    """A label key becomes the tag key mlops.label.KEY; MLflow refuses keys that resolve to
    another name as a path, so lint refuses them first."""
    from mlops_gitops.spec.loader import load_bytes

    doc = {"apiVersion": "mlops-gitops/v1", "kind": "Dataset",
           "metadata": {"name": "d", "labels": {key: "v"}},
           "spec": {"path": "data/x.csv", "columns": {"a": {"type": "int"}}}}
    _, diagnostics = load_bytes(yaml.safe_dump(doc).encode(), "specs/d.yaml")
    assert [d.path for d in diagnostics] == [f"metadata.labels.{key}"]
    if key != "a..b":  # harmless as a path, refused by lint for clarity only
        assert not _validator("Dataset").is_valid(doc)


@pytest.mark.parametrize("key", ["team", "kubernetes.io/name", "a/b-c", "a.b_c/d.e"])
def test_label_keys_the_registry_accepts_pass_lint(key):
    from mlops_gitops.spec.loader import load_bytes

    doc = {"apiVersion": "mlops-gitops/v1", "kind": "Dataset",
           "metadata": {"name": "d", "labels": {key: "v"}},
           "spec": {"path": "data/x.csv", "columns": {"a": {"type": "int"}}}}
    _, diagnostics = load_bytes(yaml.safe_dump(doc).encode(), "specs/d.yaml")
    assert diagnostics == [] and _validator("Dataset").is_valid(doc)
