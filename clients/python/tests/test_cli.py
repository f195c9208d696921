"""The command line: help, lineage, and running services as local processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from sluice.cli import local, processes
from sluice.cli.main import app
from sluice.client import UnavailableError, check_health
from sluice.metadata.v1 import metadata_service_pb2 as pb
from typer.testing import CliRunner

runner = CliRunner()
Serve = Callable[[ServiceDescriptor, object], str]
Layout = processes.LocalLayout

# A stand-in for a real service: health SERVING on the port `sluice up` gives it, a log line
# showing the environment it got, and a clean exit on SIGTERM.
FAKE_SERVICE = """
import os, signal, threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

prefix = "SLUICE_" + os.environ["FAKE_NAME"].upper() + "_"
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
servicer = health.HealthServicer()
servicer.set("", health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
server.add_insecure_port("127.0.0.1:" + os.environ[prefix + "PORT"])
stopped = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopped.set())
if os.environ.get("FAKE_IGNORE_SIGTERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server.start()
for key in ("SLUICE_DATA_DIR", "SLUICE_ARTIFACT_STORE_URI", "SLUICE_METADATA_DATABASE_URL",
            prefix + "METRICS_PORT", "SLUICE_METADATA_ADDRESS"):
    print(key + "=" + os.environ.get(key, ""), flush=True)
stopped.wait()
server.stop(0)
"""

BROKEN_SERVICE = """
import sys
print("cannot open the database: disk on fire", flush=True)
sys.exit(3)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def fake_modules(tmp_path: Path) -> dict[str, str]:
    """Writes the fake service modules; returns an environment in which children find them."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "fake_service.py").write_text(textwrap.dedent(FAKE_SERVICE))
    (modules / "broken_service.py").write_text(textwrap.dedent(BROKEN_SERVICE))
    path = os.pathsep.join(filter(None, [str(modules), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "FAKE_NAME": "metadata"}
    env.pop("SLUICE_METADATA_DATABASE_URL", None)
    env.pop("SLUICE_ARTIFACT_STORE_URI", None)
    return env


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[processes.LocalLayout]:
    layout = processes.LocalLayout.at(tmp_path / "data")
    yield layout
    processes.stop_stack(layout, grace=1)  # never leave a process behind


def spec(module: str, name: str = "metadata") -> processes.ServiceSpec:
    return processes.ServiceSpec(name, module, free_port(), free_port())


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("up", "down", "status", "lineage"):
        assert command in result.output


def test_service_table_and_installed_services() -> None:
    table = processes.service_table(base_port=7000, metrics_base_port=8000)
    assert [(s.name, s.module, s.port, s.metrics_port) for s in table][:2] == [
        ("metadata", "sluice_metadata", 7000, 8000),
        ("validation", "sluice_validation", 7001, 8001),
    ]
    assert table[-1].port == 7005
    present = processes.installed(table, find_spec={"sluice_training": object()}.get)
    assert [s.name for s in present] == ["training"]


def test_up_status_down(fake_modules: dict[str, str], layout: Layout) -> None:
    service = spec("fake_service")

    [state] = processes.start_stack([service], layout, timeout=30, base_env=fake_modules)

    assert state.address == service.address
    assert check_health(service.address) == "SERVING"
    assert layout.pid_file("metadata").read_text().strip() == str(state.pid)
    assert processes.is_alive(state.pid, service.module)

    log = layout.log_file("metadata").read_text()
    assert f"SLUICE_DATA_DIR={layout.data_dir}" in log
    assert f"SLUICE_ARTIFACT_STORE_URI=file://{layout.data_dir}/artifacts" in log
    assert f"SLUICE_METADATA_DATABASE_URL=sqlite:///{layout.data_dir}/metadata.db" in log
    assert f"SLUICE_METADATA_METRICS_PORT={service.metrics_port}" in log
    assert f"SLUICE_METADATA_ADDRESS={service.address}" in log

    # A second `up` leaves the running service alone.
    [again] = processes.start_stack([service], layout, timeout=30, base_env=fake_modules)
    assert again.pid == state.pid

    [status] = processes.stack_status([service], layout)
    assert (status.running, status.health, status.pid) == (True, "SERVING", state.pid)

    [stopped] = processes.stop_stack(layout, grace=10)
    assert (stopped.name, stopped.outcome) == ("metadata", "stopped")
    assert not processes.is_alive(state.pid)
    assert not layout.pid_file("metadata").exists()
    assert processes.stop_stack(layout) == []  # idempotent

    [status] = processes.stack_status([service], layout)
    assert (status.pid, status.health) == (None, "DOWN")


def test_a_service_that_ignores_sigterm_is_killed(
    fake_modules: dict[str, str], layout: Layout
) -> None:
    service = spec("fake_service")
    env = {**fake_modules, "FAKE_IGNORE_SIGTERM": "1"}
    [state] = processes.start_stack([service], layout, timeout=30, base_env=env)

    [stopped] = processes.stop_stack(layout, grace=0.5)

    assert stopped.outcome == "killed"
    assert not processes.is_alive(state.pid)


def test_a_failing_service_stops_the_others_and_shows_its_log(
    fake_modules: dict[str, str], layout: Layout
) -> None:
    healthy = spec("fake_service", name="metadata")
    broken = spec("broken_service", name="validation")

    with pytest.raises(processes.StartError) as caught:
        processes.start_stack([healthy, broken], layout, timeout=30, base_env=fake_modules)

    assert caught.value.name == "validation"
    assert "exited" in caught.value.problem
    assert "disk on fire" in caught.value.tail
    assert processes.recorded_names(layout) == []  # the healthy one was stopped again
    with pytest.raises(UnavailableError):
        check_health(healthy.address, timeout=1)


def test_service_environment_keeps_configured_stores(layout: Layout) -> None:
    service = spec("fake_service")
    base = {
        "SLUICE_METADATA_DATABASE_URL": "postgresql://db/sluice",
        "SLUICE_ARTIFACT_STORE_URI": "",
        "SLUICE_AUTH_TOKEN": "t0k",
        "SLUICE_METADATA_PORT": "1",
    }
    env = processes.service_environment(service, [service], layout, base)
    assert env["SLUICE_METADATA_DATABASE_URL"] == "postgresql://db/sluice"
    assert env["SLUICE_ARTIFACT_STORE_URI"] == layout.data_dir.joinpath("artifacts").as_uri()
    assert env["SLUICE_AUTH_TOKEN"] == "t0k"  # passed through: the server and its SDK calls use it
    assert env["SLUICE_METADATA_PORT"] == str(service.port)  # `up` decides the ports


def test_stale_pid_file_is_cleaned_up(layout: Layout) -> None:
    layout.create()
    layout.pid_file("metadata").write_text("999999999\n")
    [result] = processes.stop_stack(layout)
    assert result.outcome == "not running"
    assert not layout.pid_file("metadata").exists()


def test_cli_up_status_down(
    fake_modules: dict[str, str], layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = spec("fake_service")
    monkeypatch.setattr(local, "available_services", lambda base, metrics: [service])
    for key in ("PYTHONPATH", "FAKE_NAME"):
        monkeypatch.setenv(key, fake_modules[key])
    data_dir = str(layout.data_dir)

    result = runner.invoke(app, ["up", "--data-dir", data_dir, "--timeout", "30"])
    assert result.exit_code == 0, result.output
    assert service.address in result.output

    result = runner.invoke(app, ["status", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    assert "SERVING" in result.output

    result = runner.invoke(app, ["down", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    assert "metadata" in result.output and "stopped" in result.output

    result = runner.invoke(app, ["down", "--data-dir", data_dir])
    assert "Nothing is running" in result.output


def test_cli_up_refuses_unknown_services(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(local, "available_services", lambda base, metrics: [])
    result = runner.invoke(app, ["up", "--data-dir", str(tmp_path), "--services", "metadata,nope"])
    assert result.exit_code == 1
    assert "unknown service 'nope'" in result.output

    result = runner.invoke(app, ["up", "--data-dir", str(tmp_path), "--services", "training"])
    assert result.exit_code == 1
    assert "training is not installed here" in result.output


class ProvenanceMetadata:
    def GetProvenance(
        self, request: pb.GetProvenanceRequest, context: grpc.ServicerContext
    ) -> pb.GetProvenanceResponse:
        if request.artifact_id != 42:
            context.abort(grpc.StatusCode.NOT_FOUND, f"artifact {request.artifact_id} not found")
        return pb.GetProvenanceResponse(
            artifact={"id": 42, "type": "Model", "name": "model-span-12", "state": 2},
            steps=[
                {
                    "execution": {"id": 7, "type": "Trainer", "state": 3},
                    "inputs": [{"id": 3, "type": "Examples", "uri": "file:///spans/12"}],
                    "outputs": [{"id": 42, "type": "Model"}],
                    "hop": -1,
                },
                {"execution": {"id": 9, "type": "Evaluator", "state": 4}, "hop": 1},
            ],
        )


def test_cli_lineage_prints_the_provenance_tree(serve: Serve) -> None:
    address = serve(pb.DESCRIPTOR.services_by_name["MetadataService"], ProvenanceMetadata())

    result = runner.invoke(app, ["lineage", "42", "--address", address])
    assert result.exit_code == 0, result.output
    for text in (
        "Model #42 'model-span-12'",
        "[LIVE]",
        "Trainer #7",
        "COMPLETE",
        "hop -1",
        "in:  Examples #3",
        "file:///spans/12",
        "Evaluator #9",
        "FAILED",
        "hop +1",
    ):
        assert text in result.output

    result = runner.invoke(app, ["lineage", "5", "--address", address])
    assert result.exit_code == 1
    assert "NOT_FOUND: artifact 5 not found" in result.output


def test_console_script_target_runs() -> None:

    result = subprocess.run(
        [sys.executable, "-c", "from sluice.cli.main import main; main()", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "sluice" in result.stdout
