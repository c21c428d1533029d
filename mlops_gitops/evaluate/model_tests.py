"""Model tests declared in a Model spec, run against a registered version on the current test split.

Metric thresholds (overall and per slice, with a minimum of rows per slice), invariance to noise,
directional expectations, a latency budget and a size budget. Each test gives a frozen outcome;
a metric or a slice that is missing fails with the reason, it never passes silently.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_gitops.evaluate.policy import EPSILON
from mlops_gitops.identity import (
    ARTIFACT_MODEL_TESTS,
    TAG_TEST_PREFIX,
    TAG_TESTS,
    TAG_TESTS_DIGEST,
    TAG_TESTS_SPLIT,
    TESTS_FAILED,
    TESTS_PASSED,
    canonical_json,
)
from mlops_gitops.spec.loader import LoadedSpec
from mlops_gitops.spec.models import (
    DirectionalTest,
    InvarianceTest,
    LatencyTest,
    MetricTest,
    SizeTest,
)
from mlops_gitops.spec.project import Project

LATENCY_WARMUP = 3
LATENCY_CALLS = 50
LATENCY_MIN_CALLS = 10
LATENCY_TIME_BOX_S = 2.0
DEFAULT_REGRESSION_TOLERANCE = 0.05  # of the target's standard deviation
MB = 1_000_000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SliceOutcome:
    label: str  # column=value or column=[a, b)
    rows: int
    value: float | None
    passed: bool
    note: str = ""


@dataclass(frozen=True)
class ModelTestOutcome:
    name: str
    type: str
    passed: bool
    value: float | None  # what was measured (metric, flip rate, fraction, p95 ms, MB)
    threshold: str  # the budget in words
    detail: str = ""
    slices: tuple[SliceOutcome, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "result": "pass" if self.passed else "fail"}


@dataclass(frozen=True)
class ModelTestRun:
    model: str
    registered_name: str
    version: int
    split_hash: str
    rows: int
    tests_digest: str
    outcomes: tuple[ModelTestOutcome, ...]
    notes: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outcomes if not o.passed)

    def to_dict(self) -> dict:
        return {"model": self.model, "registered_name": self.registered_name,
                "version": self.version, "passed": self.passed, "failed": list(self.failed),
                "split_hash": self.split_hash, "rows": self.rows,
                "tests_digest": self.tests_digest, "notes": list(self.notes),
                "tests": [o.to_dict() for o in self.outcomes], "timings": dict(self.timings)}


def tests_digest(tests: Sequence) -> str:
    """Names the set of declared tests (a recorded result is stale when it differs)."""
    text = canonical_json([t.model_dump(mode="json") for t in tests])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in [{low:g}, {high:g}]"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low - EPSILON) and (high is None or value <= high + EPSILON)


@dataclass(frozen=True)
class Subject:
    """A fitted model and the test rows it is judged on."""

    model: Any
    frame: Any  # the test split (all columns)
    features: Sequence[str]
    target: str
    task: str
    size_bytes: int | None = None
    seed: int = 0
    columns: Mapping[str, Any] = field(default_factory=dict)  # the dataset's declared columns


def check_model(tests: Sequence, subject: Subject) -> tuple[ModelTestOutcome, ...]:
    """Run each declared test; the order of the outcomes is the order of the tests."""
    from mlops_gitops.evaluate.scoring import needs_proba, predict

    metrics = [t.metric for t in tests if isinstance(t, MetricTest)]
    predictions = predict(subject.model, subject.frame[list(subject.features)],
                          proba=needs_proba(metrics)) if metrics else None
    outcomes = []
    for test in tests:
        if isinstance(test, MetricTest):
            outcomes.append(_metric(test, subject, predictions))
        elif isinstance(test, InvarianceTest):
            outcomes.append(_invariance(test, subject))
        elif isinstance(test, DirectionalTest):
            outcomes.append(_directional(test, subject))
        elif isinstance(test, LatencyTest):
            outcomes.append(_latency(test, subject))
        elif isinstance(test, SizeTest):
            outcomes.append(_size(test, subject))
    return tuple(outcomes)


def _metric(test: MetricTest, subject: Subject, predictions) -> ModelTestOutcome:
    from mlops_gitops.evaluate.scoring import score, slices

    threshold = _bounds(test.min, test.max)
    y = subject.frame[subject.target].to_numpy()

    def fail(detail: str, value=None, parts=()) -> ModelTestOutcome:
        return ModelTestOutcome(test.name, test.type, False, value, threshold, detail, parts)

    if test.slice is None:
        if len(y) < test.min_rows:
            return fail(f"{len(y)} test rows, fewer than min_rows {test.min_rows}")
        found, missing = score([test.metric], y, predictions)
        if test.metric not in found:
            return fail(f"missing: {missing[test.metric]}")
        value = found[test.metric]
        return ModelTestOutcome(test.name, test.type, _within(value, test.min, test.max), value,
                                threshold, f"{test.metric} on {len(y)} test rows")
    if test.slice not in subject.frame.columns:
        return fail(f"slice column '{test.slice}' is not in the test data")
    column = subject.columns.get(test.slice)
    expected = getattr(column, "allowed", None) if test.bins is None else None
    parts, outside = slices(subject.frame, test.slice, bins=test.bins, expected=expected)
    results = []
    for part in parts:
        rows = len(part.rows)
        if rows < test.min_rows:
            note = "no test rows" if rows == 0 else \
                f"{rows} rows, fewer than min_rows {test.min_rows}"
            results.append(SliceOutcome(part.key, rows, None, False, note))
            continue
        found, missing = score([test.metric], y, predictions, part.rows)
        if test.metric not in found:
            results.append(SliceOutcome(part.key, rows, None, False,
                                        f"missing: {missing[test.metric]}"))
            continue
        value = found[test.metric]
        results.append(SliceOutcome(part.key, rows, value, _within(value, test.min, test.max)))
    if not results:
        return fail(f"no slices: column '{test.slice}' has no values in the test data")
    values = [r.value for r in results if r.value is not None]
    worst = (min(values) if test.min is not None else max(values)) if values else None
    failing = [r.label for r in results if not r.passed]
    detail = f"{test.metric} on {len(results)} slices of '{test.slice}'"
    if failing:
        detail += f"; failing: {', '.join(failing)}"
    if outside:
        detail += f"; {outside} rows outside the bins"
    return ModelTestOutcome(test.name, test.type, not failing, worst, threshold, detail,
                            tuple(results))


def _rng(subject: Subject, name: str):
    import numpy as np

    return np.random.default_rng([subject.seed & 0xFFFFFFFF, zlib.crc32(name.encode())])


def _numeric_column(subject: Subject, column: str):
    """(values as float, problem)."""
    import pandas as pd

    if column not in subject.frame.columns:
        return None, f"column '{column}' is not in the test data"
    values = subject.frame[column]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None, f"column '{column}' is not numeric ({values.dtype})"
    return values.to_numpy(dtype=float), ""


def _invariance(test: InvarianceTest, subject: Subject) -> ModelTestOutcome:
    import numpy as np

    threshold = f"flip rate <= {test.max_flip_rate:g}"
    values, problem = _numeric_column(subject, test.column)
    if problem:
        return ModelTestOutcome(test.name, test.type, False, None, threshold, problem)
    std = float(np.std(values))
    if std == 0:
        return ModelTestOutcome(test.name, test.type, False, None, threshold,
                                f"column '{test.column}' is constant on the test split: no "
                                "noise scale to perturb it by")
    features = list(subject.features)
    X = subject.frame[features]
    noisy = X.copy()
    scale = test.noise * std
    if test.column in features:
        noisy[test.column] = values + _rng(subject, test.name).normal(0, scale, len(values))
    before = np.asarray(subject.model.predict(X))
    after = np.asarray(subject.model.predict(noisy))
    if subject.task == "regression":
        target = subject.frame[subject.target].to_numpy(dtype=float)
        tolerance = test.tolerance if test.tolerance is not None else \
            DEFAULT_REGRESSION_TOLERANCE * float(np.std(target))
        flips = np.abs(after.astype(float) - before.astype(float)) > tolerance
        how = f"a prediction moving by more than {tolerance:.4g}"
    else:
        flips = after != before
        how = "a changed class"
    rate = float(np.mean(flips)) if len(flips) else 0.0
    detail = (f"{int(flips.sum())} of {len(flips)} predictions flipped ({how}) under Gaussian "
              f"noise of {test.noise:g} x std ({scale:.4g}) on '{test.column}'")
    if test.column not in features:
        detail += f"; '{test.column}' is not a feature of this version, so nothing can flip"
    return ModelTestOutcome(test.name, test.type, rate <= test.max_flip_rate + EPSILON, rate,
                            threshold, detail)


def _directional(test: DirectionalTest, subject: Subject) -> ModelTestOutcome:
    import numpy as np

    threshold = f"share moving the expected way >= {test.min_fraction:g}"
    values, problem = _numeric_column(subject, test.column)
    if problem:
        return ModelTestOutcome(test.name, test.type, False, None, threshold, problem)
    features = list(subject.features)
    X = subject.frame[features]
    shifted = X.copy()
    if test.column in features:
        shifted[test.column] = values + test.delta
    if subject.task == "regression":
        before = np.asarray(subject.model.predict(X), dtype=float)
        after = np.asarray(subject.model.predict(shifted), dtype=float)
        what = "prediction"
    else:
        classes = list(getattr(subject.model, "classes_", []))
        if len(classes) != 2 or not hasattr(subject.model, "predict_proba"):
            return ModelTestOutcome(test.name, test.type, False, None, threshold,
                                    "directional tests need a regression model or a binary "
                                    "classifier with predict_proba")
        before = subject.model.predict_proba(X)[:, 1]
        after = subject.model.predict_proba(shifted)[:, 1]
        what = f"probability of '{classes[1]}'"
    moved = after > before if test.expect == "increase" else after < before
    share = float(np.mean(moved)) if len(moved) else 0.0
    detail = (f"{int(moved.sum())} of {len(moved)} rows: {what} {test.expect}d when "
              f"'{test.column}' changed by {test.delta:+g}")
    if test.column not in features:
        detail += f"; '{test.column}' is not a feature of this version"
    return ModelTestOutcome(test.name, test.type, share >= test.min_fraction - EPSILON, share,
                            threshold, detail)


def _latency(test: LatencyTest, subject: Subject) -> ModelTestOutcome:
    import numpy as np

    threshold = f"p95 <= {test.p95_ms:g} ms (batch {test.batch})"
    X = subject.frame[list(subject.features)]
    if len(X) == 0:
        return ModelTestOutcome(test.name, test.type, False, None, threshold, "no test rows")
    rows = _rng(subject, test.name).choice(len(X), size=test.batch, replace=len(X) < test.batch)
    batch = X.iloc[rows]
    for _ in range(LATENCY_WARMUP):
        subject.model.predict(batch)
    times = []
    started = time.perf_counter()
    while len(times) < LATENCY_CALLS:
        t0 = time.perf_counter()
        subject.model.predict(batch)
        times.append((time.perf_counter() - t0) * 1000)
        if len(times) >= LATENCY_MIN_CALLS and time.perf_counter() - started > LATENCY_TIME_BOX_S:
            break
    p50, p95 = (float(v) for v in np.percentile(times, [50, 95]))
    return ModelTestOutcome(test.name, test.type, p95 <= test.p95_ms, p95, threshold,
                            f"p50 {p50:.3g} ms, p95 {p95:.3g} ms over {len(times)} calls of "
                            f"{test.batch} row(s)")


def _size(test: SizeTest, subject: Subject) -> ModelTestOutcome:
    threshold = f"<= {test.max_mb:g} MB"
    if subject.size_bytes is None:
        return ModelTestOutcome(test.name, test.type, False, None, threshold,
                                "the model's size is unknown")
    size = subject.size_bytes / MB
    return ModelTestOutcome(test.name, test.type, size <= test.max_mb, size, threshold,
                            f"model artifact files: {subject.size_bytes:,} bytes")


# --- against the registry ------------------------------------------------------------------------

def run_model_tests(project: Project, model: LoadedSpec, *, version: int | None = None,
                    registry=None, record: bool = True,
                    progress: Progress = lambda message: None) -> ModelTestRun:
    """The model's declared tests against a registered version (default: the challenger, the
    version trained from the current spec), recorded on the version as tags and as
    ``model_tests.json`` on its run."""
    from mlops_gitops.diagnostics import DiagnosticError
    from mlops_gitops.evaluate import versions
    from mlops_gitops.targets import training_target

    timings: dict[str, float] = {}
    started = time.perf_counter()
    if registry is None:
        from mlops_gitops.registry.open import open_registry

        registry = open_registry(project, "write")
    spec = model.spec.spec
    if version is None:
        target, number = versions.challenger(project, model, registry)
    else:
        target, number = training_target(project, model), version
    progress(f"{model.name}: loading {target.registered_name}/{number} and the test split")
    loaded = versions.load_version(registry, target.registered_name, number)
    split = versions.load_test_split(project, target.dataset, target.data_md5)
    problem = versions.unusable(loaded, split, spec.target, spec.task)
    if problem:
        raise DiagnosticError([model.diagnostic(("spec", "features"),
                                                f"cannot test {loaded.ref}: {problem}")])
    notes = []
    if loaded.split_hash and loaded.split_hash != split.hash:
        notes.append(f"the test split changed since {loaded.ref} was trained (recorded "
                     f"{loaded.split_hash[:12]}, now {split.hash[:12]}): tests use the current "
                     "split")
    if not spec.tests:
        notes.append("the spec declares no model tests")
    timings["load"] = time.perf_counter() - started
    progress(f"{model.name}: running {len(spec.tests)} model test(s) on {split.rows} rows")
    started = time.perf_counter()
    subject = Subject(loaded.model, split.frame, loaded.features, spec.target, spec.task,
                      loaded.size_bytes, spec.seed, split.dataset.spec.spec.columns)
    outcomes = check_model(spec.tests, subject)
    timings["test"] = time.perf_counter() - started
    run = ModelTestRun(model.name, target.registered_name, number, split.hash, split.rows,
                       tests_digest(spec.tests), outcomes, tuple(notes), timings)
    if record and spec.tests:
        started = time.perf_counter()
        record_tests(registry, loaded, run)
        timings["record"] = time.perf_counter() - started
    return run


def record_tests(registry, version, run: ModelTestRun) -> None:
    tags = {TAG_TESTS: TESTS_PASSED if run.passed else TESTS_FAILED,
            TAG_TESTS_DIGEST: run.tests_digest, TAG_TESTS_SPLIT: run.split_hash}
    tags.update({f"{TAG_TEST_PREFIX}{o.name}": "pass" if o.passed else "fail"
                 for o in run.outcomes})
    stale = [k for k in version.tags if k.startswith(TAG_TEST_PREFIX) and k not in tags]
    registry.set_version_tags(run.registered_name, run.version, tags)
    if stale:
        registry.delete_version_tags(run.registered_name, run.version, stale)
    if version.run_id:
        registry.log_run_json(version.run_id, run.to_dict(), ARTIFACT_MODEL_TESTS)
