"""Reading and writing the service's artifacts: statistics, schemas and anomalies.

Results are written to the service's artifact store (sha256 recorded at write). Artifacts are read
from the store when their URI lies under its root (verified against the digest), from other
`s3://` buckets through the store's S3 backend, and from local `file://` paths directly (so a TFX
user can point at the schema.pbtxt they already have).
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from sluice_runtime.artifacts import (
    ArtifactInfo,
    ArtifactStore,
    ArtifactStoreError,
    check_key,
)
from sluice_runtime.errors import DataLoss, InvalidArgument, NotFound

from .inputs import DataResolver

MAX_ARTIFACT_BYTES = 512 * 1024 * 1024  # statistics, schemas and anomalies are far smaller


class ArtifactAccess:
    def __init__(self, store: ArtifactStore, resolver: DataResolver | None = None) -> None:
        self.store = store
        self._resolver = resolver or DataResolver(store)
        self._root = store.root_uri.rstrip("/") + "/"

    def key_of(self, uri: str) -> str | None:
        """The store key of `uri`, or None when it lies outside the store."""
        if uri.startswith(self._root):
            return unquote(uri[len(self._root) :])
        return None

    def output_key(self, uri: str, *, field: str) -> str:
        """The key to write `uri` to; it must lie in the store (or be a bare key)."""
        key = self.key_of(uri) if "://" in uri else uri.lstrip("/")
        if key is None:
            raise InvalidArgument(
                f"{field} {uri!r} is outside the artifact store {self.store.root_uri!r};"
                " give a URI under it, or leave it empty for a fresh key",
                field=field,
                reason="OUTPUT_OUTSIDE_STORE",
            )
        try:
            return check_key(key)
        except ArtifactStoreError as error:
            raise InvalidArgument(f"{field}: {error}", field=field) from None

    def read(self, uri: str, *, field: str) -> bytes:
        """The bytes at `uri`, verified when they come from a store."""
        if not uri:
            raise InvalidArgument(f"{field} is empty: give the artifact's uri", field=field)
        try:
            key = self.key_of(uri)
            if key is not None:
                return self._read_store(self.store, key, uri, field)
            parts = urlsplit(uri)
            if parts.scheme in ("", "file"):
                return _read_local(unquote(parts.path), uri, field)
            if parts.scheme == "s3":
                (data_file,) = self._resolver.list_files(uri.rstrip("/"))
                with data_file.access.open_stream() as stream:
                    return bytes(stream.read(MAX_ARTIFACT_BYTES + 1))
        except ArtifactStoreError as error:
            raise _store_error(uri, field, error) from error
        raise InvalidArgument(
            f"{field}: unsupported URI {uri!r}; use file:///absolute/path or s3://bucket/key",
            field=field,
        )

    def _read_store(self, store: ArtifactStore, key: str, uri: str, field: str) -> bytes:
        try:
            check_key(key)
        except ArtifactStoreError as error:
            raise InvalidArgument(f"{field}: {error}", field=field) from None
        with store.open(key) as stream:
            data = stream.read(MAX_ARTIFACT_BYTES + 1)
        if len(data) > MAX_ARTIFACT_BYTES:
            raise InvalidArgument(f"{field}: {uri!r} is too large", field=field)
        return bytes(data)

    def write(self, key: str, data: bytes, *, content_type: str) -> ArtifactInfo:
        return self.store.put(key, data, content_type=content_type)


def _read_local(path: str, uri: str, field: str) -> bytes:
    if not path.startswith("/"):
        raise InvalidArgument(f"{field}: {uri!r} needs an absolute path", field=field)
    try:
        size = os.path.getsize(path)
        if size > MAX_ARTIFACT_BYTES:
            raise InvalidArgument(f"{field}: {uri!r} is too large ({size} bytes)", field=field)
        with open(path, "rb") as source:
            return source.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFound(f"{field}: no file at {uri!r}", field=field) from None
    except PermissionError:
        raise InvalidArgument(
            f"{field}: {uri!r} cannot be read (permission)", field=field
        ) from None


def _store_error(uri: str, field: str, error: ArtifactStoreError) -> Exception:
    code = getattr(error, "grpc_code_name", "INTERNAL")
    if code == "NOT_FOUND":
        return NotFound(f"{field}: {uri!r} not found", field=field)
    if code == "DATA_LOSS":
        return DataLoss(f"{field}: {error}", field=field, reason="CORRUPTED_ARTIFACT")
    if code == "INVALID_ARGUMENT":
        return InvalidArgument(f"{field}: {error}", field=field)
    return error
