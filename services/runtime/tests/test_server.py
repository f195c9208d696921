"""build_server and serve over real gRPC on 127.0.0.1: health, reflection, errors, shutdown."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from sluice_runtime.config import ServerConfig
from sluice_runtime.server import RunningServer, build_server

ECHO = "sluice.test.v1.EchoService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

# Fixture factories from conftest.py (runtime_start_server, runtime_connect).
StartServer = Callable[..., RunningServer]
Connect = Callable[..., Any]


def error_details(error: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, list[object]]:
    """The ErrorInfo and the other unpacked details of a failed call."""
    status = rpc_status.from_call(cast(grpc.Call, error))
    assert status is not None, "the status carries no google.rpc details"
    info = error_details_pb2.ErrorInfo()
    others: list[object] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            others.append(bad_request)
        else:
            others.append(detail)
    return info, others


def test_health_reports_every_registered_service_serving(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    running = runtime_start_server()
    health = health_pb2_grpc.HealthStub(runtime_connect(running.port).channel)

    for service in ("", ECHO):
        request = health_pb2.HealthCheckRequest(service=service)
        assert health.Check(request, timeout=10).status == SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_registered_services(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    running = runtime_start_server()
    stub = reflection_pb2_grpc.ServerReflectionStub(runtime_connect(running.port).channel)

    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    names = {service.name for service in next(responses).list_services_response.service}

    assert names == {ECHO, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    assert running.services == (ECHO,)


def test_port_zero_binds_a_free_port_and_calls_work(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    running = runtime_start_server()

    assert running.port > 0
    assert running.address == f"127.0.0.1:{running.port}"
    assert runtime_connect(running.port).call("Echo", "hello") == "hello"


def test_domain_error_arrives_with_error_info_and_bad_request(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    client = runtime_connect(runtime_start_server().port)

    with pytest.raises(grpc.RpcError) as caught:
        client.call("NotFound", "churn-v3")

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "model 'churn-v3' does not exist"
    info, others = error_details(caught.value)
    assert info.reason == "NOT_FOUND"
    assert info.domain == "sluice.dev"
    assert dict(info.metadata) == {"model_name": "churn-v3", "field": "model_name"}
    (bad_request,) = others
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    (violation,) = bad_request.field_violations
    assert violation.field == "model_name"
    assert violation.description == "model 'churn-v3' does not exist"


def test_unexpected_exception_becomes_internal_without_leaking_it(
    runtime_start_server: StartServer, runtime_connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    client = runtime_connect(runtime_start_server().port)

    with pytest.raises(grpc.RpcError) as caught:
        client.call("Crash")

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    message = str(caught.value.details())
    match = re.fullmatch(r"internal error \(trace id ([0-9a-f]{32})\)", message)
    assert match, message
    info, others = error_details(caught.value)
    assert (info.reason, others) == ("INTERNAL", [])
    # The traceback stays on the server, under the id the caller was given.
    logged = [r for r in caplog.records if r.name == "sluice_runtime.interceptors"]
    assert len(logged) == 1
    assert match.group(1) in logged[0].getMessage()
    assert logged[0].exc_info is not None
    assert "hunter2" in str(logged[0].exc_info[1])
    assert "hunter2" not in str(caught.value.trailing_metadata())


def test_error_class_from_another_module_maps_by_its_code_name(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    client = runtime_connect(runtime_start_server().port)

    with pytest.raises(grpc.RpcError) as caught:
        client.call("Corrupt")

    assert caught.value.code() == grpc.StatusCode.DATA_LOSS
    assert caught.value.details() == "checksum of the stored model does not match"
    info, others = error_details(caught.value)
    assert (info.reason, dict(info.metadata), others) == ("DATA_LOSS", {}, [])


def test_a_handler_abort_is_passed_through_unchanged(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    client = runtime_connect(runtime_start_server().port)

    with pytest.raises(grpc.RpcError) as caught:
        client.call("Deny")

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == "handler said no"


def test_error_raised_while_streaming_arrives_after_the_streamed_items(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    client = runtime_connect(runtime_start_server().port)
    received: list[str] = []

    client.countdown("ok", received)
    assert received == ["ok-0", "ok-1"]

    received.clear()
    with pytest.raises(grpc.RpcError) as caught:
        client.countdown("fail", received)
    assert received == ["fail-0", "fail-1"]
    assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
    info, others = error_details(caught.value)
    assert info.metadata["field"] == "value"
    assert [v.field for v in others[0].field_violations] == ["value"]  # type: ignore[attr-defined]


def test_error_raised_by_a_client_streaming_handler(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    client = runtime_connect(runtime_start_server().port)

    assert client.join(["a", "b"]) == "a+b"
    with pytest.raises(grpc.RpcError) as caught:
        client.join(["a", "", "c"])

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, _ = error_details(caught.value)
    assert info.reason == "INVALID_ARGUMENT"
    assert info.metadata["field"] == "items[1]"


def test_messages_over_the_size_limit_are_refused(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    client = runtime_connect(runtime_start_server(max_message_bytes=1024).port)

    assert client.call("Echo", "x" * 900) == "x" * 900
    with pytest.raises(grpc.RpcError) as caught:
        client.call("Echo", "x" * 2000)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_taken_port_fails_loudly(runtime_start_server: StartServer) -> None:
    first = runtime_start_server()

    with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*SLUICE_ECHO_PORT"):
        runtime_start_server(port=first.port)


def test_register_must_return_service_names() -> None:
    config = ServerConfig(service="echo", port=0)

    with pytest.raises(TypeError, match="full service names"):
        build_server(config, register=lambda server: [""])


def test_graceful_stop_lets_calls_in_flight_finish_and_refuses_new_ones(
    runtime_start_server: StartServer, runtime_connect: Connect, runtime_echo: Any
) -> None:
    running = runtime_start_server()
    client = runtime_connect(running.port)
    health = health_pb2_grpc.HealthStub(client.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=ECHO), timeout=20)
    assert next(watch).status == SERVING
    in_flight = client.method("Slow").future(StringValue(value="x"), timeout=20)
    assert runtime_echo.slow_started.wait(timeout=10)

    terminated = running.stop(grace=30, wait=False)

    assert next(watch).status == NOT_SERVING
    watch.cancel()
    with pytest.raises(grpc.RpcError) as refused:
        runtime_connect(running.port).call("Echo", "late", timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert not terminated.is_set()  # Slow is still running

    runtime_echo.slow_release.set()
    assert in_flight.result(timeout=10).value == "done"
    assert terminated.wait(timeout=10)


SERVE_SCRIPT = """
import sys
import grpc
from google.protobuf.wrappers_pb2 import StringValue
from sluice_runtime.config import ServerConfig
from sluice_runtime.server import serve

def slow(request, context):
    print("SLOW STARTED", file=sys.stderr, flush=True)
    sys.stdin.read()  # the test closes stdin once the server is draining
    return StringValue(value="finished")

def register(server):
    handler = grpc.unary_unary_rpc_method_handler(
        slow,
        request_deserializer=StringValue.FromString,
        response_serializer=StringValue.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("sluice.test.v1.EchoService", {"Slow": handler}),)
    )
    return ["sluice.test.v1.EchoService"]

serve(ServerConfig.from_env("echo", default_port=0), register=register)
"""


def test_serve_drains_on_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "serve_echo.py"
    script.write_text(SERVE_SCRIPT)
    env = {
        **os.environ,
        "SLUICE_HOST": "127.0.0.1",
        "SLUICE_ECHO_PORT": "0",
        "SLUICE_LOG_FORMAT": "json",
        "SLUICE_GRACE_SECONDS": "30",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read_stderr() -> None:
        for line in process.stderr or ():
            lines.put(line)

    reader = threading.Thread(target=read_stderr)
    reader.start()

    def wait_for(predicate_text: str) -> str:
        while True:
            line = lines.get(timeout=20)
            if predicate_text in line:
                return line

    channel = None
    try:
        listening = json.loads(wait_for('"port"'))
        assert listening["service"] == "echo"
        assert listening["level"] == "INFO"
        channel = grpc.insecure_channel(f"127.0.0.1:{listening['port']}")
        slow = channel.unary_unary(
            f"/{ECHO}/Slow",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        in_flight = slow.future(StringValue(value="x"), timeout=30)
        wait_for("SLOW STARTED")

        process.send_signal(signal.SIGTERM)
        draining = json.loads(wait_for("draining"))
        assert draining["message"] == "SIGTERM received: draining for up to 30 s"
        assert process.poll() is None  # still waiting for Slow

        assert process.stdin is not None
        process.stdin.close()
        assert in_flight.result(timeout=20).value == "finished"
        assert process.wait(timeout=20) == 0
        assert json.loads(wait_for("stopped"))["message"] == "echo stopped"
    finally:
        if channel is not None:
            channel.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
