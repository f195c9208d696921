"""CSV and Parquet inputs read from a real S3 server over HTTP (moto on 127.0.0.1) through the
artifact store, as the service reads data spans in production: the same statistics as from local
files, every byte verified, clear errors, no temporary files left behind, and a job over gRPC."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import grpc
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from sluice.common.v1 import data_pb2, job_pb2
from sluice.validation.v1 import statistics_job_pb2 as job_messages
from sluice.validation.v1 import validation_service_pb2 as pb
from sluice.validation.v1 import validation_service_pb2_grpc
from sluice_runtime.artifacts import ArtifactStore, S3Settings, open_artifact_store
from sluice_runtime.artifacts.s3 import make_minio_client
from sluice_runtime.config import ServerConfig
from sluice_runtime.errors import DataLoss, InvalidArgument, NotFound
from sluice_validation.config import ValidationConfig
from sluice_validation.inputs import DataResolver
from sluice_validation.schema import feature_name
from sluice_validation.server import build_server
from sluice_validation.statistics import StatsOptions, compute_statistics
from sluice_validation.testing import make_table, stats_of, write_table
from tensorflow_metadata.proto.v0 import statistics_pb2

ROWS = 20_000


def csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()


def parquet_bytes(table: pa.Table, row_group_size: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return bytes(sink.getvalue().to_pybytes())


def exact_figures(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> dict[str, Any]:
    """What must not depend on where the bytes came from: sketch-based figures are left out, and
    moments are rounded to 12 digits (batches of other sizes add in another order)."""
    dataset = statistics.datasets[0]
    figures: dict[str, Any] = {"": dataset.num_examples}
    for feature in dataset.features:
        if feature.HasField("num_stats"):
            numbers = feature.num_stats
            figures[feature_name(feature)] = (
                numbers.common_stats.num_missing,
                float(f"{numbers.mean:.12g}"),
                float(f"{numbers.std_dev:.12g}"),
                numbers.min,
                numbers.max,
                numbers.num_zeros,
            )
        else:
            strings = feature.string_stats
            figures[feature_name(feature)] = (
                strings.common_stats.num_missing,
                strings.unique,
                [(v.value, v.frequency) for v in strings.top_values],
            )
    return figures


@pytest.fixture()
def lake(s3_settings: S3Settings, s3_bucket: str) -> ArtifactStore:
    """A data lake prefix in the test bucket, written through the artifact store."""
    return open_artifact_store(f"s3://{s3_bucket}/lake", s3_settings)


def test_csv_and_parquet_read_over_s3_match_local_files(
    lake: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = make_table(ROWS, seed=11)
    lake.put("spans/7/data.csv", csv_bytes(table))
    lake.put("spans/7/data.parquet", parquet_bytes(table, row_group_size=3_000))
    local = exact_figures(stats_of(write_table(table, tmp_path / "local.csv")).statistics)
    # Parquet is copied to a local temporary file (it needs random access): none may be left.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    resolver = DataResolver(lake)
    # Small CSV blocks: the file streams over HTTP in many batches.
    options = StatsOptions(csv_block_size=64 * 1024, parquet_batch_rows=4_096)
    for name in ("data.csv", "data.parquet"):
        files = resolver.list_files(lake.uri_for(f"spans/7/{name}"))
        assert [f.uri for f in files] == [lake.uri_for(f"spans/7/{name}")]
        assert exact_figures(compute_statistics(files, options).statistics) == local, name
    assert list(scratch.iterdir()) == []


def test_a_prefix_in_another_bucket_is_read_with_the_environments_settings(
    s3_env: S3Settings, s3_bucket: str, tmp_path: Path
) -> None:
    # The service's own store is local; the span lives in another (S3) bucket, which the
    # resolver opens with SLUICE_S3_* from the environment, as the service does.
    producer = open_artifact_store(f"s3://{s3_bucket}", s3_env)
    table = make_table(3_000, seed=12)
    for part in range(3):
        chunk = table.slice(part * 1_000, 1_000)
        producer.put(f"spans/8/part-{part}.csv", csv_bytes(chunk))
    producer.put("spans/8/_SUCCESS", b"")
    resolver = DataResolver(open_artifact_store((tmp_path / "store").as_uri()))

    files = resolver.list_files(f"s3://{s3_bucket}/spans/8/")
    assert [f.uri.rsplit("/", 1)[1] for f in files] == ["part-0.csv", "part-1.csv", "part-2.csv"]
    result = compute_statistics(files)
    assert result.num_examples == 3_000
    local = stats_of(write_table(table, tmp_path / "local.csv")).statistics
    assert exact_figures(result.statistics) == exact_figures(local)


def test_bad_objects_fail_naming_the_file(
    lake: ArtifactStore, s3_settings: S3Settings, s3_bucket: str
) -> None:
    client = make_minio_client(s3_settings)
    resolver = DataResolver(lake)
    lake.put("spans/9/data.csv", b"a,b\n1,x\n2,y\n")
    # Changed behind the store's back, keeping the recorded digest: every byte is checked.
    name = "lake/spans/9/data.csv"
    digest = (client.stat_object(s3_bucket, name).metadata or {})["x-amz-meta-sha256"]
    client.put_object(
        s3_bucket, name, io.BytesIO(b"a,b\n1,x\n9,y\n"), 12, metadata={"sha256": digest}
    )
    with pytest.raises(DataLoss) as tampered:
        compute_statistics(resolver.list_files(lake.uri_for("spans/9/data.csv")))
    assert lake.uri_for("spans/9/data.csv") in tampered.value.message
    assert tampered.value.reason == "CORRUPTED_INPUT"

    # Written by a plain S3 client: no digest to verify against, so it is refused, not trusted.
    client.put_object(s3_bucket, "lake/spans/10/raw.csv", io.BytesIO(b"a\n1\n"), 4)
    with pytest.raises(DataLoss, match="no sha256 digest is recorded") as foreign:
        resolver.list_files(lake.uri_for("spans/10/raw.csv"))
    assert foreign.value.field == "source.data.uri"

    with pytest.raises(NotFound) as missing:
        resolver.list_files(lake.uri_for("spans/11/none.parquet"))
    assert missing.value.field == "source.data.uri"
    with pytest.raises(NotFound, match="no data files"):
        resolver.list_files(lake.root_uri + "/spans/12/")
    lake.put("spans/13/data.parquet", b"PAR1 but not really")
    with pytest.raises(InvalidArgument) as broken:
        compute_statistics(resolver.list_files(lake.uri_for("spans/13/data.parquet")))
    assert lake.uri_for("spans/13/data.parquet") in broken.value.message


def test_a_statistics_job_over_grpc_reads_and_writes_s3(
    s3_env: S3Settings, s3_bucket: str, tmp_path: Path
) -> None:
    store_uri = f"s3://{s3_bucket}/artifacts"
    spans = open_artifact_store(f"s3://{s3_bucket}/spans", s3_env)
    spans.put("1/data.parquet", parquet_bytes(make_table(5_000, seed=13), row_group_size=2_000))
    config = ValidationConfig(
        server=ServerConfig(service="validation", port=0),
        artifact_store_uri=store_uri,  # S3 settings from SLUICE_S3_*
        job_database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
    )
    with build_server(config, port=0) as server, grpc.insecure_channel(server.address) as channel:
        stub = validation_service_pb2_grpc.ValidationServiceStub(channel)
        job = job_messages.StatisticsJob(
            source=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri=spans.root_uri + "/1/"))
        )
        created = stub.CreateStatisticsJob(pb.CreateStatisticsJobRequest(job=job), timeout=10)
        request = pb.WatchStatisticsJobRequest(name=created.job.name)
        final = list(stub.WatchStatisticsJob(request, timeout=60))[-1].job
        assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
        assert final.row_count == 5_000
        assert final.statistics.uri.startswith(f"{store_uri}/statistics/")
        inferred = stub.InferSchema(pb.InferSchemaRequest(statistics=final.statistics))
        assert inferred.schema.uri.startswith(f"{store_uri}/statistics/")
    # What the job wrote is in the bucket, verified on read.
    written = open_artifact_store(store_uri, s3_env)
    key = final.statistics.uri.removeprefix(f"{store_uri}/")
    statistics = statistics_pb2.DatasetFeatureStatisticsList.FromString(written.get_bytes(key))
    assert statistics.datasets[0].num_examples == 5_000
