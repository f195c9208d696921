"""Stream wrappers that compute sha256 digests while bytes flow, so no object is held in memory."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .errors import ArtifactCorrupted

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK_SIZE = 1024 * 1024


class ReadableBinary(Protocol):
    """Anything with a binary `read(size)`: open files, io.BytesIO, HTTP responses, sockets."""

    def read(self, size: int = -1, /) -> bytes: ...


class HashingReader:
    """Passes reads through from `source` and keeps the running sha256 and size of what was read."""

    def __init__(self, source: ReadableBinary) -> None:
        self._source = source
        self._sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        if not isinstance(data, bytes):
            if not isinstance(data, bytearray | memoryview):
                raise TypeError(f"read() of the artifact stream returned {type(data).__name__}")
            data = bytes(data)
        self._sha256.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


class VerifyingReader(io.RawIOBase):
    """Reads an artifact's bytes and raises ArtifactCorrupted once they do not match its digest.

    The check runs as soon as the stored size has been read (so readers that stop at the known size
    are covered too) and again at end of stream (for bytes that grew or shrank while reading).
    A negative `size` means unknown: then only the end of stream checks.
    """

    def __init__(
        self,
        read: Callable[[int], bytes],
        release: Callable[[], None],
        *,
        key: str,
        where: str,
        expected_sha256: str,
        size: int,
    ) -> None:
        super().__init__()
        self._read = read
        self._release = release
        self._key = key
        self._where = where
        self._expected = expected_sha256
        self._size = size
        self._sha256 = hashlib.sha256()
        self._read_so_far = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(len(view))
        if not data:
            self._verify_at_end()
            return 0
        view[: len(data)] = data
        self._sha256.update(data)
        self._read_so_far += len(data)
        if 0 <= self._size < self._read_so_far:
            self._fail(f"more than the {self._size} stored bytes came back")
        if self._read_so_far == self._size:
            self._verify_digest()
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._release()
            finally:
                super().close()

    def _verify_at_end(self) -> None:
        if self._size >= 0 and self._read_so_far != self._size:
            self._fail(f"read {self._read_so_far} bytes, expected {self._size}")
        self._verify_digest()

    def _verify_digest(self) -> None:
        if self._verified:
            return
        actual = self._sha256.hexdigest()
        if actual != self._expected:
            self._fail(f"sha256 {actual} does not match {self._expected} recorded at write")
        self._verified = True

    def _fail(self, detail: str) -> None:
        raise ArtifactCorrupted(self._key, self._where, detail)


def open_verified(
    read: Callable[[int], bytes],
    release: Callable[[], None],
    *,
    key: str,
    where: str,
    expected_sha256: str,
    size: int,
) -> io.BufferedReader:
    """A buffered, verifying binary stream; closing it releases the underlying source."""
    raw = VerifyingReader(
        read, release, key=key, where=where, expected_sha256=expected_sha256, size=size
    )
    return io.BufferedReader(raw, buffer_size=CHUNK_SIZE)
