"""Contract tests of the artifact store, run against every backend (file:// and s3:// on moto),
plus the few behaviours that belong to one backend or to opening a store by URI."""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import io
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest
from moto.server import ThreadedMotoServer
from sluice_runtime.artifacts import (
    ArtifactCorrupted,
    ArtifactInfo,
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStoreError,
    InvalidArtifactKey,
    S3Settings,
    StorageUnavailable,
    open_artifact_store,
)
from sluice_runtime.artifacts.s3 import make_minio_client

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MiB = 1024 * 1024


class Backdoor(Protocol):
    """What the `artifact_backdoor` fixture offers: the storage, reached behind the store's back."""

    def overwrite_keeping_digest(self, key: str, data: bytes) -> None: ...
    def write_without_digest(self, key: str, data: bytes) -> None: ...
    def plant_temporary(self, name: str, data: bytes) -> None: ...
    def stored_names(self) -> list[str]: ...
    def leftovers(self) -> list[str]: ...


class SourceFailed(Exception):
    """Raised by a test stream midway, as a broken upload source would."""


class _GeneratedRaw(io.RawIOBase):
    """Seeded pseudo-random bytes made on the fly, so a large artifact is never built in memory."""

    def __init__(self, total: int, seed: int, fail_after: int | None) -> None:
        self._rng = random.Random(seed)
        self._left = total
        self._fail_after = fail_after
        self._served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._fail_after is not None and self._served >= self._fail_after:
            raise SourceFailed(f"source failed after {self._served} bytes")
        view = memoryview(buffer).cast("B")
        size = min(len(view), self._left, 256 * 1024)
        view[:size] = self._rng.randbytes(size)
        self._left -= size
        self._served += size
        return size


def generated_stream(total: int, seed: int = 0, fail_after: int | None = None) -> io.BufferedReader:
    return io.BufferedReader(_GeneratedRaw(total, seed, fail_after))


def generated_sha256(total: int, seed: int = 0) -> str:
    digest = hashlib.sha256()
    stream = generated_stream(total, seed)
    while chunk := stream.read(MiB):
        digest.update(chunk)
    return digest.hexdigest()


def keys_of(infos: Iterator[ArtifactInfo]) -> list[str]:
    return [info.key for info in infos]


# -- writing and reading ------------------------------------------------------------------------


def test_small_round_trip_reports_and_records_the_digest(artifact_store: ArtifactStore) -> None:
    data = b"schema v1\n"

    info = artifact_store.put("runs/1/schema.pbtxt", data, content_type="text/plain")

    expected = ArtifactInfo(
        key="runs/1/schema.pbtxt",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uri=artifact_store.uri_for("runs/1/schema.pbtxt"),
        content_type="text/plain",
    )
    assert info == expected
    assert artifact_store.stat("runs/1/schema.pbtxt") == expected
    assert artifact_store.get_bytes("runs/1/schema.pbtxt") == data


def test_empty_artifact_round_trip(artifact_store: ArtifactStore) -> None:
    info = artifact_store.put("empty", b"")

    assert info.size == 0
    assert info.sha256 == hashlib.sha256(b"").hexdigest()
    assert artifact_store.get_bytes("empty") == b""


def test_large_artifact_streams_through_in_parts(artifact_store: ArtifactStore) -> None:
    # 12 MiB with 5 MiB S3 parts: a three-part multipart upload, read back in chunks.
    size = 12 * MiB

    info = artifact_store.put("models/big.bin", generated_stream(size, seed=7))

    assert info.size == size
    assert info.sha256 == generated_sha256(size, seed=7)
    assert artifact_store.stat("models/big.bin").sha256 == info.sha256
    digest, total = hashlib.sha256(), 0
    with artifact_store.open("models/big.bin") as stream:
        while chunk := stream.read(MiB):
            digest.update(chunk)
            total += len(chunk)
    assert (total, digest.hexdigest()) == (size, info.sha256)


def test_put_replaces_an_existing_artifact(artifact_store: ArtifactStore) -> None:
    artifact_store.put("model", b"first")

    info = artifact_store.put("model", b"second, longer")

    assert artifact_store.get_bytes("model") == b"second, longer"
    assert artifact_store.stat("model") == info
    assert keys_of(artifact_store.list()) == ["model"]


def test_unusual_but_valid_keys_round_trip(artifact_store: ArtifactStore) -> None:
    keys = ["100%_done.csv", "a b/ü.txt", "%41", "a/.hidden", "...", "x..y/z"]
    for index, key in enumerate(keys):
        artifact_store.put(key, f"payload {index}".encode())

    assert keys_of(artifact_store.list()) == sorted(keys)
    for index, key in enumerate(keys):
        assert artifact_store.get_bytes(key) == f"payload {index}".encode()


def test_put_file_and_get_file(artifact_store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"\x00\x01payload" * 1000)

    info = artifact_store.put_file("files/payload.bin", source)
    target = tmp_path / "out" / "payload.bin"
    target.parent.mkdir()
    artifact_store.get_file("files/payload.bin", target)

    assert info.size == source.stat().st_size
    assert target.read_bytes() == source.read_bytes()
    assert sorted(os.listdir(target.parent)) == ["payload.bin"]


def test_a_bad_content_type_is_refused_and_nothing_is_stored(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor
) -> None:
    for content_type in ["text/plain\r\nX-Injected: 1", "", "ü/ü"]:
        with pytest.raises(ValueError, match="content_type"):
            artifact_store.put("model", b"m", content_type=content_type)

    assert artifact_backdoor.stored_names() == []


def test_uri_for_names_the_full_location(artifact_store: ArtifactStore) -> None:
    info = artifact_store.put("runs/7/model.bin", b"m")

    assert info.uri == artifact_store.uri_for("runs/7/model.bin")
    assert info.uri == artifact_store.root_uri + "/runs/7/model.bin"
    assert artifact_store.root_uri.startswith(("file:///", "s3://"))


# -- corruption -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tampered",
    [b"GOOD DATA, BAD!", b"good data", b"good data, fine! and more"],
    ids=["same-size", "shorter", "longer"],
)
def test_bytes_changed_behind_the_store_are_detected_on_read(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor, tampered: bytes
) -> None:
    artifact_store.put("stats/span-1.pb", b"good data, fine")
    artifact_backdoor.overwrite_keeping_digest("stats/span-1.pb", tampered)

    with pytest.raises(ArtifactCorrupted, match=r"'stats/span-1\.pb'") as raised:
        artifact_store.get_bytes("stats/span-1.pb")
    assert raised.value.key == "stats/span-1.pb"
    assert raised.value.grpc_code_name == "DATA_LOSS"


def test_a_reader_that_stops_at_the_known_size_is_still_verified(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor
) -> None:
    info = artifact_store.put("blob", b"0123456789")
    artifact_backdoor.overwrite_keeping_digest("blob", b"0123456780")

    with artifact_store.open("blob") as stream, pytest.raises(ArtifactCorrupted):
        stream.read(info.size)


def test_corrupted_download_leaves_no_file(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor, tmp_path: Path
) -> None:
    artifact_store.put("blob", b"0123456789")
    artifact_backdoor.overwrite_keeping_digest("blob", b"9876543210")
    target_dir = tmp_path / "downloads"
    target_dir.mkdir()

    with pytest.raises(ArtifactCorrupted):
        artifact_store.get_file("blob", target_dir / "blob")

    assert os.listdir(target_dir) == []


def test_an_object_without_a_recorded_digest_counts_as_corrupted(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor
) -> None:
    artifact_backdoor.write_without_digest("foreign.csv", b"a,b\n")

    assert artifact_store.exists("foreign.csv")
    with pytest.raises(ArtifactCorrupted, match="no sha256 digest"):
        artifact_store.stat("foreign.csv")
    with pytest.raises(ArtifactCorrupted, match=r"'foreign\.csv'"):
        artifact_store.open("foreign.csv")


# -- listing, existence, deletion -----------------------------------------------------------


def test_list_by_prefix_is_sorted_and_hides_bookkeeping(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor
) -> None:
    keys = ["b/x", "a/2", "ab", "a/1", "a-c", "a0", "a/sub/3"]
    for key in keys:
        artifact_store.put(key, key.encode())
    artifact_backdoor.plant_temporary("crashed-upload", b"half an upload")

    everything = list(artifact_store.list())
    assert [info.key for info in everything] == sorted(keys)
    assert all(info.sha256 == hashlib.sha256(info.key.encode()).hexdigest() for info in everything)
    assert all(info.uri == artifact_store.uri_for(info.key) for info in everything)
    assert keys_of(artifact_store.list("a/")) == ["a/1", "a/2", "a/sub/3"]
    assert keys_of(artifact_store.list("a")) == ["a-c", "a/1", "a/2", "a/sub/3", "a0", "ab"]
    assert keys_of(artifact_store.list("a/s")) == ["a/sub/3"]
    assert keys_of(artifact_store.list("zzz/")) == []
    assert keys_of(artifact_store.list(".slu")) == []


def test_exists_and_stat(artifact_store: ArtifactStore) -> None:
    assert not artifact_store.exists("a/b")
    artifact_store.put("a/b", b"abc")

    assert artifact_store.exists("a/b")
    assert not artifact_store.exists("a")  # a folder of artifacts is not an artifact
    assert artifact_store.stat("a/b").size == 3


def test_missing_artifacts_raise_not_found_naming_the_key(artifact_store: ArtifactStore) -> None:
    for operation in (
        artifact_store.stat,
        artifact_store.open,
        artifact_store.get_bytes,
        artifact_store.delete,
    ):
        with pytest.raises(ArtifactNotFound, match=r"'runs/9/missing\.bin'") as raised:
            operation("runs/9/missing.bin")
        assert raised.value.key == "runs/9/missing.bin"
        assert raised.value.grpc_code_name == "NOT_FOUND"


def test_delete_removes_the_artifact_and_its_digest(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor
) -> None:
    artifact_store.put("keep", b"k")
    artifact_store.put("runs/1/model", b"m")

    artifact_store.delete("runs/1/model")

    assert not artifact_store.exists("runs/1/model")
    assert keys_of(artifact_store.list()) == ["keep"]
    assert [name for name in artifact_backdoor.stored_names() if "runs" in name] == []
    with pytest.raises(ArtifactNotFound):
        artifact_store.delete("runs/1/model")


def test_delete_prefix_removes_only_what_starts_with_it(artifact_store: ArtifactStore) -> None:
    for key in ["run1/a", "run1/b/c", "run10/x", "other"]:
        artifact_store.put(key, b"x")

    assert artifact_store.delete_prefix("run1/") == 2
    assert keys_of(artifact_store.list()) == ["other", "run10/x"]
    assert artifact_store.delete_prefix("nothing/") == 0
    with pytest.raises(InvalidArtifactKey, match="must not be empty"):
        artifact_store.delete_prefix("")
    assert keys_of(artifact_store.list()) == ["other", "run10/x"]


# -- keys -----------------------------------------------------------------------------------

BAD_KEYS = [
    ("", "must not be empty"),
    ("/etc/passwd", "must be relative"),
    ("a//b", "empty segment"),
    ("a/", "empty segment"),
    ("../secrets", "'..' segment"),
    ("a/../../secrets", "'..' segment"),
    ("a/./b", "'.' segment"),
    (".", "'.' segment"),
    ("a\\b", "backslash"),
    ("..\\secrets", "backslash"),
    ("a\x00b", "control character"),
    ("a\nb", "control character"),
    ("a\x7fb", "control character"),
    ("%2e%2e/secrets", "percent-encoded '..' segment"),
    ("a/%2E%2E", "percent-encoded '..' segment"),
    ("a/%2e", "percent-encoded '.' segment"),
    ("..%2fsecrets", "percent-encoded '/'"),
    ("a%2Fb", "percent-encoded '/'"),
    ("%252e%252e/secrets", "percent-encoded '..' segment"),
    ("%25252e%25252e%25252fsecrets", "percent-encoded '/'"),
    ("a%5cb", "percent-encoded backslash"),
    ("a%00b", "percent-encoded control character"),
    (".sluice/tmp/x", "reserved for the store"),
    ("a/.sluice/sha256/b", "reserved for the store"),
    ("%2esluice/tmp/x", "reserved for the store"),
    ("x" * 1025, "longer than 1024 bytes"),
    ("a/" + "b" * 256, "segment longer than 255 bytes"),
    ("a\ud800b", "unpaired surrogate"),
]


@pytest.mark.parametrize(("key", "reason"), BAD_KEYS, ids=[repr(k)[:30] for k, _ in BAD_KEYS])
def test_bad_keys_are_refused_by_every_operation(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor, key: str, reason: str
) -> None:
    operations: dict[str, Callable[[], object]] = {
        "put": lambda: artifact_store.put(key, b"data"),
        "open": lambda: artifact_store.open(key),
        "get_bytes": lambda: artifact_store.get_bytes(key),
        "stat": lambda: artifact_store.stat(key),
        "exists": lambda: artifact_store.exists(key),
        "delete": lambda: artifact_store.delete(key),
        "uri_for": lambda: artifact_store.uri_for(key),
    }
    for name, operation in operations.items():
        with pytest.raises(InvalidArtifactKey) as raised:
            operation()
        assert isinstance(raised.value, ValueError), name
        assert repr(key) in str(raised.value), name
        assert reason in str(raised.value), name
        assert raised.value.grpc_code_name == "INVALID_ARGUMENT"
    assert artifact_backdoor.stored_names() == []


def test_a_key_that_is_not_a_string_is_refused(artifact_store: ArtifactStore) -> None:
    with pytest.raises(InvalidArtifactKey, match="must be a string"):
        artifact_store.put(None, b"x")  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["/a", "../", "a//", "%2e%2e/", ".sluice/", "a\\"])
def test_bad_prefixes_are_refused_before_listing(
    artifact_store: ArtifactStore, prefix: str
) -> None:
    with pytest.raises(InvalidArtifactKey, match="invalid artifact key"):
        artifact_store.list(prefix)  # refused on the call, not on first iteration
    with pytest.raises(InvalidArtifactKey):
        artifact_store.delete_prefix(prefix)


# -- failures and concurrency ---------------------------------------------------------------


def test_a_write_that_fails_midway_leaves_nothing(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor
) -> None:
    # Fails after 6 MiB: on S3 one 5 MiB part is already uploaded by then.
    with pytest.raises(SourceFailed):
        artifact_store.put("models/broken", generated_stream(8 * MiB, fail_after=6 * MiB))

    assert not artifact_store.exists("models/broken")
    assert keys_of(artifact_store.list()) == []
    assert artifact_backdoor.stored_names() == []
    assert artifact_backdoor.leftovers() == []


def test_a_failed_overwrite_keeps_the_previous_artifact(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor
) -> None:
    before = artifact_store.put("model", b"version 1")

    with pytest.raises(SourceFailed):
        artifact_store.put("model", generated_stream(MiB, fail_after=512 * 1024))

    assert artifact_store.stat("model") == before
    assert artifact_store.get_bytes("model") == b"version 1"
    assert artifact_backdoor.leftovers() == []


def test_concurrent_writers_to_one_key_end_with_one_complete_artifact(
    artifact_store: ArtifactStore, artifact_backdoor: Backdoor
) -> None:
    payloads = [random.Random(seed).randbytes(256 * 1024) for seed in range(6)]
    done = threading.Event()
    problems: list[str] = []

    def write(payload: bytes) -> None:
        try:
            artifact_store.put("shared/model.bin", payload)
        except Exception as error:  # reported below, a thread cannot fail the test itself
            problems.append(f"writer: {error!r}")

    def read() -> None:
        while not done.is_set():
            try:
                seen = artifact_store.get_bytes("shared/model.bin")
            except ArtifactNotFound:
                continue  # before the first publish
            except Exception as error:
                problems.append(f"reader: {error!r}")
                return
            if seen not in payloads:
                problems.append(f"reader saw {len(seen)} bytes matching no writer")
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(payload,)) for payload in payloads]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()

    assert problems == []
    final = artifact_store.get_bytes("shared/model.bin")
    assert final in payloads
    assert artifact_store.stat("shared/model.bin").sha256 == hashlib.sha256(final).hexdigest()
    assert keys_of(artifact_store.list()) == ["shared/model.bin"]
    assert artifact_backdoor.leftovers() == []


# -- S3 only: retries and an unreachable server ---------------------------------------------


def test_stopped_s3_server_gives_storage_unavailable_naming_the_endpoint(
    artifact_s3_settings: S3Settings,
) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        settings = dataclasses.replace(artifact_s3_settings, endpoint=f"{host}:{port}")
        client = make_minio_client(settings)
        bucket = f"stopped-{uuid.uuid4().hex[:16]}"
        client.make_bucket(bucket)
        store = open_artifact_store(f"s3://{bucket}/p", settings)
        store.put("model", b"m")  # works while the server runs
        store.delete("model")
        client.remove_bucket(bucket)
    finally:
        server.stop()

    operations: dict[str, Callable[[], object]] = {
        "put": lambda: store.put("model", b"again"),
        "open": lambda: store.open("model"),
        "stat": lambda: store.stat("model"),
        "exists": lambda: store.exists("model"),
        "list": lambda: list(store.list()),
        "delete": lambda: store.delete("model"),
    }
    for name, operation in operations.items():
        with pytest.raises(StorageUnavailable, match=f"http://{host}:{port}") as raised:
            operation()
        assert raised.value.grpc_code_name == "UNAVAILABLE", name
        assert "Connection refused" in str(raised.value), name


class _FlakyProxy:
    """An HTTP proxy to the S3 server that answers the first `failures` requests with 503
    SlowDown, as S3 does under load."""

    def __init__(self, upstream: str, failures: float) -> None:
        self.upstream_host, upstream_port = upstream.rsplit(":", 1)
        self.upstream_port = int(upstream_port)
        self.failures_left = failures
        self.failures_served = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.take_failure():
                    self.reply(503, [("Content-Type", "application/xml")], SLOW_DOWN)
                    return
                upstream = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=30
                )
                try:
                    upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
                    response = upstream.getresponse()
                    headers = [
                        (name, value)
                        for name, value in response.getheaders()
                        if name.lower() not in ("connection", "transfer-encoding")
                    ]
                    self.reply(response.status, headers, response.read())
                finally:
                    upstream.close()

            def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if self.command == "HEAD" or name.lower() != "content-length":
                        self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def take_failure(self) -> bool:
        with self._lock:
            if self.failures_left <= 0:
                return False
            self.failures_left -= 1
            self.failures_served += 1
            return True

    def __enter__(self) -> _FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


def test_transient_slow_down_answers_are_retried(
    artifact_s3_settings: S3Settings, artifact_s3_bucket: str
) -> None:
    # Each request may fail max_retries (2) times; 2 failures in a row are absorbed.
    with _FlakyProxy(artifact_s3_settings.endpoint, failures=2) as proxy:
        settings = dataclasses.replace(artifact_s3_settings, endpoint=proxy.endpoint)
        store = open_artifact_store(f"s3://{artifact_s3_bucket}/p", settings)

        store.put("model", b"weights")
        proxy.failures_left = 2
        assert store.get_bytes("model") == b"weights"

    assert proxy.failures_served == 4


def test_slow_down_that_persists_gives_storage_unavailable(
    artifact_s3_settings: S3Settings, artifact_s3_bucket: str
) -> None:
    with _FlakyProxy(artifact_s3_settings.endpoint, failures=float("inf")) as proxy:
        settings = dataclasses.replace(artifact_s3_settings, endpoint=proxy.endpoint)
        store = open_artifact_store(f"s3://{artifact_s3_bucket}/p", settings)

        with pytest.raises(StorageUnavailable, match="SlowDown") as raised:
            store.get_bytes("model")
        with pytest.raises(StorageUnavailable, match="HTTP 503"):
            store.stat("model")  # HEAD answers carry no error code

    assert proxy.endpoint in str(raised.value)
    assert proxy.failures_served == 2 * (1 + settings.max_retries)


def test_a_missing_bucket_is_a_clear_store_error(artifact_s3_settings: S3Settings) -> None:
    store = open_artifact_store("s3://no-such-bucket-here/p", artifact_s3_settings)

    with pytest.raises(ArtifactStoreError, match="'no-such-bucket-here' does not exist"):
        store.put("model", b"m")


# -- file:// only ---------------------------------------------------------------------------


def test_file_store_refuses_keys_that_escape_through_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "artifacts"
    store = open_artifact_store(root.as_uri())
    (root / "link").symlink_to(outside)

    with pytest.raises(InvalidArtifactKey, match="symbolic link"):
        store.put("link/model", b"m")
    with pytest.raises(InvalidArtifactKey, match="symbolic link"):
        store.open("link/model")
    assert list(outside.iterdir()) == []
    assert keys_of(store.list()) == []


def test_file_store_refuses_an_artifact_where_a_folder_is_and_back(tmp_path: Path) -> None:
    store = open_artifact_store((tmp_path / "artifacts").as_uri())
    store.put("a", b"file")
    store.put("x/y", b"nested")

    with pytest.raises(InvalidArtifactKey, match="'a' is an artifact"):
        store.put("a/b", b"nested")
    with pytest.raises(InvalidArtifactKey, match="folder that holds other artifacts"):
        store.put("x", b"file")
    assert keys_of(store.list()) == ["a", "x/y"]
    assert os.listdir(tmp_path / "artifacts" / ".sluice" / "tmp") == []


def test_file_store_delete_removes_emptied_folders(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    store = open_artifact_store(root.as_uri())
    store.put("runs/1/model", b"m")

    store.delete("runs/1/model")

    assert sorted(os.listdir(root)) == [".sluice"]
    assert os.listdir(root / ".sluice" / "sha256") == []


def test_file_uri_with_spaces_round_trips(tmp_path: Path) -> None:
    root = tmp_path / "my artifacts"
    store = open_artifact_store(root.as_uri())

    info = store.put("a b.txt", b"x")

    assert root.joinpath("a b.txt").read_bytes() == b"x"
    assert info.uri == (root / "a b.txt").as_uri()
    assert open_artifact_store(store.root_uri).get_bytes("a b.txt") == b"x"


# -- opening by URI and settings ------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://bucket/prefix", "unsupported artifact store URI 'gs://bucket/prefix'"),
        ("relative/path", "unsupported artifact store URI 'relative/path'"),
        ("", "non-empty string"),
        ("file://relative/path", "names host 'relative'"),
        ("file:///tmp/x?mode=fast", "query or fragment"),
        ("file:///tmp/../etc", "'..'"),
        ("s3://", "needs a bucket name"),
        ("s3://user@bucket/p", "needs a bucket name"),
        ("s3://Not_A_Bucket/p", "invalid S3 bucket name"),
        ("s3://bucket/../p", "invalid S3 prefix"),
        ("s3://bucket/.sluice/p", "invalid S3 prefix"),
    ],
)
def test_bad_store_uris_are_refused_naming_the_uri(
    uri: str, message: str, artifact_s3_settings: S3Settings
) -> None:
    with pytest.raises(ValueError, match="artifact store URI") as raised:
        open_artifact_store(uri, artifact_s3_settings)
    assert message in str(raised.value)
    assert repr(uri) in str(raised.value)


def test_s3_settings_come_from_the_environment_when_not_given(
    monkeypatch: pytest.MonkeyPatch, artifact_s3_settings: S3Settings, artifact_s3_bucket: str
) -> None:
    monkeypatch.setenv("SLUICE_S3_ENDPOINT", artifact_s3_settings.endpoint)
    monkeypatch.setenv("SLUICE_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("SLUICE_S3_SECRET_KEY", "testing")

    store = open_artifact_store(f"s3://{artifact_s3_bucket}/from-env")
    store.put("model", b"m")

    assert store.root_uri == f"s3://{artifact_s3_bucket}/from-env"
    assert store.get_bytes("model") == b"m"


def test_s3_settings_from_env_defaults_and_parsing() -> None:
    settings = S3Settings.from_env({"SLUICE_S3_ENDPOINT": "minio:9000"})
    assert settings == S3Settings(endpoint="minio:9000")
    assert (settings.region, settings.secure, settings.access_key) == ("us-east-1", False, None)
    assert settings.endpoint_url == "http://minio:9000"

    secure = S3Settings.from_env(
        {
            "SLUICE_S3_ENDPOINT": "s3.example.com",
            "SLUICE_S3_ACCESS_KEY": "key",
            "SLUICE_S3_SECRET_KEY": "secret",
            "SLUICE_S3_REGION": "eu-west-1",
            "SLUICE_S3_SECURE": "True",
        }
    )
    assert (secure.access_key, secure.secret_key) == ("key", "secret")
    assert (secure.region, secure.secure) == ("eu-west-1", True)
    assert secure.endpoint_url == "https://s3.example.com"
    assert "secret" not in repr(secure)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "SLUICE_S3_ENDPOINT is not set"),
        ({"SLUICE_S3_ENDPOINT": "m:9000", "SLUICE_S3_SECURE": "maybe"}, "SLUICE_S3_SECURE"),
        ({"SLUICE_S3_ENDPOINT": "http://m:9000"}, "without scheme"),
        ({"SLUICE_S3_ENDPOINT": "m:9000", "SLUICE_S3_ACCESS_KEY": "k"}, "secret_key"),
    ],
)
def test_bad_s3_settings_are_refused_naming_the_setting(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        S3Settings.from_env(environ)


def test_error_classes_name_their_grpc_codes() -> None:
    assert ArtifactNotFound.grpc_code_name == "NOT_FOUND"
    assert InvalidArtifactKey.grpc_code_name == "INVALID_ARGUMENT"
    assert ArtifactCorrupted.grpc_code_name == "DATA_LOSS"
    assert StorageUnavailable.grpc_code_name == "UNAVAILABLE"
    for error_class in (
        ArtifactNotFound,
        InvalidArtifactKey,
        ArtifactCorrupted,
        StorageUnavailable,
    ):
        assert issubclass(error_class, ArtifactStoreError)
    assert issubclass(InvalidArtifactKey, ValueError)
