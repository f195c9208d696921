"""Client of the metadata service: types, artifacts, executions, contexts, events, lineage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import ClassVar

import grpc

from sluice.client._rpc import ServiceClient, Unary, paginate
from sluice.client.errors import NotFoundError
from sluice.client.values import (
    PropertyValue,
    enum_value,
    lineage_direction,
    property_type,
    to_properties,
    type_kind,
)
from sluice.metadata.v1 import (
    artifact_pb2,
    context_pb2,
    execution_pb2,
    lineage_pb2,
    metadata_service_pb2_grpc,
    type_pb2,
)
from sluice.metadata.v1 import metadata_service_pb2 as pb


class MetadataClient(ServiceClient):
    """The metadata service. Every write is one transaction, so ABORTED (a conflicting concurrent
    write) is retried like UNAVAILABLE.

    Each RPC is a method named after it (``put_artifacts``, ``get_lineage``, ...) taking the
    request message or its fields as keywords; the helpers below cover the common cases. The one
    exception is ``put_type``, a helper that also accepts a whole Type message.
    """

    service = "metadata"
    stub_class = metadata_service_pb2_grpc.MetadataServiceStub
    retryable: ClassVar[frozenset[grpc.StatusCode]] = frozenset({grpc.StatusCode.ABORTED})

    # put_type (below) takes a name and properties, or a Type message.
    _put_type = Unary("PutType", pb.PutTypeRequest, pb.PutTypeResponse)
    get_type = Unary("GetType", pb.GetTypeRequest, pb.GetTypeResponse)
    list_types = Unary("ListTypes", pb.ListTypesRequest, pb.ListTypesResponse)
    put_artifacts = Unary("PutArtifacts", pb.PutArtifactsRequest, pb.PutArtifactsResponse)
    batch_get_artifacts = Unary(
        "BatchGetArtifacts", pb.BatchGetArtifactsRequest, pb.BatchGetArtifactsResponse
    )
    list_artifacts = Unary("ListArtifacts", pb.ListArtifactsRequest, pb.ListArtifactsResponse)
    put_executions = Unary("PutExecutions", pb.PutExecutionsRequest, pb.PutExecutionsResponse)
    batch_get_executions = Unary(
        "BatchGetExecutions", pb.BatchGetExecutionsRequest, pb.BatchGetExecutionsResponse
    )
    list_executions = Unary("ListExecutions", pb.ListExecutionsRequest, pb.ListExecutionsResponse)
    put_contexts = Unary("PutContexts", pb.PutContextsRequest, pb.PutContextsResponse)
    batch_get_contexts = Unary(
        "BatchGetContexts", pb.BatchGetContextsRequest, pb.BatchGetContextsResponse
    )
    list_contexts = Unary("ListContexts", pb.ListContextsRequest, pb.ListContextsResponse)
    put_events = Unary("PutEvents", pb.PutEventsRequest, pb.PutEventsResponse)
    list_events = Unary("ListEvents", pb.ListEventsRequest, pb.ListEventsResponse)
    put_context_links = Unary(
        "PutContextLinks", pb.PutContextLinksRequest, pb.PutContextLinksResponse
    )
    put_execution = Unary("PutExecution", pb.PutExecutionRequest, pb.PutExecutionResponse)
    get_lineage = Unary("GetLineage", pb.GetLineageRequest, pb.GetLineageResponse)
    get_provenance = Unary("GetProvenance", pb.GetProvenanceRequest, pb.GetProvenanceResponse)

    # -- helpers -----------------------------------------------------------------------------

    def put_type(
        self,
        type: str | type_pb2.Type,
        kind: str | int = "artifact",
        properties: Mapping[str, str | int] | None = None,
        *,
        version: str = "",
        description: str = "",
        can_add_fields: bool = False,
        timeout: float | None = None,
    ) -> type_pb2.Type:
        """Registers a type idempotently and returns it with its id.

        Args:
            type: the type's name, e.g. "Model", or a whole Type message (then `kind`,
                `properties`, `version` and `description` are not used).
            kind: "artifact", "execution" or "context" (or a TypeKind value).
            properties: declared properties, name -> "int", "double", "string", "bool",
                "struct" or "proto" (or a PropertyType value).
            can_add_fields: accept a definition that adds properties to an existing type.
        """
        if isinstance(type, str):
            declared = {
                key: property_type(value, f"properties.{key}")
                for key, value in (properties or {}).items()
            }
            type = type_pb2.Type(
                kind=type_kind(kind),  # type: ignore[arg-type]
                name=type,
                version=version,
                description=description,
                properties=declared,  # type: ignore[arg-type]
            )
        return self._put_type(type=type, can_add_fields=can_add_fields, timeout=timeout).type

    def put_artifact(
        self,
        type: str,
        uri: str = "",
        *,
        name: str = "",
        external_id: str = "",
        properties: Mapping[str, PropertyValue] | None = None,
        custom_properties: Mapping[str, PropertyValue] | None = None,
        state: str | int | None = None,
        digest: str = "",
        artifact_id: int = 0,
        timeout: float | None = None,
    ) -> int:
        """Creates an artifact (or updates the one with `artifact_id`) and returns its id.

        Args:
            type: the artifact type's name.
            state: "pending", "live", "marked_for_deletion", "deleted" (or an Artifact.State).
            external_id: a caller-chosen id that makes a retried put return the same artifact.
        """
        artifact = artifact_pb2.Artifact(
            id=artifact_id,
            type=type,
            uri=uri,
            name=name,
            external_id=external_id,
            properties=to_properties(properties, "properties"),
            custom_properties=to_properties(custom_properties, "custom_properties"),
            digest=digest,
        )
        if state is not None:
            artifact.state = enum_value(artifact_pb2.Artifact.State, state, "STATE_", "state")  # type: ignore[assignment]
        response = self.put_artifacts(artifacts=[artifact], timeout=timeout)
        return response.artifact_ids[0]

    def get_artifacts(
        self, artifact_ids: Iterable[int], *, timeout: float | None = None
    ) -> list[artifact_pb2.Artifact]:
        """The artifacts with these ids, in order; NotFoundError names the first missing id."""
        ids = list(artifact_ids)
        if not ids:
            return []
        return list(self.batch_get_artifacts(artifact_ids=ids, timeout=timeout).artifacts)

    def get_artifact(
        self, artifact_id: int, *, timeout: float | None = None
    ) -> artifact_pb2.Artifact:
        """One artifact by id; raises NotFoundError when there is none."""
        artifacts = self.get_artifacts([artifact_id], timeout=timeout)
        if not artifacts:
            raise NotFoundError(
                grpc.StatusCode.NOT_FOUND,
                f"artifact {artifact_id} not found",
                field="artifact_ids",
            )
        return artifacts[0]

    def iter_types(
        self, kind: str | int = 0, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[type_pb2.Type]:
        """Every type of one kind ("artifact", "execution", "context"; 0 for all), page by page."""
        kind_value = type_kind(kind) if kind else 0
        return paginate(
            lambda token: self.list_types(
                kind=kind_value, page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.types,
        )

    def iter_artifacts(
        self,
        filter: str = "",
        *,
        order_by: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[artifact_pb2.Artifact]:
        """Every artifact matching `filter` (see ListArtifactsRequest), fetching pages lazily.

        `timeout` applies to each page.
        """
        return paginate(
            lambda token: self.list_artifacts(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                page_token=token,
                timeout=timeout,
            ),
            lambda page: page.artifacts,
        )

    def iter_executions(
        self,
        filter: str = "",
        *,
        order_by: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[execution_pb2.Execution]:
        return paginate(
            lambda token: self.list_executions(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                page_token=token,
                timeout=timeout,
            ),
            lambda page: page.executions,
        )

    def iter_contexts(
        self,
        filter: str = "",
        *,
        order_by: str = "",
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[context_pb2.Context]:
        return paginate(
            lambda token: self.list_contexts(
                filter=filter,
                order_by=order_by,
                page_size=page_size,
                page_token=token,
                timeout=timeout,
            ),
            lambda page: page.contexts,
        )

    def lineage(
        self,
        artifact_ids: int | Iterable[int] = (),
        direction: str | int = "upstream",
        *,
        execution_ids: Iterable[int] = (),
        max_hops: int = 0,
        max_nodes: int = 0,
        timeout: float | None = None,
    ) -> lineage_pb2.LineageGraph:
        """The lineage subgraph around artifacts and/or executions.

        Args:
            direction: "upstream" (what produced it), "downstream" (what was made from it) or
                "both".
            max_hops: edges to walk, 1 to 100; 0 means the server's default (20).
            max_nodes: cap on returned nodes; 0 means the server's default. See graph.truncated.
        """
        ids = [artifact_ids] if isinstance(artifact_ids, int) else list(artifact_ids)
        response = self.get_lineage(
            artifact_ids=ids,
            execution_ids=list(execution_ids),
            direction=lineage_direction(direction),
            max_hops=max_hops,
            max_nodes=max_nodes,
            timeout=timeout,
        )
        return response.graph

    def provenance(
        self, artifact_id: int, *, max_hops: int = 0, timeout: float | None = None
    ) -> pb.GetProvenanceResponse:
        """The artifact and the steps that produced it and used it, in pipeline order."""
        return self.get_provenance(artifact_id=artifact_id, max_hops=max_hops, timeout=timeout)
