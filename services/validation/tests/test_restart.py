"""Statistics jobs outlive the process: a new server over the same data directory lists and gets
the old jobs; a job that was running when the process was killed comes back FAILED, saying why."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sluice.common.v1 import data_pb2, job_pb2
from sluice.validation.v1 import statistics_job_pb2 as job_messages
from sluice.validation.v1 import validation_service_pb2 as pb
from sluice.validation.v1 import validation_service_pb2_grpc
from sluice_validation.config import ValidationConfig
from sluice_validation.server import build_server
from sluice_validation.testing import make_table, write_table

ABORTED = grpc.StatusCode.ABORTED.value[0]


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    return {"SLUICE_DATA_DIR": str(data_dir), "SLUICE_VALIDATION_PORT": "0", **extra}


def stub_for(address: str, channels: list[grpc.Channel]) -> Any:
    channel = grpc.insecure_channel(address)
    channels.append(channel)
    return validation_service_pb2_grpc.ValidationServiceStub(channel)


@pytest.fixture()
def channels() -> Iterator[list[grpc.Channel]]:
    opened: list[grpc.Channel] = []
    yield opened
    for channel in opened:
        channel.close()


def create(stub: Any, uri: str, **job_fields: Any) -> job_messages.StatisticsJob:
    job = job_messages.StatisticsJob(
        source=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri=uri)), **job_fields
    )
    request = pb.CreateStatisticsJobRequest(job=job, request_id=f"create-{uri}")
    created: job_messages.StatisticsJob = stub.CreateStatisticsJob(request, timeout=10).job
    return created


def watch_until(stub: Any, name: str, *states: int) -> job_messages.StatisticsJob:
    request = pb.WatchStatisticsJobRequest(name=name)
    for update in stub.WatchStatisticsJob(request, timeout=60):
        if update.job.state in states:
            found: job_messages.StatisticsJob = update.job
            return found
    raise AssertionError(f"{name} ended without reaching {states}")


def test_a_new_server_over_the_same_data_dir_has_the_old_jobs(
    tmp_path: Path, channels: list[grpc.Channel]
) -> None:
    config = ValidationConfig.from_env(environment(tmp_path / "data"))
    data = write_table(make_table(2_000, seed=21), tmp_path / "span" / "data.csv")
    missing = (tmp_path / "span" / "missing.csv").as_uri()

    with build_server(config) as server:
        stub = stub_for(server.address, channels)
        done = create(
            stub,
            data,
            slices=[job_messages.SliceSpec(feature_names=["country"])],
            labels={"span": "21"},
        )
        done = watch_until(stub, done.name, job_pb2.JOB_STATE_SUCCEEDED)
        failed = watch_until(stub, create(stub, missing).name, job_pb2.JOB_STATE_FAILED)
        before = stub.ListStatisticsJobs(pb.ListStatisticsJobsRequest(page_size=1))
    assert (tmp_path / "data" / "validation" / "jobs.db").is_file()  # the default: the data dir

    with build_server(config) as restarted:
        stub = stub_for(restarted.address, channels)
        again = stub.GetStatisticsJob(pb.GetStatisticsJobRequest(name=done.name)).job
        assert again == done  # all of it: result, labels, slices, progress, times
        assert again.statistics.uri and again.row_count == 2_000
        lost = stub.GetStatisticsJob(pb.GetStatisticsJobRequest(name=failed.name)).job
        assert lost.state == job_pb2.JOB_STATE_FAILED and lost.error == failed.error
        assert lost.error.field == "job.source.data.uri"
        # Page tokens of the old process still page; a retried create finds the first job.
        page = stub.ListStatisticsJobs(
            pb.ListStatisticsJobsRequest(page_size=1, page_token=before.next_page_token)
        )
        assert [j.name for j in page.jobs] == [done.name]
        assert create(stub, data).name == done.name
        # The results it points at are still there to use.
        schema = stub.InferSchema(pb.InferSchemaRequest(statistics=again.statistics))
        assert schema.schema.uri


def test_a_job_running_when_the_process_is_killed_comes_back_failed(
    tmp_path: Path, channels: list[grpc.Channel]
) -> None:
    # The job reads from an "S3 server" that accepts connections and never answers, so it is
    # RUNNING for as long as the test needs; then the service process is killed outright.
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        port = free_port()
        env = environment(
            tmp_path / "data",
            SLUICE_VALIDATION_PORT=str(port),
            SLUICE_S3_ENDPOINT=f"127.0.0.1:{black_hole.getsockname()[1]}",
            SLUICE_LOG_LEVEL="WARNING",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "sluice_validation"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            stub = stub_for(f"127.0.0.1:{port}", channels)
            wait_until_serving(f"127.0.0.1:{port}", process)
            running = create(stub, "s3://span-bucket/spans/1/data.csv")
            watch_until(stub, running.name, job_pb2.JOB_STATE_RUNNING)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            if process.stderr:
                process.stderr.close()

    with build_server(ValidationConfig.from_env(environment(tmp_path / "data"))) as restarted:
        stub = stub_for(restarted.address, channels)
        job = stub.GetStatisticsJob(pb.GetStatisticsJobRequest(name=running.name)).job
        assert job.state == job_pb2.JOB_STATE_FAILED
        assert (job.error.code, job.error.reason) == (ABORTED, "SERVICE_RESTARTED")
        assert "create it again" in job.error.message
        assert job.source == running.source  # what it was asked to do, to create it again


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(address: str, process: subprocess.Popen[bytes]) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 30
        while True:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"the validation service did not start: {log}")
                time.sleep(0.1)
