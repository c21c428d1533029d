"""Content-addressed model identity: the fingerprint of everything that determines a trained model.

fingerprint = sha256 of the canonical JSON of what changes the fitted artifact and nothing else:
the model spec's training fields (task, target, features, steps, estimator, seed, and the
``retrain.generation`` a retraining proposal bumps), the types of
the columns it reads and the dataset's split, the data's DVC md5, a digest of the training code
(derived from its source, docstrings and comments aside) and the versions of Python (major.minor),
scikit-learn, numpy, scipy and pandas. Owner, labels, metrics, model tests, policy, the registry
name and the data contract's checks are left out: changing them never retrains. Training with a
fingerprint that already has a registered version is a no-op.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlops_gitops.spec.models import Dataset, Model

# The modules whose code determines the fitted artifact (reading and typing the data, splitting
# it, building and fitting the pipeline): their digest is part of every fingerprint.
TRAINING_CODE = ("data/contract.py", "data/split.py", "train/pipeline.py", "train/trainer.py")
# The libraries whose version changes what a fit produces or how the artifact loads.
TRAINING_LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas")
MODEL_TRAINING_FIELDS = ("task", "target", "features", "steps", "estimator", "seed")

TAG_MANAGED = "mlops.managed"
TAG_FINGERPRINT = "mlops.fingerprint"
TAG_STATUS = "mlops.status"  # "ready" once a version is completely registered
STATUS_READY = "ready"
TAG_PROJECT = "mlops.project"  # which GitOps repository owns a registered model
AUDIT_PREFIX = "mlops.audit."  # + ENV.TIME.N on the registered model: one record per change

# Evaluation results recorded on a version (tags) and on its run (JSON artifacts).
TAG_TESTS = "mlops.tests"  # "passed" | "failed"
TAG_TEST_PREFIX = "mlops.tests."  # mlops.tests.NAME = "pass" | "fail"
TAG_VERDICT = "mlops.verdict"  # "blessed" | "not_blessed"
TAG_VERDICT_PREFIX = "mlops.verdict."  # .champion, .policy, .checks, .failed, .primary_delta
TAG_TESTS_DIGEST = "mlops.tests_digest"  # the declared tests a recorded result is for
TAG_TESTS_SPLIT = "mlops.tests_split_hash"  # the test split a recorded result is for
TAG_TRAIN_SPLIT = "mlops.test_split_hash"  # the test split recorded when the version was trained
TESTS_PASSED, TESTS_FAILED = "passed", "failed"
VERDICT_BLESSED, VERDICT_NOT_BLESSED = "blessed", "not_blessed"
ARTIFACT_MODEL_TESTS = "model_tests.json"
ARTIFACT_COMPARE = "compare.json"


@functools.cache
def library_version(name: str) -> str:
    """An installed distribution's version, read from package metadata (no import)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef)):
            continue
        first = node.body[0] if node.body else None
        if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            node.body = node.body[1:] or [ast.Pass()]
    return tree


@functools.cache
def training_code_digest() -> str:
    """sha256 of the training code's syntax trees: a change in what it does changes every
    fingerprint; comments, docstrings and formatting do not."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for relative in TRAINING_CODE:
        tree = _without_docstrings(ast.parse((package / relative).read_bytes(), relative))
        digest.update(f"{relative}\n{ast.dump(tree)}\n".encode())
    return digest.hexdigest()


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def training_inputs(model: Model, dataset: Dataset, data_md5: str | None) -> dict[str, Any]:
    """Everything that determines the trained artifact, and nothing that does not."""
    spec = model.spec.model_dump(mode="json", by_alias=True, include=set(MODEL_TRAINING_FIELDS))
    columns = dataset.spec.columns
    read = [model.spec.target, *model.spec.features]
    retrain = model.spec.retrain
    if retrain is not None and retrain.generation:  # absent = 0
        spec["retrain_generation"] = retrain.generation
    return {
        "model": spec,
        "columns": {name: columns[name].type if name in columns else None for name in read},
        "split": dataset.spec.split.model_dump(mode="json"),
        "data_md5": data_md5,
        "code": training_code_digest(),
        "python": "{}.{}".format(*sys.version_info[:2]),
        "libraries": {name: library_version(name) for name in TRAINING_LIBRARIES},
    }


def owned_model_tags(project: str, model: Model) -> dict[str, str]:
    """The registered-model tags mlops-gitops owns and keeps equal to the spec."""
    meta = model.metadata
    tags = {TAG_MANAGED: "true", TAG_PROJECT: project, "mlops.owner": meta.owner or ""}
    tags.update({f"mlops.label.{k}": v for k, v in meta.labels.items()})
    return tags


def is_owned_tag(key: str) -> bool:
    return key in (TAG_MANAGED, TAG_PROJECT, "mlops.owner") or key.startswith("mlops.label.")


def fingerprint(model: Model, dataset: Dataset, data_md5: str | None) -> str:
    digest = hashlib.sha256(canonical_json(training_inputs(model, dataset, data_md5)).encode())
    return digest.hexdigest()
