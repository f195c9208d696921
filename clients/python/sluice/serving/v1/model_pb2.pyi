import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sluice.common.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VersionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_STATE_UNSPECIFIED: _ClassVar[VersionState]
    VERSION_STATE_LOADING: _ClassVar[VersionState]
    VERSION_STATE_WARMING: _ClassVar[VersionState]
    VERSION_STATE_AVAILABLE: _ClassVar[VersionState]
    VERSION_STATE_UNLOADING: _ClassVar[VersionState]
    VERSION_STATE_END: _ClassVar[VersionState]
    VERSION_STATE_FAILED: _ClassVar[VersionState]

class SchemaViolationAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCHEMA_VIOLATION_ACTION_UNSPECIFIED: _ClassVar[SchemaViolationAction]
    SCHEMA_VIOLATION_ACTION_REJECT: _ClassVar[SchemaViolationAction]
    SCHEMA_VIOLATION_ACTION_FLAG: _ClassVar[SchemaViolationAction]
VERSION_STATE_UNSPECIFIED: VersionState
VERSION_STATE_LOADING: VersionState
VERSION_STATE_WARMING: VersionState
VERSION_STATE_AVAILABLE: VersionState
VERSION_STATE_UNLOADING: VersionState
VERSION_STATE_END: VersionState
VERSION_STATE_FAILED: VersionState
SCHEMA_VIOLATION_ACTION_UNSPECIFIED: SchemaViolationAction
SCHEMA_VIOLATION_ACTION_REJECT: SchemaViolationAction
SCHEMA_VIOLATION_ACTION_FLAG: SchemaViolationAction

class VersionPolicy(_message.Message):
    __slots__ = ("latest", "specific", "all")
    class Latest(_message.Message):
        __slots__ = ("num_versions",)
        NUM_VERSIONS_FIELD_NUMBER: _ClassVar[int]
        num_versions: int
        def __init__(self, num_versions: _Optional[int] = ...) -> None: ...
    class Specific(_message.Message):
        __slots__ = ("versions",)
        VERSIONS_FIELD_NUMBER: _ClassVar[int]
        versions: _containers.RepeatedScalarFieldContainer[int]
        def __init__(self, versions: _Optional[_Iterable[int]] = ...) -> None: ...
    class All(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    LATEST_FIELD_NUMBER: _ClassVar[int]
    SPECIFIC_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    latest: VersionPolicy.Latest
    specific: VersionPolicy.Specific
    all: VersionPolicy.All
    def __init__(self, latest: _Optional[_Union[VersionPolicy.Latest, _Mapping]] = ..., specific: _Optional[_Union[VersionPolicy.Specific, _Mapping]] = ..., all: _Optional[_Union[VersionPolicy.All, _Mapping]] = ...) -> None: ...

class BatchingConfig(_message.Message):
    __slots__ = ("max_batch_size", "max_wait")
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_FIELD_NUMBER: _ClassVar[int]
    max_batch_size: int
    max_wait: _duration_pb2.Duration
    def __init__(self, max_batch_size: _Optional[int] = ..., max_wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RequestLogConfig(_message.Message):
    __slots__ = ("sample_rate", "rows_per_file", "uri_prefix")
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_PER_FILE_FIELD_NUMBER: _ClassVar[int]
    URI_PREFIX_FIELD_NUMBER: _ClassVar[int]
    sample_rate: float
    rows_per_file: int
    uri_prefix: str
    def __init__(self, sample_rate: _Optional[float] = ..., rows_per_file: _Optional[int] = ..., uri_prefix: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("version", "uri", "digest", "artifact_id", "state", "error", "load_seconds", "load_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOAD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    uri: str
    digest: str
    artifact_id: int
    state: VersionState
    error: _job_pb2.JobError
    load_seconds: float
    load_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., uri: _Optional[str] = ..., digest: _Optional[str] = ..., artifact_id: _Optional[int] = ..., state: _Optional[_Union[VersionState, str]] = ..., error: _Optional[_Union[_job_pb2.JobError, _Mapping]] = ..., load_seconds: _Optional[float] = ..., load_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "version_policy", "batching", "request_log", "labels", "versions", "current_version", "schema_uri", "schema_policy")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_POLICY_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOG_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URI_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_POLICY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version_policy: VersionPolicy
    batching: BatchingConfig
    request_log: RequestLogConfig
    labels: _containers.ScalarMap[str, int]
    versions: _containers.RepeatedCompositeFieldContainer[ModelVersion]
    current_version: int
    schema_uri: str
    schema_policy: SchemaPolicy
    def __init__(self, name: _Optional[str] = ..., version_policy: _Optional[_Union[VersionPolicy, _Mapping]] = ..., batching: _Optional[_Union[BatchingConfig, _Mapping]] = ..., request_log: _Optional[_Union[RequestLogConfig, _Mapping]] = ..., labels: _Optional[_Mapping[str, int]] = ..., versions: _Optional[_Iterable[_Union[ModelVersion, _Mapping]]] = ..., current_version: _Optional[int] = ..., schema_uri: _Optional[str] = ..., schema_policy: _Optional[_Union[SchemaPolicy, _Mapping]] = ...) -> None: ...

class SchemaPolicy(_message.Message):
    __slots__ = ("default_action", "feature_actions")
    class FeatureActionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: SchemaViolationAction
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[SchemaViolationAction, str]] = ...) -> None: ...
    DEFAULT_ACTION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    default_action: SchemaViolationAction
    feature_actions: _containers.ScalarMap[str, SchemaViolationAction]
    def __init__(self, default_action: _Optional[_Union[SchemaViolationAction, str]] = ..., feature_actions: _Optional[_Mapping[str, SchemaViolationAction]] = ...) -> None: ...
