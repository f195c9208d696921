"""Tracing: server spans, client-to-server context propagation, error status on spans."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sluice_runtime.server import RunningServer
from sluice_runtime.telemetry import setup_tracing, traced_channel

ECHO = "sluice.test.v1.EchoService"

# Fixture factories from conftest.py (runtime_start_server, runtime_connect).
StartServer = Callable[..., RunningServer]
Connect = Callable[..., Any]


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def test_each_rpc_gets_a_server_span(
    runtime_start_server: StartServer, runtime_connect: Connect, runtime_spans: InMemorySpanExporter
) -> None:
    client = runtime_connect(runtime_start_server().port)

    client.call("Echo", "hi")

    (span,) = spans_named(runtime_spans, f"/{ECHO}/Echo")
    assert span.kind is trace.SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["rpc.service"] == ECHO
    assert span.attributes["rpc.method"] == "Echo"
    assert span.attributes["rpc.grpc.status_code"] == 0
    assert span.status.is_ok


def test_the_server_span_continues_the_client_trace(
    runtime_start_server: StartServer, runtime_connect: Connect, runtime_spans: InMemorySpanExporter
) -> None:
    running = runtime_start_server()
    client = runtime_connect(
        running.port, channel=traced_channel(grpc.insecure_channel(f"127.0.0.1:{running.port}"))
    )

    client.call("Echo", "hi")

    spans = spans_named(runtime_spans, f"/{ECHO}/Echo")
    (client_span,) = [s for s in spans if s.kind is trace.SpanKind.CLIENT]
    (server_span,) = [s for s in spans if s.kind is trace.SpanKind.SERVER]
    assert client_span.context is not None and server_span.parent is not None
    assert server_span.context is not None
    assert server_span.context.trace_id == client_span.context.trace_id
    assert server_span.parent.span_id == client_span.context.span_id
    assert server_span.parent.is_remote


def test_an_internal_error_marks_its_span_and_shares_the_trace_id(
    runtime_start_server: StartServer, runtime_connect: Connect, runtime_spans: InMemorySpanExporter
) -> None:
    client = runtime_connect(runtime_start_server().port)

    with pytest.raises(grpc.RpcError) as caught:
        client.call("Crash")

    (span,) = spans_named(runtime_spans, f"/{ECHO}/Crash")
    assert span.context is not None
    trace_id = re.search(r"trace id ([0-9a-f]{32})", str(caught.value.details()))
    assert trace_id and int(trace_id.group(1), 16) == span.context.trace_id
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    recorded = [event.attributes or {} for event in span.events if event.name == "exception"]
    assert "RuntimeError" in [attributes.get("exception.type") for attributes in recorded]


def test_a_caller_error_records_its_code_but_not_a_server_fault(
    runtime_start_server: StartServer, runtime_connect: Connect, runtime_spans: InMemorySpanExporter
) -> None:
    client = runtime_connect(runtime_start_server().port)

    with pytest.raises(grpc.RpcError):
        client.call("NotFound", "m")

    (span,) = spans_named(runtime_spans, f"/{ECHO}/NotFound")
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert span.status.status_code is trace.StatusCode.UNSET


def test_streaming_rpcs_are_traced(
    runtime_start_server: StartServer, runtime_connect: Connect, runtime_spans: InMemorySpanExporter
) -> None:
    client = runtime_connect(runtime_start_server().port)
    received: list[str] = []

    with pytest.raises(grpc.RpcError):
        client.countdown("fail", received)

    (span,) = spans_named(runtime_spans, f"/{ECHO}/Countdown")
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OUT_OF_RANGE.value[0]


def test_health_checks_are_not_traced(
    runtime_start_server: StartServer, runtime_connect: Connect, runtime_spans: InMemorySpanExporter
) -> None:
    running = runtime_start_server()
    health = health_pb2_grpc.HealthStub(runtime_connect(running.port).channel)

    health.Check(health_pb2.HealthCheckRequest(), timeout=10)
    runtime_connect(running.port).call("Echo")

    assert [span.name for span in runtime_spans.get_finished_spans()] == [f"/{ECHO}/Echo"]


def test_setup_tracing_installs_one_provider(runtime_spans: InMemorySpanExporter) -> None:
    first = setup_tracing("echo", span_exporter=runtime_spans)
    second = setup_tracing("other", span_exporter=runtime_spans)

    assert first is second is trace.get_tracer_provider()
    with first.get_tracer("test").start_as_current_span("once"):
        pass
    assert [span.name for span in runtime_spans.get_finished_spans()] == ["once"]


class FakeCollector(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """An OTLP/gRPC trace receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


EXPORT_SCRIPT = """
from sluice_runtime.telemetry import setup_tracing
provider = setup_tracing("exporting-service")
with provider.get_tracer("test").start_as_current_span("exported work"):
    pass
provider.shutdown()  # flushes the batch
"""


@pytest.mark.parametrize("endpoint_set", [True, False])
def test_spans_go_to_the_otlp_endpoint_only_when_one_is_set(endpoint_set: bool) -> None:
    collector = FakeCollector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if endpoint_set:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    try:
        subprocess.run([sys.executable, "-c", EXPORT_SCRIPT], env=env, check=True, timeout=60)
    finally:
        server.stop(None)

    exported = [
        (resource_spans.resource, span.name)
        for request in collector.requests
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    if not endpoint_set:
        assert exported == []
        return
    ((resource, name),) = exported
    assert name == "exported work"
    attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert attributes["service.name"] == "exporting-service"
