"""The training job as a domain record: state, progress, result and failure, in plain Python.

The servicer converts these to and from `sluice.training.v1` messages (`convert.py`); the store
persists them (`store.py`); nothing here imports gRPC, SQLAlchemy, Keras or TensorFlow.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

JOB_NAME_PREFIX = "trainingJobs/"


class JobState(enum.Enum):
    """The life cycle of a job; the values are the `sluice.common.v1.JobState` numbers."""

    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


# google.rpc.Code numbers used in JobError.code.
CODE_INVALID_ARGUMENT = 3
CODE_NOT_FOUND = 5
CODE_FAILED_PRECONDITION = 9
CODE_ABORTED = 10
CODE_INTERNAL = 13
CODE_UNAVAILABLE = 14

_CODE_NUMBERS = {
    "INVALID_ARGUMENT": CODE_INVALID_ARGUMENT,
    "NOT_FOUND": CODE_NOT_FOUND,
    "FAILED_PRECONDITION": CODE_FAILED_PRECONDITION,
    "ABORTED": CODE_ABORTED,
    "INTERNAL": CODE_INTERNAL,
    "UNAVAILABLE": CODE_UNAVAILABLE,
    "DATA_LOSS": 15,
    "RESOURCE_EXHAUSTED": 8,
    "PERMISSION_DENIED": 7,
    "UNAUTHENTICATED": 16,
    "OUT_OF_RANGE": 11,
    "ALREADY_EXISTS": 6,
}


def code_number(grpc_code_name: str) -> int:
    """The google.rpc.Code number of a status name (INTERNAL for names not listed)."""
    return _CODE_NUMBERS.get(grpc_code_name, CODE_INTERNAL)


@dataclass(frozen=True)
class JobFailure:
    """Why a job failed: what `sluice.common.v1.JobError` carries.

    Attributes:
        code: a google.rpc.Code number.
        message: a sentence a person can act on.
        reason: UPPER_SNAKE machine-readable reason, e.g. LABEL_MISSING.
        field: the spec field or input the failure is about, if any.
    """

    code: int
    message: str
    reason: str
    field: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "reason": self.reason,
            "field": self.field,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobFailure:
        return cls(
            code=int(data.get("code", CODE_INTERNAL)),
            message=str(data.get("message", "")),
            reason=str(data.get("reason", "")),
            field=str(data.get("field", "")),
        )


@dataclass(frozen=True)
class Progress:
    """How far a running job has got (the `TrainingProgress` message)."""

    epoch: int = 0
    total_epochs: int = 0
    step: int = 0
    total_steps: int = 0
    loss: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    examples_per_second: float = 0.0
    eta_seconds: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "total_epochs": self.total_epochs,
            "step": self.step,
            "total_steps": self.total_steps,
            "loss": _finite_or_none(self.loss),
            "metrics": {k: _finite_or_none(v) for k, v in self.metrics.items()},
            "examples_per_second": self.examples_per_second,
            "eta_seconds": self.eta_seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        return cls(
            epoch=int(data.get("epoch", 0)),
            total_epochs=int(data.get("total_epochs", 0)),
            step=int(data.get("step", 0)),
            total_steps=int(data.get("total_steps", 0)),
            loss=_float(data.get("loss")),
            metrics={str(k): _float(v) for k, v in (data.get("metrics") or {}).items()},
            examples_per_second=_float(data.get("examples_per_second")),
            eta_seconds=int(data.get("eta_seconds", 0)),
        )


@dataclass(frozen=True)
class Result:
    """The exported model (the `TrainingResult` message).

    Attributes:
        model_uri: the model folder (``saved_model/``, ``model.keras``, ``sluice_manifest.json``).
        digest: ``sha256:<hex>`` over the folder's files (see `publish.folder_digest`).
        model_artifact_id: the Model artifact in the metadata service; 0 when not recorded.
        base_model_uri: the warm-start base model actually used; empty for a cold start.
        base_model_artifact_id: its metadata artifact id, when known.
        eval_metrics: final metrics on eval_data (train data when there is none).
    """

    model_uri: str
    digest: str
    model_artifact_id: int = 0
    base_model_uri: str = ""
    base_model_artifact_id: int = 0
    eval_metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model_uri": self.model_uri,
            "digest": self.digest,
            "model_artifact_id": self.model_artifact_id,
            "base_model_uri": self.base_model_uri,
            "base_model_artifact_id": self.base_model_artifact_id,
            "eval_metrics": {k: _finite_or_none(v) for k, v in self.eval_metrics.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(
            model_uri=str(data["model_uri"]),
            digest=str(data["digest"]),
            model_artifact_id=int(data.get("model_artifact_id", 0)),
            base_model_uri=str(data.get("base_model_uri", "")),
            base_model_artifact_id=int(data.get("base_model_artifact_id", 0)),
            eval_metrics={str(k): _float(v) for k, v in (data.get("eval_metrics") or {}).items()},
        )


@dataclass(frozen=True)
class Job:
    """One training job. ``spec`` is the serialized `TrainingSpec` message as the caller sent it
    (the core treats it as opaque bytes plus the parsed `JobPlan` it was validated into).

    Attributes:
        id: the short id; the resource name is ``trainingJobs/<id>``.
        attempt: attempts started so far; a resumed attempt counts one more.
        launch: what the launcher needs to find or stop the attempt's workers (pids, pod names).
        version: bumped on every change, so watchers see each one.
    """

    id: str
    state: JobState
    spec: bytes
    create_time: datetime
    labels: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    progress: Progress = field(default_factory=Progress)
    result: Result | None = None
    error: JobFailure | None = None
    attempt: int = 0
    execution_id: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    launch: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    @property
    def name(self) -> str:
        return JOB_NAME_PREFIX + self.id

    def evolve(self, **changes: Any) -> Job:
        """A copy with ``changes`` applied and the version bumped."""
        return replace(self, version=self.version + 1, **changes)


def job_id_from_name(name: str) -> str | None:
    """The id in ``trainingJobs/<id>``, or None when ``name`` is not of that form."""
    if not name.startswith(JOB_NAME_PREFIX):
        return None
    job_id = name[len(JOB_NAME_PREFIX) :]
    if not job_id or not all(c.isalnum() or c in "-_" for c in job_id):
        return None
    return job_id


def _float(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN; None stands for "not a number" on the way back.
    return value if math.isfinite(value) else None
