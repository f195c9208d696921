"""gRPC glue of sluice.validation.v1.ValidationService: proto -> core call -> proto.

Domain errors raised by the core become status codes in the runtime's error interceptor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from sluice.common.v1 import data_pb2, job_pb2
from sluice.validation.v1 import (
    statistics_job_pb2,
    validation_service_pb2,
    validation_service_pb2_grpc,
)
from sluice_runtime.errors import InvalidArgument
from tensorflow_metadata.proto.v0 import anomalies_pb2

from .comparison import ComparisonKind
from .core import Ref, StatisticsJobSpec, StatisticsOutcome, ValidationCore
from .inputs import DataFormat
from .jobs import Job, JobState
from .statistics import StatsOptions
from .validation import Finding

pb = validation_service_pb2

_FORMATS = {
    data_pb2.DATA_FORMAT_UNSPECIFIED: None,
    data_pb2.DATA_FORMAT_CSV: DataFormat.CSV,
    data_pb2.DATA_FORMAT_PARQUET: DataFormat.PARQUET,
    data_pb2.DATA_FORMAT_REQUEST_LOG: DataFormat.REQUEST_LOG,
}
_STATES = {
    JobState.QUEUED: job_pb2.JOB_STATE_QUEUED,
    JobState.RUNNING: job_pb2.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: job_pb2.JOB_STATE_SUCCEEDED,
    JobState.FAILED: job_pb2.JOB_STATE_FAILED,
    JobState.CANCELLED: job_pb2.JOB_STATE_CANCELLED,
}
_SEVERITIES = {
    anomalies_pb2.AnomalyInfo.WARNING: pb.SEVERITY_WARNING,
    anomalies_pb2.AnomalyInfo.ERROR: pb.SEVERITY_ERROR,
}
JOB_PREFIX = "statisticsJobs/"


class ValidationServicer(validation_service_pb2_grpc.ValidationServiceServicer):
    def __init__(self, core: ValidationCore) -> None:
        self._core = core

    # -- jobs --------------------------------------------------------------------------------------

    def CreateStatisticsJob(
        self, request: pb.CreateStatisticsJobRequest, context: grpc.ServicerContext
    ) -> pb.CreateStatisticsJobResponse:
        job = self._core.create_statistics_job(
            spec_from_proto(request.job), request_id=request.request_id
        )
        return pb.CreateStatisticsJobResponse(job=job_to_proto(job))

    def GetStatisticsJob(
        self, request: pb.GetStatisticsJobRequest, context: grpc.ServicerContext
    ) -> pb.GetStatisticsJobResponse:
        return pb.GetStatisticsJobResponse(
            job=job_to_proto(self._core.get_job(job_id(request.name)))
        )

    def ListStatisticsJobs(
        self, request: pb.ListStatisticsJobsRequest, context: grpc.ServicerContext
    ) -> pb.ListStatisticsJobsResponse:
        jobs, token = self._core.list_jobs(request.page_size, request.page_token)
        return pb.ListStatisticsJobsResponse(
            jobs=[job_to_proto(j) for j in jobs], next_page_token=token
        )

    def CancelStatisticsJob(
        self, request: pb.CancelStatisticsJobRequest, context: grpc.ServicerContext
    ) -> pb.CancelStatisticsJobResponse:
        return pb.CancelStatisticsJobResponse(
            job=job_to_proto(self._core.cancel_job(job_id(request.name)))
        )

    def WatchStatisticsJob(
        self, request: pb.WatchStatisticsJobRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchStatisticsJobResponse]:
        for job in self._core.watch_job(job_id(request.name), is_active=context.is_active):
            yield pb.WatchStatisticsJobResponse(job=job_to_proto(job))

    # -- quick calls -------------------------------------------------------------------------------

    def InferSchema(
        self, request: pb.InferSchemaRequest, context: grpc.ServicerContext
    ) -> pb.InferSchemaResponse:
        if request.max_domain_size < 0:
            raise InvalidArgument(
                f"max_domain_size must be 0 or more, got {request.max_domain_size}",
                field="max_domain_size",
            )
        written, schema = self._core.infer_schema(
            ref(request.statistics),
            max_domain_size=request.max_domain_size,
            output_uri=request.output_uri,
        )
        return pb.InferSchemaResponse(
            schema=ref_to_proto(written.ref), schema_proto=schema.SerializeToString()
        )

    def ValidateStatistics(
        self, request: pb.ValidateStatisticsRequest, context: grpc.ServicerContext
    ) -> pb.ValidateStatisticsResponse:
        outcome = self._core.validate(
            ref(request.statistics),
            ref(request.schema),
            environment=request.environment,
            previous_statistics=optional_ref(request, "previous_statistics"),
            serving_statistics=optional_ref(request, "serving_statistics"),
        )
        result = outcome.result
        return pb.ValidateStatisticsResponse(
            anomalies=ref_to_proto(outcome.anomalies.ref),
            anomalies_proto=result.anomalies.SerializeToString(),
            summaries=[summary(f) for f in result.findings],
            max_severity=_SEVERITIES.get(result.max_severity, pb.SEVERITY_UNSPECIFIED),
        )

    def CompareStatistics(
        self, request: pb.CompareStatisticsRequest, context: grpc.ServicerContext
    ) -> pb.CompareStatisticsResponse:
        kind = (
            ComparisonKind.SKEW if request.kind == pb.COMPARISON_KIND_SKEW else ComparisonKind.DRIFT
        )
        outcome = self._core.compare(
            ref(request.baseline),
            ref(request.candidate),
            schema=optional_ref(request, "schema"),
            kind=kind,
        )
        return pb.CompareStatisticsResponse(
            distances=[
                pb.FeatureDistance(
                    feature=d.feature,
                    measure=d.measure.value,
                    distance=d.distance,
                    threshold=d.threshold,
                    over_threshold=d.over_threshold,
                )
                for d in outcome.distances
            ],
            summaries=[summary(f) for f in outcome.result.findings],
            anomalies_proto=outcome.result.anomalies.SerializeToString(),
        )


# -- conversions -----------------------------------------------------------------------------------


def job_id(name: str) -> str:
    if not name.startswith(JOB_PREFIX) or len(name) == len(JOB_PREFIX):
        raise InvalidArgument(
            f"name must look like 'statisticsJobs/<id>', got {name!r}", field="name"
        )
    return name[len(JOB_PREFIX) :]


def ref(message: data_pb2.ArtifactRef) -> Ref:
    return Ref(artifact_id=message.artifact_id, uri=message.uri)


def optional_ref(request: Any, field: str) -> Ref | None:
    if not request.HasField(field):
        return None
    found = ref(getattr(request, field))
    return found if found else None


def ref_to_proto(value: Ref) -> data_pb2.ArtifactRef:
    return data_pb2.ArtifactRef(artifact_id=value.artifact_id, uri=value.uri)


def spec_from_proto(job: statistics_job_pb2.StatisticsJob) -> StatisticsJobSpec:
    options = job.options
    slices = tuple(tuple(s.feature_names) for s in job.slices)
    try:
        data_format = _FORMATS[job.source.format]
    except KeyError:
        raise InvalidArgument(
            f"job.source.format {job.source.format} is not a known DataFormat",
            field="job.source.format",
        ) from None
    stats_options = _stats_options(
        slices=slices,
        top_k=options.top_k,
        num_quantiles=options.num_quantiles,
        num_histogram_buckets=options.num_histogram_buckets,
        sample_rate=options.sample_rate,
        list_separators=dict(options.list_separators),
    )
    return StatisticsJobSpec(
        data=ref(job.source.data),
        data_format=data_format,
        options=stats_options,
        beam_runner=options.beam_runner,
        output_uri=job.output_uri,
        labels=dict(job.labels),
    )


def _stats_options(**given: Any) -> StatsOptions:
    # Zero means "default" in the contract; StatsOptions checks the rest and names the field.
    chosen = {
        key: value
        for key, value in given.items()
        if key in ("slices", "list_separators") or value != 0
    }
    for key in ("top_k", "num_quantiles", "num_histogram_buckets"):
        if key in chosen and chosen[key] < 0:
            raise InvalidArgument(
                f"job.options.{key} must be positive (0 for the default), got {chosen[key]}",
                field=f"job.options.{key}",
            )
    try:
        return StatsOptions(**chosen)
    except InvalidArgument as error:
        error.field = f"job.{error.field}" if error.field else "job.options"
        error.message = (
            f"job.{error.message}" if error.message.startswith("options.") else (error.message)
        )
        raise


def job_to_proto(job: Job[StatisticsJobSpec]) -> statistics_job_pb2.StatisticsJob:
    spec = job.spec
    message = statistics_job_pb2.StatisticsJob(
        name=job.name,
        state=_STATES[job.state],
        source=data_pb2.DataSource(
            data=ref_to_proto(spec.data),
            format=next(k for k, v in _FORMATS.items() if v is spec.data_format),
        ),
        slices=[statistics_job_pb2.SliceSpec(feature_names=list(s)) for s in spec.options.slices],
        options=statistics_job_pb2.StatisticsOptions(
            top_k=spec.options.top_k,
            num_quantiles=spec.options.num_quantiles,
            num_histogram_buckets=spec.options.num_histogram_buckets,
            sample_rate=spec.options.sample_rate,
            list_separators=dict(spec.options.list_separators),
            beam_runner=spec.beam_runner,
        ),
        output_uri=spec.output_uri,
        labels=dict(spec.labels),
        create_time=_timestamp(job.create_time),
        update_time=_timestamp(job.update_time),
    )
    progress = job.progress
    message.progress.CopyFrom(
        job_pb2.Progress(
            fraction_done=progress.fraction_done,
            done=progress.done,
            total=progress.total,
            unit=progress.unit,
            eta_seconds=progress.eta_seconds or 0,
            message=progress.message,
        )
    )
    if isinstance(job.result, StatisticsOutcome):
        message.statistics.CopyFrom(ref_to_proto(job.result.statistics))
        message.row_count = job.result.row_count
        message.execution_id = job.result.execution_id
    if job.error is not None:
        message.error.CopyFrom(
            job_pb2.JobError(
                code=job.error.code,
                message=job.error.message,
                reason=job.error.reason,
                field=job.error.field,
            )
        )
    return message


def summary(finding: Finding) -> pb.AnomalySummary:
    return pb.AnomalySummary(
        feature=finding.feature,
        kind=finding.kind,
        severity=_SEVERITIES.get(finding.severity, pb.SEVERITY_UNSPECIFIED),
        description=finding.description,
    )


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp
