"""What the service is asked to do and what it answers, as plain data (no protobuf, no gRPC).

`convert` maps these to and from the `sluice.evaluation.v1` messages, applying the defaults of
unset (zero) fields; ``checked()`` rejects what no evaluation could run with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sluice_runtime.errors import InvalidArgument

from sluice_evaluation.metrics import DEFAULT_DECISION_THRESHOLDS, Task
from sluice_evaluation.sliced import (
    DEFAULT_BOOTSTRAP_SAMPLES,
    DEFAULT_CONFIDENCE_LEVEL,
    DEFAULT_MIN_SLICE_SIZE,
    SliceMetrics,
)
from sluice_evaluation.slicing import SlicingSpec, check_slicing
from sluice_evaluation.thresholds import (
    MetricThreshold,
    ThresholdCheck,
    Verdict,
    check_threshold_specs,
)

MAX_BOOTSTRAP_SAMPLES = 10_000
DEFAULT_CANARY_REQUESTS = 10
DEFAULT_LOAD_TIMEOUT_SECONDS = 60.0
DEFAULT_LATENCY_BUDGET_MS = 100.0
MAX_CANARY_REQUESTS = 10_000


@dataclass(frozen=True)
class ArtifactRef:
    """An artifact by metadata id, by URI, or both (they must agree)."""

    artifact_id: int = 0
    uri: str = ""

    @property
    def empty(self) -> bool:
        return not self.artifact_id and not self.uri


@dataclass(frozen=True)
class DataSource:
    """A table in the artifact store; ``format`` is "csv", "parquet" or "" (from the name)."""

    data: ArtifactRef
    format: str = ""


@dataclass(frozen=True)
class EvaluationSpec:
    """Everything an evaluation needs; see EvaluationSpec in evaluation.proto."""

    model: ArtifactRef
    data: DataSource
    label: str
    baseline_model: ArtifactRef | None = None
    no_baseline: bool = False
    example_weight: str = ""
    task: str = ""
    slicing: tuple[SlicingSpec, ...] = ()
    thresholds: tuple[MetricThreshold, ...] = ()
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL
    min_slice_size: int = DEFAULT_MIN_SLICE_SIZE
    decision_thresholds: tuple[float, ...] = DEFAULT_DECISION_THRESHOLDS
    context_id: int = 0

    def checked(self) -> EvaluationSpec:
        """This spec, or InvalidArgument naming the first field at fault."""
        if self.model.empty:
            raise InvalidArgument(
                "spec.model: give the model's artifact id or URI", field="spec.model"
            )
        if self.data.data.empty:
            raise InvalidArgument("spec.data: give the evaluation data", field="spec.data")
        if self.data.format not in ("", "csv", "parquet"):
            raise InvalidArgument(
                "spec.data.format: the evaluation data must be CSV or Parquet, not "
                f"{self.data.format}",
                field="spec.data.format",
            )
        if not self.label:
            raise InvalidArgument("spec.label: name the label column", field="spec.label")
        if self.task:
            try:
                Task.parse(self.task)
            except ValueError as error:
                raise InvalidArgument(f"spec.task: {error}", field="spec.task") from None
        if self.no_baseline and self.baseline_model is not None:
            raise InvalidArgument(
                "spec.no_baseline: set either no_baseline or baseline_model, not both",
                field="spec.no_baseline",
            )
        if not 0 <= self.bootstrap_samples <= MAX_BOOTSTRAP_SAMPLES:
            raise InvalidArgument(
                f"spec.bootstrap_samples: at most {MAX_BOOTSTRAP_SAMPLES}, got "
                f"{self.bootstrap_samples}",
                field="spec.bootstrap_samples",
            )
        if not 0 < self.confidence_level < 1:
            raise InvalidArgument(
                f"spec.confidence_level: must be between 0 and 1, got {self.confidence_level}",
                field="spec.confidence_level",
            )
        if self.min_slice_size < 1:
            raise InvalidArgument(
                f"spec.min_slice_size: must be at least 1, got {self.min_slice_size}",
                field="spec.min_slice_size",
            )
        for i, t in enumerate(self.decision_thresholds):
            if not (math.isfinite(t) and 0 <= t <= 1):
                raise InvalidArgument(
                    f"spec.decision_thresholds[{i}]: must be between 0 and 1, got {t}",
                    field=f"spec.decision_thresholds[{i}]",
                )
        if len(set(self.decision_thresholds)) != len(self.decision_thresholds):
            raise InvalidArgument(
                "spec.decision_thresholds: a threshold is listed twice",
                field="spec.decision_thresholds",
            )
        check_slicing(self.slicing)
        check_threshold_specs(self.thresholds, [s.feature_names for s in self.slicing])
        if self.context_id < 0:
            raise InvalidArgument("spec.context_id: must not be negative", field="spec.context_id")
        return self


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics per slice, the checks and the verdict, and where they were recorded."""

    task: Task
    # The candidate as evaluated (its URI resolved from the metadata service when given by id).
    model: ArtifactRef
    slices: tuple[SliceMetrics, ...]
    checks: tuple[ThresholdCheck, ...]
    verdict: Verdict
    # Baseline metrics on the same slices; None for a cold start.
    baseline_slices: tuple[SliceMetrics, ...] | None = None
    baseline_model: ArtifactRef | None = None
    evaluation: ArtifactRef | None = None
    blessing: ArtifactRef | None = None
    inference_seconds: float = 0.0
    metrics_seconds: float = 0.0
    override_reason: str = ""
    override_actor: str = ""
    execution_id: int = 0


@dataclass(frozen=True)
class InfraValidationSpec:
    """A model to load in a sandboxed serving process and the canary requests to send it."""

    model: ArtifactRef
    canary_data: DataSource
    canary_requests: int = DEFAULT_CANARY_REQUESTS
    load_timeout_seconds: float = DEFAULT_LOAD_TIMEOUT_SECONDS
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS

    def checked(self) -> InfraValidationSpec:
        if self.model.empty:
            raise InvalidArgument("model: give the model's artifact id or URI", field="model")
        if self.canary_data.data.empty:
            raise InvalidArgument(
                "canary_data: give the data to build canary requests from", field="canary_data"
            )
        if not 1 <= self.canary_requests <= MAX_CANARY_REQUESTS:
            raise InvalidArgument(
                f"canary_requests: 1 to {MAX_CANARY_REQUESTS}, got {self.canary_requests}",
                field="canary_requests",
            )
        for name in ("load_timeout_seconds", "latency_budget_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidArgument(f"{name}: must be a positive number, got {value}", field=name)
        return self


@dataclass(frozen=True)
class Problem:
    """Why a model is not infra-blessed: a stable reason (LOAD_TIMEOUT, ...) and a sentence."""

    reason: str
    message: str


@dataclass(frozen=True)
class InfraValidationResult:
    """What the sandbox measured and the verdict."""

    verdict: Verdict
    model: ArtifactRef
    load_seconds: float = 0.0
    p99_latency_ms: float = 0.0
    failed_requests: int = 0
    # Why it is not blessed; empty when blessed.
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    blessing: ArtifactRef | None = None
    execution_id: int = 0
