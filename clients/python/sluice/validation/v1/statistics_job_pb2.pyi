import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sluice.common.v1 import data_pb2 as _data_pb2
from sluice.common.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SliceSpec(_message.Message):
    __slots__ = ("feature_names",)
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature_names: _Optional[_Iterable[str]] = ...) -> None: ...

class StatisticsOptions(_message.Message):
    __slots__ = ("top_k", "num_quantiles", "num_histogram_buckets", "sample_rate", "list_separators", "beam_runner")
    class ListSeparatorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    NUM_QUANTILES_FIELD_NUMBER: _ClassVar[int]
    NUM_HISTOGRAM_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    LIST_SEPARATORS_FIELD_NUMBER: _ClassVar[int]
    BEAM_RUNNER_FIELD_NUMBER: _ClassVar[int]
    top_k: int
    num_quantiles: int
    num_histogram_buckets: int
    sample_rate: float
    list_separators: _containers.ScalarMap[str, str]
    beam_runner: str
    def __init__(self, top_k: _Optional[int] = ..., num_quantiles: _Optional[int] = ..., num_histogram_buckets: _Optional[int] = ..., sample_rate: _Optional[float] = ..., list_separators: _Optional[_Mapping[str, str]] = ..., beam_runner: _Optional[str] = ...) -> None: ...

class StatisticsJob(_message.Message):
    __slots__ = ("name", "state", "source", "slices", "options", "output_uri", "progress", "statistics", "row_count", "error", "execution_id", "labels", "create_time", "update_time")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: _job_pb2.JobState
    source: _data_pb2.DataSource
    slices: _containers.RepeatedCompositeFieldContainer[SliceSpec]
    options: StatisticsOptions
    output_uri: str
    progress: _job_pb2.Progress
    statistics: _data_pb2.ArtifactRef
    row_count: int
    error: _job_pb2.JobError
    execution_id: int
    labels: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[_job_pb2.JobState, str]] = ..., source: _Optional[_Union[_data_pb2.DataSource, _Mapping]] = ..., slices: _Optional[_Iterable[_Union[SliceSpec, _Mapping]]] = ..., options: _Optional[_Union[StatisticsOptions, _Mapping]] = ..., output_uri: _Optional[str] = ..., progress: _Optional[_Union[_job_pb2.Progress, _Mapping]] = ..., statistics: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., row_count: _Optional[int] = ..., error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ..., execution_id: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
