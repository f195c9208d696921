from sluice.metadata.v1 import artifact_pb2 as _artifact_pb2
from sluice.metadata.v1 import context_pb2 as _context_pb2
from sluice.metadata.v1 import event_pb2 as _event_pb2
from sluice.metadata.v1 import execution_pb2 as _execution_pb2
from sluice.metadata.v1 import lineage_pb2 as _lineage_pb2
from sluice.metadata.v1 import type_pb2 as _type_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PutTypeRequest(_message.Message):
    __slots__ = ("type", "can_add_fields")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CAN_ADD_FIELDS_FIELD_NUMBER: _ClassVar[int]
    type: _type_pb2.Type
    can_add_fields: bool
    def __init__(self, type: _Optional[_Union[_type_pb2.Type, _Mapping]] = ..., can_add_fields: _Optional[bool] = ...) -> None: ...

class PutTypeResponse(_message.Message):
    __slots__ = ("type",)
    TYPE_FIELD_NUMBER: _ClassVar[int]
    type: _type_pb2.Type
    def __init__(self, type: _Optional[_Union[_type_pb2.Type, _Mapping]] = ...) -> None: ...

class GetTypeRequest(_message.Message):
    __slots__ = ("id", "kind", "name", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: _type_pb2.TypeKind
    name: str
    version: str
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[_Union[_type_pb2.TypeKind, str]] = ..., name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class GetTypeResponse(_message.Message):
    __slots__ = ("type",)
    TYPE_FIELD_NUMBER: _ClassVar[int]
    type: _type_pb2.Type
    def __init__(self, type: _Optional[_Union[_type_pb2.Type, _Mapping]] = ...) -> None: ...

class ListTypesRequest(_message.Message):
    __slots__ = ("kind", "page_size", "page_token")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: _type_pb2.TypeKind
    page_size: int
    page_token: str
    def __init__(self, kind: _Optional[_Union[_type_pb2.TypeKind, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTypesResponse(_message.Message):
    __slots__ = ("types", "next_page_token")
    TYPES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedCompositeFieldContainer[_type_pb2.Type]
    next_page_token: str
    def __init__(self, types: _Optional[_Iterable[_Union[_type_pb2.Type, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PutArtifactsRequest(_message.Message):
    __slots__ = ("artifacts",)
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.Artifact]
    def __init__(self, artifacts: _Optional[_Iterable[_Union[_artifact_pb2.Artifact, _Mapping]]] = ...) -> None: ...

class PutArtifactsResponse(_message.Message):
    __slots__ = ("artifact_ids",)
    ARTIFACT_IDS_FIELD_NUMBER: _ClassVar[int]
    artifact_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, artifact_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchGetArtifactsRequest(_message.Message):
    __slots__ = ("artifact_ids",)
    ARTIFACT_IDS_FIELD_NUMBER: _ClassVar[int]
    artifact_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, artifact_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchGetArtifactsResponse(_message.Message):
    __slots__ = ("artifacts",)
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.Artifact]
    def __init__(self, artifacts: _Optional[_Iterable[_Union[_artifact_pb2.Artifact, _Mapping]]] = ...) -> None: ...

class ListArtifactsRequest(_message.Message):
    __slots__ = ("filter", "order_by", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: str
    order_by: str
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[str] = ..., order_by: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListArtifactsResponse(_message.Message):
    __slots__ = ("artifacts", "next_page_token")
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[_artifact_pb2.Artifact]
    next_page_token: str
    def __init__(self, artifacts: _Optional[_Iterable[_Union[_artifact_pb2.Artifact, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PutExecutionsRequest(_message.Message):
    __slots__ = ("executions",)
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[_execution_pb2.Execution]
    def __init__(self, executions: _Optional[_Iterable[_Union[_execution_pb2.Execution, _Mapping]]] = ...) -> None: ...

class PutExecutionsResponse(_message.Message):
    __slots__ = ("execution_ids",)
    EXECUTION_IDS_FIELD_NUMBER: _ClassVar[int]
    execution_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, execution_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchGetExecutionsRequest(_message.Message):
    __slots__ = ("execution_ids",)
    EXECUTION_IDS_FIELD_NUMBER: _ClassVar[int]
    execution_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, execution_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchGetExecutionsResponse(_message.Message):
    __slots__ = ("executions",)
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[_execution_pb2.Execution]
    def __init__(self, executions: _Optional[_Iterable[_Union[_execution_pb2.Execution, _Mapping]]] = ...) -> None: ...

class ListExecutionsRequest(_message.Message):
    __slots__ = ("filter", "order_by", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: str
    order_by: str
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[str] = ..., order_by: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListExecutionsResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[_execution_pb2.Execution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[_execution_pb2.Execution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PutContextsRequest(_message.Message):
    __slots__ = ("contexts",)
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    contexts: _containers.RepeatedCompositeFieldContainer[_context_pb2.Context]
    def __init__(self, contexts: _Optional[_Iterable[_Union[_context_pb2.Context, _Mapping]]] = ...) -> None: ...

class PutContextsResponse(_message.Message):
    __slots__ = ("context_ids",)
    CONTEXT_IDS_FIELD_NUMBER: _ClassVar[int]
    context_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, context_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchGetContextsRequest(_message.Message):
    __slots__ = ("context_ids",)
    CONTEXT_IDS_FIELD_NUMBER: _ClassVar[int]
    context_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, context_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchGetContextsResponse(_message.Message):
    __slots__ = ("contexts",)
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    contexts: _containers.RepeatedCompositeFieldContainer[_context_pb2.Context]
    def __init__(self, contexts: _Optional[_Iterable[_Union[_context_pb2.Context, _Mapping]]] = ...) -> None: ...

class ListContextsRequest(_message.Message):
    __slots__ = ("filter", "order_by", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: str
    order_by: str
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[str] = ..., order_by: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListContextsResponse(_message.Message):
    __slots__ = ("contexts", "next_page_token")
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    contexts: _containers.RepeatedCompositeFieldContainer[_context_pb2.Context]
    next_page_token: str
    def __init__(self, contexts: _Optional[_Iterable[_Union[_context_pb2.Context, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PutEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ...) -> None: ...

class PutEventsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("artifact_ids", "execution_ids")
    ARTIFACT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_IDS_FIELD_NUMBER: _ClassVar[int]
    artifact_ids: _containers.RepeatedScalarFieldContainer[int]
    execution_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, artifact_ids: _Optional[_Iterable[int]] = ..., execution_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ...) -> None: ...

class PutContextLinksRequest(_message.Message):
    __slots__ = ("attributions", "associations", "parent_contexts")
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATIONS_FIELD_NUMBER: _ClassVar[int]
    PARENT_CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    attributions: _containers.RepeatedCompositeFieldContainer[_context_pb2.Attribution]
    associations: _containers.RepeatedCompositeFieldContainer[_context_pb2.Association]
    parent_contexts: _containers.RepeatedCompositeFieldContainer[_context_pb2.ParentContext]
    def __init__(self, attributions: _Optional[_Iterable[_Union[_context_pb2.Attribution, _Mapping]]] = ..., associations: _Optional[_Iterable[_Union[_context_pb2.Association, _Mapping]]] = ..., parent_contexts: _Optional[_Iterable[_Union[_context_pb2.ParentContext, _Mapping]]] = ...) -> None: ...

class PutContextLinksResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ArtifactAndEvent(_message.Message):
    __slots__ = ("artifact", "event")
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    artifact: _artifact_pb2.Artifact
    event: _event_pb2.Event
    def __init__(self, artifact: _Optional[_Union[_artifact_pb2.Artifact, _Mapping]] = ..., event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ...) -> None: ...

class PutExecutionRequest(_message.Message):
    __slots__ = ("execution", "artifact_events", "contexts")
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    execution: _execution_pb2.Execution
    artifact_events: _containers.RepeatedCompositeFieldContainer[ArtifactAndEvent]
    contexts: _containers.RepeatedCompositeFieldContainer[_context_pb2.Context]
    def __init__(self, execution: _Optional[_Union[_execution_pb2.Execution, _Mapping]] = ..., artifact_events: _Optional[_Iterable[_Union[ArtifactAndEvent, _Mapping]]] = ..., contexts: _Optional[_Iterable[_Union[_context_pb2.Context, _Mapping]]] = ...) -> None: ...

class PutExecutionResponse(_message.Message):
    __slots__ = ("execution_id", "artifact_ids", "context_ids")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_IDS_FIELD_NUMBER: _ClassVar[int]
    execution_id: int
    artifact_ids: _containers.RepeatedScalarFieldContainer[int]
    context_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, execution_id: _Optional[int] = ..., artifact_ids: _Optional[_Iterable[int]] = ..., context_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class GetLineageRequest(_message.Message):
    __slots__ = ("artifact_ids", "execution_ids", "direction", "max_hops", "max_nodes")
    ARTIFACT_IDS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_IDS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    MAX_HOPS_FIELD_NUMBER: _ClassVar[int]
    MAX_NODES_FIELD_NUMBER: _ClassVar[int]
    artifact_ids: _containers.RepeatedScalarFieldContainer[int]
    execution_ids: _containers.RepeatedScalarFieldContainer[int]
    direction: _lineage_pb2.LineageDirection
    max_hops: int
    max_nodes: int
    def __init__(self, artifact_ids: _Optional[_Iterable[int]] = ..., execution_ids: _Optional[_Iterable[int]] = ..., direction: _Optional[_Union[_lineage_pb2.LineageDirection, str]] = ..., max_hops: _Optional[int] = ..., max_nodes: _Optional[int] = ...) -> None: ...

class GetLineageResponse(_message.Message):
    __slots__ = ("graph",)
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    graph: _lineage_pb2.LineageGraph
    def __init__(self, graph: _Optional[_Union[_lineage_pb2.LineageGraph, _Mapping]] = ...) -> None: ...

class GetProvenanceRequest(_message.Message):
    __slots__ = ("artifact_id", "max_hops")
    ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_HOPS_FIELD_NUMBER: _ClassVar[int]
    artifact_id: int
    max_hops: int
    def __init__(self, artifact_id: _Optional[int] = ..., max_hops: _Optional[int] = ...) -> None: ...

class GetProvenanceResponse(_message.Message):
    __slots__ = ("artifact", "steps")
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    artifact: _artifact_pb2.Artifact
    steps: _containers.RepeatedCompositeFieldContainer[_lineage_pb2.ProvenanceStep]
    def __init__(self, artifact: _Optional[_Union[_artifact_pb2.Artifact, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[_lineage_pb2.ProvenanceStep, _Mapping]]] = ...) -> None: ...
