"""The service over gRPC: jobs to SUCCEEDED, schema inference, validation, comparison, errors,
and lineage in a real metadata service."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sluice.common.v1 import data_pb2, job_pb2
from sluice.validation.v1 import statistics_job_pb2 as job_messages
from sluice.validation.v1 import validation_service_pb2 as pb
from sluice.validation.v1 import validation_service_pb2_grpc
from sluice_runtime.config import ServerConfig
from sluice_validation.config import ValidationConfig
from sluice_validation.lineage import MetadataLineage
from sluice_validation.schema import must
from sluice_validation.server import ValidationServer, build_server
from sluice_validation.testing import make_table, write_table
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

Served = tuple[Any, ValidationServer]


def config_for(tmp_path: Path) -> ValidationConfig:
    return ValidationConfig(
        server=ServerConfig(service="validation", port=0),
        artifact_store_uri=(tmp_path / "store").as_uri(),
    )


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    with build_server(config_for(tmp_path), port=0) as server:
        channel = grpc.insecure_channel(server.address)
        yield validation_service_pb2_grpc.ValidationServiceStub(channel), server
        channel.close()


def artifact(uri: str) -> data_pb2.ArtifactRef:
    return data_pb2.ArtifactRef(uri=uri)


def run_job(stub: Any, uri: str, **job_fields: Any) -> job_messages.StatisticsJob:
    job = job_messages.StatisticsJob(source=data_pb2.DataSource(data=artifact(uri)), **job_fields)
    created = stub.CreateStatisticsJob(pb.CreateStatisticsJobRequest(job=job), timeout=10).job
    assert created.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)
    updates = list(
        stub.WatchStatisticsJob(pb.WatchStatisticsJobRequest(name=created.name), timeout=60)
    )
    assert updates[-1].job.state in (
        job_pb2.JOB_STATE_SUCCEEDED,
        job_pb2.JOB_STATE_FAILED,
        job_pb2.JOB_STATE_CANCELLED,
    )
    final: job_messages.StatisticsJob = updates[-1].job
    return final


def error_details(error: grpc.RpcError) -> tuple[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    reason = field = ""
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            field = bad.field_violations[0].field
    return reason, field


def test_the_data_gate_end_to_end(served: Served, tmp_path: Path) -> None:
    stub, server = served
    train = write_table(make_table(5_000, seed=1), tmp_path / "train" / "data.csv")
    shifted = write_table(make_table(5_000, seed=2, shift=1.0), tmp_path / "next" / "data.parquet")

    job = run_job(
        stub,
        train,
        slices=[job_messages.SliceSpec(feature_names=["country"])],
        options=job_messages.StatisticsOptions(top_k=3),
        labels={"span": "1"},
    )
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    assert job.row_count == 5_000 and job.progress.fraction_done == 1.0
    assert job.labels["span"] == "1" and job.options.top_k == 3
    assert job.statistics.uri.startswith(server.core.store.root_uri)
    key = server.core.artifacts.key_of(job.statistics.uri)
    statistics = statistics_pb2.DatasetFeatureStatisticsList.FromString(
        server.core.store.get_bytes(must(key))
    )
    assert statistics.datasets[0].name == "All Examples" and len(statistics.datasets) == 4

    schema_response = stub.InferSchema(pb.InferSchemaRequest(statistics=job.statistics))
    schema = schema_pb2.Schema.FromString(schema_response.schema_proto)
    assert [f.name for f in schema.feature] == ["price", "quantity", "color", "country", "label"]
    assert schema_response.schema.uri.endswith("/schema.pbtxt")

    clean = stub.ValidateStatistics(
        pb.ValidateStatisticsRequest(statistics=job.statistics, schema=schema_response.schema)
    )
    assert clean.max_severity == pb.SEVERITY_UNSPECIFIED and not clean.summaries

    next_job = run_job(stub, shifted)
    assert next_job.state == job_pb2.JOB_STATE_SUCCEEDED
    compared = stub.CompareStatistics(
        pb.CompareStatisticsRequest(
            baseline=job.statistics, candidate=next_job.statistics, kind=pb.COMPARISON_KIND_DRIFT
        )
    )
    over = {d.feature for d in compared.distances if d.over_threshold}
    assert {"price", "color"} <= over and "country" not in over
    assert {s.kind for s in compared.summaries} == {
        "COMPARATOR_L_INFTY_HIGH",
        "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
    }

    # A curated schema (drift comparator, a range) in TFDV's text format, as a local file.
    color = next(f for f in schema.feature if f.name == "color")
    color.drift_comparator.infinity_norm.threshold = 0.1
    next(f for f in schema.feature if f.name == "quantity").int_domain.max = 60
    curated = tmp_path / "curated" / "schema.pbtxt"
    curated.parent.mkdir()
    from sluice_validation.schema import schema_to_text

    curated.write_text(schema_to_text(schema))
    validated = stub.ValidateStatistics(
        pb.ValidateStatisticsRequest(
            statistics=next_job.statistics,
            schema=artifact(curated.as_uri()),
            previous_statistics=job.statistics,
        )
    )
    kinds = {(s.feature, s.kind) for s in validated.summaries}
    assert kinds == {("color", "COMPARATOR_L_INFTY_HIGH"), ("quantity", "INT_TYPE_BIG_INT")}
    assert validated.max_severity == pb.SEVERITY_ERROR
    assert all(s.description for s in validated.summaries)
    stored = anomalies_pb2.Anomalies.FromString(
        server.core.store.get_bytes(must(server.core.artifacts.key_of(validated.anomalies.uri)))
    )
    assert stored == anomalies_pb2.Anomalies.FromString(validated.anomalies_proto)

    listed = stub.ListStatisticsJobs(pb.ListStatisticsJobsRequest(page_size=1))
    assert [j.name for j in listed.jobs] == [next_job.name] and listed.next_page_token
    assert stub.CancelStatisticsJob(pb.CancelStatisticsJobRequest(name=job.name)).job == (
        stub.GetStatisticsJob(pb.GetStatisticsJobRequest(name=job.name)).job
    )


def test_errors_have_codes_reasons_and_fields(served: Served, tmp_path: Path) -> None:
    stub, _ = served
    with pytest.raises(grpc.RpcError) as error:
        stub.GetStatisticsJob(pb.GetStatisticsJobRequest(name="statisticsJobs/nope"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as error:
        stub.GetStatisticsJob(pb.GetStatisticsJobRequest(name="jobs/1"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(error.value)[1] == "name"
    with pytest.raises(grpc.RpcError) as error:
        stub.CreateStatisticsJob(pb.CreateStatisticsJobRequest(job=job_messages.StatisticsJob()))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as error:
        stub.CreateStatisticsJob(
            pb.CreateStatisticsJobRequest(
                job=job_messages.StatisticsJob(
                    source=data_pb2.DataSource(data=artifact("file:///x.csv")),
                    options=job_messages.StatisticsOptions(sample_rate=2.0),
                )
            )
        )
    assert error_details(error.value)[1] == "job.options.sample_rate"
    with pytest.raises(grpc.RpcError) as error:
        stub.InferSchema(pb.InferSchemaRequest(statistics=data_pb2.ArtifactRef(artifact_id=7)))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # no metadata service

    failed = run_job(stub, (tmp_path / "missing.csv").as_uri())
    assert failed.state == job_pb2.JOB_STATE_FAILED
    assert (failed.error.code, failed.error.field) == (5, "job.source.data.uri")
    (tmp_path / "bad.csv").write_bytes(b"a,b\n1,\xff\n")
    bad = run_job(stub, (tmp_path / "bad.csv").as_uri())
    assert (bad.error.code, bad.error.reason) == (3, "INVALID_UTF8")
    assert "bad.csv" in bad.error.message and "'b'" in bad.error.message


# -- lineage in a real metadata service ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def metadata_address(tmp_path: Path) -> Iterator[str]:
    pytest.importorskip("sluice_metadata")
    port = free_port()
    env = {
        **os.environ,
        "SLUICE_METADATA_PORT": str(port),
        "SLUICE_METADATA_DATABASE_URL": f"sqlite:///{tmp_path / 'metadata.db'}",
        "SLUICE_DATA_DIR": str(tmp_path),
        "SLUICE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice_metadata"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    address = f"127.0.0.1:{port}"
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        break
                except grpc.RpcError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log = process.stderr.read().decode() if process.stderr else ""
                        pytest.fail(f"metadata service did not start: {log}")
                    time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


def test_results_are_recorded_with_lineage(tmp_path: Path, metadata_address: str) -> None:
    from sluice.client.metadata import MetadataClient

    lineage = MetadataLineage.connect(metadata_address)
    with build_server(config_for(tmp_path), port=0, lineage=lineage) as server:
        channel = grpc.insecure_channel(server.address)
        stub = validation_service_pb2_grpc.ValidationServiceStub(channel)
        data = write_table(make_table(1_000, seed=3), tmp_path / "data.csv")
        job = run_job(stub, data)
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
        assert job.execution_id > 0 and job.statistics.artifact_id > 0
        by_id = data_pb2.ArtifactRef(artifact_id=job.statistics.artifact_id)
        schema = stub.InferSchema(pb.InferSchemaRequest(statistics=by_id)).schema
        assert schema.artifact_id > 0
        validated = stub.ValidateStatistics(
            pb.ValidateStatisticsRequest(statistics=by_id, schema=schema)
        )
        assert validated.anomalies.artifact_id > 0
        channel.close()

    with MetadataClient(metadata_address) as client:
        recorded = client.get_artifact(job.statistics.artifact_id)
        assert (recorded.type, recorded.uri) == ("ExampleStatistics", job.statistics.uri)
        assert recorded.digest
        events = client.list_events(execution_ids=[job.execution_id]).events
        kinds = sorted((e.type, e.path) for e in events)
        assert [path for _, path in kinds] == ["examples", "statistics"]
        # The same statistics feed the schema and the validation: one artifact, three executions.
        uses = client.list_events(artifact_ids=[job.statistics.artifact_id]).events
        assert len(uses) == 3


def test_the_cli_drives_the_service(served: Served, tmp_path: Path) -> None:
    import typer
    from sluice.cli import validation as cli
    from typer.testing import CliRunner

    _, server = served
    app = typer.Typer()
    cli.register(app)
    runner = CliRunner()
    data = write_table(make_table(1_000, seed=5), tmp_path / "cli" / "data.csv")
    address = ["--address", server.address]

    done = runner.invoke(app, ["validation", "stats", data, "--slice", "country", *address])
    assert done.exit_code == 0, done.output
    assert "1000 rows" in done.output
    statistics_uri = done.output.strip().split(": ")[-1].split()[0]
    inferred = runner.invoke(app, ["validation", "infer-schema", statistics_uri, *address])
    assert inferred.exit_code == 0, inferred.output
    schema_uri = inferred.output.strip()
    clean = runner.invoke(app, ["validation", "validate", statistics_uri, schema_uri, *address])
    assert clean.exit_code == 0 and "no anomalies" in clean.output
    listed = runner.invoke(app, ["validation", "jobs", *address])
    assert listed.exit_code == 0 and "SUCCEEDED" in listed.output
    missing = runner.invoke(app, ["validation", "stats", (tmp_path / "no.csv").as_uri(), *address])
    assert missing.exit_code == 1


def test_watching_an_unknown_job_is_not_found(served: Served) -> None:
    stub, _ = served
    with pytest.raises(grpc.RpcError) as error:
        list(stub.WatchStatisticsJob(pb.WatchStatisticsJobRequest(name="statisticsJobs/nope")))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_job_whose_result_cannot_be_recorded_fails_unavailable(tmp_path: Path) -> None:
    from sluice.client.config import ClientConfig, RetryPolicy
    from sluice.client.metadata import MetadataClient

    config = ClientConfig(address=f"127.0.0.1:{free_port()}", retry=RetryPolicy(max_attempts=1))
    lineage = MetadataLineage(MetadataClient(config))  # nothing listens there
    with build_server(config_for(tmp_path), port=0, lineage=lineage) as server:
        channel = grpc.insecure_channel(server.address)
        stub = validation_service_pb2_grpc.ValidationServiceStub(channel)
        job = run_job(stub, write_table(make_table(100), tmp_path / "data.csv"))
        channel.close()
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert (job.error.code, job.error.reason) == (14, "METADATA_UNAVAILABLE")
