"""build_aio_server over real gRPC on 127.0.0.1: the same contract as build_server.

Health, reflection, the error contract (ErrorInfo/BadRequest, INTERNAL with a trace id), bearer
tokens, RPC metrics, tracing, message limits and graceful stop; coroutine handlers and plain
functions (run on the thread pool) side by side.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sluice_runtime.aio_server import RunningAioServer, build_aio_server
from sluice_runtime.auth import bearer_metadata
from sluice_runtime.config import ServerConfig
from sluice_runtime.errors import NotFound, OutOfRange

SERVICE = "sluice.test.v1.AioEchoService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Echo:
    def __init__(self) -> None:
        self.slow_started = threading.Event()
        self.slow_release = asyncio.Event()
        self.threads: list[str] = []
        self.trace_ids: list[int] = []

    async def echo(self, request: StringValue, context: Any) -> StringValue:
        self.threads.append(threading.current_thread().name)
        return StringValue(value=request.value)

    async def not_found(self, request: StringValue, context: Any) -> StringValue:
        raise NotFound(f"model {request.value!r} does not exist", field="model_name")

    async def crash(self, request: StringValue, context: Any) -> StringValue:
        raise RuntimeError("password=hunter2")

    async def deny(self, request: StringValue, context: Any) -> StringValue:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "handler said no")
        raise AssertionError("abort returns no more")

    async def slow(self, request: StringValue, context: Any) -> StringValue:
        self.slow_started.set()
        await asyncio.wait_for(self.slow_release.wait(), timeout=20)
        return StringValue(value="done")

    async def countdown(self, request: StringValue, context: Any) -> AsyncIterator[StringValue]:
        for index in range(2):
            yield StringValue(value=f"{request.value}-{index}")
        if request.value == "fail":
            raise OutOfRange("the countdown ran past its end", field="value")

    def blocking(self, request: StringValue, context: Any) -> StringValue:
        # A plain function: runs on the pool, sees the RPC's span, raises domain errors.
        self.threads.append(threading.current_thread().name)
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        if request.value == "missing":
            raise NotFound("no such thing", field="value")
        return StringValue(value=request.value.upper())

    def blocking_stream(self, request: StringValue, context: Any) -> Iterator[StringValue]:
        for index in range(3):
            yield StringValue(value=f"{request.value}{index}")
        if request.value == "fail":
            raise OutOfRange("past the end", field="value")

    def register(self, server: grpc.aio.Server) -> list[str]:
        options: dict[str, Any] = {
            "request_deserializer": StringValue.FromString,
            "response_serializer": StringValue.SerializeToString,
        }
        unary = {
            "Echo": self.echo,
            "NotFound": self.not_found,
            "Crash": self.crash,
            "Deny": self.deny,
            "Slow": self.slow,
            "Blocking": self.blocking,
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(fn, **options) for name, fn in unary.items()
        }
        handlers["Countdown"] = grpc.unary_stream_rpc_method_handler(self.countdown, **options)
        handlers["BlockingStream"] = grpc.unary_stream_rpc_method_handler(
            self.blocking_stream, **options
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        return [SERVICE]


@pytest.fixture
def echo() -> Echo:
    return Echo()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def start(echo: Echo, spans: InMemorySpanExporter) -> Iterator[Any]:
    started: list[RunningAioServer] = []

    def start_server(**overrides: Any) -> RunningAioServer:
        config = ServerConfig(service="echo", host="127.0.0.1", port=0, **overrides)
        running = build_aio_server(config, register=echo.register, span_exporter=spans)
        started.append(running)
        return running

    yield start_server
    for running in started:
        running.stop(None)


def call(port: int, method: str, value: str = "", **kwargs: Any) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        return str(stub(StringValue(value=value), timeout=10, **kwargs).value)


def stream(port: int, method: str, value: str, received: list[str]) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = channel.unary_stream(
            f"/{SERVICE}/{method}",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        for item in stub(StringValue(value=value), timeout=10):
            received.append(item.value)


def error_info(error: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
    status = rpc_status.from_call(cast(grpc.Call, error))
    assert status is not None, "no google.rpc details"
    info = error_details_pb2.ErrorInfo()
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return info, fields


def test_coroutines_run_on_the_loop_and_plain_functions_on_the_pool(start: Any, echo: Echo) -> None:
    port = start().port

    assert call(port, "Echo", "hi") == "hi"
    assert call(port, "Blocking", "hi") == "HI"

    assert echo.threads[0] == "echo-aio"
    assert echo.threads[1].startswith("echo-rpc")


def test_health_and_reflection_announce_the_services(start: Any) -> None:
    port = start().port
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for s in next(answers).list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


@pytest.mark.parametrize("method", ["NotFound", "Blocking"])
def test_domain_errors_carry_error_info_and_the_field(start: Any, method: str) -> None:
    port = start().port

    with pytest.raises(grpc.RpcError) as caught:
        call(port, method, "missing")

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    info, fields = error_info(caught.value)
    assert info.reason == "NOT_FOUND" and info.domain == "sluice.dev"
    assert fields == [info.metadata["field"]] and fields[0] in ("model_name", "value")


def test_unexpected_errors_are_internal_with_a_trace_id_and_no_secret(start: Any) -> None:
    port = start().port

    with pytest.raises(grpc.RpcError) as caught:
        call(port, "Crash")

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (caught.value.details() or "")
    assert (caught.value.details() or "").startswith("internal error (trace id ")


def test_a_handler_abort_stands(start: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(start().port, "Deny")

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == "handler said no"


@pytest.mark.parametrize("method", ["Countdown", "BlockingStream"])
def test_a_stream_ends_with_the_domain_error_after_its_items(start: Any, method: str) -> None:
    port = start().port
    received: list[str] = []

    with pytest.raises(grpc.RpcError) as caught:
        stream(port, method, "fail", received)

    assert received[:2] == ["fail-0", "fail-1"] if method == "Countdown" else received[:2]
    assert len(received) == (2 if method == "Countdown" else 3)
    assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error_info(caught.value)[1] == ["value"]


def test_bearer_token_guards_everything_but_health(start: Any) -> None:
    port = start(auth_token="s3cret").port

    with pytest.raises(grpc.RpcError) as missing:
        call(port, "Echo", "x")
    with pytest.raises(grpc.RpcError) as wrong:
        call(port, "Echo", "x", metadata=bearer_metadata("nope"))
    with pytest.raises(grpc.RpcError) as unknown:
        call(port, "NoSuchMethod", "x")

    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(missing.value)[0].reason == "MISSING_BEARER_TOKEN"
    assert error_info(wrong.value)[0].reason == "INVALID_BEARER_TOKEN"
    assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert call(port, "Echo", "x", metadata=bearer_metadata("s3cret")) == "x"
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == SERVING


def test_every_rpc_is_counted_with_its_final_code(start: Any) -> None:
    running = start()
    call(running.port, "Echo", "x")
    call(running.port, "Blocking", "x")
    for method in ("NotFound", "Deny"):
        with pytest.raises(grpc.RpcError):
            call(running.port, method, "x")

    def count(method: str, code: str) -> float | None:
        labels = {"service": SERVICE, "method": method, "code": code}
        value = running.registry.get_sample_value("sluice_rpc_requests_total", labels)
        return None if value is None else float(value)

    # An abort sends the status before the handler unwinds: the count may land just after.
    deadline = time.monotonic() + 10
    while count("Deny", "PERMISSION_DENIED") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count("Echo", "OK") == 1
    assert count("Blocking", "OK") == 1
    assert count("NotFound", "NOT_FOUND") == 1
    assert count("Deny", "PERMISSION_DENIED") == 1


def test_calls_are_traced_and_plain_functions_see_their_span(
    start: Any, echo: Echo, spans: InMemorySpanExporter
) -> None:
    port = start().port
    call(port, "Blocking", "x")
    with pytest.raises(grpc.RpcError):
        call(port, "NotFound", "x")

    # The status reaches the caller before the handler (and its span) unwinds.
    deadline = time.monotonic() + 10
    while len(spans.get_finished_spans()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    finished = {span.name: span for span in spans.get_finished_spans()}
    blocking = finished[f"/{SERVICE}/Blocking"]
    assert echo.trace_ids == [blocking.context.trace_id]
    failed = finished[f"/{SERVICE}/NotFound"]
    assert failed.attributes is not None
    assert failed.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_messages_over_the_limit_are_refused(start: Any) -> None:
    port = start(max_message_bytes=1024).port

    with pytest.raises(grpc.RpcError) as caught:
        call(port, "Echo", "x" * 4096)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert call(port, "Echo", "small") == "small"


def test_graceful_stop_finishes_calls_in_flight_and_refuses_new_ones(
    start: Any, echo: Echo
) -> None:
    running = start()
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    health = health_pb2_grpc.HealthStub(channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=20)
    assert next(watch).status == SERVING
    slow = channel.unary_unary(
        f"/{SERVICE}/Slow",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
    in_flight = slow.future(StringValue(value="x"), timeout=20)
    assert echo.slow_started.wait(timeout=10)

    terminated = running.stop(grace=30, wait=False)

    assert next(watch).status == NOT_SERVING
    watch.cancel()
    with pytest.raises(grpc.RpcError) as refused:
        call(running.port, "Echo", "late")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert not terminated.is_set()

    running.loop.call_soon_threadsafe(echo.slow_release.set)
    assert in_flight.result(timeout=10).value == "done"
    assert terminated.wait(timeout=10)
    channel.close()
