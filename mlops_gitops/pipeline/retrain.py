"""Retraining proposals: the one path that every retraining trigger ends in.

A proposal is a branch ``retrain/<model>`` off the base branch (``main``: where model specs are
reviewed and ``ci pr`` trains) with one commit that bumps ``spec.retrain.generation`` in the
model's spec file and records the trigger and the reason next to it. The generation is part of
the model's fingerprint (:mod:`mlops_gitops.identity`), so the pull request's pipeline trains a
new version, on the data version the branch's ``.dvc`` file names: the newest one on the base
branch (for a dataset imported with ``dvc import``/``import-url``, the newest at its source:
``dvc update`` on the branch, pushed to the DVC remote), or newer data pushed onto the proposal
branch before it is merged.

The proposal is **updated, never duplicated**: the branch name depends on the model only. While
the branch holds nothing but proposal commits (each carries the ``Mlops-Gitops-Retrain:``
trailer and changes nothing but the model's ``spec.retrain`` and, for an imported dataset, its
``.dvc`` file: an amended one is people's work) it is rebuilt from the newest base (the same
generation, base's + 1; the new reason and report) and force-pushed; when people added commits
on top of a proposal (or amended it), a new proposal commit goes on top of theirs; a branch of
that name that holds no proposal at all is refused. The local branch and origin's (as last
fetched) are both examined: the one with people's commits the other lacks is built on, two that
both have such commits are refused, and the push's lease is origin's commit as examined, so a
push made meanwhile is never overwritten. With a token (``GH_TOKEN``/``GITHUB_TOKEN``) the
branch is pushed and the pull request opened or its description updated
(:func:`mlops_gitops.pipeline.promote.push_and_open`: ``gh``, else the REST API); without one,
the branch stays local and the command that opens the pull request is printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError, did_you_mean
from mlops_gitops.pipeline.promote import (
    Progress,
    check_can_open,
    github_token,
    push_and_open,
    run_git,
)

TRIGGERS = ("request", "schedule", "data", "quality", "drift")
TRAILER = "Mlops-Gitops-Retrain"
MARKER = "<!-- mlops-gitops retrain -->"
BRANCH_PREFIX = "retrain/"
MAX_REASON = 500
MAX_BODY = 60_000  # GitHub refuses pull request bodies over 65,536 characters


@dataclass(frozen=True)
class Proposal:
    model: str
    trigger: str
    reason: str
    branch: str
    base: str
    spec_file: str  # relative to the repository root
    generation: int  # after the commit
    data: str  # "path (md5 ...)" the branch trains on
    commit: str
    mode: str  # "created" | "rebuilt" | "unchanged" | "appended"
    title: str
    description: str
    description_file: str = ""  # written for `gh pr create --body-file`
    pr_url: str | None = None
    next_step: str = ""
    data_update: str = ""  # what `dvc update` did for an imported dataset

    def to_dict(self) -> dict:
        return asdict(self)


def _error(message: str, hint: str = "") -> DiagnosticError:
    return DiagnosticError([Diagnostic("retrain", code="retrain", message=message, hint=hint)])


def _git(root: Path, *args: str, check: bool = True,
         env: dict | None = None) -> subprocess.CompletedProcess:
    return run_git(root, *args, check=check, label="retrain", env=env)


def _find_ref(root: Path, branch: str) -> str | None:
    for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
        if _git(root, "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0:
            return ref
    return None


# characters that never reach a commit message, a spec, a pull request or a terminal: controls
# (escape sequences, DEL, C1), format characters (bidi overrides, zero-width), surrogates (bytes
# of argv that were not UTF-8), private-use and unassigned code points
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))


def visible(text: str, keep: str = "") -> str:
    """``text`` without the characters of :data:`_HIDDEN` (but those in ``keep``)."""
    return "".join(ch for ch in text if ch in keep or unicodedata.category(ch) not in _HIDDEN)


def clean_reason(reason: str | None) -> str:
    """The reason on one line (whitespace runs made one space), without control or invisible
    characters: it comes from argv, or from a monitor report built from a served manifest."""
    text = " ".join(visible(" ".join((reason or "").split())).split())
    if not text:
        raise _error("a reason is required: say why the model should be retrained",
                     "e.g. mlops-gitops retrain iris-classifier --reason 'new labelled data'")
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def check_checkout(root: Path) -> None:
    """A git repository with a commit and no uncommitted changes to tracked files (the proposal
    is made from the base branch: edits in the working tree would silently be left out)."""
    inside = _git(root, "rev-parse", "--is-inside-work-tree", check=False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise _error(f"{root} is not a git repository: a retraining proposal is a git branch",
                     "run it in the project's clone (git init / git clone)")
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    if dirty:
        files = ", ".join(line[3:] for line in dirty[:5]) + (" ..." if len(dirty) > 5 else "")
        raise _error(f"the checkout has uncommitted changes ({files})",
                     "commit or discard them first: the proposal is built from the base "
                     "branch, and your edits would be left out of it")


# --- the spec edit -------------------------------------------------------------------------------

def _scalar(value: object) -> str:
    if isinstance(value, str):  # a JSON string is a YAML double-quoted one
        # YAML allows no raw C0/C1 control, DEL or surrogate: those are escaped (\uXXXX)
        return json.dumps(value, ensure_ascii=visible(value) != value)
    return json.dumps(value)


def edit_retrain(text: str, document, values: dict) -> str:
    """``text`` with the ``spec.retrain`` of ``document`` (a loaded YamlDocument of it) replaced
    by a one-line flow mapping of ``values``; inserted as the first key of ``spec`` when absent.
    Other lines (and their comments) are kept as they are."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    flow = "retrain: {" + ", ".join(f"{k}: {_scalar(v)}" for k, v in values.items()
                                    if v is not None) + "}" + newline
    keys = document.key_positions
    if ("spec", "retrain") in keys:
        line, column = keys[("spec", "retrain")]
        end = line  # lines[line - 1] is the key's line; the block goes on while indented deeper
        while end < len(lines) and (not lines[end].strip() or
                                    len(lines[end]) - len(lines[end].lstrip()) > column - 1):
            end += 1
        while end > line and not lines[end - 1].strip():
            end -= 1  # trailing blank lines stay
        return "".join(lines[:line - 1] + [" " * (column - 1) + flow] + lines[end:])
    children = [pos for path, pos in keys.items() if len(path) == 2 and path[0] == "spec"]
    spec_line = keys.get(("spec",), (0, 0))[0]
    if not children or min(children)[0] <= spec_line:
        raise _error("the model's 'spec' is not a block mapping (one key per line): add "
                     "'retrain: {generation: 1}' by hand once")
    line, column = min(children)
    return "".join(lines[:line - 1] + [" " * (column - 1) + flow] + lines[line - 1:])


# --- the proposal --------------------------------------------------------------------------------

def describe(model: str, trigger: str, reason: str, base: str, spec_file: str, before: int,
             after: int, data: str, served: str, report: str, data_update: str = "") -> str:
    lines = [MARKER, f"## Retrain `{model}` (trigger: {trigger})", "", f"**Reason:** {reason}", "",
             (f"This branch sets `spec.retrain.generation` in `{spec_file}` from {before} to "
              f"{after}." if before != after else f"This branch has `spec.retrain.generation` "
              f"{after} in `{spec_file}` (from its first proposal commit).")
             + " The generation is part of the model's fingerprint, so this pull "
             f"request's pipeline (`mlops-gitops ci pr`) trains a new version on the data "
             f"this branch names: {data}.", ""]
    if data_update:
        lines += [data_update, ""]
    if served:
        lines += [served, ""]
    lines += ["To retrain on newer data, add it to this branch before merging "
              "(`dvc add <data file> && dvc push && git commit`): the pipeline trains on what "
              "the branch's `.dvc` file names. A later trigger updates this pull request "
              "instead of opening another.", ""]
    report = visible(report, keep="\n\t")  # no terminal escapes or bidi overrides in a PR
    if report.strip():
        lines += ["<details open><summary>Monitor report</summary>", "", report.strip(), "",
                  "</details>", ""]
    body = "\n".join(lines)
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n…(cut: the whole report is in the monitor's output)\n"
    return body


def served_note(served: tuple[str, str | None] | None, md5: str | None) -> str:
    """What the served version was trained on, against the data this branch trains on."""
    if not served:
        return ""
    label, served_md5 = served
    note = f"Serving now: {label}, trained on data md5 `{served_md5 or 'unknown'}`"
    if served_md5 and md5 == served_md5:
        return (note + ": **the same data this branch names**. Retrained on it with the same "
                "seed, the model is the same: add newer data to this branch before merging.")
    if served_md5 and md5:
        return note + ": this branch trains on newer data."
    return note + "."


def _commits(root: Path, base_ref: str, ref: str,
             paths: tuple[str, str | None], model: str) -> list[tuple[str, bool, bool]]:
    """(sha, has the trailer, is a pure proposal commit) of the commits on ``ref`` that
    ``base_ref`` lacks. ``paths``: the model's spec file and, for an imported dataset, its
    ``.dvc`` file (what a proposal commit may change)."""
    out = _git(root, "log", "--format=%H%x1f%B%x1e", f"{base_ref}..{ref}").stdout
    commits = []
    for record in out.split("\x1e"):
        if record.strip():
            sha, _, message = record.strip().partition("\x1f")
            marked = re.search(rf"^{TRAILER}: ", message, re.M) is not None
            commits.append((sha, marked, marked and _pure(root, sha, paths, model)))
    return commits


def _pure(root: Path, sha: str, paths: tuple[str, str | None], model: str) -> bool:
    """Whether the commit is what ``propose`` makes, untouched: one parent, and no change but
    the ``spec.retrain`` of the model in its spec file (and the ``.dvc`` file of an imported
    dataset, which ``dvc update`` rewrites). An amended proposal commit is people's work."""
    spec_file, dvc_file = paths
    parents = _git(root, "rev-list", "--parents", "-n", "1", sha).stdout.split()
    if len(parents) != 2:
        return False
    changed = set(_git(root, "diff-tree", "--no-commit-id", "--name-only", "-r", "--no-renames",
                       "-z", sha).stdout.split("\0")) - {""}
    if spec_file not in changed or not changed <= {spec_file, dvc_file}:
        return False
    return _only_retrain_edited(root, parents[1], sha, spec_file, model)


def _only_retrain_edited(root: Path, parent: str, sha: str, spec_file: str, model: str) -> bool:
    """Whether ``edit_retrain`` of the parent's spec file gives the commit's, byte for byte."""
    from mlops_gitops.spec.loader import load_bytes

    def model_spec(rev: str):
        try:
            shown = _git(root, "show", f"{rev}:{spec_file}", check=False)
        except (UnicodeDecodeError, ValueError):
            return None, ""
        if shown.returncode != 0:
            return None, ""
        specs, _ = load_bytes(shown.stdout.encode("utf-8"), spec_file)
        found = [s for s in specs if s.kind == "Model" and s.name == model]
        return (found[0] if found else None), shown.stdout

    (old, old_text), (new, new_text) = model_spec(parent), model_spec(sha)
    if old is None or new is None or new.spec.spec.retrain is None:
        return False
    current, edited = old.spec.spec.retrain, new.spec.spec.retrain
    values = {"generation": edited.generation, "trigger": edited.trigger, "reason": edited.reason}
    if current is not None and current.max_age_days is not None:
        values = {"max_age_days": current.max_age_days, **values}
    try:
        return edit_retrain(old_text, old.document, values) == new_text
    except DiagnosticError:
        return False


def _examine(root: Path, branch: str, paths: tuple[str, str | None],
             model: str) -> tuple[str | None, str]:
    """The ref of the proposal branch to build on, and the lease for the push: the sha of
    origin's branch as examined here ("" when this clone knows none).

    Both the local branch and origin's (as last fetched) are examined: when origin's has
    commits that people made (not pure proposal commits) and the local one lacks, it is built
    on; when the local one has such commits origin's lacks, that one (origin's only loses
    proposal commits, which are made again); when both have, they have diverged and are
    refused (building on either would drop the other's work)."""
    local, remote = f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"
    local = local if _has(root, local) else None
    remote = remote if _has(root, remote) else None
    lease = _git(root, "rev-parse", remote).stdout.strip() if remote else ""
    if local is None or remote is None:
        return local or remote, lease
    if _git(root, "rev-parse", local).stdout.strip() == lease:
        return local, lease
    theirs = [c for c in _commits(root, local, remote, paths, model) if not c[2]]
    mine = [c for c in _commits(root, remote, local, paths, model) if not c[2]]
    if mine and theirs:
        raise _error(f"branch '{branch}' here and on origin have diverged: each has commits "
                     f"the other lacks ({len(mine)} here, {len(theirs)} on origin, not made by "
                     "a retraining proposal); building on either would drop the other's",
                     f"merge them: git checkout {branch} && git pull origin {branch} && "
                     f"git push origin {branch}; then run this again")
    if theirs:
        return remote, lease
    if mine or _git(root, "merge-base", "--is-ancestor", remote, local,
                    check=False).returncode == 0:
        return local, lease
    return remote, lease


def _has(root: Path, ref: str) -> bool:
    return _git(root, "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0


def _identity(root: Path) -> dict[str, str]:
    """A committer identity when git has none configured (a fresh CI runner)."""
    if _git(root, "config", "user.email", check=False).stdout.strip():
        return {}
    return {"GIT_AUTHOR_NAME": "mlops-gitops", "GIT_AUTHOR_EMAIL": "mlops-gitops@localhost",
            "GIT_COMMITTER_NAME": "mlops-gitops", "GIT_COMMITTER_EMAIL": "mlops-gitops@localhost"}


def propose(root: Path, model: str, trigger: str, reason: str, report: str = "",
            base: str = "main", served: tuple[str, str | None] | None = None,
            progress: Progress = lambda message: None,
            open_pr: bool | None = None) -> Proposal:
    """Make (or update) the retraining proposal of ``model`` (a Model spec name).

    ``report``: Markdown for the description (the monitor report); ``served``: the served
    version (e.g. "`iris-classifier` v4 in `prod`") and the md5 of the data it was trained on.
    ``open_pr``: push and open the pull request; by default when a token is set."""
    from mlops_gitops.data.versioning import data_version
    from mlops_gitops.spec.loader import load_file
    from mlops_gitops.spec.project import load_project

    if trigger not in TRIGGERS:
        raise _error(f"unknown trigger '{trigger}'", f"one of: {', '.join(TRIGGERS)}")
    reason = clean_reason(reason)
    root = Path(os.path.abspath(root))
    check_checkout(root)
    project = load_project(root)
    models = project.models
    if model not in models:
        raise _error(f"unknown model '{model}'", did_you_mean(model, models) or
                     f"models: {', '.join(sorted(models)) or 'none'}")
    paths = _proposal_paths(root, project, model)
    base_ref = _find_ref(root, base)
    if base_ref is None:
        raise _error(f"base branch '{base}' does not exist (locally or on origin)",
                     "name the branch pull requests merge into: --base BRANCH")
    branch = BRANCH_PREFIX + model
    if open_pr is None:
        open_pr = github_token() is not None
    if open_pr:  # a token, gh or GITHUB_REPOSITORY, origin: before anything is built or pushed
        check_can_open(root, f"git push --force-with-lease origin {branch}", "retrain")
    existing, lease = _examine(root, branch, paths, model)
    start, mode = base_ref, "created"
    if existing is not None:
        commits = _commits(root, base_ref, existing, paths, model)
        if commits and not any(marked for _, marked, _ in commits):
            raise _error(f"branch '{branch}' already exists with other content "
                         f"({len(commits)} commit(s) not made by a retraining proposal)",
                         f"rename or delete that branch (git branch -m {branch} OTHER), "
                         "then run this again")
        if not all(pure for _, _, pure in commits):
            start, mode = existing, "appended"  # people's work on the proposal: keep it
        else:
            mode = "rebuilt"
    progress(f"building {branch} on {start.removeprefix('refs/heads/')}")
    title = f"Retrain {model} ({trigger})"
    with tempfile.TemporaryDirectory(prefix="mlops-retrain-") as scratch:
        tree = Path(scratch) / "tree"
        _git(root, "worktree", "prune", check=False)  # left by a run that was killed
        _git(root, "worktree", "add", "--quiet", "--detach", str(tree), start)
        try:
            located = load_project(tree)
            if model not in located.models:
                raise _error(f"model '{model}' has no spec on '{base}'",
                             f"merge its spec into {base} first")
            loaded = located.located("Model", model)
            spec_path = Path(os.path.abspath(loaded.file)).resolve()
            relative = spec_path.relative_to(tree.resolve()).as_posix()
            current = loaded.spec.spec.retrain
            before = current.generation if current else 0
            base_gen = _base_generation(root, base_ref, relative, model)
            after = max(before, base_gen + 1) if mode == "appended" else base_gen + 1
            values = {"generation": after, "trigger": trigger, "reason": reason}
            if current is not None and current.max_age_days is not None:
                values = {"max_age_days": current.max_age_days, **values}
            text = spec_path.read_text(encoding="utf-8")
            spec_path.write_text(edit_retrain(text, loaded.document, values), encoding="utf-8")
            checked, problems = load_file(spec_path, relative)
            edited = [c.spec.spec.retrain for c in checked
                      if c.kind == "Model" and c.name == model]
            if problems or not edited or edited[0] is None or edited[0].generation != after:
                raise _error(f"editing {relative} did not give a valid spec: "
                             f"{problems[0].message if problems else 'retrain not found'}",
                             "add 'retrain: {generation: N}' to the model's spec by hand")
            dataset = located.datasets.get(loaded.spec.spec.dataset)
            data, md5, data_note = "(dataset not found)", None, ""
            if dataset is not None:
                data_note = _fetch_newest(root, tree, dataset.spec.path, progress)
                md5 = data_version(tree, dataset.spec.path).md5
                data = f"`{dataset.spec.path}` (md5 `{md5}`)" if md5 else \
                    f"`{dataset.spec.path}` (not tracked by DVC)"
                if data_note:
                    _git(tree, "add", f"{dataset.spec.path}.dvc")
            description = describe(model, trigger, reason, base, relative, before, after,
                                   data, served_note(served, md5), report, data_note)
            _git(tree, "add", relative)
            if _git(tree, "diff", "--cached", "--quiet", check=False).returncode == 0:
                mode = "unchanged"  # appended before with this very reason and trigger
            else:
                message = (f"Retrain {model}: {trigger}\n\n{reason}\n\n"
                           f"{TRAILER}: {model} generation={after} trigger={trigger}\n")
                _git(tree, "commit", "--quiet", "-m", message, env=_identity(root))
            commit = _git(tree, "rev-parse", "HEAD").stdout.strip()
        finally:
            _git(root, "worktree", "remove", "--force", str(tree), check=False)
    if existing is not None and mode == "rebuilt":
        old_tree = _git(root, "rev-parse", f"{existing}^{{tree}}").stdout.strip()
        if old_tree == _git(root, "rev-parse", f"{commit}^{{tree}}").stdout.strip() and \
                _git(root, "rev-parse", f"{existing}~1", check=False).stdout.strip() == \
                _git(root, "rev-parse", base_ref).stdout.strip():
            commit, mode = _git(root, "rev-parse", existing).stdout.strip(), "unchanged"
    _git(root, "branch", "--force", branch, commit)
    body_file = root / ".mlops" / "retrain" / f"{model}.md"
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_text(description, encoding="utf-8")
    shown = os.path.relpath(body_file, Path.cwd()) if body_file.is_relative_to(Path.cwd()) \
        else str(body_file)
    by_hand = (f"git push --force-with-lease=refs/heads/{branch}:{lease} origin {branch} && "
               f"gh pr create --base {base} "
               f"--head {branch} --title '{title}' --body-file {shown}")
    proposal = Proposal(model, trigger, reason, branch, base, relative, after, data, commit, mode,
                        title, description, str(body_file), next_step=f"next: {by_hand}",
                        data_update=data_note)
    if open_pr:
        url = push_and_open(root, branch, base, title, description, by_hand, progress,
                            label="retrain", lease=lease)
        proposal = Proposal(**{**asdict(proposal), "pr_url": url,
                               "next_step": f"pull request: {url}"})
    return proposal


def _proposal_paths(root: Path, project, model: str) -> tuple[str, str | None]:
    """What a proposal commit changes: the model's spec file and, for a dataset imported with
    ``dvc import``/``import-url``, its ``.dvc`` file (repository-relative)."""
    from mlops_gitops.data.versioning import is_import

    located = project.located("Model", model)
    spec = Path(os.path.abspath(located.file)).resolve()
    spec_file = spec.relative_to(root.resolve()).as_posix() if spec.is_relative_to(
        root.resolve()) else spec.as_posix()
    dataset = project.datasets.get(located.spec.spec.dataset)
    if dataset is None or not is_import(root, dataset.spec.path):
        return spec_file, None
    return spec_file, f"{dataset.spec.path}.dvc"


def _fetch_newest(root: Path, tree: Path, relative: str, progress: Progress) -> str:
    """For a dataset imported with ``dvc import``/``import-url``: ``dvc update`` in the proposal's
    worktree (sharing the repository's DVC cache and local config), so the branch trains on the
    newest version at its source; the new version is pushed to the DVC remote. A sentence for
    the description ("" for data that is not an import)."""
    from mlops_gitops.data.versioning import is_import, run_dvc, update_import

    if not is_import(tree, relative):
        return ""
    progress(f"dvc update {relative} (an import: fetching its newest version)")
    local = root / ".dvc" / "config.local"
    if local.is_file():  # credentials and local remote settings are not in git
        (tree / ".dvc" / "config.local").write_bytes(local.read_bytes())
    cache = run_dvc(root, "cache", "dir")
    update = update_import(tree, relative, Path(cache.stdout.strip())
                           if cache.returncode == 0 and cache.stdout.strip() else None)
    if update.after != update.before:
        note = (f"`{relative}` is imported: `dvc update` fetched a newer version from its source "
                f"(md5 `{update.before}` -> `{update.after}`), committed on this branch.")
    elif not update.problem:
        note = f"`{relative}` is imported: `dvc update` found no newer version at its source."
    else:
        note = f"`{relative}` is imported but was not updated"
    if update.problem:
        note += f" **{update.problem}**"
        progress(f"warning: {relative}: {update.problem}")
    return note


def _base_generation(root: Path, base_ref: str, relative: str, model: str) -> int:
    """The model's retrain generation on the base branch (0 when it has none)."""
    from mlops_gitops.spec.loader import load_file

    shown = _git(root, "show", f"{base_ref}:{relative}", check=False)
    if shown.returncode != 0:
        return 0
    with tempfile.TemporaryDirectory(prefix="mlops-retrain-base-") as scratch:
        path = Path(scratch) / Path(relative).name
        path.write_text(shown.stdout, encoding="utf-8")
        specs, _ = load_file(path, relative)
    for loaded in specs:
        if loaded.kind == "Model" and loaded.name == model and loaded.spec.spec.retrain:
            return loaded.spec.spec.retrain.generation
    return 0
