"""The command line: --version, --help of every (sub)command, usage errors without tracebacks."""

from __future__ import annotations

import argparse

import pytest

from mlops_gitops import __version__
from mlops_gitops.cli.app import build_parser

from .support import REPO, call_cli, copy_example_project, run_cli


def _commands(parser: argparse.ArgumentParser, prefix: tuple = ()) -> list[tuple[str, ...]]:
    """Every command path, e.g. ('lint',), ('data', 'validate'), found from the parser itself."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(prefix + (name,))
                found += _commands(sub, prefix + (name,))
    return found


COMMANDS = _commands(build_parser())


def test_commands_include_the_foundation():
    assert {("lint",), ("schema",), ("init",), ("run",)} <= set(COMMANDS)


def test_version(tmp_path):
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert result.stdout.strip() == f"mlops-gitops {__version__}"


def test_help(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert result.stdout.startswith("usage: mlops-gitops")
    for (name,) in [c for c in COMMANDS if len(c) == 1]:
        assert name in result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_subcommand_help(command, tmp_path):
    result = run_cli(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert result.stdout.startswith(f"usage: mlops-gitops {' '.join(command)}")
    assert "Traceback" not in result.output


def test_no_command_is_a_usage_error(tmp_path):
    result = call_cli(cwd=tmp_path)
    assert result.returncode == 1  # usage errors exit 1 (2 is plan's "changes pending")
    assert "usage:" in result.stderr


def test_lint_missing_path(tmp_path):
    root = copy_example_project(tmp_path / "project")
    result = run_cli("lint", "specs/nope.yaml", cwd=root)
    assert result.returncode == 1
    assert "specs/nope.yaml: error: no such file or folder" in result.stdout
    assert "Traceback" not in result.output


def test_lint_missing_project_folder(tmp_path):
    result = run_cli("lint", "-C", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 1
    assert "project folder does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_lint_project_option_from_elsewhere(tmp_path):
    root = copy_example_project(tmp_path / "project")
    (root / "specs" / "bad.yaml").write_text("kind: Model\n", encoding="utf-8")
    result = call_cli("lint", "-C", str(root), cwd=tmp_path)
    assert result.returncode == 1
    assert "project/specs/bad.yaml:1:1: error: missing apiVersion" in result.stdout
    assert call_cli("lint", "-C", str(REPO), cwd=tmp_path).returncode == 0


def test_lint_finds_the_root_from_a_subfolder(tmp_path):
    root = copy_example_project(tmp_path / "project")
    (root / "policies" / "bad.yaml").write_text("kind: Model\n", encoding="utf-8")
    result = call_cli("lint", cwd=root / "specs" / "models")
    assert result.returncode == 1
    assert "bad.yaml:1:1: error: missing apiVersion" in result.stdout


def test_lint_a_folder_reports_only_inside_it(tmp_path):
    root = copy_example_project(tmp_path / "project")
    (root / "policies" / "bad.yaml").write_text("kind: Model\n", encoding="utf-8")
    assert call_cli("lint", "specs", cwd=root).returncode == 0
    assert call_cli("lint", "policies", cwd=root).returncode == 1



def test_lint_paths_are_relative_to_the_project_option(tmp_path):
    root = copy_example_project(tmp_path / "project")
    (root / "policies" / "bad.yaml").write_text("kind: Model\n", encoding="utf-8")
    assert call_cli("lint", "-C", str(root), "specs", cwd=tmp_path).returncode == 0
    result = call_cli("lint", "-C", "project", "policies/bad.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "bad.yaml:1:1: error: missing apiVersion" in result.stdout
    missing = call_cli("lint", "-C", "project", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 1 and "project/nope.yaml: error: no such file" in missing.stdout


def test_a_closed_pipe_ends_quietly(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    process = subprocess.Popen([sys.executable, "-m", "mlops_gitops", "schema"], cwd=tmp_path,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().strip() == b"{"  # like `| head -1`
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(60) == 141
    assert stderr == ""
