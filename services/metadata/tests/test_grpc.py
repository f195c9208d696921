"""The service through gRPC: build_server on port 0, the generated stub, and the SDK's client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from sluice.client.errors import InvalidArgumentError
from sluice.client.metadata import MetadataClient
from sluice.metadata.v1 import (
    artifact_pb2,
    context_pb2,
    event_pb2,
    execution_pb2,
    lineage_pb2,
    type_pb2,
    value_pb2,
)
from sluice.metadata.v1 import metadata_service_pb2 as pb
from sluice.metadata.v1 import metadata_service_pb2_grpc as pb_grpc
from sluice_metadata.config import MetadataConfig
from sluice_metadata.server import MetadataServer, build_server

Stub = pb_grpc.MetadataServiceStub
ART, EXE, CTX = (
    type_pb2.TYPE_KIND_ARTIFACT,
    type_pb2.TYPE_KIND_EXECUTION,
    type_pb2.TYPE_KIND_CONTEXT,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MetadataServer]:
    config = MetadataConfig(database_url=f"sqlite:///{tmp_path}/metadata.db")
    with build_server(config, port=0) as running:
        yield running


@pytest.fixture
def channel(server: MetadataServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.Channel) -> Stub:
    stub = Stub(channel)
    stub.PutType(
        pb.PutTypeRequest(
            type=type_pb2.Type(
                kind=ART,
                name="Model",
                properties={
                    "span": value_pb2.PROPERTY_TYPE_INT,
                    "config": value_pb2.PROPERTY_TYPE_STRUCT,
                    "sig": value_pb2.PROPERTY_TYPE_PROTO,
                },
            )
        )
    )
    stub.PutType(pb.PutTypeRequest(type=type_pb2.Type(kind=EXE, name="Trainer")))
    stub.PutType(pb.PutTypeRequest(type=type_pb2.Type(kind=CTX, name="Run")))
    return stub


def failure(call: Any, *args: object) -> tuple[grpc.StatusCode, str | None, str]:
    """The status code, the BadRequest field and the message of a failing call."""
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    error: Any = caught.value
    status = rpc_status.from_call(error)
    field = None
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            field = bad_request.field_violations[0].field
    return error.code(), field, error.details()


def model(span: int, **fields: Any) -> artifact_pb2.Artifact:
    return artifact_pb2.Artifact(
        type="Model", properties={"span": value_pb2.Value(int_value=span)}, **fields
    )


def test_health_and_type_rpcs(channel: grpc.Channel, stub: Stub) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    check = health.Check(
        health_pb2.HealthCheckRequest(service="sluice.metadata.v1.MetadataService")
    )
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    found = stub.GetType(pb.GetTypeRequest(kind=ART, name="Model")).type
    assert found.id > 0 and found.properties["span"] == value_pb2.PROPERTY_TYPE_INT
    assert stub.GetType(pb.GetTypeRequest(id=found.id)).type == found
    assert [t.name for t in stub.ListTypes(pb.ListTypesRequest()).types] == [
        "Model",
        "Trainer",
        "Run",
    ]
    first = stub.ListTypes(pb.ListTypesRequest(page_size=2))
    rest = stub.ListTypes(pb.ListTypesRequest(page_size=2, page_token=first.next_page_token))
    assert [t.name for t in rest.types] == ["Run"] and not rest.next_page_token
    code, field, message = failure(
        stub.PutType,
        pb.PutTypeRequest(
            type=type_pb2.Type(
                kind=ART, name="Model", properties={"span": value_pb2.PROPERTY_TYPE_STRING}
            )
        ),
    )
    assert (code, field) == (grpc.StatusCode.ALREADY_EXISTS, "type.properties.span")
    assert "span" in message
    code, field, _ = failure(stub.GetType, pb.GetTypeRequest(kind=ART, name="Nope"))
    assert (code, field) == (grpc.StatusCode.NOT_FOUND, "name")


def test_artifact_rpcs_round_trip_every_value_kind(stub: Stub) -> None:
    config = struct_pb2.Struct()
    config.update({"layers": [64, 32], "optimizer": {"name": "adam"}})
    packed = any_pb2.Any()
    packed.Pack(struct_pb2.Value(string_value="signature"))
    artifact = artifact_pb2.Artifact(
        type="Model",
        uri="s3://b/m",
        name="m",
        external_id="m-1",
        state=artifact_pb2.Artifact.STATE_LIVE,
        digest="sha256:00",
        properties={
            "span": value_pb2.Value(int_value=7),
            "config": value_pb2.Value(struct_value=config),
            "sig": value_pb2.Value(proto_value=packed),
        },
        custom_properties={
            "acc": value_pb2.Value(double_value=0.5),
            "ok": value_pb2.Value(bool_value=True),
            "who": value_pb2.Value(string_value="me"),
        },
    )
    (artifact_id,) = stub.PutArtifacts(pb.PutArtifactsRequest(artifacts=[artifact])).artifact_ids
    again = stub.PutArtifacts(pb.PutArtifactsRequest(artifacts=[artifact])).artifact_ids
    assert list(again) == [artifact_id]
    (stored,) = stub.BatchGetArtifacts(
        pb.BatchGetArtifactsRequest(artifact_ids=[artifact_id])
    ).artifacts
    assert stored.id == artifact_id and stored.type_id > 0
    assert stored.create_time.ToMicroseconds() > 0 and stored.update_time == stored.create_time
    stored.ClearField("id")
    stored.ClearField("type_id")
    stored.ClearField("create_time")
    stored.ClearField("update_time")
    assert stored == artifact


def test_list_artifacts_pages_and_filters(stub: Stub) -> None:
    stub.PutArtifacts(pb.PutArtifactsRequest(artifacts=[model(i, uri=f"u{i}") for i in range(25)]))
    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        page = stub.ListArtifacts(
            pb.ListArtifactsRequest(
                filter="properties.span >= 5",
                order_by="create_time desc",
                page_size=7,
                page_token=token,
            )
        )
        seen += [a.properties["span"].int_value for a in page.artifacts]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3 and seen == list(range(24, 4, -1))
    code, field, _ = failure(
        stub.ListArtifacts,
        pb.ListArtifactsRequest(
            filter="properties.span >= 6", page_token=page.next_page_token or "eyJ4IjoxfQ"
        ),
    )
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    first = stub.ListArtifacts(pb.ListArtifactsRequest(page_size=2))
    code, field, _ = failure(
        stub.ListArtifacts,
        pb.ListArtifactsRequest(filter='uri = "u1"', page_token=first.next_page_token),
    )
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    code, field, message = failure(stub.ListArtifacts, pb.ListArtifactsRequest(filter="span >= 1"))
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "filter")
    assert "unknown field 'span'" in message


@pytest.mark.parametrize(
    ("artifacts", "code", "field"),
    [
        (
            [
                model(1),
                model(2),
                model(3),
                artifact_pb2.Artifact(
                    type="Model", properties={"span": value_pb2.Value(string_value="4")}
                ),
            ],
            grpc.StatusCode.INVALID_ARGUMENT,
            "artifacts[3].properties.span",
        ),
        (
            [model(1), artifact_pb2.Artifact(type="Model", properties={"span": value_pb2.Value()})],
            grpc.StatusCode.INVALID_ARGUMENT,
            "artifacts[1].properties.span",
        ),
        (
            [model(1), artifact_pb2.Artifact(type="Nope")],
            grpc.StatusCode.NOT_FOUND,
            "artifacts[1].type",
        ),
        ([model(1, state=99)], grpc.StatusCode.INVALID_ARGUMENT, "artifacts[0].state"),
        ([model(1, name="x" * 256)], grpc.StatusCode.INVALID_ARGUMENT, "artifacts[0].name"),
        ([model(1)] * 10_001, grpc.StatusCode.INVALID_ARGUMENT, "artifacts"),
    ],
)
def test_bad_artifacts_name_the_field_and_write_nothing(
    stub: Stub, artifacts: list[artifact_pb2.Artifact], code: grpc.StatusCode, field: str
) -> None:
    got_code, got_field, _ = failure(stub.PutArtifacts, pb.PutArtifactsRequest(artifacts=artifacts))
    assert (got_code, got_field) == (code, field)
    assert len(stub.ListArtifacts(pb.ListArtifactsRequest()).artifacts) == 0


def test_execution_context_event_and_link_rpcs(stub: Stub) -> None:
    (execution_id,) = stub.PutExecutions(
        pb.PutExecutionsRequest(
            executions=[
                execution_pb2.Execution(type="Trainer", state=execution_pb2.Execution.STATE_RUNNING)
            ]
        )
    ).execution_ids
    (context_id,) = stub.PutContexts(
        pb.PutContextsRequest(contexts=[context_pb2.Context(type="Run", name="run-1")])
    ).context_ids
    (artifact_id,) = stub.PutArtifacts(pb.PutArtifactsRequest(artifacts=[model(1)])).artifact_ids
    stub.PutEvents(
        pb.PutEventsRequest(
            events=[
                event_pb2.Event(
                    artifact_id=artifact_id,
                    execution_id=execution_id,
                    type=event_pb2.Event.TYPE_OUTPUT,
                    path="model",
                )
            ]
        )
    )
    stub.PutContextLinks(
        pb.PutContextLinksRequest(
            attributions=[context_pb2.Attribution(artifact_id=artifact_id, context_id=context_id)],
            associations=[
                context_pb2.Association(execution_id=execution_id, context_id=context_id)
            ],
        )
    )
    (execution,) = stub.BatchGetExecutions(
        pb.BatchGetExecutionsRequest(execution_ids=[execution_id])
    ).executions
    assert execution.type == "Trainer" and execution.state == execution_pb2.Execution.STATE_RUNNING
    (context,) = stub.BatchGetContexts(
        pb.BatchGetContextsRequest(context_ids=[context_id])
    ).contexts
    assert context.name == "run-1"
    listed = stub.ListExecutions(
        pb.ListExecutionsRequest(filter='context.name = "run-1" AND state = RUNNING')
    )
    assert [e.id for e in listed.executions] == [execution_id]
    assert [
        c.id for c in stub.ListContexts(pb.ListContextsRequest(filter='type = "Run"')).contexts
    ] == [context_id]
    (event,) = stub.ListEvents(pb.ListEventsRequest(execution_ids=[execution_id])).events
    assert (event.artifact_id, event.path, event.type) == (
        artifact_id,
        "model",
        event_pb2.Event.TYPE_OUTPUT,
    )
    code, field, _ = failure(
        stub.PutEvents,
        pb.PutEventsRequest(
            events=[
                event_pb2.Event(
                    artifact_id=artifact_id, execution_id=99, type=event_pb2.Event.TYPE_INPUT
                )
            ]
        ),
    )
    assert (code, field) == (grpc.StatusCode.NOT_FOUND, "events[0].execution_id")
    code, field, _ = failure(
        stub.BatchGetContexts, pb.BatchGetContextsRequest(context_ids=[context_id, 77])
    )
    assert (code, field) == (grpc.StatusCode.NOT_FOUND, "context_ids[1]")


def test_put_execution_lineage_and_provenance(stub: Stub) -> None:
    def step(inputs: list[int], output: str) -> pb.PutExecutionResponse:
        pairs = [
            pb.ArtifactAndEvent(
                artifact=artifact_pb2.Artifact(id=i),
                event=event_pb2.Event(type=event_pb2.Event.TYPE_INPUT),
            )
            for i in inputs
        ]
        pairs.append(
            pb.ArtifactAndEvent(
                artifact=model(len(inputs), external_id=output),
                event=event_pb2.Event(type=event_pb2.Event.TYPE_OUTPUT, path=output),
            )
        )
        return stub.PutExecution(
            pb.PutExecutionRequest(
                execution=execution_pb2.Execution(type="Trainer", external_id=f"make-{output}"),
                artifact_events=pairs,
                contexts=[context_pb2.Context(type="Run", name="run-1")],
            )
        )

    first = step([], "a")
    second = step([first.artifact_ids[0]], "b")
    third = step([second.artifact_ids[1]], "c")
    assert step([], "a") == first  # retried: same ids, nothing duplicated
    graph = stub.GetLineage(
        pb.GetLineageRequest(
            artifact_ids=[third.artifact_ids[1]], direction=lineage_pb2.LINEAGE_DIRECTION_UPSTREAM
        )
    ).graph
    assert {a.external_id for a in graph.artifacts} == {"a", "b", "c"}
    assert len(graph.executions) == 3 and len(graph.events) == 5 and not graph.truncated
    assert [c.name for c in graph.contexts] == ["run-1"]
    cut = stub.GetLineage(
        pb.GetLineageRequest(artifact_ids=[third.artifact_ids[1]], max_hops=2)
    ).graph
    assert cut.truncated and {a.external_id for a in cut.artifacts} == {"b", "c"}
    provenance = stub.GetProvenance(pb.GetProvenanceRequest(artifact_id=second.artifact_ids[1]))
    assert provenance.artifact.external_id == "b"
    assert [(s.hop, s.execution.external_id) for s in provenance.steps] == [
        (-2, "make-a"),
        (-1, "make-b"),
        (1, "make-c"),
    ]
    assert [a.external_id for a in provenance.steps[1].outputs] == ["b"]
    code, field, _ = failure(
        stub.PutExecution,
        pb.PutExecutionRequest(
            execution=execution_pb2.Execution(type="Trainer"),
            artifact_events=[pb.ArtifactAndEvent(artifact=model(1))],
        ),
    )
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "artifact_events[0].event.type")
    code, field, _ = failure(stub.GetLineage, pb.GetLineageRequest())
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "artifact_ids")
    code, field, _ = failure(stub.GetProvenance, pb.GetProvenanceRequest(artifact_id=12345))
    assert (code, field) == (grpc.StatusCode.NOT_FOUND, "artifact_id")


def test_the_sdk_client_works_against_the_server(server: MetadataServer) -> None:
    with MetadataClient(f"127.0.0.1:{server.port}") as client:
        client.put_type("Dataset", properties={"span": "int"})
        ids = [client.put_artifact("Dataset", f"u{i}", properties={"span": i}) for i in range(5)]
        assert [a.id for a in client.iter_artifacts("properties.span >= 1", page_size=2)] == ids[1:]
        with pytest.raises(InvalidArgumentError) as caught:
            client.put_artifact("Dataset", properties={"span": "five"})
        assert caught.value.field == "artifacts[0].properties.span"
