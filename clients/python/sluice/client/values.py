"""Python values <-> metadata `Value` messages, and names of metadata enums."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import any_pb2, json_format, struct_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from sluice.metadata.v1 import lineage_pb2, type_pb2, value_pb2

# Property values a caller may pass: int, float, str, bool, a JSON object (dict) or a message.
PropertyValue = int | float | str | bool | Mapping[str, Any] | Message


def to_value(value: PropertyValue) -> value_pb2.Value:
    """The `Value` for a Python value; a dict becomes a Struct, a message is packed in an Any."""
    # bool first: it is an int in Python, but a different kind on the wire.
    if isinstance(value, bool):
        return value_pb2.Value(bool_value=value)
    if isinstance(value, int):
        return value_pb2.Value(int_value=value)
    if isinstance(value, float):
        return value_pb2.Value(double_value=value)
    if isinstance(value, str):
        return value_pb2.Value(string_value=value)
    if isinstance(value, Message):
        if isinstance(value, value_pb2.Value):
            return value
        packed = any_pb2.Any()
        packed.Pack(value)
        return value_pb2.Value(proto_value=packed)
    if isinstance(value, Mapping):
        struct = struct_pb2.Struct()
        struct.update(value)
        return value_pb2.Value(struct_value=struct)
    raise TypeError(
        f"expected int, float, str, bool, dict or a protobuf message, got {type(value).__name__}"
    )


def from_value(value: value_pb2.Value) -> Any:
    """The Python value of a `Value`: Struct -> dict, Any stays an Any (its type may be unknown)."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "struct_value":
        return json_format.MessageToDict(value.struct_value)
    return getattr(value, kind)


def to_properties(
    properties: Mapping[str, PropertyValue] | None, field: str
) -> dict[str, value_pb2.Value]:
    """Converts a property mapping, naming the offending key on error (e.g. "properties.span")."""
    converted: dict[str, value_pb2.Value] = {}
    for key, raw in (properties or {}).items():
        try:
            converted[key] = to_value(raw)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{field}.{key}: {error}") from error
    return converted


def from_properties(properties: Mapping[str, value_pb2.Value]) -> dict[str, Any]:
    return {key: from_value(value) for key, value in properties.items()}


def enum_value(enum: EnumTypeWrapper, value: str | int, prefix: str, field: str) -> int:
    """An enum number from its number, its full name or its short name, case-insensitively.

    `enum_value(type_pb2.TypeKind, "artifact", "TYPE_KIND_", "kind")` -> TYPE_KIND_ARTIFACT.
    """
    by_name = enum.DESCRIPTOR.values_by_name
    if isinstance(value, int):
        if value not in enum.DESCRIPTOR.values_by_number:
            raise ValueError(f"{field}: unknown value {value}")
        return value
    name = value.strip().upper()
    for candidate in (name, prefix + name):
        if candidate in by_name:
            number: int = by_name[candidate].number
            return number
    choices = ", ".join(
        key.removeprefix(prefix).lower() for key in by_name if not key.endswith("_UNSPECIFIED")
    )
    raise ValueError(f"{field}: unknown value {value!r}; expected one of {choices}")


def type_kind(kind: str | int) -> int:
    return enum_value(type_pb2.TypeKind, kind, "TYPE_KIND_", "kind")


def property_type(kind: str | int, field: str) -> int:
    return enum_value(value_pb2.PropertyType, kind, "PROPERTY_TYPE_", field)


def lineage_direction(direction: str | int) -> int:
    return enum_value(lineage_pb2.LineageDirection, direction, "LINEAGE_DIRECTION_", "direction")
