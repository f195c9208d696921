import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("artifact_id", "execution_id", "type", "path", "create_time")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[Event.Type]
        TYPE_DECLARED_INPUT: _ClassVar[Event.Type]
        TYPE_DECLARED_OUTPUT: _ClassVar[Event.Type]
        TYPE_INPUT: _ClassVar[Event.Type]
        TYPE_OUTPUT: _ClassVar[Event.Type]
        TYPE_INTERNAL_INPUT: _ClassVar[Event.Type]
        TYPE_INTERNAL_OUTPUT: _ClassVar[Event.Type]
    TYPE_UNSPECIFIED: Event.Type
    TYPE_DECLARED_INPUT: Event.Type
    TYPE_DECLARED_OUTPUT: Event.Type
    TYPE_INPUT: Event.Type
    TYPE_OUTPUT: Event.Type
    TYPE_INTERNAL_INPUT: Event.Type
    TYPE_INTERNAL_OUTPUT: Event.Type
    ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    artifact_id: int
    execution_id: int
    type: Event.Type
    path: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, artifact_id: _Optional[int] = ..., execution_id: _Optional[int] = ..., type: _Optional[_Union[Event.Type, str]] = ..., path: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
