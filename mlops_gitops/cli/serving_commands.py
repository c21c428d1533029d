"""``build``, ``serve``, ``deploy`` and ``undeploy``: an environment's BentoML service."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mlops_gitops.cli.common import git_commit, step_progress
from mlops_gitops.diagnostics import Diagnostic, DiagnosticError


def _registries(project):
    """A fast reader for resolving versions, and the MLflow adapter opened only when needed."""
    from mlops_gitops.registry.open import open_registry

    opened = {}

    def writer():
        if "writer" not in opened:
            opened["writer"] = open_registry(project, "write")
        return opened["writer"]

    return (lambda: open_registry(project, "read")), writer


def cmd_build(args: argparse.Namespace, project) -> int:
    from mlops_gitops.reconcile.desired import environment
    from mlops_gitops.serving.bento import build

    environment(project, args.env)
    reader, writer = _registries(project)
    result = build(project, args.env, reader(), writer, git_commit(project),
                   step_progress(args))
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    served = ", ".join(f"{m.name}/{m.version}" for m in result.models)
    what = "built" if result.status == "built" else "unchanged (already built)"
    print(f"{result.bento_tag}: {what}; serves {served}")
    return 0


def cmd_serve(args: argparse.Namespace, project) -> int:
    from mlops_gitops.deploy.local import port_in_use
    from mlops_gitops.reconcile.desired import environment
    from mlops_gitops.serving.bento import bentoml_home, build

    spec = environment(project, args.env).spec.spec
    port = args.port or spec.service.port
    if port_in_use(args.host, port):
        raise DiagnosticError([Diagnostic(f"environment {args.env}", code="serve",
                                          message=f"port {port} is in use by another program",
                                          hint="free it, or pass --port")])
    reader, writer = _registries(project)
    result = build(project, args.env, reader(), writer, git_commit(project),
                   step_progress(args))
    home = bentoml_home(project.root)
    log_dir = project.root / ".mlops" / "inference" / args.env
    print(f"serving {result.bento_tag} on http://{args.host}:{port} (Ctrl-C stops it)",
          file=sys.stderr, flush=True)
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true",
           "MLOPS_INFERENCE_LOG_DIR": str(log_dir)}
    # Become `bentoml serve`: SIGINT/SIGTERM reach it directly and stop it cleanly.
    os.execve(sys.executable, [sys.executable, "-m", "bentoml", "serve", result.bento_tag,
                               "--host", args.host, "--port", str(port)], env)
    return 0  # pragma: no cover - execve does not return


def cmd_deploy(args: argparse.Namespace, project) -> int:
    from mlops_gitops.deploy.release import deploy_environment, failed, target_for

    target = target_for(project, args.env, args.target)
    if hasattr(target, "configure"):
        target.configure(out=args.out, apply=args.apply)
    elif args.out is not None or args.apply:
        raise DiagnosticError([Diagnostic("<command line>", code="usage",
                                          message="--out and --apply are options of the "
                                                  "kubernetes target")])
    reader, writer = _registries(project)
    deployment, _ = deploy_environment(project, args.env, reader, writer, git_commit(project),
                                       target, step_progress(args))
    if args.format == "json":
        print(json.dumps(deployment.to_dict(), indent=2))
    else:
        where = deployment.url or deployment.location or ""
        print(f"{deployment.bento_tag} -> {deployment.env} ({deployment.target}): "
              f"{deployment.outcome}{'  ' + where if where else ''}")
        for line in deployment.smoke:
            print(f"  smoke: {line}")
        if deployment.detail:
            print(f"  {deployment.detail}")
    return 1 if failed(deployment) else 0


def cmd_undeploy(args: argparse.Namespace, project) -> int:
    from mlops_gitops.deploy.release import undeploy
    from mlops_gitops.reconcile.desired import environment

    environment(project, args.env)
    stopped = undeploy(project, args.env)
    if args.format == "json":
        print(json.dumps({"env": args.env, "stopped": stopped}))
    else:
        print(f"Stopped the service of '{args.env}'." if stopped else
              f"Nothing was running for '{args.env}'.")
    return 0


def add_commands(add, load_project) -> None:
    def command(name, func, help, formats=("text", "json")):
        sub = add(name, lambda args: func(args, load_project(args)), help, formats)
        sub.add_argument("--env", "-e", required=True, metavar="ENV", help="environment name")
        return sub

    command("build", cmd_build, "Build the environment's bento: the versions the registry "
            "serves under its alias, baked into one BentoML service (a no-op when built).")
    serve = command("serve", cmd_serve, "Run the environment's service in the foreground "
                    "(builds the bento first if needed) until Ctrl-C or SIGTERM.", ("text",))
    serve.add_argument("--port", "-p", type=int, default=None,
                       help="port (default: spec.service.port of the environment)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    deploy = command("deploy", cmd_deploy, "Build, put the bento on the environment's deploy "
                     "target, smoke-test it and record its health. Exit 1 when it is "
                     "degraded (the previous deployment keeps serving).")
    deploy.add_argument("--target", choices=("local", "kubernetes"), default=None,
                        help="deploy target (default: spec.deploy.target, else local)")
    deploy.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="kubernetes: folder for the manifests "
                             "(default: .mlops/deploy/ENV/kubernetes)")
    deploy.add_argument("--apply", action="store_true",
                        help="kubernetes: run 'kubectl apply' on the manifests")
    command("undeploy", cmd_undeploy, "Stop what deploy started for the environment.")
