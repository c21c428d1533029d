"""Content-addressed model identity: the fingerprint of everything that determines a trained model.

fingerprint = sha256 of the canonical JSON of the normalized model spec (what is trained, not who
owns it), the dataset spec, the data's DVC md5, the trainer version and the scikit-learn version.
Training with a fingerprint that already has a registered version is a no-op.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib.metadata import PackageNotFoundError, version

from mlops_gitops.spec.models import Dataset, Model

# Bump when a change to the training code changes the trained artifact for the same specs.
TRAINER_VERSION = "1"

TAG_MANAGED = "mlops.managed"
TAG_FINGERPRINT = "mlops.fingerprint"
TAG_STATUS = "mlops.status"  # "ready" once a version is completely registered
STATUS_READY = "ready"
TAG_PROJECT = "mlops.project"  # which GitOps repository owns a registered model

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
def sklearn_version() -> str:
    """Installed scikit-learn version, read from package metadata (no import of sklearn)."""
    try:
        return version("scikit-learn")
    except PackageNotFoundError:  # pragma: no cover - scikit-learn is a dependency
        return "unknown"


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def training_inputs(model: Model, dataset: Dataset, data_md5: str | None) -> dict:
    """Everything that determines the trained artifact (owner, labels, tests, policy do not)."""
    spec = model.spec.model_dump(mode="json", by_alias=True,
                                 exclude={"tests", "policy", "registered_model"})
    return {
        "model": spec,
        "dataset": dataset.spec.model_dump(mode="json", by_alias=True),
        "data_md5": data_md5,
        "trainer": TRAINER_VERSION,
        "sklearn": sklearn_version(),
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
