from sluice.serving.v1 import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoadModelVersionRequest(_message.Message):
    __slots__ = ("model_name", "version", "uri", "digest", "artifact_id", "wait")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    uri: str
    digest: str
    artifact_id: int
    wait: bool
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., uri: _Optional[str] = ..., digest: _Optional[str] = ..., artifact_id: _Optional[int] = ..., wait: _Optional[bool] = ...) -> None: ...

class LoadModelVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _model_pb2.ModelVersion
    def __init__(self, version: _Optional[_Union[_model_pb2.ModelVersion, _Mapping]] = ...) -> None: ...

class UnloadModelVersionRequest(_message.Message):
    __slots__ = ("model_name", "version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class UnloadModelVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: _model_pb2.ModelVersion
    def __init__(self, version: _Optional[_Union[_model_pb2.ModelVersion, _Mapping]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_name",)
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    def __init__(self, model_name: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_model_pb2.Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[_model_pb2.Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateModelConfigRequest(_message.Message):
    __slots__ = ("model_name", "version_policy", "batching", "request_log", "schema_uri", "schema_policy", "clear_schema")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_POLICY_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    REQUEST_LOG_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URI_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_POLICY_FIELD_NUMBER: _ClassVar[int]
    CLEAR_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version_policy: _model_pb2.VersionPolicy
    batching: _model_pb2.BatchingConfig
    request_log: _model_pb2.RequestLogConfig
    schema_uri: str
    schema_policy: _model_pb2.SchemaPolicy
    clear_schema: bool
    def __init__(self, model_name: _Optional[str] = ..., version_policy: _Optional[_Union[_model_pb2.VersionPolicy, _Mapping]] = ..., batching: _Optional[_Union[_model_pb2.BatchingConfig, _Mapping]] = ..., request_log: _Optional[_Union[_model_pb2.RequestLogConfig, _Mapping]] = ..., schema_uri: _Optional[str] = ..., schema_policy: _Optional[_Union[_model_pb2.SchemaPolicy, _Mapping]] = ..., clear_schema: _Optional[bool] = ...) -> None: ...

class UpdateModelConfigResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ...) -> None: ...

class SetModelLabelRequest(_message.Message):
    __slots__ = ("model_name", "label", "version")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    label: str
    version: int
    def __init__(self, model_name: _Optional[str] = ..., label: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SetModelLabelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _model_pb2.Model
    def __init__(self, model: _Optional[_Union[_model_pb2.Model, _Mapping]] = ...) -> None: ...

class GetRequestLogLocationRequest(_message.Message):
    __slots__ = ("model_name",)
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    def __init__(self, model_name: _Optional[str] = ...) -> None: ...

class GetRequestLogLocationResponse(_message.Message):
    __slots__ = ("uri_prefix", "sample_rate")
    URI_PREFIX_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    uri_prefix: str
    sample_rate: float
    def __init__(self, uri_prefix: _Optional[str] = ..., sample_rate: _Optional[float] = ...) -> None: ...
