"""Helpers shared by the command modules: choosing specs by name, progress lines, the commit."""

from __future__ import annotations

import argparse
import sys

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError


def select_specs(project, kind: str, names: list[str]) -> list:
    """The named specs of a kind (all of them when no names are given)."""
    from mlops_gitops.diagnostics import did_you_mean

    available = {i.name: i for i in project.loaded if i.kind == kind}
    unknown = [n for n in names if n not in available]
    if unknown:
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message=f"unknown {kind} '{n}'",
                                          hint=did_you_mean(n, available) or
                                          f"defined: {', '.join(sorted(available))}")
                               for n in unknown])
    return [available[n] for n in names] if names else list(available.values())


def progress_printer(enabled: bool):
    """Progress lines on stderr: a live status line on a terminal, plain lines in CI."""
    if not enabled:
        return lambda message: None
    if sys.stderr.isatty():
        from rich.console import Console

        console = Console(stderr=True)
        return lambda message: console.log(message, highlight=False)
    return lambda message: print(message, file=sys.stderr, flush=True)


def step_progress(args: argparse.Namespace):
    """Indented progress lines on stderr under a pipeline's steps, for the text format only."""
    if args.format != "text":
        return lambda message: None
    return lambda message: print(f"  {message}", file=sys.stderr, flush=True)


def git_commit(project) -> str | None:
    from mlops_gitops.lineage import git_state

    return git_state(project.root)[0]
