"""gRPC glue: each RPC converts its request, calls the core and converts the result.

Domain errors raised by the core travel untouched to the runtime's error interceptor, which turns
them into status codes with google.rpc details.
"""

from __future__ import annotations

from typing import Any

import grpc
from sluice.metadata.v1 import metadata_service_pb2 as pb
from sluice.metadata.v1 import metadata_service_pb2_grpc as pb_grpc

from sluice_metadata import convert
from sluice_metadata.core import MetadataCore, check_count
from sluice_metadata.model import ArtifactAndEvent, Association, Attribution, EventType, ParentLink

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MetadataService"].full_name

Ctx = grpc.ServicerContext


class MetadataServicer(pb_grpc.MetadataServiceServicer):
    def __init__(self, core: MetadataCore) -> None:
        self._core = core

    # Types

    def PutType(self, request: pb.PutTypeRequest, context: Ctx) -> pb.PutTypeResponse:
        type_def = convert.type_from_proto(request.type)
        stored = self._core.put_type(type_def, can_add_fields=request.can_add_fields)
        return pb.PutTypeResponse(type=convert.type_to_proto(stored))

    def GetType(self, request: pb.GetTypeRequest, context: Ctx) -> pb.GetTypeResponse:
        found = self._core.get_type(
            type_id=request.id,
            kind=convert.kind_from_proto(request.kind, "kind"),
            name=request.name,
            version=request.version,
        )
        return pb.GetTypeResponse(type=convert.type_to_proto(found))

    def ListTypes(self, request: pb.ListTypesRequest, context: Ctx) -> pb.ListTypesResponse:
        page = self._core.list_types(
            convert.kind_from_proto(request.kind, "kind"),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListTypesResponse(
            types=[convert.type_to_proto(t) for t in page.items],
            next_page_token=page.next_page_token,
        )

    # Artifacts

    def PutArtifacts(
        self, request: pb.PutArtifactsRequest, context: Ctx
    ) -> pb.PutArtifactsResponse:
        check_count(request.artifacts, "artifacts")
        artifacts = [
            convert.artifact_from_proto(message, f"artifacts[{index}]")
            for index, message in enumerate(request.artifacts)
        ]
        return pb.PutArtifactsResponse(artifact_ids=self._core.put_artifacts(artifacts))

    def BatchGetArtifacts(
        self, request: pb.BatchGetArtifactsRequest, context: Ctx
    ) -> pb.BatchGetArtifactsResponse:
        response = pb.BatchGetArtifactsResponse()
        found = self._core.get_artifacts(list(request.artifact_ids))
        convert.fill_repeated(response.artifacts, found, convert.artifact_to_proto)
        return response

    def ListArtifacts(
        self, request: pb.ListArtifactsRequest, context: Ctx
    ) -> pb.ListArtifactsResponse:
        page = self._core.list_artifacts(
            request.filter, request.order_by, request.page_size, request.page_token
        )
        response = pb.ListArtifactsResponse(next_page_token=page.next_page_token)
        convert.fill_repeated(response.artifacts, page.items, convert.artifact_to_proto)
        return response

    # Executions

    def PutExecutions(
        self, request: pb.PutExecutionsRequest, context: Ctx
    ) -> pb.PutExecutionsResponse:
        check_count(request.executions, "executions")
        executions = [
            convert.execution_from_proto(message, f"executions[{index}]")
            for index, message in enumerate(request.executions)
        ]
        return pb.PutExecutionsResponse(execution_ids=self._core.put_executions(executions))

    def BatchGetExecutions(
        self, request: pb.BatchGetExecutionsRequest, context: Ctx
    ) -> pb.BatchGetExecutionsResponse:
        response = pb.BatchGetExecutionsResponse()
        found = self._core.get_executions(list(request.execution_ids))
        convert.fill_repeated(response.executions, found, convert.execution_to_proto)
        return response

    def ListExecutions(
        self, request: pb.ListExecutionsRequest, context: Ctx
    ) -> pb.ListExecutionsResponse:
        page = self._core.list_executions(
            request.filter, request.order_by, request.page_size, request.page_token
        )
        response = pb.ListExecutionsResponse(next_page_token=page.next_page_token)
        convert.fill_repeated(response.executions, page.items, convert.execution_to_proto)
        return response

    # Contexts

    def PutContexts(self, request: pb.PutContextsRequest, context: Ctx) -> pb.PutContextsResponse:
        check_count(request.contexts, "contexts")
        contexts = [
            convert.context_from_proto(message, f"contexts[{index}]")
            for index, message in enumerate(request.contexts)
        ]
        return pb.PutContextsResponse(context_ids=self._core.put_contexts(contexts))

    def BatchGetContexts(
        self, request: pb.BatchGetContextsRequest, context: Ctx
    ) -> pb.BatchGetContextsResponse:
        response = pb.BatchGetContextsResponse()
        found = self._core.get_contexts(list(request.context_ids))
        convert.fill_repeated(response.contexts, found, convert.context_to_proto)
        return response

    def ListContexts(
        self, request: pb.ListContextsRequest, context: Ctx
    ) -> pb.ListContextsResponse:
        page = self._core.list_contexts(
            request.filter, request.order_by, request.page_size, request.page_token
        )
        response = pb.ListContextsResponse(next_page_token=page.next_page_token)
        convert.fill_repeated(response.contexts, page.items, convert.context_to_proto)
        return response

    # Events and links

    def PutEvents(self, request: pb.PutEventsRequest, context: Ctx) -> pb.PutEventsResponse:
        check_count(request.events, "events")
        events = [
            convert.event_from_proto(message, f"events[{index}]")
            for index, message in enumerate(request.events)
        ]
        self._core.put_events(events)
        return pb.PutEventsResponse()

    def ListEvents(self, request: pb.ListEventsRequest, context: Ctx) -> pb.ListEventsResponse:
        events = self._core.list_events(list(request.artifact_ids), list(request.execution_ids))
        response = pb.ListEventsResponse()
        convert.fill_repeated(response.events, events, convert.event_to_proto)
        return response

    def PutContextLinks(
        self, request: pb.PutContextLinksRequest, context: Ctx
    ) -> pb.PutContextLinksResponse:
        self._core.put_context_links(
            [Attribution(a.artifact_id, a.context_id) for a in request.attributions],
            [Association(a.execution_id, a.context_id) for a in request.associations],
            [ParentLink(p.child_id, p.parent_id) for p in request.parent_contexts],
        )
        return pb.PutContextLinksResponse()

    def PutExecution(
        self, request: pb.PutExecutionRequest, context: Ctx
    ) -> pb.PutExecutionResponse:
        check_count(request.artifact_events, "artifact_events")
        check_count(request.contexts, "contexts")
        pairs = []
        for index, pair in enumerate(request.artifact_events):
            field = f"artifact_events[{index}]"
            pairs.append(
                ArtifactAndEvent(
                    artifact=convert.artifact_from_proto(pair.artifact, f"{field}.artifact"),
                    event_type=convert.enum_from_proto(
                        EventType, pair.event.type, f"{field}.event.type"
                    ),
                    path=pair.event.path,
                )
            )
        result = self._core.put_execution(
            convert.execution_from_proto(request.execution, "execution"),
            pairs,
            [
                convert.context_from_proto(message, f"contexts[{index}]")
                for index, message in enumerate(request.contexts)
            ],
        )
        return pb.PutExecutionResponse(
            execution_id=result.execution_id,
            artifact_ids=result.artifact_ids,
            context_ids=result.context_ids,
        )

    # Lineage

    def GetLineage(self, request: pb.GetLineageRequest, context: Ctx) -> pb.GetLineageResponse:
        graph = self._core.get_lineage(
            list(request.artifact_ids),
            list(request.execution_ids),
            convert.direction_from_proto(request.direction),
            request.max_hops,
            request.max_nodes,
        )
        response = pb.GetLineageResponse()
        convert.lineage_to_proto(graph, response.graph)
        return response

    def GetProvenance(
        self, request: pb.GetProvenanceRequest, context: Ctx
    ) -> pb.GetProvenanceResponse:
        provenance = self._core.get_provenance(request.artifact_id, request.max_hops)
        response = pb.GetProvenanceResponse()
        convert.artifact_to_proto(provenance.artifact, response.artifact)
        convert.provenance_steps_to_proto(provenance, response.steps)
        return response


def register_with(core: MetadataCore) -> Any:
    """A `register` callable for sluice_runtime's build_server and serve."""

    def register(server: grpc.Server) -> list[str]:
        pb_grpc.add_MetadataServiceServicer_to_server(MetadataServicer(core), server)
        return [SERVICE_NAME]

    return register
