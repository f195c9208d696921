from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_FORMAT_UNSPECIFIED: _ClassVar[DataFormat]
    DATA_FORMAT_CSV: _ClassVar[DataFormat]
    DATA_FORMAT_PARQUET: _ClassVar[DataFormat]
    DATA_FORMAT_REQUEST_LOG: _ClassVar[DataFormat]
DATA_FORMAT_UNSPECIFIED: DataFormat
DATA_FORMAT_CSV: DataFormat
DATA_FORMAT_PARQUET: DataFormat
DATA_FORMAT_REQUEST_LOG: DataFormat

class ArtifactRef(_message.Message):
    __slots__ = ("artifact_id", "uri")
    ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    artifact_id: int
    uri: str
    def __init__(self, artifact_id: _Optional[int] = ..., uri: _Optional[str] = ...) -> None: ...

class DataSource(_message.Message):
    __slots__ = ("data", "format")
    DATA_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    data: ArtifactRef
    format: DataFormat
    def __init__(self, data: _Optional[_Union[ArtifactRef, _Mapping]] = ..., format: _Optional[_Union[DataFormat, str]] = ...) -> None: ...
