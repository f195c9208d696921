import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sluice.common.v1 import job_pb2 as _job_pb2
from sluice.evaluation.v1 import evaluation_pb2 as _evaluation_pb2
from sluice.training.v1 import training_job_pb2 as _training_job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Step(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_UNSPECIFIED: _ClassVar[Step]
    STEP_STATISTICS: _ClassVar[Step]
    STEP_SCHEMA: _ClassVar[Step]
    STEP_VALIDATE: _ClassVar[Step]
    STEP_TRAIN: _ClassVar[Step]
    STEP_EVALUATE: _ClassVar[Step]
    STEP_INFRA_VALIDATE: _ClassVar[Step]
    STEP_PUSH: _ClassVar[Step]
    STEP_SKEW: _ClassVar[Step]

class StepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_STATE_UNSPECIFIED: _ClassVar[StepState]
    STEP_STATE_PENDING: _ClassVar[StepState]
    STEP_STATE_RUNNING: _ClassVar[StepState]
    STEP_STATE_SUCCEEDED: _ClassVar[StepState]
    STEP_STATE_FAILED: _ClassVar[StepState]
    STEP_STATE_CACHED: _ClassVar[StepState]
    STEP_STATE_SKIPPED: _ClassVar[StepState]
STEP_UNSPECIFIED: Step
STEP_STATISTICS: Step
STEP_SCHEMA: Step
STEP_VALIDATE: Step
STEP_TRAIN: Step
STEP_EVALUATE: Step
STEP_INFRA_VALIDATE: Step
STEP_PUSH: Step
STEP_SKEW: Step
STEP_STATE_UNSPECIFIED: StepState
STEP_STATE_PENDING: StepState
STEP_STATE_RUNNING: StepState
STEP_STATE_SUCCEEDED: StepState
STEP_STATE_FAILED: StepState
STEP_STATE_CACHED: StepState
STEP_STATE_SKIPPED: StepState

class Trigger(_message.Message):
    __slots__ = ("new_span_poll_interval", "schedule")
    NEW_SPAN_POLL_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    new_span_poll_interval: _duration_pb2.Duration
    schedule: str
    def __init__(self, new_span_poll_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., schedule: _Optional[str] = ...) -> None: ...

class PipelineSpec(_message.Message):
    __slots__ = ("data_root", "schema_uri", "training", "evaluation", "serving_model_name", "eval_fraction", "trigger", "disable_cache")
    DATA_ROOT_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URI_FIELD_NUMBER: _ClassVar[int]
    TRAINING_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    SERVING_MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    EVAL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    DISABLE_CACHE_FIELD_NUMBER: _ClassVar[int]
    data_root: str
    schema_uri: str
    training: _training_job_pb2.TrainingSpec
    evaluation: _evaluation_pb2.EvaluationSpec
    serving_model_name: str
    eval_fraction: float
    trigger: Trigger
    disable_cache: bool
    def __init__(self, data_root: _Optional[str] = ..., schema_uri: _Optional[str] = ..., training: _Optional[_Union[_training_job_pb2.TrainingSpec, _Mapping]] = ..., evaluation: _Optional[_Union[_evaluation_pb2.EvaluationSpec, _Mapping]] = ..., serving_model_name: _Optional[str] = ..., eval_fraction: _Optional[float] = ..., trigger: _Optional[_Union[Trigger, _Mapping]] = ..., disable_cache: _Optional[bool] = ...) -> None: ...

class Pipeline(_message.Message):
    __slots__ = ("name", "spec", "context_id", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: PipelineSpec
    context_id: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[PipelineSpec, _Mapping]] = ..., context_id: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StepRun(_message.Message):
    __slots__ = ("step", "state", "resource_name", "execution_id", "output_artifact_ids", "message", "start_time", "end_time")
    class OutputArtifactIdsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    STEP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ARTIFACT_IDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    step: Step
    state: StepState
    resource_name: str
    execution_id: int
    output_artifact_ids: _containers.ScalarMap[str, int]
    message: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, step: _Optional[_Union[Step, str]] = ..., state: _Optional[_Union[StepState, str]] = ..., resource_name: _Optional[str] = ..., execution_id: _Optional[int] = ..., output_artifact_ids: _Optional[_Mapping[str, int]] = ..., message: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PipelineRun(_message.Message):
    __slots__ = ("name", "state", "span", "steps", "trigger", "error", "context_id", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: _job_pb2.JobState
    span: str
    steps: _containers.RepeatedCompositeFieldContainer[StepRun]
    trigger: str
    error: _job_pb2.JobError
    context_id: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., span: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[StepRun, _Mapping]]] = ..., trigger: _Optional[str] = ..., error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ..., context_id: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
