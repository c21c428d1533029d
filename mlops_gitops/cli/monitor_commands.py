"""``monitor``, ``monitor feedback`` and ``retrain``: drift, model age and live quality of what
an environment serves, and the retraining proposal they end in.

Exit codes: 0 healthy or not enough data (with a warning), 1 error, 2 action needed (drift, a
served version older than its maximum age, or live quality below the policy's thresholds).
With ``--propose``, exit 2 also makes (or updates) a retraining proposal per model concerned.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.registry.open import open_registry


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
    from mlops_gitops.monitor.columns import column_label
    from mlops_gitops.monitor.logread import parse_time

    spec = _env(args, project)
    if args.window is not None and args.window < 1:
        raise _usage("--window must be at least 1")
    since = parse_time(args.since) if args.since is not None else None
    served = _served(project, args.env)
    report = monitor(args.env, _log_folder(project, args.env), served, spec.monitoring.drift,
                     _reference_for(project, args.env), args.window, since)
    out = args.out or project.root / ".mlops" / "monitor" / args.env
    from mlops_gitops.monitor import age
    from mlops_gitops.monitor.plots import drift_plots

    ages = age.model_ages(project.root, project, spec.monitoring.max_model_age_days, served)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _usage(f"--out {out}: cannot make the folder: {exc.strerror or exc}",
                     "name a folder (it is made when missing)") from None
    plots = drift_plots(report, out)
    markdown = render.markdown(report, plots) + ("\n" + age.markdown(ages) if ages else "")
    data = json.loads(render.as_json(report))
    overdue = [a for a in ages if a.overdue]
    if ages:
        data["model_age"] = [a.to_dict() for a in ages]
    if overdue and data["exit_code"] == 0:
        data["exit_code"] = 2
    gauges = render.prometheus(report) + age.prometheus(args.env, ages)
    render.write_atomic(out / "report.md", markdown + "\n")
    render.write_atomic(out / "report.json", json.dumps(data, indent=2) + "\n")
    render.write_atomic(out / "drift.prom", gauges)
    code = data["exit_code"]
    proposals, failure = [], None
    if code == 2 and args.propose:
        reasons: dict[str, tuple[str, list[str]]] = {}
        for m in report.models:
            if m.verdict == "drift":
                columns = ", ".join(column_label(c) for c in m.drifted_columns)
                reasons[m.spec_name] = ("drift", [f"drift in {args.env}: v{m.version} drifted on "
                                                  f"{columns} ({m.samples} predictions)"])
        for a in overdue:
            trigger, why = reasons.get(a.spec_name, ("schedule", []))
            why.append(f"v{a.version} in {args.env} was trained {a.age_days:.0f} day(s) ago, "
                       f"more than the maximum of {a.max_age_days:g}")
            reasons[a.spec_name] = (trigger, why)
        proposals, failure = _propose_all(
            args, project, {k: (t, "; ".join(w)) for k, (t, w) in reasons.items()}, markdown,
            {m.spec_name: _served_label(m, args.env) for m in served})
    if args.format == "json":
        print(json.dumps({**data, "proposals": [_proposal_dict(p) for p in proposals]},
                         indent=2))
    elif args.format == "markdown":
        print(markdown + _proposals_markdown(proposals))
    else:
        print(render.text(report))
        for line in age.text(ages):
            print(line)
        print(f"  report: {out / 'report.md'}; Prometheus gauges: {out / 'drift.prom'}")
        for proposal in proposals:
            _print_proposal(proposal, "text")
    if failure is not None:
        raise failure
    return code


def _served_label(model, env: str) -> tuple[str, str | None]:
    return f"`{model.name}` v{model.version} in `{env}`", model.data_md5


def _propose_all(args, project, reasons: dict[str, tuple[str, str]], report: str,
                 served: dict[str, tuple[str, str | None]]) -> tuple[list, DiagnosticError | None]:
    """One proposal per model, and the error of those that could not be made (the others are
    made all the same)."""
    from mlops_gitops.pipeline.retrain import propose

    proposals, problems = [], []
    for spec_name, (trigger, reason) in sorted(reasons.items()):
        try:
            proposal = propose(project.root, spec_name, trigger, reason, report, base=args.base,
                               served=served.get(spec_name),
                               progress=_stderr if args.format == "text" else lambda m: None)
        except DiagnosticError as exc:
            problems.extend(exc.diagnostics)
            continue
        proposals.append(proposal)
        if args.format != "text":  # stdout is the report: a line for the job's log
            _print_proposal(proposal, "text", stream=sys.stderr)
    return proposals, DiagnosticError(problems) if problems else None


def _proposal_dict(proposal) -> dict:
    """A proposal in the JSON report (its description is the report itself, in its file)."""
    return {k: v for k, v in proposal.to_dict().items() if k != "description"}


def _proposals_markdown(proposals: list) -> str:
    if not proposals:
        return ""
    lines = ["", "### Retraining proposals", ""]
    for p in proposals:
        where = f"[pull request]({p.pr_url})" if p.pr_url else \
            f"branch `{p.branch}` (no token: not pushed)"
        lines.append(f"- `{p.model}` ({p.trigger}): {where}, {p.mode} at `{p.commit[:12]}`, "
                     f"retrain.generation {p.generation}, trains on {p.data}")
    return "\n".join(lines)


def _stderr(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _print_proposal(proposal, fmt: str, stream=None) -> None:
    stream = stream or sys.stdout
    if fmt == "json":
        print(json.dumps(proposal.to_dict(), indent=2), file=stream)
        return
    print(f"retraining proposal for {proposal.model} ({proposal.trigger}): branch "
          f"{proposal.branch} {proposal.mode} at {proposal.commit[:12]} "
          f"(retrain.generation {proposal.generation}; trains on {proposal.data})", file=stream)
    if proposal.data_update:
        print(proposal.data_update.replace("`", "").replace("**", ""), file=stream)
    print(proposal.next_step, file=stream)


def cmd_retrain(args: argparse.Namespace, project) -> int:
    from mlops_gitops.pipeline.retrain import propose

    report = ""
    if args.report is not None:
        try:
            report = args.report.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _usage(f"cannot read --report {args.report}: {exc}") from None
    proposal = propose(project.root, args.model, args.trigger, args.reason, report,
                       base=args.base,
                       progress=_stderr if args.format == "text" else lambda m: None)
    _print_proposal(proposal, args.format)
    return 0


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
        # every record is made before the first write: only the registry can fail in between
        bento = {m.name: m.bento for m in served}
        prefix, at = health_tag(args.env), now_iso()
        records = [(quality.model, quality.version, {
            prefix: feedback.DEGRADED, f"{prefix}.at": at,
            f"{prefix}.bento": bento.get(quality.model, ""),
            f"{prefix}.reason": feedback.degraded_reason(quality)[:4000]})
            for quality in degraded]
        registry = open_registry(project, "write")
        for name, version, tags in records:
            registry.set_version_tags(name, version, tags)
    proposals, failure = [], None
    if degraded and args.propose:
        spec_names = {m.name: m for m in served}
        reasons = {spec_names[q.model].spec_name: (
            "quality", f"live quality in {args.env}: v{q.version} "
            f"{feedback.degraded_reason(q)}") for q in degraded if q.model in spec_names}
        proposals, failure = _propose_all(
            args, project, reasons, feedback.markdown(report),
            {m.spec_name: _served_label(m, args.env) for m in served})
    if args.format == "json":
        print(json.dumps({**report.to_dict(), "proposals": [_proposal_dict(p) for p in proposals]},
                         indent=2))
    elif args.format == "markdown":
        print(feedback.markdown(report) + _proposals_markdown(proposals))
    else:
        print(feedback.text(report))
        for quality in degraded:
            print(f"  recorded {health_tag(args.env)} = degraded on "
                  f"{quality.model}/{quality.version}: {feedback.degraded_reason(quality)}")
        for proposal in proposals:
            _print_proposal(proposal, "text")
    if failure is not None:
        raise failure
    return report.exit_code


def add_commands(commands, command, load_project) -> None:
    formats = ("text", "json", "markdown")
    monitor = command("monitor", lambda args: _dispatch(args, load_project(args)),
                      "Drift of an environment's served traffic against the training data of "
                      "the served versions, and their age against the spec's maximum. Exit 0 "
                      "healthy or not enough data, 1 error, 2 drift or a too old version (with "
                      "--propose, and a retraining proposal).",
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
    fb.add_argument("file", type=Path, metavar="PATH",
                    help="labels file (.csv; .jsonl/.ndjson JSON lines; .json JSON lines or "
                         "one array of objects), or a folder of them (read in name order; a "
                         "later label of the same request wins)")
    for sub in (monitor, fb):
        sub.add_argument("--propose", action="store_true", default=argparse.SUPPRESS
                         if sub is fb else False,
                         help="on exit 2, make (or update) a retraining proposal for each model "
                              "concerned: branch retrain/MODEL and, with GH_TOKEN or "
                              "GITHUB_TOKEN, its pull request (see 'retrain')")
        sub.add_argument("--base", default=argparse.SUPPRESS if sub is fb else "main",
                         metavar="BRANCH",
                         help="branch the proposal's pull request merges into (default: main)")

    from mlops_gitops.pipeline.retrain import TRIGGERS

    retrain = command("retrain", lambda args: cmd_retrain(args, load_project(args)),
                      "Propose retraining a model: a branch retrain/MODEL off --base whose "
                      "commit bumps spec.retrain.generation (part of the fingerprint, so the "
                      "pull request's 'ci pr' trains a new version on the branch's data; a "
                      "dataset imported with 'dvc import-url' is updated first), and "
                      "with GH_TOKEN or GITHUB_TOKEN its pull request, opened or updated (never "
                      "a second one); without a token, the command that opens it is printed.",
                      ("text", "json"), commands)
    retrain.add_argument("model", metavar="MODEL", help="Model spec name")
    retrain.add_argument("--reason", required=True, metavar="TEXT",
                         help="why it should be retrained (recorded in the spec and the PR)")
    retrain.add_argument("--trigger", choices=TRIGGERS, default="request",
                         help="what asks for it (default: request)")
    retrain.add_argument("--report", type=Path, default=None, metavar="FILE",
                         help="Markdown to carry in the pull request's description (e.g. "
                              ".mlops/monitor/ENV/report.md)")
    retrain.add_argument("--base", default="main", metavar="BRANCH",
                         help="branch the pull request merges into (default: main)")


def _dispatch(args: argparse.Namespace, project) -> int:
    if getattr(args, "monitor_command", None) == "feedback":
        return cmd_feedback(args, project)
    return cmd_monitor(args, project)
