"""Between the `sluice.evaluation.v1` messages and the plain data of the core.

Defaults of unset (zero) fields are applied here: bootstrap_samples 0 -> 200 (a negative value
turns intervals off), confidence_level 0 -> 0.95, min_slice_size 0 -> 100, decision_thresholds
[] -> [0.5]; canary_requests 0 -> 10, load_timeout_seconds 0 -> 60, latency_budget_ms 0 -> 100.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf import timestamp_pb2
from sluice.common.v1 import data_pb2, job_pb2
from sluice.evaluation.v1 import evaluation_pb2 as pb
from sluice_runtime.errors import InvalidArgument

from sluice_evaluation.jobs import Job, JobError, JobState, Progress
from sluice_evaluation.metrics import Direction
from sluice_evaluation.sliced import (
    DEFAULT_BOOTSTRAP_SAMPLES,
    DEFAULT_CONFIDENCE_LEVEL,
    DEFAULT_MIN_SLICE_SIZE,
    SliceMetrics,
)
from sluice_evaluation.slicing import SlicingSpec
from sluice_evaluation.spec import (
    DEFAULT_CANARY_REQUESTS,
    DEFAULT_LATENCY_BUDGET_MS,
    DEFAULT_LOAD_TIMEOUT_SECONDS,
    ArtifactRef,
    DataSource,
    EvaluationResult,
    EvaluationSpec,
    InfraValidationResult,
    InfraValidationSpec,
)
from sluice_evaluation.thresholds import MetricThreshold, Verdict

_STATES = {
    JobState.QUEUED: job_pb2.JOB_STATE_QUEUED,
    JobState.RUNNING: job_pb2.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: job_pb2.JOB_STATE_SUCCEEDED,
    JobState.FAILED: job_pb2.JOB_STATE_FAILED,
    JobState.CANCELLED: job_pb2.JOB_STATE_CANCELLED,
}
_FORMATS = {
    data_pb2.DATA_FORMAT_UNSPECIFIED: "",
    data_pb2.DATA_FORMAT_CSV: "csv",
    data_pb2.DATA_FORMAT_PARQUET: "parquet",
}
_FORMAT_PROTOS = {name: number for number, name in _FORMATS.items()}
_DIRECTIONS = {
    pb.DIRECTION_HIGHER_IS_BETTER: Direction.HIGHER_IS_BETTER,
    pb.DIRECTION_LOWER_IS_BETTER: Direction.LOWER_IS_BETTER,
}
_DIRECTION_PROTOS = {direction: number for number, direction in _DIRECTIONS.items()}
_VERDICTS = {pb.VERDICT_BLESSED: Verdict.BLESSED, pb.VERDICT_NOT_BLESSED: Verdict.NOT_BLESSED}
_VERDICT_PROTOS = {verdict: number for number, verdict in _VERDICTS.items()}
_OPTIONAL_BOUNDS = (
    "lower_bound",
    "upper_bound",
    "max_absolute_degradation",
    "max_relative_degradation",
)

# -- requests --------------------------------------------------------------------------------------


def ref_from_proto(message: object) -> ArtifactRef:
    return ArtifactRef(getattr(message, "artifact_id", 0), getattr(message, "uri", ""))


def data_from_proto(message: data_pb2.DataSource, field: str) -> DataSource:
    if message.format not in _FORMATS:
        raise InvalidArgument(
            f"{field}.format: evaluation data must be CSV or Parquet (a request log has no labels)",
            field=f"{field}.format",
        )
    return DataSource(ref_from_proto(message.data), _FORMATS[message.format])


def spec_from_proto(message: pb.EvaluationSpec) -> EvaluationSpec:
    """The core spec, defaults applied; InvalidArgument for values no spec can hold."""
    if message.bootstrap_samples > 0:
        bootstrap = message.bootstrap_samples
    else:
        bootstrap = 0 if message.bootstrap_samples < 0 else DEFAULT_BOOTSTRAP_SAMPLES
    return EvaluationSpec(
        model=ref_from_proto(message.model),
        data=data_from_proto(message.data, "spec.data"),
        label=message.label,
        baseline_model=(
            ref_from_proto(message.baseline_model) if message.HasField("baseline_model") else None
        ),
        no_baseline=message.no_baseline,
        example_weight=message.example_weight,
        task=message.task,
        slicing=tuple(
            SlicingSpec(tuple(s.feature_names), s.numeric_buckets) for s in message.slicing
        ),
        thresholds=tuple(
            threshold_from_proto(t, f"spec.thresholds[{i}]")
            for i, t in enumerate(message.thresholds)
        ),
        bootstrap_samples=bootstrap,
        confidence_level=message.confidence_level or DEFAULT_CONFIDENCE_LEVEL,
        min_slice_size=message.min_slice_size or DEFAULT_MIN_SLICE_SIZE,
        decision_thresholds=tuple(message.decision_thresholds) or (0.5,),
        context_id=message.context_id,
    )


def threshold_from_proto(message: pb.MetricThreshold, field: str) -> MetricThreshold:
    if message.direction not in (pb.DIRECTION_UNSPECIFIED, *_DIRECTIONS):
        raise InvalidArgument(f"{field}.direction: unknown value", field=f"{field}.direction")
    bounds = {
        name: getattr(message, name) if message.HasField(name) else None
        for name in _OPTIONAL_BOUNDS
    }
    return MetricThreshold(
        metric=message.metric,
        slice=message.slice,
        direction=_DIRECTIONS.get(message.direction),
        **bounds,
    )


def verdict_from_proto(value: int, field: str = "verdict") -> Verdict:
    verdict: Verdict | None = _VERDICTS.get(value)  # type: ignore[call-overload]
    if verdict is None:
        raise InvalidArgument(f"{field}: VERDICT_BLESSED or VERDICT_NOT_BLESSED", field=field)
    return verdict


def infra_spec_from_request(request: object) -> InfraValidationSpec:
    canary = getattr(request, "canary_data", data_pb2.DataSource())
    return InfraValidationSpec(
        model=ref_from_proto(getattr(request, "model", None)),
        canary_data=data_from_proto(canary, "canary_data"),
        canary_requests=getattr(request, "canary_requests", 0) or DEFAULT_CANARY_REQUESTS,
        load_timeout_seconds=(
            getattr(request, "load_timeout_seconds", 0.0) or DEFAULT_LOAD_TIMEOUT_SECONDS
        ),
        latency_budget_ms=getattr(request, "latency_budget_ms", 0.0) or DEFAULT_LATENCY_BUDGET_MS,
    )


# -- responses -------------------------------------------------------------------------------------


def ref_to_proto(ref: ArtifactRef | None) -> data_pb2.ArtifactRef | None:
    return None if ref is None else data_pb2.ArtifactRef(artifact_id=ref.artifact_id, uri=ref.uri)


def spec_to_proto(spec: EvaluationSpec) -> pb.EvaluationSpec:
    message = pb.EvaluationSpec(
        model=ref_to_proto(spec.model),
        baseline_model=ref_to_proto(spec.baseline_model),
        no_baseline=spec.no_baseline,
        data=data_pb2.DataSource(
            data=ref_to_proto(spec.data.data),
            format=_FORMAT_PROTOS[spec.data.format],  # type: ignore[arg-type]
        ),
        label=spec.label,
        example_weight=spec.example_weight,
        task=spec.task,
        bootstrap_samples=spec.bootstrap_samples if spec.bootstrap_samples else -1,
        confidence_level=spec.confidence_level,
        min_slice_size=spec.min_slice_size,
        decision_thresholds=list(spec.decision_thresholds),
        context_id=spec.context_id,
    )
    for slicing in spec.slicing:
        message.slicing.add(
            feature_names=list(slicing.feature_names), numeric_buckets=slicing.numeric_buckets
        )
    for t in spec.thresholds:
        threshold = message.thresholds.add(metric=t.metric, slice=t.slice)
        for name in _OPTIONAL_BOUNDS:
            value = getattr(t, name)
            if value is not None:
                setattr(threshold, name, value)
        if t.direction is not None:
            threshold.direction = _DIRECTION_PROTOS[t.direction]  # type: ignore[assignment]
    return message


def _timestamp(when: object) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)  # type: ignore[arg-type]
    return stamp


def _progress(progress: Progress) -> job_pb2.Progress:
    return job_pb2.Progress(fraction_done=progress.fraction_done, message=progress.message)


def error_to_proto(error: JobError | None) -> job_pb2.JobError | None:
    if error is None:
        return None
    code = grpc.StatusCode[error.code].value[0]
    return job_pb2.JobError(
        code=code, message=error.message, reason=error.reason, field=error.field
    )


def _metric_values(
    target: Mapping[str, pb.MetricValue],
    values: Mapping[str, float],
    intervals: SliceMetrics | None,
) -> None:
    for name, value in values.items():
        metric = target[name]  # type: ignore[index]
        metric.value = value
        if intervals is not None and name in intervals.intervals:
            metric.lower, metric.upper = intervals.intervals[name]


def result_to_proto(result: EvaluationResult) -> pb.EvaluationResult:
    message = pb.EvaluationResult(
        verdict=_VERDICT_PROTOS[result.verdict],  # type: ignore[arg-type]
        baseline_model=ref_to_proto(result.baseline_model),
        evaluation=ref_to_proto(result.evaluation),
        blessing=ref_to_proto(result.blessing),
        inference_seconds=result.inference_seconds,
        metrics_seconds=result.metrics_seconds,
        override_reason=result.override_reason,
    )
    baseline = {s.slice: s for s in result.baseline_slices or ()}
    for s in result.slices:
        sliced = message.slices.add(
            slice=s.slice,
            example_count=s.example_count,
            weighted_example_count=s.weighted_example_count,
            too_small=s.too_small,
        )
        _metric_values(sliced.metrics, s.values, s)
        if s.slice in baseline:
            _metric_values(sliced.baseline_metrics, baseline[s.slice].values, None)
    for check in result.checks:
        message.checks.add(
            metric=check.metric, slice=check.slice, passed=check.passed, message=check.message
        )
    return message


def evaluation_to_proto(job: Job[EvaluationSpec, EvaluationResult]) -> pb.Evaluation:
    message = pb.Evaluation(
        name=job.name,
        state=_STATES[job.state],  # type: ignore[arg-type]
        spec=spec_to_proto(job.spec),
        progress=_progress(job.progress),
        error=error_to_proto(job.error),
        labels=dict(job.labels),
        create_time=_timestamp(job.create_time),
        update_time=_timestamp(job.update_time),
    )
    if job.result is not None:
        message.result.CopyFrom(result_to_proto(job.result))
        message.execution_id = job.result.execution_id
    elif job.state.terminal:
        # A failed or cancelled evaluation says so in its verdict too: never blessed.
        message.result.verdict = pb.VERDICT_NOT_BLESSED
    return message


def infra_validation_to_proto(
    job: Job[InfraValidationSpec, InfraValidationResult],
) -> pb.InfraValidation:
    spec = job.spec
    message = pb.InfraValidation(
        name=job.name,
        state=_STATES[job.state],  # type: ignore[arg-type]
        model=ref_to_proto(spec.model),
        canary_data=data_pb2.DataSource(
            data=ref_to_proto(spec.canary_data.data),
            format=_FORMAT_PROTOS[spec.canary_data.format],  # type: ignore[arg-type]
        ),
        canary_requests=spec.canary_requests,
        load_timeout_seconds=spec.load_timeout_seconds,
        latency_budget_ms=spec.latency_budget_ms,
        error=error_to_proto(job.error),
        create_time=_timestamp(job.create_time),
        update_time=_timestamp(job.update_time),
    )
    result = job.result
    if result is None:
        if job.state.terminal:
            message.verdict = pb.VERDICT_NOT_BLESSED
        return message
    message.model.CopyFrom(
        data_pb2.ArtifactRef(artifact_id=result.model.artifact_id, uri=result.model.uri)
    )
    message.load_seconds = result.load_seconds
    message.p99_latency_ms = result.p99_latency_ms
    message.failed_requests = result.failed_requests
    message.verdict = _VERDICT_PROTOS[result.verdict]  # type: ignore[assignment]
    blessing = ref_to_proto(result.blessing)
    if blessing is not None:
        message.blessing.CopyFrom(blessing)
    if result.problems:
        # Why the model is not infra-blessed, in the shape of an error.
        message.error.CopyFrom(
            job_pb2.JobError(
                code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                message="; ".join(p.message for p in result.problems),
                reason=result.problems[0].reason,
                field="model",
            )
        )
    return message
