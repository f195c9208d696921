import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sluice.metadata.v1 import value_pb2 as _value_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Context(_message.Message):
    __slots__ = ("id", "type_id", "type", "name", "external_id", "properties", "custom_properties", "create_time", "update_time")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    class CustomPropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: int
    type_id: int
    type: str
    name: str
    external_id: str
    properties: _containers.MessageMap[str, _value_pb2.Value]
    custom_properties: _containers.MessageMap[str, _value_pb2.Value]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., type_id: _Optional[int] = ..., type: _Optional[str] = ..., name: _Optional[str] = ..., external_id: _Optional[str] = ..., properties: _Optional[_Mapping[str, _value_pb2.Value]] = ..., custom_properties: _Optional[_Mapping[str, _value_pb2.Value]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Attribution(_message.Message):
    __slots__ = ("artifact_id", "context_id")
    ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    artifact_id: int
    context_id: int
    def __init__(self, artifact_id: _Optional[int] = ..., context_id: _Optional[int] = ...) -> None: ...

class Association(_message.Message):
    __slots__ = ("execution_id", "context_id")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ID_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    context_id: int
    def __init__(self, execution_id: _Optional[int] = ..., context_id: _Optional[int] = ...) -> None: ...

class ParentContext(_message.Message):
    __slots__ = ("child_id", "parent_id")
    CHILD_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    child_id: int
    parent_id: int
    def __init__(self, child_id: _Optional[int] = ..., parent_id: _Optional[int] = ...) -> None: ...
