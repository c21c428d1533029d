"""``ci pr``, ``ci deploy``, ``ci promote``: each GitHub Actions job is one command, and the
same pipeline runs on a laptop. The work is done in :mod:`mlops_gitops.pipeline`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from mlops_gitops.cli.common import step_progress


def _print_steps(steps, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps([step.to_dict() for step in steps], indent=2))
        return
    for step in steps:
        print(f"[{'ok  ' if step.ok else 'FAIL'}] {step.name}: {step.summary}", flush=True)
        for line in step.details:
            print(f"       {line}")


def cmd_ci_pr(args: argparse.Namespace, root: Path) -> int:
    from mlops_gitops.pipeline.pr import ci_pr

    if os.environ.get("GITHUB_ACTIONS"):  # spec errors as inline annotations on the PR
        from mlops_gitops.diagnostics import RENDERERS
        from mlops_gitops.spec.project import load_project

        annotations = RENDERERS["github"](load_project(root).diagnostics)
        if annotations:
            print(annotations, flush=True)
    steps = ci_pr(root, base=args.base, report=args.report, progress=step_progress(args))
    _print_steps(steps, args.format)
    return 0 if all(step.ok for step in steps) else 1


def cmd_ci_deploy(args: argparse.Namespace, root: Path) -> int:
    from mlops_gitops.pipeline.deploy import ci_deploy

    steps = ci_deploy(root, args.env, lock_timeout=args.lock_timeout,
                      progress=step_progress(args))
    _print_steps(steps, args.format)
    return 0 if all(step.ok for step in steps) else 1


def cmd_ci_promote(args: argparse.Namespace, root: Path) -> int:
    from mlops_gitops.pipeline.promote import ci_promote

    promotion = ci_promote(root, args.source, args.target, open_pr=args.open_pr,
                           progress=step_progress(args))
    if args.format == "json":
        print(json.dumps(promotion.to_dict(), indent=2))
    else:
        print(promotion.description)
        print(promotion.next_step)
    return 0


def add_commands(commands, command, root) -> None:
    """``ci`` and its subcommands, with the CLI's ``command`` helper (``root(args)`` finds the
    project root)."""
    ci = commands.add_parser("ci", help="Pipeline entry points for CI (the same steps run "
                             "locally).", description="Pipeline entry points: each GitHub "
                             "Actions job is one of these commands.")
    group = ci.add_subparsers(dest="ci_command", metavar="COMMAND", required=True)

    def sub(name, func, help):
        return command(name, lambda args: func(args, root(args)), help, ("text", "json"), group)

    pr = sub("pr", cmd_ci_pr, "The pull-request pipeline: lint, data validate, train what "
             "changed, model tests, compare with the champion, plan the first environment, and "
             "the report. Exit 1 when any gate fails (the report is still written).")
    pr.add_argument("--base", default=None, metavar="REF",
                    help="git ref the pull request merges into (default: origin/main or main)")
    pr.add_argument("--report", type=Path, default=None, metavar="PATH",
                    help="write the Markdown report here (and to $GITHUB_STEP_SUMMARY when set)")
    deploy = sub("deploy", cmd_ci_deploy, "The deploy pipeline of an environment branch: lint, "
                 "data validate, plan through the policy's gates, build, deploy, smoke test, "
                 "then apply the registry plan and record health. Exit 1 when any gate refuses; "
                 "the running service keeps its previous version then.")
    deploy.add_argument("--env", "-e", required=True, metavar="ENV", help="environment name")
    deploy.add_argument("--lock-timeout", type=float, default=600.0, metavar="SECONDS",
                        help="wait this long for another deploy of the environment "
                             "(default: 600)")
    promote = sub("promote", cmd_ci_promote, "Prepare a promotion: merge the lower environment's "
                  "branch into a promotion branch off the higher one, and describe what moves. "
                  "With --open-pr, push it and open the pull request.")
    promote.add_argument("--from", dest="source", required=True, metavar="ENV",
                         help="environment promoted from (e.g. dev)")
    promote.add_argument("--to", dest="target", required=True, metavar="ENV",
                         help="environment promoted to (e.g. test)")
    promote.add_argument("--open-pr", action="store_true",
                         help="push the branch and open the pull request (gh CLI, or the GitHub "
                              "REST API with GITHUB_TOKEN)")
