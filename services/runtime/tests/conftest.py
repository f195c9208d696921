"""Fixtures of the runtime's tests.

Artifact store fixtures (prefix `artifact_`): `artifact_store` runs a test once per backend
(file:// in a temp dir, s3:// on a moto S3 server over HTTP on 127.0.0.1, one fresh bucket per
test); `artifact_backdoor` reaches the same storage behind the store's back.

Server fixtures (prefix `runtime_`): `runtime_start_server` starts echo servers (a tiny test
service, google.protobuf.StringValue in and out, no generated code) on 127.0.0.1 port 0 and stops
them after the test; `runtime_connect` opens channels to them.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from minio import Minio
from moto.server import ThreadedMotoServer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sluice_runtime.artifacts import ArtifactStore, S3Settings, open_artifact_store
from sluice_runtime.artifacts.s3 import make_minio_client
from sluice_runtime.config import ServerConfig
from sluice_runtime.errors import InvalidArgument, NotFound, OutOfRange
from sluice_runtime.server import RunningServer, build_server

ARTIFACT_S3_PREFIX = "team-a/store"
MinioMetadata = dict[str, str | list[str] | tuple[str]]


@pytest.fixture(scope="session")
def artifact_moto_endpoint() -> Iterator[str]:
    """host:port of a moto S3 server shared by the session (each test uses its own bucket)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def artifact_s3_settings(artifact_moto_endpoint: str) -> S3Settings:
    # Small retries and the smallest part size keep failure tests and multipart uploads quick.
    return S3Settings(
        endpoint=artifact_moto_endpoint,
        access_key="testing",
        secret_key="testing",
        max_retries=2,
        backoff_s=0.01,
        backoff_max_s=0.05,
        connect_timeout_s=2.0,
        read_timeout_s=30.0,
        part_size=5 * 1024 * 1024,
    )


@pytest.fixture
def artifact_s3_bucket(artifact_s3_settings: S3Settings) -> Iterator[str]:
    """A fresh, empty bucket, removed with its contents afterwards."""
    client = make_minio_client(artifact_s3_settings)
    bucket = f"artifacts-{uuid.uuid4().hex[:16]}"
    client.make_bucket(bucket)
    try:
        yield bucket
    finally:
        for found in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, found.object_name)
        client.remove_bucket(bucket)


@pytest.fixture(params=["file", "s3"])
def artifact_store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "file":
        return open_artifact_store((tmp_path / "artifacts").as_uri())
    settings: S3Settings = request.getfixturevalue("artifact_s3_settings")
    bucket: str = request.getfixturevalue("artifact_s3_bucket")
    return open_artifact_store(f"s3://{bucket}/{ARTIFACT_S3_PREFIX}", settings)


class ArtifactBackdoor:
    """Direct access to a store's storage, to tamper with it and to look for leftovers."""

    def overwrite_keeping_digest(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def write_without_digest(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def plant_temporary(self, name: str, data: bytes) -> None:
        """What a writer that crashed mid-upload would leave behind."""
        raise NotImplementedError

    def stored_names(self) -> list[str]:
        """Every file or object under the store's root, bookkeeping included, sorted."""
        raise NotImplementedError

    def leftovers(self) -> list[str]:
        """Temporary files or objects, and unfinished multipart uploads."""
        raise NotImplementedError


@dataclass
class _FileBackdoor(ArtifactBackdoor):
    root: Path

    def overwrite_keeping_digest(self, key: str, data: bytes) -> None:
        with open(self.root / key, "r+b") as file:  # in place: the digest record stays
            file.write(data)
            file.truncate()

    def write_without_digest(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def plant_temporary(self, name: str, data: bytes) -> None:
        (self.root / ".sluice" / "tmp" / name).write_bytes(data)

    def stored_names(self) -> list[str]:
        names = (path.relative_to(self.root).as_posix() for path in self.root.rglob("*"))
        return sorted(
            name for name in names if (self.root / name).is_file() and name != ".sluice/lock"
        )

    def leftovers(self) -> list[str]:
        return sorted(path.name for path in (self.root / ".sluice" / "tmp").iterdir())


@dataclass
class _S3Backdoor(ArtifactBackdoor):
    client: Minio
    settings: S3Settings
    bucket: str
    prefix: str

    def overwrite_keeping_digest(self, key: str, data: bytes) -> None:
        name = self.prefix + key
        digest = (self.client.stat_object(self.bucket, name).metadata or {})["x-amz-meta-sha256"]
        self._put(name, data, {"sha256": digest})

    def write_without_digest(self, key: str, data: bytes) -> None:
        self._put(self.prefix + key, data, None)

    def plant_temporary(self, name: str, data: bytes) -> None:
        self._put(f"{self.prefix}.sluice/tmp/{name}", data, None)

    def stored_names(self) -> list[str]:
        found = self.client.list_objects(self.bucket, prefix=self.prefix, recursive=True)
        return sorted(str(item.object_name)[len(self.prefix) :] for item in found)

    def leftovers(self) -> list[str]:
        temporaries = [name for name in self.stored_names() if name.startswith(".sluice/")]
        s3 = boto3.client(
            "s3",
            endpoint_url=self.settings.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=self.settings.region,
        )
        uploads = s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return sorted(temporaries + [f"upload:{upload['Key']}" for upload in uploads])

    def _put(self, name: str, data: bytes, metadata: MinioMetadata | None) -> None:
        self.client.put_object(self.bucket, name, io.BytesIO(data), len(data), metadata=metadata)


@pytest.fixture
def artifact_backdoor(
    request: pytest.FixtureRequest, artifact_store: ArtifactStore
) -> ArtifactBackdoor:
    if artifact_store.root_uri.startswith("file:"):
        return _FileBackdoor(request.getfixturevalue("tmp_path") / "artifacts")
    settings: S3Settings = request.getfixturevalue("artifact_s3_settings")
    return _S3Backdoor(
        client=make_minio_client(settings),
        settings=settings,
        bucket=request.getfixturevalue("artifact_s3_bucket"),
        prefix=ARTIFACT_S3_PREFIX + "/",
    )


# ---------------------------------------------------------------------------------------------
# Server fixtures (prefix runtime_)
# ---------------------------------------------------------------------------------------------

RUNTIME_ECHO_SERVICE = "sluice.test.v1.EchoService"


class RuntimeChecksumMismatch(Exception):
    """An error class from outside sluice_runtime.errors that only names its status code."""

    grpc_code_name = "DATA_LOSS"


class RuntimeEchoServicer:
    """Handlers for every RPC shape; Slow blocks until the test sets ``slow_release``."""

    def __init__(self) -> None:
        self.slow_started = threading.Event()
        self.slow_release = threading.Event()

    def echo(self, request: StringValue, context: grpc.ServicerContext) -> StringValue:
        return StringValue(value=request.value)

    def not_found(self, request: StringValue, context: grpc.ServicerContext) -> StringValue:
        raise NotFound(
            f"model {request.value!r} does not exist",
            field="model_name",
            metadata={"model_name": request.value},
        )

    def crash(self, request: StringValue, context: grpc.ServicerContext) -> StringValue:
        raise RuntimeError("connection to postgres://admin:hunter2@db failed")

    def corrupt(self, request: StringValue, context: grpc.ServicerContext) -> StringValue:
        raise RuntimeChecksumMismatch("checksum of the stored model does not match")

    def deny(self, request: StringValue, context: grpc.ServicerContext) -> StringValue:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "handler said no")

    def slow(self, request: StringValue, context: grpc.ServicerContext) -> StringValue:
        self.slow_started.set()
        released = self.slow_release.wait(timeout=20)
        return StringValue(value="done" if released else "never released")

    def countdown(
        self, request: StringValue, context: grpc.ServicerContext
    ) -> Iterator[StringValue]:
        """Streams ``<value>-0``, ``<value>-1``; then fails when the value is ``fail``."""
        for index in range(2):
            yield StringValue(value=f"{request.value}-{index}")
        if request.value == "fail":
            raise OutOfRange("the countdown ran past its end", field="value")

    def join(self, requests: Iterator[StringValue], context: grpc.ServicerContext) -> StringValue:
        values = [request.value for request in requests]
        if "" in values:
            raise InvalidArgument("items must not be empty", field=f"items[{values.index('')}]")
        return StringValue(value="+".join(values))

    def register(self, server: grpc.Server) -> list[str]:
        options: dict[str, Any] = {
            "request_deserializer": StringValue.FromString,
            "response_serializer": StringValue.SerializeToString,
        }
        unary = {
            "Echo": self.echo,
            "NotFound": self.not_found,
            "Crash": self.crash,
            "Corrupt": self.corrupt,
            "Deny": self.deny,
            "Slow": self.slow,
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(behavior, **options)
            for name, behavior in unary.items()
        }
        handlers["Countdown"] = grpc.unary_stream_rpc_method_handler(self.countdown, **options)
        handlers["Join"] = grpc.stream_unary_rpc_method_handler(self.join, **options)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(RUNTIME_ECHO_SERVICE, handlers),)
        )
        return [RUNTIME_ECHO_SERVICE]


class RuntimeEchoClient:
    """Calls the echo service over ``channel``; keyword arguments go to the gRPC call."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel

    def method(self, name: str) -> Any:
        return self.channel.unary_unary(
            f"/{RUNTIME_ECHO_SERVICE}/{name}",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )

    def call(self, name: str, value: str = "", **kwargs: Any) -> str:
        kwargs.setdefault("timeout", 10)
        response: StringValue = self.method(name)(StringValue(value=value), **kwargs)
        return response.value

    def countdown(self, value: str, received: list[str], **kwargs: Any) -> None:
        """Appends each streamed value to ``received`` (so a test sees them before an error)."""
        kwargs.setdefault("timeout", 10)
        stream = self.channel.unary_stream(
            f"/{RUNTIME_ECHO_SERVICE}/Countdown",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        for response in stream(StringValue(value=value), **kwargs):
            received.append(response.value)

    def join(self, values: list[str], **kwargs: Any) -> str:
        kwargs.setdefault("timeout", 10)
        join = self.channel.stream_unary(
            f"/{RUNTIME_ECHO_SERVICE}/Join",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        response: StringValue = join(iter([StringValue(value=v) for v in values]), **kwargs)
        return response.value


@pytest.fixture
def runtime_echo() -> Iterator[RuntimeEchoServicer]:
    echo = RuntimeEchoServicer()
    yield echo
    echo.slow_release.set()  # never leave a handler thread blocked


@pytest.fixture
def runtime_spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def runtime_start_server(
    runtime_echo: RuntimeEchoServicer, runtime_spans: InMemorySpanExporter
) -> Iterator[Callable[..., RunningServer]]:
    """Starts echo servers on 127.0.0.1 port 0: ``runtime_start_server(auth_token="t", ...)``.

    Keyword arguments override `ServerConfig` fields; every server is stopped after the test.
    """
    started: list[RunningServer] = []

    def start(**overrides: Any) -> RunningServer:
        settings: dict[str, Any] = {"service": "echo", "port": 0, "host": "127.0.0.1"}
        settings.update(overrides)
        running = build_server(
            ServerConfig(**settings), register=runtime_echo.register, span_exporter=runtime_spans
        )
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop(0)


@pytest.fixture
def runtime_connect() -> Iterator[Callable[..., RuntimeEchoClient]]:
    """Opens channels: ``runtime_connect(port)`` (plaintext) or ``(port, channel=...)``."""
    channels: list[grpc.Channel] = []

    def connect(port: int, *, channel: grpc.Channel | None = None) -> RuntimeEchoClient:
        opened = channel or grpc.insecure_channel(f"127.0.0.1:{port}")
        channels.append(opened)
        return RuntimeEchoClient(opened)

    yield connect
    for channel in channels:
        channel.close()
