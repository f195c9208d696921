"""The container health check command against a real server: SERVING, NOT_SERVING, nobody."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable

import pytest
from grpc_health.v1 import health_pb2
from sluice_runtime.healthcheck import main
from sluice_runtime.server import RunningServer

StartServer = Callable[..., RunningServer]


def _address(running: RunningServer) -> str:
    return f"127.0.0.1:{running.port}"


def test_a_serving_server_passes(
    runtime_start_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    running = runtime_start_server()
    assert main([_address(running)]) == 0
    assert capsys.readouterr().out.strip() == f"{_address(running)}: SERVING"


def test_a_server_that_is_not_serving_fails(
    runtime_start_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    running = runtime_start_server()
    running.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert main([_address(running)]) == 1
    assert capsys.readouterr().out.strip() == f"{_address(running)}: NOT_SERVING"


def test_an_unknown_service_or_no_server_fails_with_the_grpc_error(
    runtime_start_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    running = runtime_start_server()
    assert main([_address(running), "--service", "no.such.Service"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    assert main([f"127.0.0.1:{closed}", "--timeout", "1"]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_it_runs_as_a_module(runtime_start_server: StartServer) -> None:
    running = runtime_start_server()
    command = [sys.executable, "-m", "sluice_runtime.healthcheck", _address(running)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, f"{_address(running)}: SERVING")
