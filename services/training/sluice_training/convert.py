"""Domain records to `sluice.training.v1` messages (the servicer's only translation layer)."""

from __future__ import annotations

import math
from datetime import datetime

from google.protobuf import timestamp_pb2
from sluice.common.v1 import data_pb2, job_pb2
from sluice.training.v1 import training_job_pb2 as pb

from sluice_training.jobs import Job, JobFailure, Progress, Result


def job_to_proto(job: Job) -> pb.TrainingJob:
    message = pb.TrainingJob(
        name=job.name,
        state=job.state.value,  # type: ignore[arg-type]
        spec=pb.TrainingSpec.FromString(job.spec),
        progress=progress_to_proto(job.progress),
        attempt=job.attempt,
        execution_id=job.execution_id,
        labels=job.labels,
        create_time=_timestamp(job.create_time),
    )
    if job.result is not None:
        message.result.CopyFrom(result_to_proto(job.result))
    if job.error is not None:
        message.error.CopyFrom(error_to_proto(job.error))
    if job.start_time is not None:
        message.start_time.CopyFrom(_timestamp(job.start_time))
    if job.end_time is not None:
        message.end_time.CopyFrom(_timestamp(job.end_time))
    return message


def progress_to_proto(progress: Progress) -> pb.TrainingProgress:
    return pb.TrainingProgress(
        epoch=progress.epoch,
        total_epochs=progress.total_epochs,
        step=progress.step,
        total_steps=progress.total_steps,
        loss=progress.loss if math.isfinite(progress.loss) else 0.0,
        metrics={k: v for k, v in progress.metrics.items() if math.isfinite(v)},
        examples_per_second=progress.examples_per_second,
        eta_seconds=progress.eta_seconds,
    )


def result_to_proto(result: Result) -> pb.TrainingResult:
    message = pb.TrainingResult(
        model=data_pb2.ArtifactRef(artifact_id=result.model_artifact_id, uri=result.model_uri),
        digest=result.digest,
        eval_metrics={k: v for k, v in result.eval_metrics.items() if math.isfinite(v)},
    )
    if result.base_model_uri or result.base_model_artifact_id:
        message.base_model.CopyFrom(
            data_pb2.ArtifactRef(
                artifact_id=result.base_model_artifact_id, uri=result.base_model_uri
            )
        )
    return message


def error_to_proto(error: JobFailure) -> job_pb2.JobError:
    return job_pb2.JobError(
        code=error.code, message=error.message, reason=error.reason, field=error.field
    )


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
