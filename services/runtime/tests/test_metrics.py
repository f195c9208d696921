"""Prometheus RPC metrics: per-server registries, final status codes, the /metrics endpoint."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sluice_runtime.server import RunningServer

ECHO = "sluice.test.v1.EchoService"

# Fixture factories from conftest.py (runtime_start_server, runtime_connect).
StartServer = Callable[..., RunningServer]
Connect = Callable[..., Any]


def requests_total(running: RunningServer, method: str, code: str) -> float | None:
    labels = {"service": ECHO, "method": method, "code": code}
    value: float | None = running.registry.get_sample_value("sluice_rpc_requests_total", labels)
    return value


def latency_count(running: RunningServer, method: str, code: str) -> float | None:
    labels = {"service": ECHO, "method": method, "code": code}
    value: float | None = running.registry.get_sample_value(
        "sluice_rpc_latency_seconds_count", labels
    )
    return value


def test_calls_are_counted_by_method_and_final_code(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    running = runtime_start_server()
    client = runtime_connect(running.port)

    client.call("Echo", "a")
    client.call("Echo", "b")
    for method in ("NotFound", "Crash", "Deny"):
        with pytest.raises(grpc.RpcError):
            client.call(method)

    assert requests_total(running, "Echo", "OK") == 2
    assert latency_count(running, "Echo", "OK") == 2
    assert requests_total(running, "NotFound", "NOT_FOUND") == 1
    assert latency_count(running, "NotFound", "NOT_FOUND") == 1
    assert requests_total(running, "Crash", "INTERNAL") == 1
    assert requests_total(running, "Deny", "PERMISSION_DENIED") == 1
    assert requests_total(running, "Echo", "INTERNAL") is None


def test_streaming_calls_are_counted_with_the_code_that_ended_the_stream(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    running = runtime_start_server()
    client = runtime_connect(running.port)

    client.countdown("ok", [])
    with pytest.raises(grpc.RpcError):
        client.countdown("fail", [])
    client.join(["a"])
    with pytest.raises(grpc.RpcError):
        client.join([""])

    assert requests_total(running, "Countdown", "OK") == 1
    assert requests_total(running, "Countdown", "OUT_OF_RANGE") == 1
    assert latency_count(running, "Countdown", "OUT_OF_RANGE") == 1
    assert requests_total(running, "Join", "OK") == 1
    assert requests_total(running, "Join", "INVALID_ARGUMENT") == 1


def test_each_server_has_its_own_registry(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    first, second = runtime_start_server(), runtime_start_server()

    runtime_connect(first.port).call("Echo")

    assert requests_total(first, "Echo", "OK") == 1
    assert requests_total(second, "Echo", "OK") is None


def test_metrics_are_served_over_http_on_the_metrics_port(
    runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    running = runtime_start_server(metrics_port=0)
    runtime_connect(running.port).call("Echo")
    assert running.metrics_port is not None and running.metrics_port > 0

    url = f"http://127.0.0.1:{running.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()

    samples = [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    ]
    labels = {"service": ECHO, "method": "Echo", "code": "OK"}
    assert ("sluice_rpc_requests_total", labels, 1) in samples
    assert ("sluice_rpc_latency_seconds_count", labels, 1) in samples
    assert ("sluice_rpc_latency_seconds_bucket", {**labels, "le": "+Inf"}, 1) in samples

    running.stop(0)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=10)


def test_metrics_are_off_unless_a_port_is_configured(runtime_start_server: StartServer) -> None:
    assert runtime_start_server().metrics_port is None
