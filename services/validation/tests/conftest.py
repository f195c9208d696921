"""Fixtures of the validation tests.

`write` writes tables as CSV / Parquet files under tmp_path. The S3 fixtures run a real S3 server
over HTTP (moto's ThreadedMotoServer on 127.0.0.1, one per session, as the runtime's artifact store
tests do): `s3_settings` reach it, `s3_bucket` is a fresh bucket per test (emptied and removed
afterwards), `s3_env` points the service's environment (SLUICE_S3_*) at it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from moto.server import ThreadedMotoServer
from sluice_runtime.artifacts import S3Settings
from sluice_runtime.artifacts.s3 import make_minio_client
from sluice_validation.testing import write_table


@pytest.fixture()
def write(tmp_path: Path) -> Callable[[pa.Table, str], str]:
    """write(table, "name.csv" | "name.parquet") -> the file's file:// URI under tmp_path."""

    def _write(table: pa.Table, name: str) -> str:
        return write_table(table, tmp_path / name)

    return _write


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """host:port of a moto S3 server shared by the session (each test uses its own bucket)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3_settings(s3_endpoint: str) -> S3Settings:
    # Few, short retries keep the failure tests quick.
    return S3Settings(
        endpoint=s3_endpoint,
        access_key="testing",
        secret_key="testing",
        max_retries=2,
        backoff_s=0.01,
        backoff_max_s=0.05,
        connect_timeout_s=2.0,
        read_timeout_s=30.0,
        part_size=5 * 1024 * 1024,
    )


@pytest.fixture()
def s3_bucket(s3_settings: S3Settings) -> Iterator[str]:
    """A fresh, empty bucket, removed with its contents afterwards."""
    client = make_minio_client(s3_settings)
    bucket = f"validation-{uuid.uuid4().hex[:16]}"
    client.make_bucket(bucket)
    try:
        yield bucket
    finally:
        for found in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, str(found.object_name))
        client.remove_bucket(bucket)


@pytest.fixture()
def s3_env(s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch) -> S3Settings:
    """SLUICE_S3_* set for code that reads its settings from the environment (the service)."""
    monkeypatch.setenv("SLUICE_S3_ENDPOINT", s3_settings.endpoint)
    monkeypatch.setenv("SLUICE_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("SLUICE_S3_SECRET_KEY", "testing")
    return s3_settings
