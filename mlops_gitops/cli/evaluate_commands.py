"""``test``, ``compare`` and ``report``: model tests, champion vs challenger, the pull-request
report. Parsing and rendering only; the work is done in :mod:`mlops_gitops.evaluate` and
:mod:`mlops_gitops.report`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlops_gitops.cli.common import progress_printer, select_specs
from mlops_gitops.diagnostics import Diagnostic, DiagnosticError


def _each(models, work) -> tuple[list, list[Diagnostic]]:
    """Run ``work`` on every model; collect user mistakes instead of stopping at the first."""
    results, problems = [], []
    for model in models:
        try:
            results.append(work(model))
        except DiagnosticError as exc:
            problems += [d for d in exc.diagnostics if d not in problems]
    return results, problems


def _finish(problems: list[Diagnostic], ok: bool) -> int:
    if problems:
        raise DiagnosticError(problems)
    return 0 if ok else 1


def cmd_test(args: argparse.Namespace, project) -> int:
    from mlops_gitops.evaluate.model_tests import run_model_tests
    from mlops_gitops.report.render import tests_markdown, tests_text

    models = select_specs(project, "Model", args.names)
    if args.version is not None and len(models) != 1:
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message="--version needs exactly one MODEL")])
    progress = progress_printer(args.format == "text")
    runs, problems = _each(models, lambda model: run_model_tests(
        project, model, version=args.version, record=not args.no_record, progress=progress))
    data = [run.to_dict() for run in runs]
    if args.format == "json":
        print(json.dumps(data, indent=2))
    elif data:
        print(tests_markdown(data) if args.format == "markdown" else tests_text(data))
    return _finish(problems, all(run.passed for run in runs))


def cmd_compare(args: argparse.Namespace, project) -> int:
    from mlops_gitops.evaluate.compare import compare_model
    from mlops_gitops.report.render import compare_markdown, compare_text

    if args.resamples < 0:
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message="--resamples must be 0 or more")])
    progress = progress_printer(args.format == "text")
    models = select_specs(project, "Model", args.names)
    results, problems = _each(models, lambda model: compare_model(
        project, model, champion_alias=args.champion, record=not args.no_record,
        resamples=args.resamples, progress=progress))
    data = [c.to_dict() for c in results]
    if args.format == "json":
        print(json.dumps(data, indent=2))
    elif data:
        print(compare_markdown(data) if args.format == "markdown" else compare_text(data))
    return _finish(problems, all(c.blessed is not False for c in results))


def cmd_report(args: argparse.Namespace, project) -> int:
    from mlops_gitops.report import facts, github, markdown

    if args.max_chars < 1000:
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message="--max-chars must be at least 1000")])
    if args.env is not None:
        select_specs(project, "Environment", [args.env])  # an unknown name is a usage error
    if args.base is not None:
        from mlops_gitops.gitref import checked_revision

        checked_revision(args.base, "--base")  # before any slow work
    report = facts.collect(project, base=args.base, env=args.env, plan_file=args.plan,
                        progress=progress_printer(True))
    # The report is written either way (the pull request should show it), but a registry that
    # could not be read leaves it without results: that is a failure, not a success.
    incomplete = 1 if report.models_note else 0
    if incomplete:
        print(f"the report is incomplete: {report.models_note}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2, default=str))
        return incomplete
    images = []
    if not args.no_plots:
        assets = args.assets or project.root / ".mlops" / "report"
        images = markdown.make_plots(report, assets)
    link_base = args.out.resolve().parent if args.out else Path.cwd()
    text = markdown.render(report, images, link_base=link_base, assets_url=args.assets_url)
    if args.summary:
        github.write_step_summary(text)
    comment = github.fit_comment(text, args.max_chars)
    if args.out:
        args.out.write_text(comment, encoding="utf-8")
        print(f"wrote {args.out} ({len(comment):,} characters"
              f"{', cut' if len(comment) < len(text) else ''}; {len(images)} plot(s))",
              file=sys.stderr)
    else:
        print(comment, end="")
    return incomplete


def add_commands(add, load_project) -> None:
    """Register the evaluation commands with the CLI's ``command`` helper."""
    def command(name, func, help, formats):
        return add(name, lambda args: func(args, load_project(args)), help, formats)

    test = command("test", cmd_test, "Run the model tests declared in each Model spec against "
                   "a registered version (default: the one trained from the current spec); "
                   "record the results on it. Exit 1 if any test fails.",
                   ("text", "json", "markdown"))
    test.add_argument("names", nargs="*", metavar="MODEL", help="models to test (default: all)")
    test.add_argument("--version", type=int, default=None, metavar="V",
                      help="test this registered version instead (one MODEL only)")
    test.add_argument("--no-record", action="store_true",
                      help="do not record the results on the version")

    compare = command("compare", cmd_compare, "Judge each challenger (the version trained from "
                      "the current spec) against the champion under the model's policy, on the "
                      "same test rows. Exit 1 if any is not blessed.",
                      ("text", "json", "markdown"))
    compare.add_argument("names", nargs="*", metavar="MODEL",
                         help="models to compare (default: all)")
    compare.add_argument("--champion", default=None, metavar="ALIAS",
                         help="the champion's alias (default: the last environment of the "
                              "promotion order, e.g. prod)")
    compare.add_argument("--resamples", type=int, default=1000, metavar="N",
                         help="bootstrap resamples for the primary metric's interval "
                              "(default: 1000; 0: none)")
    compare.add_argument("--no-record", action="store_true",
                         help="do not record the verdict on the challenger")

    report = command("report", cmd_report, "The pull-request report in GitHub Markdown: data "
                     "validation, changes, training, model tests, champion vs challenger, "
                     "registry plan.", ("markdown", "json"))
    for action in report._actions:  # this command's output is Markdown unless asked otherwise
        if action.dest == "format":
            action.default, action.help = "markdown", "output format (default: markdown)"
    report.add_argument("--base", metavar="REF",
                        help="git revision the pull request is compared with (default: "
                             "origin/$GITHUB_BASE_REF)")
    report.add_argument("--env", metavar="ENV",
                        help="show the registry plan for ENV (default: the environment whose "
                             "branch is the base)")
    report.add_argument("--plan", type=Path, metavar="FILE",
                        help="show this saved plan (from 'plan --out') instead")
    report.add_argument("--out", "-o", type=Path, metavar="FILE",
                        help="write the comment to FILE instead of stdout")
    report.add_argument("--summary", action="store_true",
                        help="also append the whole report to $GITHUB_STEP_SUMMARY")
    report.add_argument("--assets", type=Path, metavar="DIR",
                        help="folder for the PNG plots (default: .mlops/report)")
    report.add_argument("--assets-url", metavar="URL",
                        help="link plots under URL instead of by their relative path")
    report.add_argument("--no-plots", action="store_true", help="draw no plots")
    report.add_argument("--max-chars", type=int, default=65_536, metavar="N",
                        help="cut the comment to N characters (default: 65536, GitHub's "
                             "limit)")
