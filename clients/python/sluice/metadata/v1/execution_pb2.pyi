import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sluice.metadata.v1 import value_pb2 as _value_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Execution(_message.Message):
    __slots__ = ("id", "type_id", "type", "name", "external_id", "state", "properties", "custom_properties", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Execution.State]
        STATE_NEW: _ClassVar[Execution.State]
        STATE_RUNNING: _ClassVar[Execution.State]
        STATE_COMPLETE: _ClassVar[Execution.State]
        STATE_FAILED: _ClassVar[Execution.State]
        STATE_CACHED: _ClassVar[Execution.State]
        STATE_CANCELED: _ClassVar[Execution.State]
    STATE_UNSPECIFIED: Execution.State
    STATE_NEW: Execution.State
    STATE_RUNNING: Execution.State
    STATE_COMPLETE: Execution.State
    STATE_FAILED: Execution.State
    STATE_CACHED: Execution.State
    STATE_CANCELED: Execution.State
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
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: int
    type_id: int
    type: str
    name: str
    external_id: str
    state: Execution.State
    properties: _containers.MessageMap[str, _value_pb2.Value]
    custom_properties: _containers.MessageMap[str, _value_pb2.Value]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., type_id: _Optional[int] = ..., type: _Optional[str] = ..., name: _Optional[str] = ..., external_id: _Optional[str] = ..., state: _Optional[_Union[Execution.State, str]] = ..., properties: _Optional[_Mapping[str, _value_pb2.Value]] = ..., custom_properties: _Optional[_Mapping[str, _value_pb2.Value]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
