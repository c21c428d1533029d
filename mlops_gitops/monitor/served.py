"""What an environment serves, from the deploy record and the bento's manifest.

:func:`served_models` works on plain dicts (``deployment.json`` and ``served.json`` as the deploy
code writes them), so it is tested without a deployed service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
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


COMMIT = re.compile(r"[0-9a-f]{40}")
MD5 = re.compile(r"[0-9a-f]{32}")
FEATURE_TYPES = ("float", "int", "string", "bool")
TASKS = ("classification", "regression")


def _text(value: object, field: str, pattern: re.Pattern | None = None) -> str:
    """A manifest string: printable, not empty, and matching ``pattern`` when given."""
    if not isinstance(value, str) or not value or not value.isprintable() or \
            (pattern is not None and not pattern.fullmatch(value)):
        raise ValueError(f"{field} is {str(value)[:60]!r}")
    return value


def _model(entry: object) -> ServedModel:
    """One manifest entry, every field checked (the manifest is a file on disk: it may have been
    edited): names printable text, the version a positive integer, the commit 40 hex digits and
    the data md5 32 (they reach git and file paths), known feature types and task."""
    if not isinstance(entry, dict):
        raise ValueError("a model entry is not a mapping")
    version = entry.get("version")
    if type(version) is not int or version < 1:
        raise ValueError(f"version is {version!r}")
    features = entry.get("features")
    if not isinstance(features, list) or not features:
        raise ValueError("features is not a non-empty list")
    checked = []
    for feature in features:
        if not isinstance(feature, dict):
            raise ValueError("a feature is not a mapping")
        kind = feature.get("type", "float")
        if kind not in FEATURE_TYPES:
            raise ValueError(f"feature type is {str(kind)[:30]!r}")
        checked.append(Feature(_text(feature.get("name"), "a feature name"), kind))
    commit, md5, task = entry.get("commit"), entry.get("data_md5"), entry.get("task")
    if task is not None and task not in TASKS:
        raise ValueError(f"task is {str(task)[:30]!r}")
    name = _text(entry.get("name"), "the model name")
    return ServedModel(name, _text(entry.get("spec_name") or name, "the spec name"), version,
                       tuple(checked), None if md5 is None else _text(md5, "data_md5", MD5),
                       None if commit is None else _text(commit, "commit", COMMIT), task, "")


def served_models(env: str, record: dict | None, manifest: dict | None) -> list[ServedModel]:
    """The served versions of a deploy record and its bento manifest (plain dicts)."""
    if not record or not record.get("bento"):
        raise _error(env, "nothing is deployed: no deploy record names a bento",
                     f"deploy it first: mlops-gitops deploy --env {env}")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), list):
        raise _error(env, f"the manifest of bento {record['bento']} is missing or unreadable",
                     f"rebuild and redeploy: mlops-gitops deploy --env {env}")
    models = []
    for number, entry in enumerate(manifest["models"], 1):
        try:
            model = _model(entry)
        except ValueError as exc:
            raise _error(env, f"the manifest of bento {record['bento']} is damaged: model entry "
                         f"{number}: {exc}", f"rebuild and redeploy: mlops-gitops deploy --env "
                         f"{env}") from None
        models.append(replace(model, bento=str(record["bento"])))
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
