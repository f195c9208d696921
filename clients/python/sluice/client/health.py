"""grpc.health.v1 checks, the same probe Kubernetes and `sluice up` use."""

from __future__ import annotations

import dataclasses

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sluice.client.channel import create_channel
from sluice.client.config import ClientConfig, RetryPolicy
from sluice.client.errors import SluiceRpcError, from_rpc_error


def check_health(target: str | ClientConfig, *, service: str = "", timeout: float = 5.0) -> str:
    """The serving status of a server: "SERVING", "NOT_SERVING", "UNKNOWN" or "SERVICE_UNKNOWN".

    Args:
        target: "host:port" (plaintext, no token) or a `ClientConfig` (its TLS and token).
        service: a service name registered with the health servicer; "" asks about the server.
        timeout: seconds; the check is tried once, without retries.

    Raises:
        SluiceRpcError: UnavailableError when nothing answers at the address, and so on.
    """
    config = ClientConfig(address=target) if isinstance(target, str) else target
    config = dataclasses.replace(config, retry=RetryPolicy(max_attempts=1), tracing=False)
    channel = create_channel(config)
    try:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    finally:
        channel.close()
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    return name


def is_serving(target: str | ClientConfig, *, service: str = "", timeout: float = 1.0) -> bool:
    """True when the server answers SERVING; False when it answers otherwise or not at all."""
    try:
        return check_health(target, service=service, timeout=timeout) == "SERVING"
    except SluiceRpcError:
        return False
