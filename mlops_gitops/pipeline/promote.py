"""``ci promote --from ENV --to ENV``: a promotion is a pull request that merges the lower
environment's branch into the higher one.

The merge is made on a promotion branch (``promote/<from>-to-<to>``, off the higher branch) in a
temporary git worktree, so the checkout is never touched. Its description says what moves:
per served model, the version serving in the higher environment now and the version the merged
specs resolve to, with the moving version's model tests, verdict and health in the lower
environment. With ``--open-pr`` the branch is pushed and the pull request opened, or updated
when one is open already (``gh``, else the GitHub REST API with ``GITHUB_TOKEN``); without a
token the command to open it is printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError

Progress = Callable[[str], None]
GIT_TIMEOUT_S = 120


@dataclass(frozen=True)
class Move:
    model: str
    current: int | None  # serving in the higher environment now
    proposed: int | None  # what the merged specs resolve to
    tests: str = ""
    verdict: str = ""
    health: str = ""  # in the lower environment


@dataclass(frozen=True)
class Promotion:
    source: str
    target: str
    branch: str
    base: str
    moves: tuple[Move, ...] = ()
    description: str = ""
    pr_url: str | None = None
    next_step: str = ""
    changed: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)


def _error(message: str, hint: str = "", label: str = "ci promote") -> DiagnosticError:
    """An error of the command that runs (``label``: "ci promote", "retrain")."""
    return DiagnosticError([Diagnostic(label, code=label.split()[-1], message=message,
                                       hint=hint)])


def run_git(root: Path, *args: str, check: bool = True, label: str = "ci promote",
            env: dict | None = None) -> subprocess.CompletedProcess:
    """``git ARGS`` in ``root``; a failure (with ``check``), a missing git or a git that hangs
    past GIT_TIMEOUT_S is an error of the command that runs (``label``)."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL,
                              env={**os.environ, **env} if env else None)
    except FileNotFoundError:
        raise _error("git is not installed", label=label) from None
    except subprocess.TimeoutExpired:
        raise _error(f"git {args[0]} did not finish within {GIT_TIMEOUT_S} s",
                     "is a remote unreachable or a lock file left behind (.git/*.lock)?",
                     label=label) from None
    if check and done.returncode != 0:
        raise _error(f"git {args[0]} failed: {(done.stderr or done.stdout).strip()[:400]}",
                     label=label)
    return done




def _ref(root: Path, branch: str) -> str:
    """The local branch, else the remote-tracking one."""
    for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"):
        if run_git(root, "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0:
            return ref
    raise _error(f"branch '{branch}' does not exist (locally or on origin)",
                 "create the environment branches: mlops-gitops init --branches")


def ci_promote(root: Path, source: str, target: str, open_pr: bool = False,
               progress: Progress = lambda message: None) -> Promotion:
    from mlops_gitops.reconcile.desired import environment
    from mlops_gitops.spec.project import load_project

    project = load_project(root)
    if not project.ok:
        raise DiagnosticError(project.diagnostics)
    lower, higher = environment(project, source), environment(project, target)
    if higher.spec.spec.promotes_from != source:
        raise _error(f"environment '{target}' promotes from "
                     f"'{higher.spec.spec.promotes_from or 'nowhere'}', not from '{source}'")
    base_ref, head_ref = _ref(root, higher.spec.branch), _ref(root, lower.spec.branch)
    branch = f"promote/{source}-to-{target}"
    progress(f"merging {lower.spec.branch} into {branch} (off {higher.spec.branch})")
    with tempfile.TemporaryDirectory(prefix="mlops-promote-") as scratch:
        tree = Path(scratch) / "tree"
        run_git(root, "worktree", "add", "--quiet", "-B", branch, str(tree), base_ref)
        try:
            if run_git(tree, "merge-base", "--is-ancestor", head_ref, "HEAD",
                    check=False).returncode == 0:
                return Promotion(source, target, branch, higher.spec.branch, changed=False,
                                 description=f"Nothing to promote: {lower.spec.branch} is "
                                 f"already merged into {higher.spec.branch}.",
                                 next_step="")
            merged = run_git(tree, "merge", "--no-ff", "--no-edit", "-m",
                          f"Promote {source} to {target}", head_ref, check=False)
            if merged.returncode != 0:
                run_git(tree, "merge", "--abort", check=False)
                raise _error(f"{lower.spec.branch} does not merge cleanly into "
                             f"{higher.spec.branch}: {merged.stdout.strip()[:300]}",
                             "resolve the conflict in a pull request by hand")
            moves, notes = _moves(project, tree, target, source)
        finally:
            run_git(root, "worktree", "remove", "--force", str(tree), check=False)
    description = describe(source, target, lower.spec.branch, higher.spec.branch, moves, notes)
    promotion = Promotion(source, target, branch, higher.spec.branch, tuple(moves),
                          description, notes=tuple(notes),
                          next_step=f"next: git push origin {branch} && gh pr create --base "
                          f"{higher.spec.branch} --head {branch} --title "
                          f"'Promote {source} to {target}'")
    if open_pr:
        url = open_pull_request(root, promotion, progress)
        promotion = Promotion(**{**asdict(promotion), "moves": promotion.moves,
                                 "notes": promotion.notes, "pr_url": url,
                                 "next_step": f"pull request: {url}"})
    return promotion


def _moves(checkout, tree: Path, target: str, source: str) -> tuple[list[Move], list[str]]:
    """What the merged specs (in ``tree``) serve in ``target`` against what the registry
    serves there (the registry of the ``checkout`` this runs in: the embedded store lives
    there, not in the temporary tree)."""
    from mlops_gitops.reconcile.desired import desired_state
    from mlops_gitops.reconcile.diff import health_tag, target_version
    from mlops_gitops.reconcile.live import read_live_state
    from mlops_gitops.registry.rest import registry_reader
    from mlops_gitops.spec.project import load_project
    from mlops_gitops.tracking import check_reachable, tracking_for

    project = load_project(tree)
    notes: list[str] = []
    try:
        tracking = tracking_for(checkout)
        if tracking.sqlite_path is not None and not tracking.sqlite_path.exists():
            return [], ["nothing is registered yet: versions are resolved by each deploy"]
        check_reachable(tracking)
        desired = desired_state(project, target)
        live = read_live_state(registry_reader(tracking), project.name,
                               [m.name for m in desired.models])
    except DiagnosticError as exc:
        return [], [f"versions not resolved: {exc.diagnostics[0].message}"]
    moves = []
    for model in (m for m in desired.models if m.served):
        registered = live.models.get(model.name)
        current = registered.aliases.get(target) if registered else None
        version, _ = target_version(model, live)
        tags = version.tags if version else {}
        moves.append(Move(model.name, current, version.version if version else None,
                          tags.get("mlops.tests", ""), tags.get("mlops.verdict", ""),
                          tags.get(health_tag(source), "")))
    return moves, notes


def describe(source: str, target: str, head: str, base: str, moves: list[Move],
             notes: list[str]) -> str:
    lines = [f"## Promote `{source}` to `{target}`", "",
             f"Merges `{head}` into `{base}`. Merging deploys `{target}` "
             f"(`mlops-gitops ci deploy --env {target}`), through the gates of its policy.", ""]
    if moves:
        lines += ["| model | serving now | after merge | model tests | verdict | "
                  f"health in {source} |", "|---|---|---|---|---|---|"]
        for m in moves:
            after = "needs training" if m.proposed is None else str(m.proposed)
            now = "none" if m.current is None else str(m.current)
            mark = " (unchanged)" if m.proposed is not None and m.current == m.proposed else ""
            lines.append(f"| {m.model} | {now} | {after}{mark} | {m.tests or '-'} | "
                         f"{m.verdict or '-'} | {m.health or '-'} |")
    lines += [f"> {note}" for note in notes]
    return "\n".join(lines) + "\n"


def open_pull_request(root: Path, promotion: Promotion, progress: Progress) -> str:
    """Push the promotion branch and open (or update) its pull request."""
    return push_and_open(root, promotion.branch, promotion.base,
                         f"Promote {promotion.source} to {promotion.target}",
                         promotion.description, promotion.next_step.removeprefix("next: "),
                         progress)


def github_token() -> str | None:
    return os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN") or None


def check_can_open(root: Path, by_hand: str, label: str = "ci promote") -> None:
    """Everything pushing and opening a pull request needs, checked before anything is pushed:
    a token, ``gh`` or the repository's name for the REST API, and the ``origin`` remote."""
    if not github_token():
        raise _error("opening a pull request needs GH_TOKEN or GITHUB_TOKEN in the environment",
                     by_hand, label)
    if not shutil.which("gh"):
        _repository(label)
    if run_git(root, "remote", "get-url", "origin", check=False).returncode != 0:
        raise _error("there is no git remote 'origin' to push the branch to",
                     "git remote add origin URL (the GitHub repository), then run this again",
                     label)


def _repository(label: str) -> str:
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise _error("GITHUB_REPOSITORY (owner/name) is not set: cannot call the GitHub API "
                     "(gh is not installed)",
                     "install gh, or set GITHUB_REPOSITORY=owner/name (GitHub Actions sets it)",
                     label)
    return repository


def push_and_open(root: Path, branch: str, base: str, title: str, body: str, by_hand: str,
                  progress: Progress, label: str = "ci promote",
                  lease: str | None = None) -> str:
    """Push ``branch`` to origin and open its pull request into ``base``, or update the open one
    (title and body) so that there is never a second: ``gh`` when installed, else the GitHub
    REST API. ``by_hand`` is the hint when no token is set; ``label`` names the command in
    errors. ``lease``: the sha origin's branch must still have ("" when it must not exist), so
    that a push racing with someone else's fails instead of overwriting it; None: the
    remote-tracking branch's."""
    check_can_open(root, by_hand, label)
    token = github_token() or ""
    progress(f"pushing {branch}")
    expect = "--force-with-lease" if lease is None else \
        f"--force-with-lease=refs/heads/{branch}:{lease}"
    pushed = run_git(root, "push", expect, "origin", f"refs/heads/{branch}:refs/heads/{branch}",
                  check=False)
    if pushed.returncode != 0:
        said = (pushed.stderr or pushed.stdout).strip()
        if "stale info" in said:
            raise _error(f"'{branch}' changed on origin since this clone last saw it (someone "
                         "pushed to it): nothing was pushed, their commits are kept",
                         f"git fetch origin, then run this again: it builds on origin's {branch}",
                         label)
        raise _error(f"git push failed: {said[:400]}", label=label)
    if shutil.which("gh"):
        return _with_gh(root, branch, base, title, body, label)
    return _with_rest(branch, base, title, body, token, label)


def _with_gh(root: Path, branch: str, base: str, title: str, body: str, label: str) -> str:
    def gh(*args: str) -> str:
        done = subprocess.run(["gh", *args], cwd=root, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise _error(f"gh {args[0]} {args[1]} failed: {done.stderr.strip()[:300]}",
                         label=label)
        return done.stdout

    found = json.loads(gh("pr", "list", "--head", branch, "--base", base,
                          "--state", "open", "--json", "url") or "[]")
    if found:
        gh("pr", "edit", found[0]["url"], "--title", title, "--body", body)
        return found[0]["url"]
    out = gh("pr", "create", "--base", base, "--head", branch, "--title", title, "--body", body)
    return out.strip().splitlines()[-1]


def _with_rest(branch: str, base: str, title: str, body: str, token: str, label: str) -> str:
    repository = _repository(label)
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    owner = repository.split("/")[0]

    def call(method: str, path: str, data: dict | None = None):
        request = urllib.request.Request(
            f"{api}/repos/{repository}{path}", method=method,
            data=json.dumps(data).encode() if data is not None else None,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _error(f"GitHub API {method} {path} failed: "
                         f"{getattr(exc, 'code', '')} {getattr(exc, 'reason', exc)}",
                         label=label) from None

    found = call("GET", f"/pulls?state=open&head={owner}:{branch}&base={base}")
    if found:
        call("PATCH", f"/pulls/{found[0]['number']}", {"title": title, "body": body})
        return found[0]["html_url"]
    created = call("POST", "/pulls", {"title": title, "head": branch, "base": base,
                                      "body": body})
    return created["html_url"]
