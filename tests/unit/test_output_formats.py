"""`lint --format text|json|github`: the same diagnostics, machine-readable where asked."""

from __future__ import annotations

import json
import re

import pytest

from mlops_gitops.diagnostics import Diagnostic, render_github, render_json, render_text

from .support import CORPUS, call_cli, copy_example_project, run_cli

GITHUB_LINE = re.compile(
    r"^::error file=(?P<file>[^,:]+),line=(?P<line>[1-9]\d*),col=(?P<col>[1-9]\d*)"
    r"(?:,title=[^,:]*)?::(?P<message>\S.*)$")
# file in the project -> (line, message fragment) of the diagnostic it must produce
BROKEN = {
    "specs/unknown-field-nested.yaml": (8, "unknown field 'mni'"),
    "specs/duplicate-key.yaml": (10, "duplicate key 'a'"),
    "specs/models/ref-unknown-dataset.yaml": (6, "unknown Dataset 'irsi'"),
}


@pytest.fixture
def broken_project(tmp_path):
    root = copy_example_project(tmp_path / "project")
    for target in BROKEN:
        source = CORPUS / "negative" / target.rsplit("/", 1)[-1]
        (root / target).write_bytes(source.read_bytes())
    return root


def test_json_format(broken_project):
    result = run_cli("lint", "--format", "json", cwd=broken_project)
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    diagnostics = report["diagnostics"]
    assert diagnostics
    for d in diagnostics:
        assert {"file", "line", "col", "path", "message"} <= set(d)
        assert isinstance(d["line"], int) and d["line"] >= 1
        assert isinstance(d["col"], int) and d["col"] >= 1
        assert isinstance(d["file"], str) and isinstance(d["path"], str) and d["message"]
        assert d["severity"] == "error"
    for file, (line, message) in BROKEN.items():
        assert any(d["file"] == file and d["line"] == line and message in d["message"]
                   for d in diagnostics), (file, diagnostics)
    hinted = next(d for d in diagnostics if d["file"] == "specs/unknown-field-nested.yaml")
    assert hinted["path"] == "spec.columns.a.mni" and hinted["hint"] == "did you mean 'min'?"


def test_github_format(broken_project):
    result = run_cli("lint", "--format", "github", cwd=broken_project)
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stdout.splitlines()
    assert lines
    matches = [GITHUB_LINE.match(line) for line in lines]
    assert all(matches), lines
    found = {(m["file"], int(m["line"])) for m in matches}
    for file, (line, message) in BROKEN.items():
        assert (file, line) in found
        assert any(m["file"] == file and message in m["message"] for m in matches)
    assert any("(did you mean 'min'?)" in m["message"] for m in matches)


def test_formats_agree(broken_project):
    text = call_cli("lint", cwd=broken_project)
    as_json = json.loads(call_cli("lint", "-f", "json", cwd=broken_project).stdout)
    github = call_cli("lint", "-f", "github", cwd=broken_project).stdout.splitlines()
    locations = [f"{d['file']}:{d['line']}:{d['col']}" for d in as_json["diagnostics"]]
    assert [line.split(": ")[0] for line in text.stdout.splitlines()
            if not line.startswith(" ")][:-1] == locations
    assert len(github) == len(locations)
    assert text.stdout.splitlines()[-1] == f"{len(locations)} error(s), 0 warning(s)"


def test_clean_project_in_every_format(tmp_path):
    root = copy_example_project(tmp_path / "project")
    text = call_cli("lint", cwd=root)
    assert (text.returncode, text.stdout) == (0, "no problems found\n")
    as_json = call_cli("lint", "--format", "json", cwd=root)
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == {"ok": True,
                                                                      "diagnostics": []}
    github = call_cli("lint", "--format", "github", cwd=root)
    assert (github.returncode, github.stdout) == (0, "")


def test_text_format_shows_location_path_and_hint(broken_project):
    result = call_cli("lint", "specs/unknown-field-nested.yaml", cwd=broken_project)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "specs/unknown-field-nested.yaml:8:22: error: unknown field 'mni' [spec.columns.a.mni]",
        "    hint: did you mean 'min'?",
        "1 error(s), 0 warning(s)",
    ]


def test_github_escaping():
    diagnostic = Diagnostic("dir,1/a:b.yaml", 3, 0, "spec.a,b:c", "100% wrong\nsecond line\r",
                            "fix it")
    [line] = render_github([diagnostic]).splitlines()
    assert line == ("::error file=dir%2C1/a%3Ab.yaml,line=3,col=1,title=spec.a%2Cb%3Ac"
                    "::100%25 wrong%0Asecond line%0D (fix it)")
    assert GITHUB_LINE.match(line)


def test_unlocated_diagnostic_renders_without_line():
    diagnostic = Diagnostic("<command line>", message="no such file")
    assert render_github([diagnostic]) == "::error file=<command line>::no such file"
    assert render_text([diagnostic]).splitlines()[0] == "<command line>: error: no such file"
    assert json.loads(render_json([diagnostic]))["diagnostics"][0]["line"] == 0


def test_fatal_errors_are_annotations_in_github_format(tmp_path):
    root = copy_example_project(tmp_path / "project")  # no data files: validation cannot start
    result = run_cli("data", "validate", "iris", "--format", "github", cwd=root)
    assert result.returncode == 1
    [line] = result.stdout.splitlines()
    assert line.startswith("::error file=specs/datasets/iris.yaml,title=spec.path::")
    assert "data file 'data/iris.csv' does not exist" in line
    assert result.stderr == ""
