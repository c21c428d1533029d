"""The spec kinds: Kubernetes-style documents (``apiVersion``, ``kind``, ``metadata``, ``spec``).

Unknown fields are errors everywhere (``extra="forbid"``). Checks that need more than one document
(references between specs) live in :mod:`mlops_gitops.spec.references`.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlops_gitops.diagnostics import did_you_mean
from mlops_gitops.spec import catalog

API_VERSION = "mlops-gitops/v1"

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
REGISTRY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# Label keys become registry tag keys (mlops.label.KEY), which MLflow refuses when they would
# resolve to another name as a path: segments that start with a letter or digit (so never '.' or
# '..'), separated by single '/', none at either end; '..' anywhere is refused below too.
LABEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$"
PREFIX_PATTERN = r"^[A-Za-z0-9._-]*$"
# What _repo_relative accepts, for editors: not absolute, no '~', no drive or URL scheme in the
# first segment, no '..' segment, not empty or '.' alone.
PATH_PATTERN = (r"^(?![/\\~])(?![^/\\]*:)(?!(.*[/\\])?\.\.([/\\]|$))"
                r"(?!(\.[/\\]*)?$).+$")
PATTERN_MESSAGES = {
    NAME_PATTERN: "names use lowercase letters, digits and '-' (a DNS label)",
    REGISTRY_NAME_PATTERN: "registry names use letters, digits, '.', '_' and '-', starting with "
                           "a letter or digit",
    LABEL_KEY_PATTERN: "label keys are segments of letters, digits, '.', '_' and '-' (each "
                       "starting with a letter or digit) separated by single '/', with no '/' "
                       "at either end",
    PREFIX_PATTERN: "a model prefix uses letters, digits, '.', '_' and '-'",
}


def _no_dot_dot(value: str) -> str:
    if ".." in value:
        raise ValueError(f"label key {value!r} contains '..': the registry would read it as a "
                         "path")
    return value


Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
RegistryName = Annotated[str, StringConstraints(pattern=REGISTRY_NAME_PATTERN, max_length=200)]
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN, max_length=100),
                     AfterValidator(_no_dot_dot)]
Scalar = bool | int | float | str | None


def _whole_number(value: Any) -> Any:
    """42.0 is an integer to JSON Schema (and to every editor): accept it where an int is due.
    Nothing else is converted: a quoted number or a boolean stays an error (strict mode)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Int = Annotated[int, BeforeValidator(_whole_number)]
ParamValue = Scalar | list[Scalar]


class SpecError(ValueError):
    """A validation error that knows which field (path relative to the model) it is about."""

    def __init__(self, message: str, *path: str | int):
        super().__init__(message)
        self.path = path


class Strict(BaseModel):
    """Base of every spec object: unknown fields are errors; remembers which class validated which
    mapping so that diagnostics can suggest the field a typo meant."""

    # strict: a quoted number is a string, "true"/"yes" are strings, as in the exported JSON
    # Schema (what lint passes, editors pass, and the other way round).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True,
                              allow_inf_nan=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _remember_fields(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is not None and isinstance(data, dict):
            info.context.setdefault("fields_of", {})[id(data)] = sorted(
                field.alias or name for name, field in cls.model_fields.items()
            )
        return data


class Metadata(Strict):
    name: Name = Field(description="Unique name of this object within its kind (DNS label).")
    owner: str | None = Field(None, description="Team or person accountable for it.")
    description: str | None = None
    labels: dict[LabelKey, str] = Field(default_factory=dict, json_schema_extra={
        "propertyNames": {"pattern": LABEL_KEY_PATTERN, "maxLength": 100,
                          "not": {"pattern": r"\.\."}}})


def _repo_relative(value: str) -> str:
    path = PurePosixPath(value.replace("\\", "/"))
    if not path.parts or path.parts == (".",):
        raise ValueError("must name a file inside the repository")
    if path.is_absolute() or ".." in path.parts or value.startswith("~") or ":" in path.parts[0]:
        raise ValueError("must be a relative path inside the repository (no '..', no absolute "
                         "path)")
    return value


# --- Dataset -------------------------------------------------------------------------------------

class Column(Strict):
    type: Literal["float", "int", "string", "bool"]
    min: float | None = Field(None, description="Smallest allowed value (numeric columns).")
    max: float | None = Field(None, description="Largest allowed value (numeric columns).")
    allowed: list[Scalar] | None = Field(None, description="The only values allowed.")
    nullable: bool = Field(False, description="Whether missing values are allowed at all.")
    max_null_fraction: float | None = Field(None, ge=0, le=1)
    unique: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecError(f"min ({self.min}) is greater than max ({self.max})", "min")
        if (self.min is not None or self.max is not None) and self.type not in ("float", "int"):
            raise SpecError(f"min/max only apply to numeric columns, not type '{self.type}'",
                            "min" if self.min is not None else "max")
        return self


class DataChecks(Strict):
    min_rows: Annotated[int, Field(ge=0), BeforeValidator(_whole_number)] | None = None
    max_rows: Annotated[int, Field(ge=0), BeforeValidator(_whole_number)] | None = None
    max_null_fraction: float = Field(0.0, ge=0, le=1, description="Default for every column.")
    unique_rows: bool = False
    max_file_mb: Int = Field(512, ge=1, description="Larger files are refused before reading.")

    @model_validator(mode="after")
    def _consistent(self) -> DataChecks:
        low, high = self.min_rows, self.max_rows
        if low is not None and high is not None and low > high:
            raise SpecError(f"min_rows ({self.min_rows}) is greater than max_rows "
                            f"({self.max_rows})", "min_rows")
        return self


class Split(Strict):
    test_fraction: float = Field(0.2, gt=0, lt=1)
    seed: Int = 0
    stratify: ColumnName | None = Field(None, description="Column whose class balance both "
                                        "splits keep.")


class DatasetSpec(Strict):
    path: str = Field(description="CSV file, relative to the repository root, tracked by DVC "
                      "(a PATH.dvc file beside it).", json_schema_extra={"pattern": PATH_PATTERN})
    format: Literal["csv"] = "csv"
    columns: dict[ColumnName, Column] = Field(min_length=1)
    allow_extra_columns: bool = False
    checks: DataChecks = Field(default_factory=DataChecks)
    split: Split = Field(default_factory=Split)

    @field_validator("path")
    @classmethod
    def _inside_repository(cls, value: str) -> str:
        return _repo_relative(value)

    @model_validator(mode="after")
    def _stratify_is_a_column(self) -> DatasetSpec:
        if self.split.stratify is not None and self.split.stratify not in self.columns:
            raise SpecError(f"stratify column '{self.split.stratify}' is not a declared column",
                            "split", "stratify")
        return self


# --- Model ---------------------------------------------------------------------------------------

class Step(Strict):
    class_: str = Field(alias="class", description="Import path of an allow-listed scikit-learn "
                        "class.")
    params: dict[str, ParamValue] = Field(default_factory=dict)


def _check_class(value: str, allowed: frozenset[str], what: str, *path: str | int) -> None:
    if value not in allowed:
        hint = did_you_mean(value, allowed) or f"allowed: {', '.join(sorted(allowed))}"
        raise SpecError(f"{what} '{value}' is not allow-listed; {hint}", *path)


class MetricTest(Strict):
    model_config = ConfigDict(json_schema_extra={
        "anyOf": [{"required": ["min"]}, {"required": ["max"]}],
        "dependentRequired": {"bins": ["slice"]}})

    type: Literal["metric"] = "metric"
    name: Name
    metric: str = Field(json_schema_extra={"enum": sorted(catalog.ALL_METRICS)})
    min: float | None = None
    max: float | None = None
    slice: ColumnName | None = Field(None, description="Check the metric per value of this column.")
    bins: list[float] | None = Field(None, description="Bin edges for a numeric slice column "
                                     "(increasing; each bin is [edge, next edge), the last one "
                                     "closed).")
    min_rows: Int = Field(1, ge=1, description="A slice with fewer test rows fails.")

    @model_validator(mode="after")
    def _bounds(self) -> MetricTest:
        if self.min is None and self.max is None:
            raise SpecError("a metric test needs min or max", "metric")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecError(f"min ({self.min}) is greater than max ({self.max})", "min")
        if self.bins is not None:
            if self.slice is None:
                raise SpecError("bins need a slice column", "bins")
            if len(self.bins) < 2:
                raise SpecError("bins need at least two edges", "bins")
            for i in range(1, len(self.bins)):
                if self.bins[i] <= self.bins[i - 1]:
                    raise SpecError(f"bin edges must increase: {self.bins[i]:g} follows "
                                    f"{self.bins[i - 1]:g}", "bins", i)
        return self


class InvarianceTest(Strict):
    type: Literal["invariance"]
    name: Name
    column: ColumnName
    noise: float = Field(gt=0, description="Gaussian noise as a fraction of the column's std.")
    max_flip_rate: float = Field(ge=0, le=1)
    tolerance: float | None = Field(None, ge=0, description="Regression: a prediction flips when "
                                    "it moves by more than this (default: 5% of the target's "
                                    "standard deviation on the test split).")


class DirectionalTest(Strict):
    type: Literal["directional"]
    name: Name
    column: ColumnName
    delta: float = Field(description="Added to the column on every test row.")
    expect: Literal["increase", "decrease"] = Field(description="How the prediction should move "
                                                    "(regression: the value; binary "
                                                    "classification: the probability of the "
                                                    "positive, last-sorted class).")
    min_fraction: float = Field(0.9, ge=0, le=1, description="Share of rows that must move the "
                                "expected way.")


class LatencyTest(Strict):
    type: Literal["latency"]
    name: Name
    batch: Int = Field(1, ge=1, le=10_000, description="Rows per predict call.")
    p95_ms: float = Field(gt=0, description="Budget for the 95th percentile of one call.")


class SizeTest(Strict):
    type: Literal["size"]
    name: Name
    max_mb: float = Field(gt=0, description="Budget for the model's artifact files (MB = "
                          "10^6 bytes).")


def _test_type(value: Any) -> str:
    """Tag of a model test (tags end in '-test' so they never clash with a field in error paths)."""
    kind = value.get("type", "metric") if isinstance(value, dict) else getattr(value, "type", "")
    return f"{kind}-test"


ModelTest = Annotated[
    Annotated[MetricTest, Tag("metric-test")]
    | Annotated[InvarianceTest, Tag("invariance-test")]
    | Annotated[DirectionalTest, Tag("directional-test")]
    | Annotated[LatencyTest, Tag("latency-test")]
    | Annotated[SizeTest, Tag("size-test")],
    Discriminator(_test_type, custom_error_type="invalid_test_type",
                  custom_error_message="unknown test type; use metric, invariance, directional, "
                  "latency or size"),
]


class Retrain(Strict):
    """Retraining: the schedule (``max_age_days``) and the last retraining request.

    ``generation`` is the one field that enters the model's fingerprint: ``mlops-gitops retrain``
    (and ``monitor --propose``) bump it in a commit on a ``retrain/MODEL`` branch, so the pull
    request's pipeline trains a new version on the data the branch's ``.dvc`` file names. The
    other fields say why and when, for the reviewer; they do not change what is trained.
    """

    max_age_days: float | None = Field(None, gt=0, description="A served version older than "
                                       "this (days since the commit it was trained from) makes "
                                       "'monitor' exit 2 and, with --propose, propose a "
                                       "retraining. Overrides the environment's "
                                       "monitoring.max_model_age_days.")
    generation: int = Field(0, ge=0, description="Bumped by each retraining proposal; part of "
                            "the fingerprint (0 = never retrained by a trigger).")
    trigger: Literal["request", "schedule", "data", "quality", "drift"] | None = Field(
        None, description="What asked for the last retraining.")
    reason: str | None = Field(None, max_length=500, description="Why (one line; the commit "
                               "says when).")


class ModelSpec(Strict):
    dataset: Name
    task: Literal["classification", "regression"]
    target: ColumnName
    features: list[ColumnName] = Field(min_length=1)
    steps: list[Step] = Field(default_factory=list)
    estimator: Step
    seed: Int = 0
    metrics: list[str] = Field(min_length=1)
    policy: Name | None = None
    registered_model: RegistryName | None = Field(None, description="Registry name; defaults "
                                                  "to metadata.name.")
    tests: list[ModelTest] = Field(default_factory=list)
    retrain: Retrain | None = Field(None, description="Retraining schedule and the last "
                                    "retraining request (see docs/monitoring.md).")

    @field_validator("steps")
    @classmethod
    def _allowed_steps(cls, steps: list[Step]) -> list[Step]:
        for i, step in enumerate(steps):
            _check_class(step.class_, catalog.TRANSFORMERS, "transformer", i, "class")
        return steps

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        _check_class(self.estimator.class_, catalog.ESTIMATORS[self.task], f"{self.task} estimator",
                     "estimator", "class")
        known = catalog.METRICS[self.task]
        used = [(m, ("metrics", i)) for i, m in enumerate(self.metrics)] + [
            (t.metric, ("tests", i, "metric")) for i, t in enumerate(self.tests)
            if isinstance(t, MetricTest)
        ]
        for metric, path in used:
            if metric not in known:
                hint = did_you_mean(metric, known) or "known: " + ", ".join(sorted(known))
                raise SpecError(f"unknown {self.task} metric '{metric}'; {hint}", *path)
        for i, test in enumerate(self.tests):
            if isinstance(test, MetricTest):
                problem = catalog.impossible_bound(test.metric, test.min, test.max)
                if problem:
                    raise SpecError(f"no model can pass test '{test.name}': {problem}", "tests", i,
                                    "min" if problem.startswith("min") else "max")
        for i, feature in enumerate(self.features):
            if feature in self.features[:i]:
                raise SpecError(f"feature '{feature}' is listed twice", "features", i)
        if self.target in self.features:
            raise SpecError(f"target '{self.target}' is also listed as a feature", "target")
        names = [t.name for t in self.tests]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SpecError(f"model test name '{name}' is used twice", "tests", i, "name")
        return self


# --- PromotionPolicy -----------------------------------------------------------------------------

class Change(Strict):
    model_config = ConfigDict(json_schema_extra={
        "anyOf": [{"required": ["absolute"]}, {"required": ["relative"]}]})

    absolute: float | None = Field(None, description="Smallest allowed change against the "
                                   "champion, in the better direction (-0.01 tolerates a small "
                                   "loss).")
    relative: float | None = Field(None, description="The same as a fraction of the champion's "
                                   "value.")

    @model_validator(mode="after")
    def _something(self) -> Change:
        if self.absolute is None and self.relative is None:
            raise SpecError("a change threshold needs absolute or relative (or both)", "absolute")
        return self


class Threshold(Strict):
    higher_is_better: bool | None = Field(None, description="Defaults by metric (loss and error "
                                          "metrics are lower-is-better); stating the opposite of "
                                          "the metric's nature is an error.")
    min: float | None = None
    max: float | None = None
    change: Change | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Threshold:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecError(f"min ({self.min}) is greater than max ({self.max}): no value can "
                            "pass", "min")
        return self


class Gate(Strict):
    healthy_in: Name | None = Field(None, description="Environment where the version must be "
                                    "serving and healthy first.")
    blessed: bool = Field(False, description="Require a blessed champion/challenger verdict.")


class PolicySpec(Strict):
    primary: str = Field(description="Metric that decides the bootstrap interval and ranking.",
                         json_schema_extra={"enum": sorted(catalog.ALL_METRICS)})
    thresholds: dict[str, Threshold] = Field(default_factory=dict, json_schema_extra={
        "propertyNames": {"enum": sorted(catalog.ALL_METRICS)}})
    slices: list[ColumnName] = Field(default_factory=list, description="Columns whose values "
                                     "each get the thresholds too.")
    gates: dict[Name, Gate] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_metrics(self) -> PolicySpec:
        used = [(self.primary, ("primary",))] + [(m, ("thresholds", m)) for m in self.thresholds]
        for metric, path in used:
            if metric not in catalog.ALL_METRICS:
                hint = did_you_mean(metric, catalog.ALL_METRICS) or "known: " + ", ".join(
                    sorted(catalog.ALL_METRICS))
                raise SpecError(f"unknown metric '{metric}'; {hint}", *path)
        for metric, threshold in self.thresholds.items():
            natural = catalog.higher_is_better(metric)
            if threshold.higher_is_better is not None and threshold.higher_is_better != natural:
                raise SpecError(f"higher_is_better: {str(threshold.higher_is_better).lower()} "
                                f"contradicts {metric}, where {'higher' if natural else 'lower'} "
                                "is better", "thresholds", metric, "higher_is_better")
            problem = catalog.impossible_bound(metric, threshold.min, threshold.max)
            if problem:
                raise SpecError(f"no model can pass: {problem}", "thresholds", metric,
                                "min" if problem.startswith("min") else "max")
        return self


# --- Environment ---------------------------------------------------------------------------------

class ServedModel(Strict):
    name: Name
    version: Annotated[int, Field(ge=1), BeforeValidator(_whole_number)] | None = Field(
        None, description="Explicit pin (hotfix/rollback); "
                                "otherwise the version trained from this branch's spec.")


Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$",
                                            max_length=20)]


class ResourceAmounts(Strict):
    cpu: Quantity | None = Field(None, description="Kubernetes CPU quantity, e.g. '500m' or '2'.")
    memory: Quantity | None = Field(None, description="Kubernetes memory quantity, e.g. '512Mi'.")


class Resources(Strict):
    requests: ResourceAmounts = Field(default_factory=lambda: ResourceAmounts(
        cpu="250m", memory="512Mi"))
    limits: ResourceAmounts = Field(default_factory=lambda: ResourceAmounts(memory="1Gi"))


class Service(Strict):
    port: Int = Field(3000, ge=1, le=65535)
    workers: Int = Field(1, ge=1, le=64, description="Worker processes (about one per core).")
    timeout_s: float = Field(10, gt=0, description="Longest a request may take (then 503/504).")
    max_batch_size: Int = Field(64, ge=1, le=10_000, description="Adaptive batching: most rows "
                                "predicted in one call when requests arrive together.")
    max_request_kb: Int = Field(1024, ge=1, le=1_048_576, description="Larger request bodies "
                                "are refused with 413.")
    resources: Resources = Field(default_factory=Resources, description="Per replica "
                                 "(Kubernetes target).")


class Autoscaling(Strict):
    min_replicas: Int = Field(1, ge=1, le=1000)
    max_replicas: Int = Field(3, ge=1, le=1000)
    target_cpu_percent: Int = Field(80, ge=1, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise SpecError(f"min_replicas ({self.min_replicas}) is greater than max_replicas "
                            f"({self.max_replicas})", "min_replicas")
        return self


class KubernetesDeploy(Strict):
    namespace: Name = "default"
    image: str | None = Field(None, max_length=255, description="Container image of the bento "
                              "(default: the bento tag, as 'bentoml containerize' names it).")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)


class Deploy(Strict):
    target: Literal["local", "kubernetes"] = Field("local", description="Where 'mlops-gitops "
                                                   "deploy' puts the environment's service.")
    kubernetes: KubernetesDeploy = Field(default_factory=KubernetesDeploy)


class Drift(Strict):
    method: Literal["psi", "ks", "js"] = "psi"
    threshold: float = Field(0.2, gt=0)
    min_samples: Int = Field(500, ge=1)


class InferenceLog(Strict):
    sample_rate: float = Field(1.0, ge=0, le=1, description="Share of predictions logged.")
    rotate_mb: Int = Field(64, ge=1, le=10_000, description="A log file is rotated at this size.")


class Monitoring(Strict):
    drift: Drift = Field(default_factory=Drift)
    inference_log: InferenceLog = Field(default_factory=InferenceLog)
    max_model_age_days: float | None = Field(None, gt=0, description="A served version older "
                                             "than this (days since the commit it was trained "
                                             "from) makes 'monitor' exit 2; a model's "
                                             "retrain.max_age_days overrides it.")


class EnvironmentSpec(Strict):
    branch: str | None = Field(None, description="Git branch that deploys it; default env/NAME.")
    promotes_from: Name | None = Field(None, description="Environment a version must pass first.")
    models: list[ServedModel] = Field(default_factory=list)
    service: Service = Field(default_factory=Service)
    deploy: Deploy = Field(default_factory=Deploy)
    monitoring: Monitoring = Field(default_factory=Monitoring)

    @field_validator("models")
    @classmethod
    def _unique(cls, models: list[ServedModel]) -> list[ServedModel]:
        names = [m.name for m in models]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise SpecError(f"model '{name}' is listed twice", i, "name")
        return models


# --- Project config ------------------------------------------------------------------------------

class ProjectSpec(Strict):
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; MLFLOW_TRACKING_URI "
                                     "wins; default: SQLite under .mlops/.")
    model_prefix: Annotated[str, StringConstraints(pattern=PREFIX_PATTERN,
                                                   max_length=100)] = Field(
        "", description="Prefix of every registered model name.")
    embedded_registry_in_ci: bool = Field(False, description="Allow 'ci deploy' under CI with "
                                          "no tracking server (a scratch SQLite registry on "
                                          "the runner). Off: such a deploy is refused.")


# --- Documents -----------------------------------------------------------------------------------

class _Document(Strict):
    apiVersion: Literal["mlops-gitops/v1"]
    metadata: Metadata


class Dataset(_Document):
    kind: Literal["Dataset"]
    spec: DatasetSpec


class Model(_Document):
    kind: Literal["Model"]
    spec: ModelSpec

    @property
    def registered_name(self) -> str:
        return self.spec.registered_model or self.metadata.name


class PromotionPolicy(_Document):
    kind: Literal["PromotionPolicy"]
    spec: PolicySpec


class Environment(_Document):
    kind: Literal["Environment"]
    spec: EnvironmentSpec

    @property
    def branch(self) -> str:
        return self.spec.branch or f"env/{self.metadata.name}"


class Project(_Document):
    kind: Literal["Project"]
    spec: ProjectSpec = Field(default_factory=ProjectSpec)


KINDS: dict[str, type[_Document]] = {
    "Dataset": Dataset,
    "Model": Model,
    "PromotionPolicy": PromotionPolicy,
    "Environment": Environment,
    "Project": Project,
}

AnySpec = Dataset | Model | PromotionPolicy | Environment | Project
