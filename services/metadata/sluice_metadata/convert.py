"""Protobuf messages <-> domain objects, at the edge of the service.

`*_from_proto` functions take the request field path of the message (for example
``artifacts[3]``) so that an unknown enum number or an empty Value is refused with that field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, TypeVar

from google.protobuf import json_format, struct_pb2
from sluice.metadata.v1 import (
    artifact_pb2,
    context_pb2,
    event_pb2,
    execution_pb2,
    lineage_pb2,
    type_pb2,
    value_pb2,
)
from sluice_runtime.errors import InvalidArgument

from sluice_metadata.model import (
    Artifact,
    ArtifactState,
    Context,
    Direction,
    Event,
    EventType,
    Execution,
    ExecutionState,
    LineageGraph,
    NodeKind,
    PropertyType,
    ProtoPayload,
    Provenance,
    ProvenanceStep,
    TypeDef,
    Value,
)

E = TypeVar("E", bound=IntEnum)


def enum_from_proto(enum_type: type[E], number: int, field: str) -> E:
    """Proto3 enums are open: a newer client may send a number this server does not know."""
    try:
        return enum_type(number)
    except ValueError:
        names = ", ".join(member.name for member in enum_type)
        raise InvalidArgument(
            f"{field}: unknown value {number}; expected one of {names}", field=field
        ) from None


# Values -------------------------------------------------------------------------------------


def value_from_proto(message: value_pb2.Value, field: str) -> Value:
    which = message.WhichOneof("kind")
    if which == "int_value":
        return Value(PropertyType.INT, message.int_value)
    if which == "double_value":
        return Value(PropertyType.DOUBLE, message.double_value)
    if which == "string_value":
        return Value(PropertyType.STRING, message.string_value)
    if which == "bool_value":
        return Value(PropertyType.BOOL, message.bool_value)
    if which == "struct_value":
        return Value(PropertyType.STRUCT, json_format.MessageToDict(message.struct_value))
    if which == "proto_value":
        payload = ProtoPayload(message.proto_value.type_url, message.proto_value.value)
        return Value(PropertyType.PROTO, payload)
    raise InvalidArgument(f"{field}: the value is empty; set one of its kinds", field=field)


def value_to_proto(value: Value, message: value_pb2.Value) -> None:
    data = value.data
    kind = value.kind
    if kind is PropertyType.INT:
        message.int_value = int(data)  # type: ignore[arg-type]
    elif kind is PropertyType.DOUBLE:
        message.double_value = float(data)  # type: ignore[arg-type]
    elif kind is PropertyType.STRING:
        message.string_value = str(data)
    elif kind is PropertyType.BOOL:
        message.bool_value = bool(data)
    elif kind is PropertyType.STRUCT:
        assert isinstance(data, dict)
        struct = struct_pb2.Struct()
        struct.update(data)
        message.struct_value.CopyFrom(struct)
    else:
        assert isinstance(data, ProtoPayload)
        message.proto_value.type_url = data.type_url
        message.proto_value.value = data.value


def properties_from_proto(values: Mapping[str, value_pb2.Value], field: str) -> dict[str, Value]:
    return {name: value_from_proto(value, f"{field}.{name}") for name, value in values.items()}


def _properties_to_proto(properties: Mapping[str, Value], target: Any) -> None:
    for name, value in properties.items():
        value_to_proto(value, target[name])


# Types --------------------------------------------------------------------------------------


def type_from_proto(message: type_pb2.Type, field: str = "type") -> TypeDef:
    if message.kind == type_pb2.TYPE_KIND_UNSPECIFIED:
        raise InvalidArgument(
            f"{field}.kind: give the kind (ARTIFACT, EXECUTION or CONTEXT)", field=f"{field}.kind"
        )
    properties: dict[str, PropertyType] = {}
    for name, number in message.properties.items():
        where = f"{field}.properties.{name}"
        if number == value_pb2.PROPERTY_TYPE_UNSPECIFIED:
            raise InvalidArgument(
                f"{where}: give a property type (INT, DOUBLE, STRING, BOOL, STRUCT or PROTO)",
                field=where,
            )
        properties[name] = enum_from_proto(PropertyType, number, where)
    return TypeDef(
        kind=enum_from_proto(NodeKind, message.kind, f"{field}.kind"),
        name=message.name,
        version=message.version,
        description=message.description,
        properties=properties,
    )


def type_to_proto(type_def: TypeDef) -> type_pb2.Type:
    message = type_pb2.Type(
        id=type_def.id,
        kind=int(type_def.kind),  # type: ignore[arg-type]
        name=type_def.name,
        version=type_def.version,
        description=type_def.description,
    )
    for name, property_type in type_def.properties.items():
        message.properties[name] = int(property_type)  # type: ignore[assignment]
    return message


def kind_from_proto(number: int, field: str) -> NodeKind | None:
    return None if number == 0 else enum_from_proto(NodeKind, number, field)


# Nodes --------------------------------------------------------------------------------------


def artifact_from_proto(message: artifact_pb2.Artifact, field: str) -> Artifact:
    return Artifact(
        id=message.id,
        type_id=message.type_id,
        type_name=message.type,
        name=message.name,
        external_id=message.external_id,
        properties=properties_from_proto(message.properties, f"{field}.properties"),
        custom_properties=properties_from_proto(
            message.custom_properties, f"{field}.custom_properties"
        ),
        uri=message.uri,
        state=enum_from_proto(ArtifactState, message.state, f"{field}.state"),
        digest=message.digest,
    )


def execution_from_proto(message: execution_pb2.Execution, field: str) -> Execution:
    return Execution(
        id=message.id,
        type_id=message.type_id,
        type_name=message.type,
        name=message.name,
        external_id=message.external_id,
        properties=properties_from_proto(message.properties, f"{field}.properties"),
        custom_properties=properties_from_proto(
            message.custom_properties, f"{field}.custom_properties"
        ),
        state=enum_from_proto(ExecutionState, message.state, f"{field}.state"),
    )


def context_from_proto(message: context_pb2.Context, field: str) -> Context:
    return Context(
        id=message.id,
        type_id=message.type_id,
        type_name=message.type,
        name=message.name,
        external_id=message.external_id,
        properties=properties_from_proto(message.properties, f"{field}.properties"),
        custom_properties=properties_from_proto(
            message.custom_properties, f"{field}.custom_properties"
        ),
    )


def _common_to_proto(node: Artifact | Execution | Context, message: Any) -> None:
    message.id = node.id
    message.type_id = node.type_id
    message.type = node.type_name
    message.name = node.name
    message.external_id = node.external_id
    _properties_to_proto(node.properties, message.properties)
    _properties_to_proto(node.custom_properties, message.custom_properties)
    message.create_time.FromMicroseconds(node.create_time_us)
    message.update_time.FromMicroseconds(node.update_time_us)


def artifact_to_proto(artifact: Artifact, message: artifact_pb2.Artifact | None = None) -> Any:
    message = artifact_pb2.Artifact() if message is None else message
    _common_to_proto(artifact, message)
    message.uri = artifact.uri
    message.state = int(artifact.state)  # type: ignore[assignment]
    message.digest = artifact.digest
    return message


def execution_to_proto(execution: Execution, message: execution_pb2.Execution | None = None) -> Any:
    message = execution_pb2.Execution() if message is None else message
    _common_to_proto(execution, message)
    message.state = int(execution.state)  # type: ignore[assignment]
    return message


def context_to_proto(context: Context, message: context_pb2.Context | None = None) -> Any:
    message = context_pb2.Context() if message is None else message
    _common_to_proto(context, message)
    return message


def fill_repeated(target: Any, items: list[Any], to_proto: Callable[[Any, Any], Any]) -> None:
    """Builds each message in place in a repeated field (cheaper than building and copying)."""
    for item in items:
        to_proto(item, target.add())


# Events and lineage ------------------------------------------------------------------------


def event_from_proto(message: event_pb2.Event, field: str) -> Event:
    return Event(
        artifact_id=message.artifact_id,
        execution_id=message.execution_id,
        type=enum_from_proto(EventType, message.type, f"{field}.type"),
        path=message.path,
    )


def event_to_proto(event: Event, message: event_pb2.Event | None = None) -> Any:
    message = event_pb2.Event() if message is None else message
    message.artifact_id = event.artifact_id
    message.execution_id = event.execution_id
    message.type = int(event.type)  # type: ignore[assignment]
    message.path = event.path
    message.create_time.FromMicroseconds(event.create_time_us)
    return message


def direction_from_proto(number: int) -> Direction | None:
    if number == lineage_pb2.LINEAGE_DIRECTION_UNSPECIFIED:
        return None
    return enum_from_proto(Direction, number, "direction")


def lineage_to_proto(graph: LineageGraph, message: lineage_pb2.LineageGraph) -> None:
    fill_repeated(message.artifacts, graph.artifacts, artifact_to_proto)
    fill_repeated(message.executions, graph.executions, execution_to_proto)
    fill_repeated(message.events, graph.events, event_to_proto)
    fill_repeated(message.contexts, graph.contexts, context_to_proto)
    message.truncated = graph.truncated


def provenance_step_to_proto(step: ProvenanceStep, message: lineage_pb2.ProvenanceStep) -> None:
    execution_to_proto(step.execution, message.execution)
    fill_repeated(message.inputs, step.inputs, artifact_to_proto)
    fill_repeated(message.outputs, step.outputs, artifact_to_proto)
    message.hop = step.hop


def provenance_steps_to_proto(provenance: Provenance, target: Any) -> None:
    fill_repeated(target, provenance.steps, provenance_step_to_proto)
