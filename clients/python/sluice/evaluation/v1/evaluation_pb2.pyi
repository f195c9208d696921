import datetime

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

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_HIGHER_IS_BETTER: _ClassVar[Direction]
    DIRECTION_LOWER_IS_BETTER: _ClassVar[Direction]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_BLESSED: _ClassVar[Verdict]
    VERDICT_NOT_BLESSED: _ClassVar[Verdict]
DIRECTION_UNSPECIFIED: Direction
DIRECTION_HIGHER_IS_BETTER: Direction
DIRECTION_LOWER_IS_BETTER: Direction
VERDICT_UNSPECIFIED: Verdict
VERDICT_BLESSED: Verdict
VERDICT_NOT_BLESSED: Verdict

class SlicingSpec(_message.Message):
    __slots__ = ("feature_names", "numeric_buckets")
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    numeric_buckets: int
    def __init__(self, feature_names: _Optional[_Iterable[str]] = ..., numeric_buckets: _Optional[int] = ...) -> None: ...

class MetricThreshold(_message.Message):
    __slots__ = ("metric", "slice", "lower_bound", "upper_bound", "max_absolute_degradation", "max_relative_degradation", "direction")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    LOWER_BOUND_FIELD_NUMBER: _ClassVar[int]
    UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    MAX_ABSOLUTE_DEGRADATION_FIELD_NUMBER: _ClassVar[int]
    MAX_RELATIVE_DEGRADATION_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    metric: str
    slice: str
    lower_bound: float
    upper_bound: float
    max_absolute_degradation: float
    max_relative_degradation: float
    direction: Direction
    def __init__(self, metric: _Optional[str] = ..., slice: _Optional[str] = ..., lower_bound: _Optional[float] = ..., upper_bound: _Optional[float] = ..., max_absolute_degradation: _Optional[float] = ..., max_relative_degradation: _Optional[float] = ..., direction: _Optional[_Union[Direction, str]] = ...) -> None: ...

class EvaluationSpec(_message.Message):
    __slots__ = ("model", "baseline_model", "no_baseline", "data", "label", "example_weight", "task", "slicing", "thresholds", "bootstrap_samples", "confidence_level", "min_slice_size", "decision_thresholds", "context_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BASELINE_MODEL_FIELD_NUMBER: _ClassVar[int]
    NO_BASELINE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    SLICING_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MIN_SLICE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DECISION_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    model: _data_pb2.ArtifactRef
    baseline_model: _data_pb2.ArtifactRef
    no_baseline: bool
    data: _data_pb2.DataSource
    label: str
    example_weight: str
    task: str
    slicing: _containers.RepeatedCompositeFieldContainer[SlicingSpec]
    thresholds: _containers.RepeatedCompositeFieldContainer[MetricThreshold]
    bootstrap_samples: int
    confidence_level: float
    min_slice_size: int
    decision_thresholds: _containers.RepeatedScalarFieldContainer[float]
    context_id: int
    def __init__(self, model: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., baseline_model: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., no_baseline: _Optional[bool] = ..., data: _Optional[_Union[_data_pb2.DataSource, _Mapping]] = ..., label: _Optional[str] = ..., example_weight: _Optional[str] = ..., task: _Optional[str] = ..., slicing: _Optional[_Iterable[_Union[SlicingSpec, _Mapping]]] = ..., thresholds: _Optional[_Iterable[_Union[MetricThreshold, _Mapping]]] = ..., bootstrap_samples: _Optional[int] = ..., confidence_level: _Optional[float] = ..., min_slice_size: _Optional[int] = ..., decision_thresholds: _Optional[_Iterable[float]] = ..., context_id: _Optional[int] = ...) -> None: ...

class MetricValue(_message.Message):
    __slots__ = ("value", "lower", "upper")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    value: float
    lower: float
    upper: float
    def __init__(self, value: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ...) -> None: ...

class SliceMetrics(_message.Message):
    __slots__ = ("slice", "example_count", "weighted_example_count", "too_small", "metrics", "baseline_metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: MetricValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MetricValue, _Mapping]] = ...) -> None: ...
    class BaselineMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: MetricValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[MetricValue, _Mapping]] = ...) -> None: ...
    SLICE_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOO_SMALL_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_METRICS_FIELD_NUMBER: _ClassVar[int]
    slice: str
    example_count: int
    weighted_example_count: float
    too_small: bool
    metrics: _containers.MessageMap[str, MetricValue]
    baseline_metrics: _containers.MessageMap[str, MetricValue]
    def __init__(self, slice: _Optional[str] = ..., example_count: _Optional[int] = ..., weighted_example_count: _Optional[float] = ..., too_small: _Optional[bool] = ..., metrics: _Optional[_Mapping[str, MetricValue]] = ..., baseline_metrics: _Optional[_Mapping[str, MetricValue]] = ...) -> None: ...

class ThresholdCheck(_message.Message):
    __slots__ = ("metric", "slice", "passed", "message")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    metric: str
    slice: str
    passed: bool
    message: str
    def __init__(self, metric: _Optional[str] = ..., slice: _Optional[str] = ..., passed: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class EvaluationResult(_message.Message):
    __slots__ = ("slices", "checks", "verdict", "baseline_model", "evaluation", "blessing", "inference_seconds", "metrics_seconds", "override_reason")
    SLICES_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_MODEL_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    BLESSING_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    slices: _containers.RepeatedCompositeFieldContainer[SliceMetrics]
    checks: _containers.RepeatedCompositeFieldContainer[ThresholdCheck]
    verdict: Verdict
    baseline_model: _data_pb2.ArtifactRef
    evaluation: _data_pb2.ArtifactRef
    blessing: _data_pb2.ArtifactRef
    inference_seconds: float
    metrics_seconds: float
    override_reason: str
    def __init__(self, slices: _Optional[_Iterable[_Union[SliceMetrics, _Mapping]]] = ..., checks: _Optional[_Iterable[_Union[ThresholdCheck, _Mapping]]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., baseline_model: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., evaluation: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., blessing: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., inference_seconds: _Optional[float] = ..., metrics_seconds: _Optional[float] = ..., override_reason: _Optional[str] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("name", "state", "spec", "progress", "result", "error", "execution_id", "labels", "create_time", "update_time")
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
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: _job_pb2.JobState
    spec: EvaluationSpec
    progress: _job_pb2.Progress
    result: EvaluationResult
    error: _job_pb2.JobError
    execution_id: int
    labels: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., spec: _Optional[_Union[EvaluationSpec, _Mapping]] = ..., progress: _Optional[_Union[_job_pb2.Progress, _Mapping]] = ..., result: _Optional[_Union[EvaluationResult, _Mapping]] = ..., error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ..., execution_id: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class InfraValidation(_message.Message):
    __slots__ = ("name", "state", "model", "canary_data", "canary_requests", "load_timeout_seconds", "latency_budget_ms", "load_seconds", "p99_latency_ms", "failed_requests", "verdict", "blessing", "error", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CANARY_DATA_FIELD_NUMBER: _ClassVar[int]
    CANARY_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BUDGET_MS_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    P99_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    FAILED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    BLESSING_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: _job_pb2.JobState
    model: _data_pb2.ArtifactRef
    canary_data: _data_pb2.DataSource
    canary_requests: int
    load_timeout_seconds: float
    latency_budget_ms: float
    load_seconds: float
    p99_latency_ms: float
    failed_requests: int
    verdict: Verdict
    blessing: _data_pb2.ArtifactRef
    error: _job_pb2.JobError
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., model: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., canary_data: _Optional[_Union[_data_pb2.DataSource, _Mapping]] = ..., canary_requests: _Optional[int] = ..., load_timeout_seconds: _Optional[float] = ..., latency_budget_ms: _Optional[float] = ..., load_seconds: _Optional[float] = ..., p99_latency_ms: _Optional[float] = ..., failed_requests: _Optional[int] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., blessing: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
