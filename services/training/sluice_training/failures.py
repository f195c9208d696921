"""Why a job fails: one exception type carrying a `JobFailure`, and the catalogue of reasons.

A worker raises `TrainingFailure` for anything a person can fix (bad data, a broken user module,
a NaN loss); it reaches the job record as its `error` with the same code, reason and field.

========================== ===================== ===============================================
reason                     code                  meaning
========================== ===================== ===============================================
DATA_NOT_FOUND             NOT_FOUND             no file at the train or eval data URI
DATA_UNREADABLE            INVALID_ARGUMENT      a file is not valid CSV/Parquet, or is empty
SCHEMA_NOT_FOUND           NOT_FOUND             no schema at spec.schema
SCHEMA_INVALID             INVALID_ARGUMENT      not a tensorflow.metadata Schema (text or binary)
STATISTICS_INVALID         INVALID_ARGUMENT      not a DatasetFeatureStatisticsList
LABEL_MISSING              INVALID_ARGUMENT      the label column is not in the data
LABEL_INVALID              INVALID_ARGUMENT      label values do not fit the task
SCHEMA_DATA_MISMATCH       INVALID_ARGUMENT      a schema feature is missing or of another type
USER_MODULE_IMPORT_FAILED  INVALID_ARGUMENT      the user module or its function cannot be loaded
USER_MODEL_INVALID         INVALID_ARGUMENT      build_model failed or returned no keras.Model
INVALID_HYPERPARAMETER     INVALID_ARGUMENT      a hyperparameter has the wrong type or range
NAN_LOSS                   INVALID_ARGUMENT      the loss became NaN or infinite
BASE_MODEL_NOT_FOUND       NOT_FOUND             the warm-start base model is not in the store
BASE_MODEL_UNREADABLE      FAILED_PRECONDITION   the base model cannot be loaded
METADATA_UNAVAILABLE       UNAVAILABLE           the metadata service cannot be reached
TENSORFLOW_REQUIRED        FAILED_PRECONDITION   a step needs TensorFlow, which is not installed
EXPORT_FAILED              INTERNAL              the SavedModel export failed or disagreed
ALREADY_PUBLISHED          FAILED_PRECONDITION   output_uri holds another job's model
WORKER_LOST                UNAVAILABLE           the worker died too many times
INTERNAL                   INTERNAL              a bug; the worker log has the traceback
========================== ===================== ===============================================
"""

from __future__ import annotations

from sluice_training.jobs import (
    CODE_FAILED_PRECONDITION,
    CODE_INTERNAL,
    CODE_INVALID_ARGUMENT,
    CODE_NOT_FOUND,
    CODE_UNAVAILABLE,
    JobFailure,
)

_CODES = {
    "DATA_NOT_FOUND": CODE_NOT_FOUND,
    "SCHEMA_NOT_FOUND": CODE_NOT_FOUND,
    "BASE_MODEL_NOT_FOUND": CODE_NOT_FOUND,
    "BASE_MODEL_UNREADABLE": CODE_FAILED_PRECONDITION,
    "TENSORFLOW_REQUIRED": CODE_FAILED_PRECONDITION,
    "ALREADY_PUBLISHED": CODE_FAILED_PRECONDITION,
    "METADATA_UNAVAILABLE": CODE_UNAVAILABLE,
    "WORKER_LOST": CODE_UNAVAILABLE,
    "EXPORT_FAILED": CODE_INTERNAL,
    "INTERNAL": CODE_INTERNAL,
}


class TrainingFailure(Exception):
    """A job failure a person can act on; ``reason`` picks the code from the catalogue above."""

    def __init__(self, reason: str, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field

    @property
    def code(self) -> int:
        return _CODES.get(self.reason, CODE_INVALID_ARGUMENT)

    def to_failure(self) -> JobFailure:
        return JobFailure(
            code=self.code, message=self.message, reason=self.reason, field=self.field
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.reason, self.message, self.field))


def _rebuild(reason: str, message: str, field: str) -> TrainingFailure:
    return TrainingFailure(reason, message, field=field)
