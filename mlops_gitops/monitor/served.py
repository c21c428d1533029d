"""What an environment serves, from the deploy record and the bento's manifest.

:func:`served_models` works on plain dicts (``deployment.json`` and ``served.json`` as the deploy
code writes them), so it is tested without a deployed service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError

NUMERIC_TYPES = ("float", "int")


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # float | int | string | bool


@dataclass(frozen=True)
class ServedModel:
    name: str  # registered model name (what the inference log records)
    spec_name: str
    version: int
    features: tuple[Feature, ...]
    data_md5: str | None
    commit: str | None  # training commit (lineage)
    task: str | None
    bento: str


def _error(env: str, message: str, hint: str = "") -> DiagnosticError:
    return DiagnosticError([Diagnostic(f"environment {env}", code="monitor", message=message,
                                       hint=hint)])


def served_models(env: str, record: dict | None, manifest: dict | None) -> list[ServedModel]:
    """The served versions of a deploy record and its bento manifest (plain dicts)."""
    if not record or not record.get("bento"):
        raise _error(env, "nothing is deployed: no deploy record names a bento",
                     f"deploy it first: mlops-gitops deploy --env {env}")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), list):
        raise _error(env, f"the manifest of bento {record['bento']} is missing or unreadable",
                     f"rebuild and redeploy: mlops-gitops deploy --env {env}")
    models = []
    for entry in manifest["models"]:
        try:
            features = tuple(Feature(str(f["name"]), str(f.get("type", "float")))
                             for f in entry["features"])
            models.append(ServedModel(str(entry["name"]), str(entry.get("spec_name") or
                                                              entry["name"]),
                                      int(entry["version"]), features, entry.get("data_md5"),
                                      entry.get("commit"), entry.get("task"),
                                      str(record["bento"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise _error(env, f"the manifest of bento {record['bento']} has an unreadable "
                         f"model entry ({type(exc).__name__}: {exc})") from None
    if not models:
        raise _error(env, f"bento {record['bento']} serves no model")
    return models


def load_served(root: Path, env: str) -> list[ServedModel]:
    """The versions the environment's local deployment serves (deploy record + manifest)."""
    import json

    from mlops_gitops.deploy.local import LocalTarget
    from mlops_gitops.serving.bento import TAG, bentoml_home, read_manifest

    home = bentoml_home(root)
    target = LocalTarget(root, home)
    record = target.record(env)
    manifest = None
    if record and record.get("bento"):
        tag = str(record["bento"])
        if not TAG.fullmatch(tag):
            raise _error(env, f"the deploy record {target.folder(env) / 'deployment.json'} names "
                         f"'{tag[:80]}', which is not a bento tag (name:version)",
                         f"the file was edited or damaged: redeploy (mlops-gitops deploy --env "
                         f"{env})")
        try:
            manifest = read_manifest(home, tag)
        except (OSError, ValueError, json.JSONDecodeError):
            manifest = None
    return served_models(env, record, manifest)
