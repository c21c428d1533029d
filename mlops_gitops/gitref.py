"""Git revisions from users (``--base``, ``--rev``) or records: never passed to git as options."""

from __future__ import annotations

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError


def checked_revision(rev: str, option: str = "revision") -> str:
    """``rev`` when it can only be read as a revision: not empty, not starting with '-' (git
    would take it for an option), no whitespace or control characters."""
    if not rev or rev.startswith("-") or any(c.isspace() or ord(c) < 32 for c in rev):
        raise DiagnosticError([Diagnostic(
            "<command line>", code="usage",
            message=f"{option} {rev!r} is not a git revision"
                    + (" (it starts with '-': git would read it as an option)"
                       if rev.startswith("-") else ""),
            hint="give a branch, tag or commit, e.g. origin/main or a commit id")])
    return rev
