"""What the editor accepts, lint accepts, and the other way round (issue 13, item 10).

Every case file runs through lint (``load_bytes``) and through the exported combined JSON Schema
the way editors and CI read it: a YAML 1.2 parser (ruamel.yaml, as check-jsonschema uses) and a
draft 2020-12 validator (``jsonschema``; the real ``check-jsonschema`` command too when it is
installed). Both must refuse or both must accept. The only disagreements allowed are listed in
LINT_ONLY with the reason no JSON Schema can say it; an entry that stops disagreeing fails too,
so the list stays honest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import ruamel.yaml
from jsonschema import Draft202012Validator

from mlops_gitops.spec.loader import load_bytes
from mlops_gitops.spec.schema import COMBINED, all_schemas

from .support import CORPUS, REPO, call_cli, copy_example_project

STRICT = CORPUS / "strict"
NEGATIVE = CORPUS / "negative"
SCHEMA_FILE = REPO / "schemas" / COMBINED

CROSS_FIELD = "a rule across fields, which JSON Schema cannot compare"
FINITE = "JSON has no NaN or infinity, so a JSON Schema cannot refuse them"
YAML_AMBIGUOUS = ("YAML 1.1 and 1.2 tools read this plain scalar differently; lint refuses it, "
                  "the schema only sees the YAML 1.2 value")

LINT_ONLY = {
    "strict/column-min-above-max": CROSS_FIELD,
    "strict/target-is-feature": CROSS_FIELD,
    "strict/nan-bound": FINITE,
    "strict/yaml11-bool-in-allowed": YAML_AMBIGUOUS,
    "strict/yaml11-octal": YAML_AMBIGUOUS,
    "strict/yaml11-underscore": YAML_AMBIGUOUS,
    "strict/yaml12-exponent": YAML_AMBIGUOUS,
    "strict/yaml12-octal": YAML_AMBIGUOUS,
    "negative/column-min-greater-than-max": CROSS_FIELD,
    "negative/column-min-nan": FINITE,
    "negative/policy-direction-contradicts-metric": CROSS_FIELD + " (metric name and direction)",
    "negative/policy-impossible-min": CROSS_FIELD + " (metric name and its range)",
    "negative/policy-min-greater-than-max": CROSS_FIELD,
    "negative/test-bins-not-increasing": CROSS_FIELD + " (items of one list)",
    "negative/test-impossible-bound": CROSS_FIELD + " (metric name and its range)",
    "negative/test-min-greater-than-max": CROSS_FIELD,
}


# Files check-jsonschema is not given in one batch: it expands the alias bomb that lint stops
# early (minutes); it crashes (no report, exit 1: still a refusal) on a recursive alias and on an
# invalid explicit !!int, so those run alone.
NOT_FOR_THE_TOOL = {"negative/billion-laughs"}
TOOL_CRASHES = {"negative/recursive-alias", "negative/explicit-int-tag-invalid"}


def _cases() -> list[tuple[str, Path]]:
    cases = [(f"strict/{p.stem}", p) for p in sorted(STRICT.glob("*.yaml"))]
    # The negative corpus's cross-file cases ('ref-*') are valid alone: both accept them.
    cases += [(f"negative/{p.stem}", p) for p in sorted(NEGATIVE.glob("*.yaml"))
              if p.name != "manifest.yaml"]
    return cases


CASES = _cases()


def _positive() -> list[Path]:
    files = [REPO / "mlops-gitops.yaml"] + sorted(
        p for folder in ("specs", "policies", "environments")
        for p in (REPO / folder).rglob("*") if p.suffix in (".yaml", ".yml"))
    return files + sorted((CORPUS / "positive").iterdir())


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema == all_schemas()[COMBINED], "run: mlops-gitops schema --out schemas"
    return Draft202012Validator(schema)


def _yaml12(raw: bytes) -> list:
    """The documents as check-jsonschema reads them (ruamel.yaml, YAML 1.2, dates as text)."""
    loader = ruamel.yaml.YAML(typ="safe", pure=True)
    loader.constructor.yaml_constructors["tag:yaml.org,2002:timestamp"] = \
        loader.constructor.yaml_constructors["tag:yaml.org,2002:str"]
    return list(loader.load_all(raw.decode("utf-8")))


def schema_verdict(raw: bytes) -> tuple[bool, str]:
    try:
        documents = _yaml12(raw)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a refusal
        return False, f"YAML 1.2 parser refuses it: {type(exc).__name__}"
    if not documents:
        return False, "no document"
    errors = [e.message for doc in documents for e in _validator().iter_errors(doc)]
    return not errors, "; ".join(errors)


def lint_verdict(raw: bytes, name: str) -> tuple[bool, str]:
    _, diagnostics = load_bytes(raw, name)
    return not diagnostics, "; ".join(f"{d.location}: {d.message}" for d in diagnostics)


@pytest.mark.parametrize("case, path", CASES, ids=[c for c, _ in CASES])
def test_lint_and_schema_agree(case, path):
    raw = path.read_bytes()
    lint_ok, lint_says = lint_verdict(raw, path.name)
    schema_ok, schema_says = schema_verdict(raw)
    if case in LINT_ONLY:
        assert not lint_ok and schema_ok, (
            f"{case} is listed as lint-only ({LINT_ONLY[case]}) but lint says "
            f"{lint_says or 'ok'} and the schema says {schema_says or 'ok'}: update LINT_ONLY")
    else:
        assert lint_ok == schema_ok, f"lint: {lint_says or 'ok'} / schema: {schema_says or 'ok'}"


def test_the_strict_corpus_has_good_and_bad_cases():
    good = [c for c, _ in CASES if c.startswith("strict/good-")]
    assert len(good) >= 8 and len(CASES) - len(good) >= 60
    for case, path in CASES:
        if case.startswith("strict/good-"):
            assert lint_verdict(path.read_bytes(), path.name) == (True, ""), case
    assert set(LINT_ONLY) <= {c for c, _ in CASES}


@pytest.mark.parametrize("path", _positive(), ids=lambda p: str(p.relative_to(REPO)))
def test_positive_corpus_passes_both(path):
    raw = path.read_bytes()
    assert lint_verdict(raw, path.name) == (True, "")
    assert schema_verdict(raw) == (True, "")


def _check_jsonschema() -> Path | None:
    exe = Path(sys.executable).parent / "check-jsonschema"
    return exe if exe.is_file() else None


def test_check_jsonschema_agrees_with_lint(tmp_path):
    """The real command editors' CI uses, on every single-document case file (it reads one
    document per file) and on the example project's files."""
    exe = _check_jsonschema()
    if exe is None:
        pytest.skip("check-jsonschema is not installed")
    files = {}
    for case, path in CASES + [(str(p.relative_to(REPO)), p) for p in _positive()]:
        if case in NOT_FOR_THE_TOOL or case in TOOL_CRASHES:
            continue
        try:
            if len(_yaml12(path.read_bytes())) != 1:
                continue
        except Exception:  # noqa: BLE001 - a file the YAML 1.2 parser refuses still counts
            pass
        files[str(path)] = case
    done = subprocess.run([str(exe), "--schemafile", str(SCHEMA_FILE), "-o", "json",
                           *files], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout)
    refused = {e["filename"] for e in report["errors"] + report["parse_errors"]}
    disagreements = []
    for filename, case in files.items():
        lint_ok, lint_says = lint_verdict(Path(filename).read_bytes(), Path(filename).name)
        tool_ok = filename not in refused
        expected = (False, True) if case in LINT_ONLY else (lint_ok, lint_ok)
        if (lint_ok, tool_ok) != expected:
            disagreements.append(f"{case}: lint {'accepts' if lint_ok else 'refuses'}, "
                                 f"check-jsonschema {'accepts' if tool_ok else 'refuses'}")
    for case, path in CASES:
        if case in TOOL_CRASHES:
            alone = subprocess.run([str(exe), "--schemafile", str(SCHEMA_FILE), str(path)],
                                   capture_output=True, text=True, timeout=60)
            assert alone.returncode != 0 and not lint_verdict(path.read_bytes(), path.name)[0]
    assert len(files) >= 90
    assert disagreements == []


@pytest.mark.parametrize("case, line, path, message, hint", [
    ("quoted-seed", 13, "spec.seed", "input should be a valid integer, got '42'",
     "write an integer without quotes"),
    ("quoted-threshold", 8, "spec.monitoring.drift.threshold",
     "input should be a valid number, got '0.2'", "write a number without quotes"),
    ("quoted-blessed", 9, "spec.gates.prod.blessed", "input should be a valid boolean, got 'true'",
     "write true or false without quotes"),
    ("quoted-version", 6, "spec.models[0].version", "got '1'", "without quotes"),
    ("yes-blessed", 9, "spec.gates.prod.blessed",
     "'yes' is a boolean in YAML 1.1 but a string in YAML 1.2", "write true or false, or quote"),
    ("yaml11-bool-in-allowed", 8, "spec.columns.species.allowed[1]", "'NO' is a boolean",
     "quote it ('NO')"),
    ("yaml11-octal", 13, "spec.seed", "'0777' is read as a different number", "leading zeros"),
    ("yaml12-exponent", 8, "spec.monitoring.drift.threshold", "'2e-1' is a string in YAML 1.1",
     "1.0e+3"),
    ("estimator-wrong-task", 12, "spec.estimator.class",
     "classification estimator 'sklearn.linear_model.Ridge' is not allow-listed", ""),
])
def test_lint_names_file_line_and_field(case, line, path, message, hint):
    _, diagnostics = load_bytes((STRICT / f"{case}.yaml").read_bytes(), f"specs/{case}.yaml")
    assert len(diagnostics) == 1, diagnostics
    found = diagnostics[0]
    assert (found.file, found.line, found.path) == (f"specs/{case}.yaml", line, path), found
    assert message in found.message and hint in found.hint, found


def test_lint_command_refuses_a_yaml11_boolean(tmp_path):
    root = copy_example_project(tmp_path / "project")
    policy = root / "policies" / "classification.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("blessed: true", "blessed: yes"),
                      encoding="utf-8")
    result = call_cli("lint", cwd=root)
    assert result.returncode == 1 and "Traceback" not in result.output
    assert "policies/classification.yaml:12:" in result.stdout, result.stdout
    assert "'yes' is a boolean in YAML 1.1" in result.stdout
