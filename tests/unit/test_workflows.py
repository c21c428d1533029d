"""The GitHub Actions workflows that `init` scaffolds: valid, and calling real commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_gitops.cli.app import build_parser
from mlops_gitops.scaffold import scaffold

WORKFLOWS = ("pr.yml", "deploy.yml")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scaffold")
    scaffold(root)
    return root


def _subcommands() -> dict[str, set[str]]:
    """Command -> its option strings, read from the real parser."""
    parser = build_parser()
    commands = {}
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            options = {o for a in sub._actions for o in a.option_strings}
            commands[name] = options
            if sub._subparsers is not None:
                for inner in sub._subparsers._group_actions:
                    for inner_name, inner_sub in inner.choices.items():
                        commands[f"{name} {inner_name}"] = {
                            o for a in inner_sub._actions for o in a.option_strings}
    return commands


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_matches_the_github_schema(repo, name):
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                             "vendor.github-workflows", str(repo / ".github/workflows" / name)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_calls_only_real_commands_and_options(repo, name):
    workflow = yaml.safe_load((repo / ".github/workflows" / name).read_text())
    commands = _subcommands()
    calls = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            calls += re.findall(r"mlops-gitops ([a-z-]+(?: [a-z]+)?)([^\n|>]*)",
                                step.get("run", ""))
    assert calls, "the workflow runs no mlops-gitops command"
    for command, rest in calls:
        if command not in commands:
            command = command.split()[0]
        assert command in commands, f"{name}: unknown command 'mlops-gitops {command}'"
        for option in re.findall(r"(?<!\S)(--?[a-z][a-z-]*)", rest):
            assert option in commands[command], f"{name}: {command} has no option {option}"


def test_pr_workflow_updates_one_comment_by_the_report_marker(repo):
    from mlops_gitops.report.pr import MARKER

    text = (repo / ".github/workflows/pr.yml").read_text()
    assert MARKER in text
