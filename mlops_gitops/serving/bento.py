"""``build``: the environment's served versions, baked into one immutable bento.

The versions are the ones the reconciler resolves for the environment (fingerprint or pin), and
the registry must already serve them under the environment's alias (``apply`` first): a bento
never serves what the registry does not say. The bento tag is the environment plus a digest of
the served versions, the service settings and the runtime code, so building twice is a no-op.
Everything BentoML keeps lives under ``.mlops/bentoml`` unless ``BENTOML_HOME`` is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from mlops_gitops.diagnostics import Diagnostic, DiagnosticError
from mlops_gitops.extras import require
from mlops_gitops.identity import (
    STATUS_READY,
    TAG_FINGERPRINT,
    TAG_MANAGED,
    TAG_STATUS,
    canonical_json,
)
from mlops_gitops.spec.project import Project
from mlops_gitops.tracking import STATE_DIR

RUNTIME = Path(__file__).resolve().parent / "runtime"
RUNTIME_PACKAGE = "mlops_serving"
MANIFEST_FILE = "served.json"
MANIFEST_FORMAT = 1
SERVICE_PATH = f"{RUNTIME_PACKAGE}.service:MlopsService"
RUNTIME_PACKAGES = ("bentoml", "numpy", "scipy", "scikit-learn", "skops", "orjson")
SIGNATURE_TYPES = {"double": "float", "float": "float", "long": "int", "integer": "int",
                   "string": "string", "boolean": "bool"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ServedVersion:
    name: str  # registered model name
    spec_name: str
    version: int
    fingerprint: str
    run_id: str | None


@dataclass(frozen=True)
class BuildResult:
    env: str
    bento_tag: str
    status: str  # "built" | "unchanged"
    models: tuple[ServedVersion, ...]

    def to_dict(self) -> dict:
        return {"env": self.env, "bento": self.bento_tag, "status": self.status,
                "models": [asdict(m) for m in self.models]}


def bentoml_home(root: Path) -> Path:
    """BentoML's store for this project (exported for BentoML and its child processes)."""
    home = os.environ.get("BENTOML_HOME") or str(root / STATE_DIR / "bentoml")
    os.environ["BENTOML_HOME"] = home
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    return Path(home)


def bento_name(project: str, env: str) -> str:
    """A BentoML name (lowercase letters, digits, '-', '_', '.') for the environment."""
    return _tag_name(f"mlops-{project}-{env}")


def _tag_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:50]
    return name or "model"


def _error(env: str, message: str, hint: str = "", code: str = "build") -> DiagnosticError:
    return DiagnosticError([Diagnostic(f"environment {env}", code=code, message=message,
                                       hint=hint)])


def served_versions(project: Project, env: str, registry,
                    require_alias: bool = True) -> list[ServedVersion]:
    """The versions the environment serves: resolved from the specs, and (unless the caller is
    about to apply a checked plan, as ``ci deploy`` does) already under the environment's
    alias in the registry."""
    from mlops_gitops.reconcile.desired import desired_state
    from mlops_gitops.reconcile.diff import target_version
    from mlops_gitops.reconcile.live import read_live_state

    desired = desired_state(project, env)
    served = [m for m in desired.models if m.served]
    if not served:
        raise _error(env, f"environment '{env}' serves no models",
                     "list models under spec.models of its Environment spec")
    live = read_live_state(registry, project.name, [m.name for m in served])
    result = []
    for model in served:
        version, _ = target_version(model, live)
        if version is None:
            raise _error(env, f"'{model.name}' has no version trained from the current spec",
                         f"run 'mlops-gitops train {model.spec_name}', then "
                         f"'mlops-gitops apply --env {env}'")
        registered = live.models.get(model.name)
        alias = registered.aliases.get(env) if registered else None
        if require_alias and alias != version.version:
            where = "has no alias" if alias is None else f"alias points at version {alias}"
            raise _error(env, f"'{model.name}': the registry is not in sync with the specs "
                         f"('{env}' {where}; the specs want version {version.version})",
                         f"run 'mlops-gitops apply --env {env}' first")
        tags = version.tags
        if tags.get(TAG_MANAGED) != "true" or TAG_FINGERPRINT not in tags \
                or tags.get(TAG_STATUS) != STATUS_READY:
            raise _error(env, f"{model.name}/{version.version} lacks this project's provenance "
                         "(fingerprint, ready status): it was not registered by mlops-gitops "
                         f"for project '{project.name}' and is never served",
                         "pin a version that 'mlops-gitops train' registered")
        result.append(ServedVersion(model.name, model.spec_name, version.version,
                                    tags[TAG_FINGERPRINT], version.run_id))
    return result


def _runtime_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(RUNTIME.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _service_settings(project: Project, env: str) -> dict:
    spec = project.environments[env].spec
    return {"service": spec.service.model_dump(mode="json", exclude={"resources", "port"}),
            "inference_log": spec.monitoring.inference_log.model_dump(mode="json")}


def bento_tag(project: Project, env: str, versions: list[ServedVersion]) -> str:
    body = {"project": project.name, "env": env, "runtime": _runtime_digest(),
            "models": [(v.name, v.version, v.fingerprint) for v in versions],
            **_service_settings(project, env)}
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]
    return f"{bento_name(project.name, env)}:{digest}"


TAG = re.compile(r"[a-z0-9][a-z0-9._-]*:[a-z0-9][a-z0-9._-]*")


def bento_dir(home: Path, tag: str) -> Path:
    """The bento's folder in the store; ValueError for anything but a ``name:version`` tag (a
    tag read from a deploy record may have been edited: it never leads out of the store)."""
    if not TAG.fullmatch(tag):
        raise ValueError(f"'{tag[:80]}' is not a bento tag (name:version)")
    name, version = tag.split(":")
    return home / "bentos" / name / version


def bento_exists(home: Path, tag: str) -> bool:
    """Whether the store holds the bento (read from the store's layout, no BentoML import)."""
    return (bento_dir(home, tag) / "bento.yaml").is_file()


def _features(project: Project, served: ServedVersion, signature_inputs: str) -> list[dict]:
    """The model's input columns in training order (its signature), typed by the dataset
    contract where it declares the column."""
    inputs = json.loads(signature_inputs)
    model = project.models.get(served.spec_name)
    columns = {}
    if model is not None and model.spec.dataset in project.datasets:
        columns = project.datasets[model.spec.dataset].spec.columns
    features = []
    for column in inputs:
        declared = columns.get(column["name"])
        kind = declared.type if declared else SIGNATURE_TYPES.get(column.get("type"), "float")
        features.append({"name": column["name"], "type": kind})
    return features


def _import_model(project: Project, env: str, registry, served: ServedVersion,
                  staging: Path, progress: Progress) -> dict:
    """Copy a registry version into the BentoML model store (once) and describe it."""
    import bentoml

    from mlops_gitops.model_files import check_model_files

    tag = f"{_tag_name('mlops-' + served.name)}:v{served.version}-{served.fingerprint[:12]}"
    folder = staging / f"{served.name}-{served.version}"
    local = registry.download_version(served.name, served.version, folder)
    files = check_model_files(local, f"model version {served.name}/{served.version}")
    if not files.signature_inputs:
        raise _error(env, f"{served.name}/{served.version} has no input signature: its "
                     "features are unknown, it is never served", code="untrusted-model")
    try:
        bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        progress(f"importing {served.name}/{served.version} into the BentoML store as {tag}")
        with bentoml.models.create(tag, labels={"registered_model": served.name,
                                                "version": str(served.version)},
                                   metadata={"fingerprint": served.fingerprint}) as stored:
            shutil.copytree(local, stored.path, dirs_exist_ok=True)
    model = project.models.get(served.spec_name)
    lineage = (registry.run_json_or_none(served.run_id, "lineage.json") if served.run_id
               else None) or {}
    return {**asdict(served), "bentoml_model": tag, "model_file": files.model_file,
            "commit": (lineage.get("git") or {}).get("commit"),
            "data_md5": (lineage.get("dataset") or {}).get("md5"),
            "trusted_types": list(files.trusted_types),
            "features": _features(project, served, files.signature_inputs),
            "task": model.spec.task if model else None}


def _package_pins() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def build(project: Project, env: str, reader, downloader_factory, commit: str | None,
          progress: Progress = lambda message: None, require_alias: bool = True) -> BuildResult:
    """Build the environment's bento, or find it already built (then nothing but the registry
    ``reader`` is used; ``downloader_factory()`` opens the MLflow adapter for the downloads)."""
    require("bentoml")
    home = bentoml_home(project.root)
    versions = served_versions(project, env, reader, require_alias)
    tag = bento_tag(project, env, versions)
    if bento_exists(home, tag):
        return BuildResult(env, tag, "unchanged", tuple(versions))
    import tempfile

    import bentoml

    work = project.root / STATE_DIR / "build"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        scratch_path = Path(scratch)
        downloader = downloader_factory()
        entries = [_import_model(project, env, downloader, v, scratch_path / "models",
                                 progress) for v in versions]
        context = scratch_path / "context"
        shutil.copytree(RUNTIME, context / RUNTIME_PACKAGE,
                        ignore=shutil.ignore_patterns("__pycache__"))
        name, version = tag.split(":")
        manifest = {"format": MANIFEST_FORMAT, "project": project.name, "env": env,
                    "bento_tag": tag, "bento_name": name, "commit": commit,
                    "models": entries, **_service_settings(project, env)}
        (context / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        progress(f"building bento {tag}")
        try:
            bentoml.bentos.build(
                SERVICE_PATH, name=name, version=version, build_ctx=str(context),
                include=[f"{RUNTIME_PACKAGE}/*.py", MANIFEST_FILE],
                labels={"mlops.project": project.name, "mlops.env": env,
                        "mlops.commit": commit or ""},
                description=f"mlops-gitops environment '{env}' of project '{project.name}'",
                python={"packages": _package_pins(), "lock_packages": False},
                docker={"env": {"BENTOML_DO_NOT_TRACK": "true"}},
            )
        except bentoml.exceptions.BentoMLException as exc:
            raise _error(env, f"bentoml build failed: {str(exc).splitlines()[0][:300]}") \
                from None
    return BuildResult(env, tag, "built", tuple(versions))


def read_manifest(home: Path, tag: str) -> dict:
    """The manifest baked into a built bento."""
    path = bento_dir(home, tag) / "src" / MANIFEST_FILE
    return json.loads(path.read_text(encoding="utf-8"))
