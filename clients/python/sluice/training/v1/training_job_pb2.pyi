import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sluice.common.v1 import data_pb2 as _data_pb2
from sluice.common.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Task(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_UNSPECIFIED: _ClassVar[Task]
    TASK_BINARY_CLASSIFICATION: _ClassVar[Task]
    TASK_MULTICLASS_CLASSIFICATION: _ClassVar[Task]
    TASK_REGRESSION: _ClassVar[Task]
TASK_UNSPECIFIED: Task
TASK_BINARY_CLASSIFICATION: Task
TASK_MULTICLASS_CLASSIFICATION: Task
TASK_REGRESSION: Task

class BuiltinModel(_message.Message):
    __slots__ = ("kind", "task", "hidden_units", "num_classes")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[BuiltinModel.Kind]
        KIND_DNN: _ClassVar[BuiltinModel.Kind]
        KIND_WIDE_AND_DEEP: _ClassVar[BuiltinModel.Kind]
    KIND_UNSPECIFIED: BuiltinModel.Kind
    KIND_DNN: BuiltinModel.Kind
    KIND_WIDE_AND_DEEP: BuiltinModel.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_UNITS_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    kind: BuiltinModel.Kind
    task: Task
    hidden_units: _containers.RepeatedScalarFieldContainer[int]
    num_classes: int
    def __init__(self, kind: _Optional[_Union[BuiltinModel.Kind, str]] = ..., task: _Optional[_Union[Task, str]] = ..., hidden_units: _Optional[_Iterable[int]] = ..., num_classes: _Optional[int] = ...) -> None: ...

class UserModule(_message.Message):
    __slots__ = ("module", "source_uri", "function", "task", "num_classes")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    module: str
    source_uri: str
    function: str
    task: Task
    num_classes: int
    def __init__(self, module: _Optional[str] = ..., source_uri: _Optional[str] = ..., function: _Optional[str] = ..., task: _Optional[_Union[Task, str]] = ..., num_classes: _Optional[int] = ...) -> None: ...

class WarmStart(_message.Message):
    __slots__ = ("mode", "base_model")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[WarmStart.Mode]
        MODE_LATEST_BLESSED: _ClassVar[WarmStart.Mode]
        MODE_NONE: _ClassVar[WarmStart.Mode]
        MODE_EXPLICIT: _ClassVar[WarmStart.Mode]
    MODE_UNSPECIFIED: WarmStart.Mode
    MODE_LATEST_BLESSED: WarmStart.Mode
    MODE_NONE: WarmStart.Mode
    MODE_EXPLICIT: WarmStart.Mode
    MODE_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    mode: WarmStart.Mode
    base_model: _data_pb2.ArtifactRef
    def __init__(self, mode: _Optional[_Union[WarmStart.Mode, str]] = ..., base_model: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("kind", "num_workers", "gpus_per_worker", "namespace", "node_selector", "keras_backend")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Placement.Kind]
        KIND_LOCAL: _ClassVar[Placement.Kind]
        KIND_KUBERNETES: _ClassVar[Placement.Kind]
    KIND_UNSPECIFIED: Placement.Kind
    KIND_LOCAL: Placement.Kind
    KIND_KUBERNETES: Placement.Kind
    class NodeSelectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    NUM_WORKERS_FIELD_NUMBER: _ClassVar[int]
    GPUS_PER_WORKER_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NODE_SELECTOR_FIELD_NUMBER: _ClassVar[int]
    KERAS_BACKEND_FIELD_NUMBER: _ClassVar[int]
    kind: Placement.Kind
    num_workers: int
    gpus_per_worker: int
    namespace: str
    node_selector: _containers.ScalarMap[str, str]
    keras_backend: str
    def __init__(self, kind: _Optional[_Union[Placement.Kind, str]] = ..., num_workers: _Optional[int] = ..., gpus_per_worker: _Optional[int] = ..., namespace: _Optional[str] = ..., node_selector: _Optional[_Mapping[str, str]] = ..., keras_backend: _Optional[str] = ...) -> None: ...

class TrainingSpec(_message.Message):
    __slots__ = ("train_data", "eval_data", "schema", "statistics", "label", "builtin", "user_module", "hyperparameters", "epochs", "max_steps", "batch_size", "warm_start", "placement", "checkpoint_every_steps", "output_uri", "context_id")
    TRAIN_DATA_FIELD_NUMBER: _ClassVar[int]
    EVAL_DATA_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    USER_MODULE_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    WARM_START_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_STEPS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    train_data: _data_pb2.DataSource
    eval_data: _data_pb2.DataSource
    schema: _data_pb2.ArtifactRef
    statistics: _data_pb2.ArtifactRef
    label: str
    builtin: BuiltinModel
    user_module: UserModule
    hyperparameters: _struct_pb2.Struct
    epochs: int
    max_steps: int
    batch_size: int
    warm_start: WarmStart
    placement: Placement
    checkpoint_every_steps: int
    output_uri: str
    context_id: int
    def __init__(self, train_data: _Optional[_Union[_data_pb2.DataSource, _Mapping]] = ..., eval_data: _Optional[_Union[_data_pb2.DataSource, _Mapping]] = ..., schema: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., statistics: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., label: _Optional[str] = ..., builtin: _Optional[_Union[BuiltinModel, _Mapping]] = ..., user_module: _Optional[_Union[UserModule, _Mapping]] = ..., hyperparameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., epochs: _Optional[int] = ..., max_steps: _Optional[int] = ..., batch_size: _Optional[int] = ..., warm_start: _Optional[_Union[WarmStart, _Mapping]] = ..., placement: _Optional[_Union[Placement, _Mapping]] = ..., checkpoint_every_steps: _Optional[int] = ..., output_uri: _Optional[str] = ..., context_id: _Optional[int] = ...) -> None: ...

class TrainingProgress(_message.Message):
    __slots__ = ("epoch", "total_epochs", "step", "total_steps", "loss", "metrics", "examples_per_second", "eta_seconds")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    total_epochs: int
    step: int
    total_steps: int
    loss: float
    metrics: _containers.ScalarMap[str, float]
    examples_per_second: float
    eta_seconds: int
    def __init__(self, epoch: _Optional[int] = ..., total_epochs: _Optional[int] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., loss: _Optional[float] = ..., metrics: _Optional[_Mapping[str, float]] = ..., examples_per_second: _Optional[float] = ..., eta_seconds: _Optional[int] = ...) -> None: ...

class TrainingResult(_message.Message):
    __slots__ = ("model", "digest", "base_model", "eval_metrics")
    class EvalMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BASE_MODEL_FIELD_NUMBER: _ClassVar[int]
    EVAL_METRICS_FIELD_NUMBER: _ClassVar[int]
    model: _data_pb2.ArtifactRef
    digest: str
    base_model: _data_pb2.ArtifactRef
    eval_metrics: _containers.ScalarMap[str, float]
    def __init__(self, model: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., digest: _Optional[str] = ..., base_model: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., eval_metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class TrainingJob(_message.Message):
    __slots__ = ("name", "state", "spec", "progress", "result", "error", "attempt", "execution_id", "labels", "create_time", "start_time", "end_time")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: _job_pb2.JobState
    spec: TrainingSpec
    progress: TrainingProgress
    result: TrainingResult
    error: _job_pb2.JobError
    attempt: int
    execution_id: int
    labels: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., spec: _Optional[_Union[TrainingSpec, _Mapping]] = ..., progress: _Optional[_Union[TrainingProgress, _Mapping]] = ..., result: _Optional[_Union[TrainingResult, _Mapping]] = ..., error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ..., attempt: _Optional[int] = ..., execution_id: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
