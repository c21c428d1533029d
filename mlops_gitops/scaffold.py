"""``init``: a new GitOps repository from the bundled template, its git repository, DVC remote
and environment branches."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlops_gitops import __version__
from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.spec.schema import all_schemas, render_schema

# Where CI installs mlops-gitops from (`init --source`): a placeholder until the project is
# published; teams point it at their mirror or fork, pinned to a tag or commit.
DEFAULT_SOURCE = f"git+https://github.com/mlops-gitops/mlops-gitops@v{__version__}"
DEFAULT_DVC_REMOTE = ".mlops/dvc-remote"
# requirements.txt (CI: everything) and the pre-commit hook (lint: the small base install)
_SOURCE_TOKENS = {"@MLOPS_GITOPS_SOURCE@": "all", "@MLOPS_GITOPS_LINT_SOURCE@": None}

# Template files whose name in the new repository differs (dotfiles are not packaged reliably;
# everything under github/ goes to .github/).
_RENAMES = {"gitignore": ".gitignore", "pre-commit-config.yaml": ".pre-commit-config.yaml"}


@dataclass(frozen=True)
class Scaffolded:
    created: list[str]
    kept: list[str]  # already there: never overwritten


def _template_files():
    root = resources.files("mlops_gitops") / "templates" / "project"
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                stack.append((entry, f"{prefix}{entry.name}/"))
            elif not entry.name.endswith(".pyc"):
                name = f"{prefix}{entry.name}"
                name = _RENAMES.get(name) or (f".{name}" if name.startswith("github/") else name)
                yield name, entry.read_text(encoding="utf-8")


def requirement_line(source: str, extra: str | None = None) -> str:
    """The requirement line for ``source``: a URL becomes a PEP 508 direct reference
    (``mlops-gitops[EXTRA] @ git+https://...@TAG``); a requirement (``mlops-gitops==0.2.0``) gets
    the extra after its name."""
    source = source.strip()
    if not source or any(c in source for c in "\n\r\"'\\"):
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message="--source must be one line without quotes: a "
                                                  "pip URL or a requirement",
                                          hint=f"e.g. {DEFAULT_SOURCE}")])
    name = f"mlops-gitops[{extra}]" if extra else "mlops-gitops"
    if "://" in source and " @ " not in source:
        return f"{name} @ {source}"
    if extra and re.match(r"mlops-gitops(?![\w.\[-])", source):
        return name + source[len("mlops-gitops"):]
    return source


def scaffold(target: Path, source: str = DEFAULT_SOURCE) -> Scaffolded:
    """Write the template project, JSON Schemas and example data into ``target``; CI installs
    mlops-gitops from ``source`` (requirements.txt)."""
    lines = {token: requirement_line(source, extra) for token, extra in _SOURCE_TOKENS.items()}
    files = {}
    for name, text in _template_files():
        for token, line in lines.items():
            text = text.replace(token, line)
        files[name] = text
    files.update({f"schemas/{n}": render_schema(s) for n, s in all_schemas().items()})
    created, kept = [], []
    for name, text in sorted(files.items()):
        path = target / name
        if path.exists():
            kept.append(name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        created.append(name)
    data = target / "data" / "iris.csv"
    if data.exists():
        kept.append("data/iris.csv")
    else:
        from mlops_gitops.examples import write_example

        write_example("iris", data)
        created.append("data/iris.csv")
    return Scaffolded(created, kept)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)


def _git(target: Path, *args: str) -> subprocess.CompletedProcess:
    return _run(["git", *args], target)


def _failed(what: str, result: subprocess.CompletedProcess, hint: str | None = None):
    detail = (result.stderr or result.stdout).strip().splitlines()
    return DiagnosticError([Diagnostic("<init>", code="init", hint=hint,
                                       message=f"{what} failed: {detail[-1] if detail else ''}")])


def git_toplevel(target: Path) -> Path | None:
    """The root of the git work tree ``target`` is in (None: not in one, or no git)."""
    if shutil.which("git") is None:
        return None
    result = _git(target, "rev-parse", "--show-toplevel")
    return Path(result.stdout.strip()).resolve() if result.returncode == 0 else None


def ensure_git(target: Path) -> str:
    """``git init`` unless ``target`` is already in a git work tree."""
    if git_toplevel(target) is not None:
        return "kept"
    if shutil.which("git") is None:
        return "missing"
    result = _git(target, "init", "--quiet")
    if result.returncode != 0:
        raise _failed("git init", result)
    return "created"


@dataclass(frozen=True)
class DvcSetup:
    status: str  # created | kept | skipped
    remote: str | None = None
    detail: str = ""

    def to_dict(self) -> dict:
        return {"status": self.status, "remote": self.remote, "detail": self.detail}


def _dvc(target: Path, *commands: list[str]) -> subprocess.CompletedProcess:
    """Run DVC commands one after the other in one interpreter (DVC takes a second to import);
    stop at the first that fails."""
    code = ("import sys\nfrom dvc.cli import main\n"
            f"for args in {commands!r}:\n"
            "    code = main(args)\n"
            "    if code:\n"
            "        sys.exit(code)\n")
    return _run([sys.executable, "-c", code], target)


def setup_dvc(target: Path, remote: str | None) -> DvcSetup:
    """``dvc init`` (when not yet) and a default remote (``remote``, else a local folder), when
    DVC is installed. An existing default remote is never replaced."""
    if importlib.util.find_spec("dvc") is None:
        return DvcSetup("skipped", detail="dvc is not installed")
    top = git_toplevel(target)
    if top is None:
        return DvcSetup("skipped", detail="not a git repository (DVC needs one)")
    url = remote or DEFAULT_DVC_REMOTE
    add = ["remote", "add", "--default", "storage", url]
    if not (target / ".dvc").is_dir():
        init = ["init", "--quiet"] + ([] if top == target.resolve() else ["--subdir"])
        result = _dvc(target, init, ["config", "core.analytics", "false"], add)
        if result.returncode != 0:
            raise _failed("dvc init (and its remote)", result)
        return DvcSetup("created", "storage", url)
    current = _dvc(target, ["remote", "default"])
    if current.returncode == 0 and current.stdout.strip():
        name = current.stdout.strip().splitlines()[-1]
        detail = "default remote already set"
        if remote is not None:
            detail += f"; to use {remote}: dvc remote add -d -f {name} {remote}"
        return DvcSetup("kept", name, detail)
    result = _dvc(target, add)
    if result.returncode != 0:
        raise _failed("dvc remote add", result)
    return DvcSetup("created", "storage", url)


def environment_branches(target: Path) -> list[str]:
    """The git branches of the project's Environment specs, in promotion order."""
    from mlops_gitops.spec.project import load_project

    project = load_project(target)
    environments = project.environments
    try:
        order = project.promotion_order()
    except Exception:  # a cycle or a dangling reference: lint reports it; keep the file order
        order = list(environments)
    return [environments[name].branch for name in order if name in environments]


def create_branches(target: Path) -> dict[str, str]:
    """Create each environment's branch at HEAD when missing; never move an existing one.
    Branch -> "created" or "kept"."""
    if git_toplevel(target) is None:
        raise DiagnosticError([Diagnostic(str(target), code="init",
                                          message="--branches needs a git repository",
                                          hint="run 'git init' there first")])
    if _git(target, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").returncode != 0:
        raise DiagnosticError([Diagnostic(
            str(target), code="init",
            message="--branches needs a commit: the environment branches start at HEAD",
            hint="commit the scaffold first (git add -A && git commit -m 'mlops-gitops "
                 "scaffold'), then run 'mlops-gitops init --branches' again")])
    branches = environment_branches(target)
    if not branches:
        raise DiagnosticError([Diagnostic(str(target / "environments"), code="init",
                                          message="no Environment specs: no branches to create")])
    done = {}
    for branch in branches:
        if _git(target, "check-ref-format", "--branch", branch).returncode != 0:
            raise DiagnosticError([Diagnostic(str(target / "environments"), code="init",
                                              message=f"'{branch}' is not a valid branch name")])
        if _git(target, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}").returncode == 0:
            done[branch] = "kept"
            continue
        result = _git(target, "branch", branch, "HEAD")
        if result.returncode != 0:
            raise _failed(f"git branch {branch}", result)
        done[branch] = "created"
    return done
