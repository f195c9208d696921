"""The artifact store interface every backend implements, and the conveniences built on it."""

from __future__ import annotations

import abc
import contextlib
import io
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .streams import CHUNK_SIZE, ReadableBinary

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ArtifactInfo:
    """What the store knows about one artifact."""

    key: str
    size: int
    sha256: str  # hex digest of the content, recorded when it was written
    uri: str  # full location, e.g. s3://bucket/prefix/key or file:///root/key
    content_type: str = DEFAULT_CONTENT_TYPE


class ArtifactStore(abc.ABC):
    """Immutable-by-key binary objects with a digest recorded at write and checked on every read.

    Keys are relative '/'-separated names (see keys.check_key). A put publishes atomically: readers
    see the old artifact or the complete new one, never a partial one; a failed put leaves nothing.
    """

    @property
    @abc.abstractmethod
    def root_uri(self) -> str:
        """The URI the store was opened with, normalised (no trailing '/')."""

    @abc.abstractmethod
    def put(
        self,
        key: str,
        data: ReadableBinary | bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> ArtifactInfo:
        """Store `data` (bytes or a stream read to its end) under `key`, replacing any artifact."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable stream of the artifact; it raises ArtifactCorrupted when the bytes read do
        not match the recorded digest. Close it (use `with`) to release the file or connection."""

    @abc.abstractmethod
    def stat(self, key: str) -> ArtifactInfo:
        """The artifact's info; raises ArtifactNotFound when there is none."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ArtifactInfo]:
        """Artifacts whose key starts with `prefix` (a plain string prefix, as in S3), by key."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the artifact; raises ArtifactNotFound when there is none."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every artifact whose key starts with `prefix` (not empty); returns how many."""

    @abc.abstractmethod
    def uri_for(self, key: str) -> str:
        """The full URI of `key` in this store (whether or not it exists)."""

    def get_bytes(self, key: str) -> bytes:
        """The whole artifact in memory, verified; for small artifacts only."""
        with self.open(key) as stream:
            return stream.read()

    def put_file(
        self, key: str, path: str | os.PathLike[str], *, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> ArtifactInfo:
        with open(path, "rb") as source:
            return self.put(key, source, content_type=content_type)

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        """Download to `path`; the file appears only once complete and verified."""
        target = Path(path)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            with self.open(key) as source, open(partial, "xb") as sink:
                shutil.copyfileobj(source, sink, CHUNK_SIZE)
            os.replace(partial, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()


def check_content_type(content_type: object) -> str:
    """A media type goes into an HTTP header on S3: printable ASCII only, so no header injection."""
    if (
        not isinstance(content_type, str)
        or not 0 < len(content_type) <= 255
        or not all(" " <= char <= "~" for char in content_type)
    ):
        raise ValueError(
            "content_type must be a printable ASCII media type of 1 to 255 characters,"
            f" got {content_type!r}"
        )
    return content_type


def as_stream(data: ReadableBinary | bytes) -> ReadableBinary:
    if isinstance(data, bytes | bytearray | memoryview):
        return io.BytesIO(data)
    if not callable(getattr(data, "read", None)):
        raise TypeError(
            f"artifact data must be bytes or a binary stream, not {type(data).__name__}"
        )
    return data
