"""The foundation's end-to-end check: a real service built on the shared runtime, reached through
the SDK, with tracing, metrics and typed errors observed from the outside."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sluice.client import MetadataClient
from sluice.client.errors import InvalidArgumentError, NotFoundError
from sluice.metadata.v1 import artifact_pb2
from sluice_metadata.config import MetadataConfig
from sluice_metadata.server import MetadataServer, build_server
from sluice_runtime.config import ServerConfig

METADATA_SERVICE = "sluice.metadata.v1.MetadataService"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def server(tmp_path: Path, spans: InMemorySpanExporter) -> Iterator[MetadataServer]:
    config = MetadataConfig(
        database_url=f"sqlite:///{tmp_path / 'metadata.db'}",
        server=ServerConfig(service="metadata", port=0, metrics_port=0),
    )
    with build_server(config, span_exporter=spans) as running:
        yield running


def test_health_and_reflection(server: MetadataServer) -> None:
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", METADATA_SERVICE):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=5))
        names = {service.name for service in reply.list_services_response.service}
        assert {METADATA_SERVICE, "grpc.health.v1.Health"} <= names


def test_rpc_through_the_sdk_is_traced_and_counted(
    server: MetadataServer, spans: InMemorySpanExporter
) -> None:
    with MetadataClient(server.address) as client:
        client.put_type("Model", kind="artifact", properties={"span": "int"})
        artifact_id = client.put_artifact("Model", "file:///models/1", properties={"span": 1})
        assert client.get_artifact(artifact_id).properties["span"].int_value == 1

    server_spans = [
        span for span in spans.get_finished_spans() if span.name.endswith("/PutArtifacts")
    ]
    assert server_spans, [span.name for span in spans.get_finished_spans()]

    registry = server.running.registry
    count = registry.get_sample_value(
        "sluice_rpc_requests_total",
        {"service": METADATA_SERVICE, "method": "PutArtifacts", "code": "OK"},
    )
    assert count == 1
    assert server.running.metrics_port is not None
    url = f"http://127.0.0.1:{server.running.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    assert 'method="PutArtifacts"' in text
    assert "sluice_rpc_latency_seconds_bucket" in text


def test_domain_errors_arrive_as_status_codes_with_details(server: MetadataServer) -> None:
    with MetadataClient(server.address) as client:
        with pytest.raises(NotFoundError) as missing:
            client.get_artifact(424242)
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
        assert "424242" in missing.value.message

        with pytest.raises(NotFoundError) as unknown_type:
            client.put_artifacts(artifacts=[artifact_pb2.Artifact(type="NoSuchType")])
        assert unknown_type.value.field == "artifacts[0].type"
        assert "NoSuchType" in str(unknown_type.value)

        client.put_type("Model", kind="artifact", properties={"span": "int"})
        with pytest.raises(InvalidArgumentError) as invalid:
            client.put_artifact("Model", "file:///m", properties={"span": "not a number"})
        assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert invalid.value.field == "artifacts[0].properties.span"
        assert invalid.value.violations[0][0] == "artifacts[0].properties.span"
