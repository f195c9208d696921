from sluice.metadata.v1 import value_pb2 as _value_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TypeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TYPE_KIND_UNSPECIFIED: _ClassVar[TypeKind]
    TYPE_KIND_ARTIFACT: _ClassVar[TypeKind]
    TYPE_KIND_EXECUTION: _ClassVar[TypeKind]
    TYPE_KIND_CONTEXT: _ClassVar[TypeKind]
TYPE_KIND_UNSPECIFIED: TypeKind
TYPE_KIND_ARTIFACT: TypeKind
TYPE_KIND_EXECUTION: TypeKind
TYPE_KIND_CONTEXT: TypeKind

class Type(_message.Message):
    __slots__ = ("id", "kind", "name", "version", "description", "properties")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _value_pb2.PropertyType
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_value_pb2.PropertyType, str]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: TypeKind
    name: str
    version: str
    description: str
    properties: _containers.ScalarMap[str, _value_pb2.PropertyType]
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[_Union[TypeKind, str]] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., properties: _Optional[_Mapping[str, _value_pb2.PropertyType]] = ...) -> None: ...
