"""The ``mlops-gitops`` command line: parse arguments, call the core, render, set the exit code.

Built on argparse: it imports in a few milliseconds, which keeps ``lint`` instant in editors and
pre-commit hooks. Heavy libraries (mlflow, scikit-learn, pandas, bentoml, dvc) are imported only
inside the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from mlops_gitops import __version__
from mlops_gitops.cli.common import progress_printer, select_specs
from mlops_gitops.diagnostics import RENDERERS, Diagnostic, DiagnosticError, has_errors

Command = Callable[[argparse.Namespace], int]
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what `seq`, `cat` and git end with under `| head`


def _root(args: argparse.Namespace, start: Path | None = None) -> Path:
    from mlops_gitops.spec.project import find_root

    if args.project is not None:
        if not args.project.is_dir():
            raise DiagnosticError([Diagnostic(str(args.project), code="usage",
                                              message="project folder does not exist")])
        return args.project.resolve()
    return find_root(start)


def _print_diagnostics(diagnostics: list[Diagnostic], fmt: str) -> None:
    text = RENDERERS[fmt](diagnostics)
    if text:
        print(text)


def _project(args: argparse.Namespace):
    """The project, or a DiagnosticError when its specs have errors."""
    from mlops_gitops.spec.project import load_project

    project = load_project(_root(args))
    if not project.ok:
        raise DiagnosticError(project.diagnostics)
    return project


def cmd_data_validate(args: argparse.Namespace) -> int:
    from mlops_gitops.data.gate import validate_dataset
    from mlops_gitops.data.render import reports_markdown, reports_text

    project = _project(args)
    datasets = select_specs(project, "Dataset", args.names)
    reports = [validate_dataset(project.root, d) for d in datasets]
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    elif args.format == "github":
        _print_diagnostics([d for r in reports for d in r.diagnostics()], "github")
    elif args.format == "markdown":
        print(reports_markdown(reports))
    else:
        print(reports_text(reports))
    return 0 if all(r.ok for r in reports) else 1


def cmd_data_diff(args: argparse.Namespace) -> int:
    from mlops_gitops.data.diff import diff_dataset
    from mlops_gitops.data.render import diff_markdown, diff_text

    if len(args.rev) != 2:
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message="give exactly two revisions: --rev A --rev B")])
    from mlops_gitops.gitref import checked_revision

    for rev in args.rev:
        checked_revision(rev, "--rev")
    project = _project(args)
    [dataset] = select_specs(project, "Dataset", [args.name])
    diff = diff_dataset(project.root, dataset, *args.rev)
    if args.format == "json":
        print(json.dumps(diff.to_dict(), indent=2))
    else:
        print(diff_markdown(diff) if args.format == "markdown" else diff_text(diff))
    return 0


def _train_barrier():
    """A test hook for concurrent trains: with MLOPS_GITOPS_TEST_TRAIN_BARRIER=FOLDER:N, each
    train writes a file into FOLDER once fitted and waits until N have arrived (120 s at most),
    so that every one of them races for the registration."""
    import time

    setting = os.environ.get("MLOPS_GITOPS_TEST_TRAIN_BARRIER")
    if not setting:
        return lambda: None
    folder, count = setting.rsplit(":", 1)

    def wait() -> None:
        (Path(folder) / str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(Path(folder).iterdir())) < int(count) and time.monotonic() < deadline:
            time.sleep(0.05)

    return wait


def cmd_train(args: argparse.Namespace) -> int:
    from mlops_gitops.train.trainer import train_model

    project = _project(args)
    progress = progress_printer(args.format == "text")
    results = [train_model(project, model, force=args.force, progress=progress,
                           before_register=_train_barrier())
               for model in select_specs(project, "Model", args.names)]
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return 0
    for r in results:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in r.metrics.items())
        what = "trained" if r.status == "trained" else "unchanged (fingerprint hit)"
        print(f"{r.model}: {what} -> {r.registered_name}/{r.version} "
              f"fingerprint {r.fingerprint[:12]}{'  ' + metrics if metrics else ''}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from mlops_gitops.targets import registered_name
    from mlops_gitops.tracking import tracking_for
    from mlops_gitops.train.verify import verify_version

    project = _project(args)
    [model] = select_specs(project, "Model", [args.name])
    result = verify_version(project.root, tracking_for(project), registered_name(project, model),
                            args.version, args.tolerance)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"{result.name}/{result.version}: retrained from its lineage (data from "
              f"{result.data_source})")
        for metric, value in result.reproduced.items():
            recorded = result.recorded.get(metric)
            delta = "missing" if recorded is None else f"delta {value - recorded:+.3g}"
            print(f"  {metric:<16} recorded {recorded}  reproduced {value}  {delta}")
        print("reproduces" if result.ok else f"DOES NOT reproduce within {result.tolerance:g}")
    return 0 if result.ok else 1


def cmd_lint(args: argparse.Namespace) -> int:
    from mlops_gitops.spec.project import load_project

    # with -C DIR, relative PATHs are inside DIR (like git -C and make -C)
    paths = [p if args.project is None or p.is_absolute() else args.project / p
             for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    if missing:
        _print_diagnostics([Diagnostic(str(p), message="no such file or folder", code="usage")
                            for p in missing], args.format)
        return 1
    first = paths[0].resolve() if paths else None
    root = _root(args, first if first is None or first.is_dir() else first.parent)
    result = load_project(root, paths or None)
    _print_diagnostics(result.diagnostics, args.format)
    return 1 if has_errors(result.diagnostics) else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from mlops_gitops.spec.schema import all_schemas, stale_schemas, write_schemas

    if args.out is None:
        if args.check:
            raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                              message="--check needs --out DIR (the folder of "
                                                      "committed schemas)")])
        print(json.dumps(all_schemas(), indent=2, sort_keys=True))
        return 0
    if args.check:
        stale = stale_schemas(args.out)
        for name in stale:
            print(f"{args.out / name}: stale or missing; run "
                  f"'mlops-gitops schema --out {args.out}'")
        return 1 if stale else 0
    for path in write_schemas(args.out):
        print(f"wrote {path}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from mlops_gitops.scaffold import create_branches, ensure_git, scaffold, setup_dvc

    target = args.directory
    result = scaffold(target, source=args.source)
    git = ensure_git(target)
    dvc = setup_dvc(target, args.dvc_remote)
    branches = create_branches(target) if args.branches else {}
    if args.format == "json":
        print(json.dumps({"created": result.created, "kept": result.kept, "git": git,
                          "dvc": dvc.to_dict(), "branches": branches}, indent=2))
        return 0
    for name in result.created:
        print(f"created {target / name}")
    for name in result.kept:
        print(f"kept    {target / name} (already there)")
    if git == "created":
        print(f"git     initialized a repository in {target}")
    elif git == "missing":
        print("git     not installed: no repository, no DVC remote")
    if dvc.status == "created":
        print(f"dvc     default remote '{dvc.remote}' -> {dvc.detail}")
    elif dvc.status == "kept":
        print(f"dvc     kept remote '{dvc.remote}' ({dvc.detail})")
    else:
        print(f"dvc     skipped: {dvc.detail}")
    for branch, status in branches.items():
        print(f"branch  {branch} " + ("at HEAD" if status == "created" else "(already there)"))
    if not args.branches:
        print(f"next: cd {target} && git add -A && git commit -m 'mlops-gitops scaffold' && "
              "mlops-gitops init --branches && mlops-gitops run")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from mlops_gitops.lifecycle import run_lifecycle

    steps = []
    for step in run_lifecycle(_root(args)):
        steps.append(step)
        if args.format == "text":
            print(f"[{'ok  ' if step.ok else 'FAIL'}] {step.name}: {step.summary}", flush=True)
            for line in step.details:
                print(f"       {line}")
    if args.format == "json":
        print(json.dumps([step.to_dict() for step in steps], indent=2))
    return 0 if steps and all(step.ok for step in steps) else 1


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 like every other error (2 means "changes pending" for plan)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlops-gitops",
        description="GitOps for machine learning: datasets, models, tests, policies and "
                    "environments as reviewed YAML specs, reconciled with the MLflow registry.",
    )
    parser.add_argument("--version", action="version", version=f"mlops-gitops {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func: Command, help: str, formats: tuple[str, ...] = ("text", "json"),
                group=commands):
        sub = group.add_parser(name, help=help, description=help)
        sub.set_defaults(func=func)
        sub.add_argument("--format", "-f", choices=formats, default="text",
                         help="output format (default: text)")
        sub.add_argument("--project", "-C", type=Path, default=None, metavar="DIR",
                         help="project root (default: found from the current folder upwards)")
        return sub

    lint = command("lint", cmd_lint, "Check specs: YAML, schema, and references between them. "
                   "Exit 1 on any error.", ("text", "json", "github"))
    lint.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                      help="spec files or folders to report on (default: the whole project)")

    schema = commands.add_parser("schema", help="Export the JSON Schema (draft 2020-12) of every "
                                 "spec kind.", description="Export the JSON Schema (draft "
                                 "2020-12) of every spec kind, for editors and CI.")
    schema.set_defaults(func=cmd_schema)
    schema.add_argument("--out", "-o", type=Path, default=None, metavar="DIR",
                        help="write one file per kind into DIR (default: print one JSON object)")
    schema.add_argument("--check", action="store_true",
                        help="with --out: exit 1 if the files in DIR are missing or stale")

    init = command("init", cmd_init, "Scaffold a GitOps repository: example specs, schemas, "
                   "data, workflows, pre-commit hook; git and a DVC remote; with --branches, "
                   "the environment branches.")
    init.add_argument("directory", nargs="?", type=Path, default=Path("."), metavar="DIR",
                      help="folder of the new repository (default: .)")
    from mlops_gitops.scaffold import DEFAULT_DVC_REMOTE, DEFAULT_SOURCE

    init.add_argument("--source", default=DEFAULT_SOURCE, metavar="URL",
                      help="where CI installs mlops-gitops from, written into requirements.txt: "
                           "a pip URL pinned to a tag or commit, or a requirement "
                           f"(default: {DEFAULT_SOURCE})")
    init.add_argument("--dvc-remote", default=None, metavar="URL",
                      help="the DVC default remote (s3://..., gs://..., a folder); CI must be "
                           f"able to reach it (default: the local folder {DEFAULT_DVC_REMOTE}). "
                           "Runs 'dvc init' first if needed; an existing default is kept")
    init.add_argument("--branches", action="store_true",
                      help="create the environments' branches (env/dev, env/test, env/prod) at "
                           "HEAD when missing; needs a commit, never moves an existing branch")

    data = commands.add_parser("data", help="Data versioning and the data-contract gate.",
                               description="Data versioning and the data-contract gate.")
    data_commands = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)
    validate = command("validate", cmd_data_validate, "Check datasets against their contracts "
                       "(pulling missing data with DVC). Exit 1 on any failure.",
                       ("text", "json", "github", "markdown"), data_commands)
    validate.add_argument("names", nargs="*", metavar="DATASET",
                          help="datasets to check (default: all)")
    diff = command("diff", cmd_data_diff, "What changed in a dataset between two git revisions: "
                   "rows, columns, per-column drift.", ("text", "json", "markdown"), data_commands)
    diff.add_argument("name", metavar="DATASET")
    diff.add_argument("--rev", action="append", default=[], required=True, metavar="REV",
                      help="git revision; give it twice (old, then new)")

    train = command("train", cmd_train, "Train models, log lineage to MLflow and register the "
                    "version; a no-op when the fingerprint is already registered.")
    train.add_argument("names", nargs="*", metavar="MODEL", help="models to train (default: all)")
    train.add_argument("--force", action="store_true",
                       help="retrain even when the fingerprint is already registered")

    verify = command("verify", cmd_verify, "Retrain a registered version from its recorded "
                     "lineage and check that its metrics reproduce.")
    verify.add_argument("name", metavar="MODEL")
    verify.add_argument("--version", type=int, required=True, metavar="V",
                        help="registered version number")
    verify.add_argument("--tolerance", type=float, default=1e-9,
                        help="largest allowed absolute metric difference (default: 1e-9)")

    from mlops_gitops.cli.evaluate_commands import add_commands as add_evaluate_commands

    add_evaluate_commands(command, _project)

    from mlops_gitops.cli.reconcile_commands import add_commands

    add_commands(command, _project)

    from mlops_gitops.cli.serving_commands import add_commands as add_serving_commands

    add_serving_commands(command, _project)

    from mlops_gitops.cli.ci_commands import add_commands as add_ci_commands

    add_ci_commands(commands, command, _root)

    from mlops_gitops.cli.monitor_commands import add_commands as add_monitor_commands

    add_monitor_commands(commands, command, _project)

    command("run", cmd_run, "Run the lifecycle on the project step by step; stop at the first "
            "failing step.")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a CI cancel sends), raised where the program is, like Ctrl-C: context
    managers (the apply lock) clean up on the way out."""


def _terminate(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the clean-up finish
    raise Terminated()


def _handle_sigterm():
    """Install the SIGTERM handler (main thread only); returns the previous one."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _terminate)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user mistakes end with a message and exit 1, never a traceback."""
    args = build_parser().parse_args(argv)
    previous = _handle_sigterm()
    try:
        return args.func(args)
    except DiagnosticError as exc:
        if getattr(args, "format", "text") == "github":  # annotations, read from stdout
            print(RENDERERS["github"](exc.diagnostics))
        else:
            print(RENDERERS["text"](exc.diagnostics), file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print("terminated (SIGTERM): stopped; what was done is kept and the next run "
              "converges from there" if terminated else "interrupted", file=sys.stderr)
        for note in getattr(exc, "__notes__", ()):
            print(note, file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, like other tools
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # unwritable output, a file where a folder should be, ...
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error:{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:  # an extra not installed, else a bug
        from mlops_gitops.extras import missing_extra

        error = missing_extra(exc)
        if error is None or os.environ.get("MLOPS_GITOPS_DEBUG"):
            raise
        print(RENDERERS["text"](error.diagnostics), file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: say so plainly, keep the traceback behind a switch
        if os.environ.get("MLOPS_GITOPS_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc}\n"
              "set MLOPS_GITOPS_DEBUG=1 to see the traceback, and please report it",
              file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    """Send what is left in stdout's buffer nowhere, so exiting does not fail on the pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run() -> None:
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_BROKEN_PIPE
    sys.exit(code)
