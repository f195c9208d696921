"""Bearer-token auth: refused without the right token, open for health and reflection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from sluice_runtime.auth import bearer_metadata
from sluice_runtime.server import RunningServer

ECHO = "sluice.test.v1.EchoService"
TOKEN = "Zm9vYmFy-token"

# Fixture factories from conftest.py (runtime_start_server, runtime_connect).
StartServer = Callable[..., RunningServer]
Connect = Callable[..., Any]


@pytest.fixture
def secured(runtime_start_server: StartServer) -> RunningServer:
    return runtime_start_server(auth_token=TOKEN)


def refusal_reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(cast(grpc.Call, error))
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return str(info.reason)


def test_the_right_token_is_let_through(secured: RunningServer, runtime_connect: Connect) -> None:
    client = runtime_connect(secured.port)

    assert client.call("Echo", "in", metadata=bearer_metadata(TOKEN)) == "in"
    assert client.call("Echo", "in", metadata=(("authorization", f"bearer {TOKEN}"),)) == "in"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "MISSING_BEARER_TOKEN"),
        ((("authorization", "Bearer wrong"),), "INVALID_BEARER_TOKEN"),
        ((("authorization", f"Bearer {TOKEN}x"),), "INVALID_BEARER_TOKEN"),
        ((("authorization", f"Basic {TOKEN}"),), "INVALID_BEARER_TOKEN"),
        ((("authorization", TOKEN),), "INVALID_BEARER_TOKEN"),
        ((("x-api-key", TOKEN),), "MISSING_BEARER_TOKEN"),
    ],
)
def test_a_missing_or_wrong_token_is_unauthenticated(
    secured: RunningServer,
    runtime_connect: Connect,
    metadata: tuple[tuple[str, str], ...],
    reason: str,
) -> None:
    client = runtime_connect(secured.port)

    with pytest.raises(grpc.RpcError) as caught:
        client.call("Echo", "in", metadata=metadata)

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refusal_reason(caught.value) == reason
    assert TOKEN not in str(caught.value.details())


def test_streaming_methods_are_guarded_too(
    secured: RunningServer, runtime_connect: Connect, runtime_echo: Any
) -> None:
    client = runtime_connect(secured.port)

    with pytest.raises(grpc.RpcError) as streaming_response:
        client.countdown("x", [])
    with pytest.raises(grpc.RpcError) as streaming_request:
        client.join(["a", "b"])

    assert streaming_response.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert streaming_request.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert client.join(["a", "b"], metadata=bearer_metadata(TOKEN)) == "a+b"


def test_unknown_methods_are_not_revealed_without_a_token(
    secured: RunningServer, runtime_connect: Connect
) -> None:
    client = runtime_connect(secured.port)

    with pytest.raises(grpc.RpcError) as anonymous:
        client.call("NoSuchMethod")
    with pytest.raises(grpc.RpcError) as authenticated:
        client.call("NoSuchMethod", metadata=bearer_metadata(TOKEN))

    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert authenticated.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_health_and_reflection_stay_open(secured: RunningServer, runtime_connect: Connect) -> None:
    channel = runtime_connect(secured.port).channel

    health = health_pb2_grpc.HealthStub(channel)
    check = health.Check(health_pb2.HealthCheckRequest(service=ECHO), timeout=10)
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = reflection.ServerReflectionInfo(iter([request]), timeout=10)
    assert ECHO in {s.name for s in response.list_services_response.service}


def test_refusals_are_counted(secured: RunningServer, runtime_connect: Connect) -> None:
    with pytest.raises(grpc.RpcError):
        runtime_connect(secured.port).call("Echo")

    labels = {"service": ECHO, "method": "Echo", "code": "UNAUTHENTICATED"}
    assert secured.registry.get_sample_value("sluice_rpc_requests_total", labels) == 1


def test_no_token_configured_means_no_auth(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    assert runtime_connect(runtime_start_server().port).call("Echo", "open") == "open"
