"""The typed clients: request building, metadata helpers, pagination, streams, health, facade."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sluice.client import (
    ClientConfig,
    MetadataClient,
    NotFoundError,
    PipelineClient,
    Sluice,
    UnavailableError,
    check_health,
    from_value,
    is_serving,
    paginate,
    to_value,
)
from sluice.metadata.v1 import artifact_pb2, lineage_pb2, type_pb2, value_pb2
from sluice.metadata.v1 import metadata_service_pb2 as pb

Serve = Callable[[ServiceDescriptor, object], str]
METADATA = pb.DESCRIPTOR.services_by_name["MetadataService"]
Context = grpc.ServicerContext


class RecordingMetadata:
    """Keeps the requests it gets and answers with plausible responses."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def PutType(self, request: pb.PutTypeRequest, context: Context) -> pb.PutTypeResponse:
        self.requests.append(request)
        stored = type_pb2.Type()
        stored.CopyFrom(request.type)
        stored.id = 11
        return pb.PutTypeResponse(type=stored)

    def PutArtifacts(
        self, request: pb.PutArtifactsRequest, context: Context
    ) -> pb.PutArtifactsResponse:
        self.requests.append(request)
        ids = [100 + i for i in range(len(request.artifacts))]
        return pb.PutArtifactsResponse(artifact_ids=ids)

    def BatchGetArtifacts(
        self, request: pb.BatchGetArtifactsRequest, context: Context
    ) -> pb.BatchGetArtifactsResponse:
        self.requests.append(request)
        if 404 in request.artifact_ids:
            context.abort(grpc.StatusCode.NOT_FOUND, "artifact 404 not found")
        found = [
            artifact_pb2.Artifact(id=i, type="Model", uri=f"file:///m/{i}")
            for i in request.artifact_ids
        ]
        return pb.BatchGetArtifactsResponse(artifacts=found)

    def GetLineage(self, request: pb.GetLineageRequest, context: Context) -> pb.GetLineageResponse:
        self.requests.append(request)
        return pb.GetLineageResponse(graph={"artifacts": [{"id": 1}], "truncated": True})

    def GetProvenance(
        self, request: pb.GetProvenanceRequest, context: Context
    ) -> pb.GetProvenanceResponse:
        self.requests.append(request)
        return pb.GetProvenanceResponse(
            artifact={"id": request.artifact_id, "type": "Model"},
            steps=[{"execution": {"id": 5, "type": "Trainer"}, "hop": -1}],
        )


@pytest.fixture
def metadata(serve: Serve) -> Iterator[tuple[MetadataClient, RecordingMetadata]]:
    servicer = RecordingMetadata()
    with MetadataClient(serve(METADATA, servicer)) as client:
        yield client, servicer


Metadata = tuple[MetadataClient, RecordingMetadata]


def test_put_type_builds_the_type_from_names(metadata: Metadata) -> None:
    client, servicer = metadata
    registered = client.put_type(
        "Model", "artifact", {"span": "int", "accuracy": "DOUBLE"}, can_add_fields=True
    )

    assert registered.id == 11
    request = servicer.requests[-1]
    assert request.can_add_fields
    assert request.type.kind == type_pb2.TYPE_KIND_ARTIFACT
    assert dict(request.type.properties) == {
        "span": value_pb2.PROPERTY_TYPE_INT,
        "accuracy": value_pb2.PROPERTY_TYPE_DOUBLE,
    }


def test_put_type_accepts_a_type_message(metadata: Metadata) -> None:
    client, servicer = metadata
    client.put_type(type_pb2.Type(name="Trainer", kind=type_pb2.TYPE_KIND_EXECUTION))
    assert servicer.requests[-1].type.kind == type_pb2.TYPE_KIND_EXECUTION


def test_put_type_refuses_an_unknown_property_type(metadata: Metadata) -> None:
    client, servicer = metadata
    with pytest.raises(ValueError, match=r"properties\.span: unknown value 'integer'.*int"):
        client.put_type("Model", properties={"span": "integer"})
    assert servicer.requests == []  # nothing was sent


def test_put_artifact_converts_properties(metadata: Metadata) -> None:
    client, servicer = metadata
    artifact_id = client.put_artifact(
        "Model",
        "file:///models/1",
        name="m1",
        properties={"span": 3, "accuracy": 0.9, "tag": "x", "ok": True, "config": {"lr": 0.1}},
        state="live",
    )

    assert artifact_id == 100
    sent = servicer.requests[-1].artifacts[0]
    assert (sent.type, sent.uri, sent.name) == ("Model", "file:///models/1", "m1")
    assert sent.state == artifact_pb2.Artifact.STATE_LIVE
    assert sent.properties["span"].int_value == 3
    assert sent.properties["ok"].WhichOneof("kind") == "bool_value"
    assert from_value(sent.properties["config"]) == {"lr": 0.1}


def test_put_artifact_names_a_property_it_cannot_convert(metadata: Metadata) -> None:
    client, _ = metadata
    with pytest.raises(ValueError, match=r"custom_properties\.when"):
        client.put_artifact("Model", custom_properties={"when": object()})  # type: ignore[dict-item]


def test_get_artifact_and_not_found(metadata: Metadata) -> None:
    client, _ = metadata
    assert client.get_artifact(7).uri == "file:///m/7"
    assert [a.id for a in client.get_artifacts([3, 4])] == [3, 4]
    with pytest.raises(NotFoundError, match="artifact 404 not found"):
        client.get_artifact(404)


def test_lineage_and_provenance(metadata: Metadata) -> None:
    client, servicer = metadata
    graph = client.lineage(1, direction="downstream", max_hops=3)
    assert graph.truncated
    request = servicer.requests[-1]
    assert list(request.artifact_ids) == [1]
    assert request.direction == lineage_pb2.LINEAGE_DIRECTION_DOWNSTREAM
    assert request.max_hops == 3

    provenance = client.provenance(42)
    assert provenance.artifact.id == 42
    assert provenance.steps[0].execution.type == "Trainer"

    with pytest.raises(ValueError, match="direction"):
        client.lineage(1, direction="sideways")


def test_rpc_takes_a_message_or_fields_but_not_both(metadata: Metadata) -> None:
    client, _ = metadata
    by_message = client.batch_get_artifacts(pb.BatchGetArtifactsRequest(artifact_ids=[1]))
    by_fields = client.batch_get_artifacts(artifact_ids=[1])
    assert by_message == by_fields
    with pytest.raises(TypeError, match="not both"):
        client.batch_get_artifacts(pb.BatchGetArtifactsRequest(), artifact_ids=[1])
    with pytest.raises(TypeError, match="expected a BatchGetArtifactsRequest"):
        client.batch_get_artifacts(pb.ListArtifactsRequest())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="BatchGetArtifactsRequest"):
        client.batch_get_artifacts(artifact_idz=[1])


class FakeStub:
    """Serves ListArtifacts from pages keyed by page token, recording each request."""

    def __init__(self, pages: dict[str, tuple[list[int], str]]) -> None:
        self.pages = pages
        self.requests: list[pb.ListArtifactsRequest] = []

    def ListArtifacts(
        self, request: pb.ListArtifactsRequest, timeout: float | None = None, metadata: Any = None
    ) -> pb.ListArtifactsResponse:
        self.requests.append(request)
        artifact_ids, next_token = self.pages[request.page_token]
        return pb.ListArtifactsResponse(
            artifacts=[artifact_pb2.Artifact(id=i) for i in artifact_ids],
            next_page_token=next_token,
        )


def test_iter_artifacts_follows_page_tokens() -> None:
    stub = FakeStub({"": ([1, 2], "t1"), "t1": ([3], "t2"), "t2": ([4], "")})
    client = MetadataClient(ClientConfig("127.0.0.1:1"))
    client.stub = stub

    ids = [a.id for a in client.iter_artifacts('type = "Model"', page_size=2)]

    assert ids == [1, 2, 3, 4]
    assert [r.page_token for r in stub.requests] == ["", "t1", "t2"]
    assert {r.filter for r in stub.requests} == {'type = "Model"'}
    assert {r.page_size for r in stub.requests} == {2}
    client.close()


def test_pages_are_fetched_lazily() -> None:
    stub = FakeStub({"": ([1, 2], "t1"), "t1": ([3], "")})
    client = MetadataClient(ClientConfig("127.0.0.1:1"))
    client.stub = stub

    iterator = client.iter_artifacts()
    assert next(iterator).id == 1
    assert len(stub.requests) == 1
    client.close()


def test_paginate_refuses_a_repeated_token() -> None:
    stub = FakeStub({"": ([1], "again"), "again": ([2], "again")})
    items = paginate(
        lambda token: stub.ListArtifacts(pb.ListArtifactsRequest(page_token=token)),
        lambda page: page.artifacts,
    )
    with pytest.raises(RuntimeError, match="twice"):
        list(items)


def test_values_round_trip() -> None:
    for value in (3, 2.5, "s", True, {"a": [1, "b"]}):
        assert from_value(to_value(value)) == value
    assert to_value(False).WhichOneof("kind") == "bool_value"
    packed = to_value(type_pb2.Type(name="Model"))
    assert packed.proto_value.TypeName() == "sluice.metadata.v1.Type"


def test_health_check(grpc_server: Callable[..., str]) -> None:
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("sluice.metadata.v1.MetadataService", health_pb2.HealthCheckResponse.NOT_SERVING)
    address = grpc_server(
        setup=lambda server: health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    )

    assert check_health(address) == "SERVING"
    assert check_health(address, service="sluice.metadata.v1.MetadataService") == "NOT_SERVING"
    assert is_serving(address)
    assert not is_serving("127.0.0.1:1")
    with pytest.raises(UnavailableError):
        check_health("127.0.0.1:1", timeout=2)


def test_facade_shares_settings_and_closes_its_clients() -> None:
    environ = {"SLUICE_TOKEN": "t", "SLUICE_PIPELINE_ADDRESS": "pipelines:7000"}
    with Sluice({"metadata": "127.0.0.1:9999"}, environ=environ) as sluice:
        assert sluice.metadata.config.address == "127.0.0.1:9999"
        assert sluice.pipeline.config.address == "pipelines:7000"
        assert sluice.training.config.address == "127.0.0.1:50053"
        assert {config.token for config in sluice.configs.values()} == {"t"}
        assert isinstance(sluice.pipeline, PipelineClient)
        assert sluice.metadata is sluice.metadata
        first = sluice.metadata
    assert sluice.metadata is not first  # closed, so a new one opens on demand
    sluice.close()

    shared = ClientConfig("ignored:1", deadline_seconds=5)
    sluice = Sluice(settings=shared, environ={})
    assert sluice.configs["serving"].address == "127.0.0.1:50055"
    assert sluice.configs["serving"].deadline_seconds == 5

    with pytest.raises(ValueError, match="unknown services"):
        Sluice({"metdata": "x:1"})
