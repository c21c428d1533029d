"""The negative corpus: each bad input fails lint with its file, line and a useful message.

Cases and their expected outcome are listed in corpus/negative/manifest.yaml. Every case is checked
in-process (loader or project, then the CLI entry point); the cases marked ``cli`` also run the
real command in a subprocess.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

from mlops_gitops.diagnostics import Diagnostic
from mlops_gitops.spec.loader import load_bytes, load_file
from mlops_gitops.spec.project import load_project
from mlops_gitops.spec.yamlread import MAX_FILE_BYTES

from .support import CORPUS, REPO, call_cli, copy_example_project, run_cli

NEGATIVE = CORPUS / "negative"
MANIFEST = NEGATIVE / "manifest.yaml"
HEADER = b"apiVersion: mlops-gitops/v1\nkind: Dataset\nmetadata: {name: generated}\n"
HUGE_BYTES = 50 * 1024 * 1024


def _deep_nesting() -> bytes:
    """100,000 unclosed '[' as the value of line 4."""
    return HEADER + b"spec: " + b"[" * 100_000 + b"\n"


def _non_utf8() -> bytes:
    """A Latin-1 'e acute' (0xe9) on line 5."""
    return HEADER + b"spec:\n  path: data/caf\xe9.csv\n  columns: {a: {type: int}}\n"


@cache
def _huge_file() -> bytes:
    """~50 MB: a valid spec followed by comment lines (never committed, built at test time)."""
    valid = HEADER + b"spec:\n  path: data/x.csv\n  columns: {a: {type: int}}\n"
    line = b"# " + b"x" * 1021 + b"\n"  # 1 KiB
    return valid + line * (HUGE_BYTES // len(line))


GENERATORS = {"deep-nesting": _deep_nesting, "non-utf8": _non_utf8, "huge-file": _huge_file}


def _load_manifest() -> list[dict]:
    cases = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["cases"]
    for case in cases:
        case["id"] = case.get("generate") or Path(case["file"]).stem
        case.setdefault("at", f"specs/{case['id']}.yaml")
        case.setdefault("expect", case["at"])
        case.setdefault("scope", "file")
        case.setdefault("hint", "")
        case.setdefault("cli", False)
    return cases


CASES = _load_manifest()
CLI_CASES = [c for c in CASES if c["cli"]]


def _raw(case: dict) -> bytes:
    if "generate" in case:
        return GENERATORS[case["generate"]]()
    return (NEGATIVE / case["file"]).read_bytes()


def _project_with(case: dict, root: Path) -> Path:
    """A copy of the example project with the case written at its place."""
    copy_example_project(root)
    target = root / case["at"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(_raw(case))
    return root


def _matching(diagnostics: list[Diagnostic], case: dict) -> list[Diagnostic]:
    return [d for d in diagnostics
            if d.file == case["expect"] and d.line == case["line"] and case["message"] in d.message
            and case["hint"] in d.hint]


def _describe(diagnostics: list[Diagnostic]) -> str:
    return "\n".join(f"{d.location}: {d.message} (hint: {d.hint})" for d in diagnostics)


def _assert_cli_output(result, case: dict) -> None:
    output = result.output
    assert "Traceback" not in output, output
    assert result.returncode == 1, output
    assert f"{case['expect']}:{case['line']}:" in result.stdout, output
    assert case["message"] in result.stdout, output
    assert case["hint"] in result.stdout, output


# --- the manifest itself ---------------------------------------------------------------------

def test_manifest_is_complete():
    assert len(CASES) >= 32
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    listed = {c["file"] for c in CASES if "file" in c}
    on_disk = {p.name for p in NEGATIVE.iterdir() if p.name != MANIFEST.name}
    assert on_disk == listed, "every case file is in the manifest, and the other way round"
    assert set(GENERATORS) == {c["generate"] for c in CASES if "generate" in c}
    for case in CASES:
        assert case["scope"] in ("file", "project")
        assert isinstance(case["line"], int) and case["line"] >= 1
        assert case["message"]


def test_huge_file_is_over_the_limit_and_not_committed():
    assert len(_huge_file()) > 40 * MAX_FILE_BYTES
    assert not any(p.stat().st_size > 64 * 1024 for p in NEGATIVE.iterdir())


# --- in-process: loader / project ------------------------------------------------------------

@pytest.mark.parametrize("case", [c for c in CASES if c["scope"] == "file"], ids=lambda c: c["id"])
def test_file_case_in_process(case):
    """The case alone, through load_bytes: never raises, reports the expected diagnostic."""
    _, diagnostics = load_bytes(_raw(case), case["at"])
    assert _matching(diagnostics, case), _describe(diagnostics)
    for d in diagnostics:
        assert d.severity == "error" and d.line >= 1 and d.col >= 1, d


@pytest.mark.parametrize("case", [c for c in CASES if c["scope"] == "project"],
                         ids=lambda c: c["id"])
def test_project_case_in_process(case, tmp_path, monkeypatch):
    """The case is valid alone; in the project its references do not resolve."""
    specs, alone = load_bytes(_raw(case), case["at"])
    assert alone == [] and len(specs) == 1
    root = _project_with(case, tmp_path / "project")
    monkeypatch.chdir(root)
    project = load_project(root)
    assert not project.ok
    assert _matching(project.diagnostics, case), _describe(project.diagnostics)
    for d in project.diagnostics:
        assert d.line >= 1 and d.col >= 1, d


@pytest.fixture
def workdir(tmp_path):
    """tmp_path, emptied of the ~50 MB generated file afterwards (pytest keeps old tmp dirs)."""
    yield tmp_path
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.stat().st_size > 10 * MAX_FILE_BYTES:
            path.unlink()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_lint_entry_point(case, workdir):
    """`mlops-gitops lint` (in-process) on the project holding the case: exit 1, FILE:LINE:."""
    root = _project_with(case, workdir / "project")
    _assert_cli_output(call_cli("lint", cwd=root), case)


# --- the real command line -------------------------------------------------------------------

@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c["id"])
def test_lint_subprocess(case, workdir):
    root = _project_with(case, workdir / "project")
    _assert_cli_output(run_cli("lint", cwd=root), case)


def test_lint_subprocess_reports_only_the_named_file(tmp_path):
    """With a path, only that file is reported on (the project is still read for references)."""
    case = next(c for c in CASES if c["id"] == "ref-unknown-dataset")
    root = _project_with(case, tmp_path / "project")
    (root / "specs" / "also-bad.yaml").write_bytes((NEGATIVE / "empty.yaml").read_bytes())
    result = run_cli("lint", case["at"], cwd=root)
    _assert_cli_output(result, case)
    assert "also-bad.yaml" not in result.output


# --- limits, boundaries and generated inputs ---------------------------------------------------

def test_huge_file_is_rejected_before_reading(workdir):
    path = workdir / "huge.yaml"
    path.write_bytes(_huge_file())
    specs, diagnostics = load_file(path, "huge.yaml")
    assert specs == []
    assert [(d.line, d.code) for d in diagnostics] == [(1, "file-too-large")]
    assert f"file is {len(_huge_file())} bytes" in diagnostics[0].message


@pytest.mark.parametrize("size, too_large", [(MAX_FILE_BYTES, False), (MAX_FILE_BYTES + 1, True)])
def test_size_limit_boundary(tmp_path, size, too_large):
    valid = HEADER + b"spec:\n  path: data/x.csv\n  columns: {a: {type: int}}\n"
    padding = size - len(valid)
    raw = valid + (b"#" * (padding - 1) + b"\n")
    assert len(raw) == size
    path = tmp_path / "limit.yaml"
    path.write_bytes(raw)
    for specs, diagnostics in (load_file(path, "limit.yaml"), load_bytes(raw, "limit.yaml")):
        assert bool(diagnostics) is too_large, diagnostics
        assert len(specs) == (0 if too_large else 1)
        if too_large:
            assert "more than the limit" in diagnostics[0].message


@pytest.mark.parametrize("raw", [
    b"[" * 100_000,
    b"{a: " * 100_000,
    b"- " * 100_000,
    b"[" * 100_000 + b"]" * 100_000,
    b"&x [" + b"[" * 50_000,
    b"a:\n" + b"".join(b" " * i + b"a:\n" for i in range(1, 1000)),
], ids=["flow-seq", "flow-map", "block-seq", "balanced", "anchored", "block-map"])
def test_deep_nesting_never_crashes(raw):
    specs, diagnostics = load_bytes(raw, "deep.yaml")
    assert specs == []
    assert len(diagnostics) == 1 and "nesting deeper than 32 levels" in diagnostics[0].message


@pytest.mark.parametrize("tag", [
    "!!python/object:os.system", "!!python/object/new:os.system", "!!python/object/apply:os.system",
    "!!python/name:os.system", "!!python/module:os", "!!python/tuple", "!!omap", "!!pairs",
    "!!binary", "!!set", "!custom", "!<tag:example.com,2000:app>",
])
@pytest.mark.parametrize("node", ["x", "[x]", "{x: 1}"], ids=["scalar", "sequence", "mapping"])
def test_tags_outside_the_core_schema_are_refused(tag, node):
    specs, diagnostics = load_bytes(f"ok: 1\na: {tag} {node}\n".encode(), "tags.yaml")
    assert specs == []
    assert [(d.line, d.col, d.path) for d in diagnostics] == [(2, 4, "a")], diagnostics
    assert "is not allowed" in diagnostics[0].message


def test_tag_on_a_key_is_refused():
    specs, diagnostics = load_bytes(b"ok: 1\n!!python/name:os.system key: 1\n", "tags.yaml")
    assert [(d.line, d.col) for d in diagnostics] == [(2, 1)], diagnostics
    assert "is not allowed" in diagnostics[0].message


def test_python_tags_are_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    raw = (f"apiVersion: mlops-gitops/v1\nkind: Dataset\nmetadata:\n  name: x\n  description: "
           f"!!python/object/apply:os.system ['touch {marker}']\n").encode()
    load_bytes(raw, "exploit.yaml")
    assert not marker.exists()


@pytest.mark.parametrize("levels, expands", [(5, False), (9, True)])
def test_alias_expansion_limit(levels, expands):
    """Aliases count every node they expand to: a small fan-out passes, a bomb does not."""
    lines = ["a0: &a0 [x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 4)}]" for i in range(1, levels)]
    specs, diagnostics = load_bytes("\n".join(lines).encode(), "aliases.yaml")
    messages = [d.message for d in diagnostics]
    if expands:
        assert any("alias bomb" in m for m in messages), messages
    else:  # 4**5 nodes is fine; the document is rejected only for not being a spec
        assert not any("alias bomb" in m for m in messages), messages
        assert any("missing apiVersion" in m for m in messages), messages


@pytest.mark.parametrize("raw, line", [
    (b"a: !!int many\n", 1),
    (b"a: 1\nb: !!float lots\n", 2),
    (b"a: 1\nb: 2\nc: !!bool maybe\n", 3),
    (b"a: !!int\n", 1),
    (b"a: !!int 0x\n", 1),
    (b"a: !!float 1e\n", 1),
], ids=["int-word", "float-word", "bool-word", "int-empty", "int-hex-empty", "float-exponent"])
def test_explicit_core_tag_with_bad_text_is_a_diagnostic(raw, line):
    """Bug: the constructor's ValueError/KeyError/IndexError escapes read_yaml."""
    specs, diagnostics = load_bytes(raw, "tagged.yaml")
    assert specs == []
    assert [d.line for d in diagnostics] == [line], diagnostics


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\ufffe"],
                         ids=["nul", "bell", "escape", "non-character"])
def test_control_character_is_located(char):
    """Bug: a ReaderError has no mark, and is reported at 1:1 whatever its place."""
    raw = f"a: 1\nb: 2\nc: x{char}y\n".encode()
    specs, diagnostics = load_bytes(raw, "control.yaml")
    assert specs == []
    assert [(d.line, d.col) for d in diagnostics] == [(3, 5)], diagnostics


def test_example_project_is_untouched_by_the_cases():
    """The corpus never writes into the repository (cases are copied to tmp_path)."""
    assert not (REPO / "specs" / "models" / "zz-duplicate.yaml").exists()
    assert not (REPO / "environments" / "zz-duplicate.yaml").exists()
