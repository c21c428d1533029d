"""``monitor`` and ``monitor feedback``: drift and live quality of what an environment serves.

Exit codes: 0 healthy or not enough data (with a warning), 1 error, 2 action needed (drift, or
live quality below the policy's thresholds).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError


def _usage(message: str, hint: str = "") -> DiagnosticError:
    return DiagnosticError([Diagnostic("<command line>", code="usage", message=message,
                                       hint=hint)])


def _env(args: argparse.Namespace, project):
    from mlops_gitops.reconcile.desired import environment

    if not getattr(args, "env", None):
        raise _usage("--env ENV is required", "e.g. mlops-gitops monitor --env dev")
    return environment(project, args.env).spec.spec


def _served(project, env: str):
    from mlops_gitops.monitor.served import load_served

    return load_served(project.root, env)


def _log_folder(project, env: str) -> Path:
    from mlops_gitops.deploy.local import INFERENCE_DIR
    from mlops_gitops.tracking import STATE_DIR

    return project.root / STATE_DIR / INFERENCE_DIR / env


def _reference_for(project, env: str):
    from mlops_gitops.monitor.reference import load_reference

    def reference_for(model):
        spec = project.models.get(model.spec_name)
        if spec is None or spec.spec.dataset not in project.datasets:
            raise DiagnosticError([Diagnostic(f"environment {env}", code="monitor", message=(
                f"served model '{model.spec_name}' (version {model.version}) has no Model spec "
                "or Dataset spec in this checkout: its training data cannot be found"),
                hint="monitor from the environment's branch")])
        dataset = project.datasets[spec.spec.dataset].spec
        return (load_reference(project.root, dataset.path, model.data_md5, model.commit),
                spec.spec.target)

    return reference_for


def cmd_monitor(args: argparse.Namespace, project) -> int:
    from mlops_gitops.monitor import render
    from mlops_gitops.monitor.check import monitor
    from mlops_gitops.monitor.logread import parse_time

    spec = _env(args, project)
    if args.window is not None and args.window < 1:
        raise _usage("--window must be at least 1")
    since = parse_time(args.since) if args.since else None
    served = _served(project, args.env)
    report = monitor(args.env, _log_folder(project, args.env), served, spec.monitoring.drift,
                     _reference_for(project, args.env), args.window, since)
    out = args.out or project.root / ".mlops" / "monitor" / args.env
    from mlops_gitops.monitor.plots import drift_plots

    plots = drift_plots(report, out)
    markdown = render.markdown(report, plots)
    render.write_atomic(out / "report.md", markdown + "\n")
    render.write_atomic(out / "report.json", render.as_json(report) + "\n")
    render.write_atomic(out / "drift.prom", render.prometheus(report))
    if args.format == "json":
        print(render.as_json(report))
    elif args.format == "markdown":
        print(markdown)
    else:
        print(render.text(report))
        print(f"  report: {out / 'report.md'}; Prometheus gauges: {out / 'drift.prom'}")
    return report.exit_code


def _registry(project):
    """The MLflow adapter that writes the health record (replaced in tests)."""
    from mlops_gitops.registry.mlflow import MlflowRegistry
    from mlops_gitops.train.trainer import tracking_for

    return MlflowRegistry(tracking_for(project))


def _thresholds(project, spec_name: str) -> dict:
    model = project.models.get(spec_name)
    if model is None or model.spec.policy is None or model.spec.policy not in project.policies:
        return {}
    policy = project.policies[model.spec.policy].spec
    return {metric: (t.min, t.max) for metric, t in policy.thresholds.items()
            if t.min is not None or t.max is not None}


def cmd_feedback(args: argparse.Namespace, project) -> int:
    from mlops_gitops.deploy.local import now_iso
    from mlops_gitops.monitor import feedback
    from mlops_gitops.monitor.logread import read_log
    from mlops_gitops.reconcile.diff import health_tag

    spec = _env(args, project)
    labels = feedback.read_labels(args.file)
    served = _served(project, args.env)
    log = read_log(_log_folder(project, args.env), served)
    report = feedback.assess(args.env, args.file, labels, log.models,
                             {m.name: _thresholds(project, m.spec_name) for m in served},
                             spec.monitoring.drift.min_samples)
    degraded = [m for m in report.models if m.verdict == feedback.DEGRADED]
    if degraded:
        registry = _registry(project)
        bento = {m.name: m.bento for m in served}
        for quality in degraded:
            prefix = health_tag(args.env)
            registry.set_version_tags(quality.model, quality.version, {
                prefix: feedback.DEGRADED, f"{prefix}.at": now_iso(),
                f"{prefix}.bento": bento.get(quality.model, ""),
                f"{prefix}.reason": feedback.degraded_reason(quality)[:4000]})
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
    elif args.format == "markdown":
        print(feedback.markdown(report))
    else:
        print(feedback.text(report))
        for quality in degraded:
            print(f"  recorded {health_tag(args.env)} = degraded on "
                  f"{quality.model}/{quality.version}: {feedback.degraded_reason(quality)}")
    return report.exit_code


def add_commands(commands, command, load_project) -> None:
    formats = ("text", "json", "markdown")
    monitor = command("monitor", lambda args: _dispatch(args, load_project(args)),
                      "Drift of an environment's served traffic against the training data of "
                      "the served versions. Exit 0 healthy or not enough data, 1 error, 2 drift.",
                      formats)
    monitor.add_argument("--env", "-e", default=None, metavar="ENV", help="environment name")
    monitor.add_argument("--window", "-n", type=int, default=None, metavar="N",
                         help="the last N predictions of each model (default: the whole log)")
    monitor.add_argument("--since", default=None, metavar="TIME",
                         help="only predictions logged at or after TIME (ISO 8601, UTC unless "
                              "it says otherwise)")
    monitor.add_argument("--out", "-o", type=Path, default=None, metavar="DIR",
                         help="folder for report.md, report.json, drift.prom and the plots "
                              "(default: .mlops/monitor/ENV)")
    group = monitor.add_subparsers(dest="monitor_command", metavar="COMMAND")
    fb = command("feedback", lambda args: _dispatch(args, load_project(args)),
                 "Join ground-truth labels (CSV or JSONL of request_id,label[,index]) with the "
                 "inference log and check live metrics against the policy's thresholds; exit 2 "
                 "and record 'degraded' on the version when one fails.", formats, group)
    fb.add_argument("--env", "-e", default=argparse.SUPPRESS, metavar="ENV",
                    help="environment name")
    fb.add_argument("file", type=Path, metavar="FILE", help="labels file (.csv or .jsonl)")


def _dispatch(args: argparse.Namespace, project) -> int:
    if getattr(args, "monitor_command", None) == "feedback":
        return cmd_feedback(args, project)
    return cmd_monitor(args, project)
