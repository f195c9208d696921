from sluice.metadata.v1 import artifact_pb2 as _artifact_pb2
from sluice.metadata.v1 import context_pb2 as _context_pb2
from sluice.metadata.v1 import event_pb2 as _event_pb2
from sluice.metadata.v1 import execution_pb2 as _execution_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LineageDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINEAGE_DIRECTION_UNSPECIFIED: _ClassVar[LineageDirection]
    LINEAGE_DIRECTION_UPSTREAM: _ClassVar[LineageDirection]
    LINEAGE_DIRECTION_DOWNSTREAM: _ClassVar[LineageDirection]
    LINEAGE_DIRECTION_BOTH: _ClassVar[LineageDirection]
LINEAGE_DIRECTION_UNSPECIFIED: LineageDirection
LINEAGE_DIRECTION_UPSTREAM: LineageDirection
LINEAGE_DIRECTION_DOWNSTREAM: LineageDirection
LINEAGE_DIRECTION_BOTH: LineageDirection

class LineageGraph(_message.Message):
    __slots__ = ("artifacts", "executions", "events", "contexts", "truncated")
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.Artifact]
    executions: _containers.RepeatedCompositeFieldContainer[_execution_pb2.Execution]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    contexts: _containers.RepeatedCompositeFieldContainer[_context_pb2.Context]
    truncated: bool
    def __init__(self, artifacts: _Optional[_Iterable[_Union[_artifact_pb2.Artifact, _Mapping]]] = ..., executions: _Optional[_Iterable[_Union[_execution_pb2.Execution, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ..., contexts: _Optional[_Iterable[_Union[_context_pb2.Context, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class ProvenanceStep(_message.Message):
    __slots__ = ("execution", "inputs", "outputs", "hop")
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    HOP_FIELD_NUMBER: _ClassVar[int]
    execution: _execution_pb2.Execution
    inputs: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.Artifact]
    outputs: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.Artifact]
    hop: int
    def __init__(self, execution: _Optional[_Union[_execution_pb2.Execution, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[_artifact_pb2.Artifact, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[_artifact_pb2.Artifact, _Mapping]]] = ..., hop: _Optional[int] = ...) -> None: ...
