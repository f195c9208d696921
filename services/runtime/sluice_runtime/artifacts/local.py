"""The `file:///abs/path` artifact store: plain files under a root directory.

Layout under the root:
    <key>                      the artifact's bytes, as a plain file
    .sluice/sha256/<key>       its digest record (JSON: sha256, content_type)
    .sluice/tmp/<uuid>.*       writes in progress
    .sluice/lock               flock: publish and delete exclusive, reads shared

A put streams into .sluice/tmp (same file system as the root, so os.replace is atomic), fsyncs,
then publishes record and data under the exclusive lock. Readers take the shared lock only while
they open the file and read its record, so they always pair bytes with their own digest.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import quote

from .base import (
    DEFAULT_CONTENT_TYPE,
    ArtifactInfo,
    ArtifactStore,
    as_stream,
    check_content_type,
)
from .errors import ArtifactCorrupted, ArtifactNotFound, InvalidArtifactKey
from .keys import RESERVED_SEGMENT, check_key, check_prefix, is_valid_key
from .streams import CHUNK_SIZE, HashingReader, ReadableBinary, open_verified


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        given = Path(root)
        if not given.is_absolute():
            raise ValueError(f"artifact store root must be an absolute path, got {str(root)!r}")
        self._root = Path(os.path.normpath(given))
        self._internal = self._root / RESERVED_SEGMENT
        self._tmp = self._internal / "tmp"
        self._records = self._internal / "sha256"
        self._lock_path = self._internal / "lock"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._records.mkdir(parents=True, exist_ok=True)
        # With a trailing separator, so '/data/store2' does not pass as inside '/data/store'.
        self._real_root = os.path.join(os.path.realpath(self._root), "")

    @property
    def root_uri(self) -> str:
        return "file://" + quote(self._root.as_posix())

    def uri_for(self, key: str) -> str:
        return f"{self.root_uri}/{quote(check_key(key))}"

    def put(
        self,
        key: str,
        data: ReadableBinary | bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
    ) -> ArtifactInfo:
        path = self._data_path(key)
        check_content_type(content_type)
        self._check_no_conflict(key, path)  # fail before streaming, not after
        reader = HashingReader(as_stream(data))
        name = uuid.uuid4().hex
        tmp_data, tmp_record = self._tmp / f"{name}.data", self._tmp / f"{name}.sha256"
        try:
            with open(tmp_data, "xb") as sink:
                while chunk := reader.read(CHUNK_SIZE):
                    sink.write(chunk)
                _flush_to_disk(sink)
            digest = reader.hexdigest()
            with open(tmp_record, "x", encoding="utf-8") as sink:
                json.dump({"sha256": digest, "content_type": content_type}, sink)
                _flush_to_disk(sink)
            with self._locked(exclusive=True):
                self._data_path(key)  # again: links may have changed while bytes streamed
                self._check_no_conflict(key, path)
                record = self._record_path(key)
                self._clear_stale_records(key)
                path.parent.mkdir(parents=True, exist_ok=True)
                record.parent.mkdir(parents=True, exist_ok=True)
                # Record first: a crash in between leaves a record without data, which reads as
                # "not found", instead of data without a record, which reads as corrupted.
                os.replace(tmp_record, record)
                os.replace(tmp_data, path)
                _fsync_dir(record.parent)
                _fsync_dir(path.parent)
        finally:
            for leftover in (tmp_data, tmp_record):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        return ArtifactInfo(key, reader.size, digest, self.uri_for(key), content_type)

    def open(self, key: str) -> BinaryIO:
        path = self._data_path(key)
        with self._locked(exclusive=False):
            try:
                file = open(path, "rb", buffering=0)  # noqa: SIM115 - the stream owns it
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise ArtifactNotFound(key, self.root_uri) from None
            try:
                size = os.fstat(file.fileno()).st_size
                sha256, _ = self._read_record(key)
            except BaseException:
                file.close()
                raise
        return open_verified(
            file.read,
            file.close,
            key=key,
            where=self.root_uri,
            expected_sha256=sha256,
            size=size,
        )

    def stat(self, key: str) -> ArtifactInfo:
        path = self._data_path(key)
        with self._locked(exclusive=False):
            size = self._regular_file_size(key, path)
            sha256, content_type = self._read_record(key)
        return ArtifactInfo(key, size, sha256, self.uri_for(key), content_type)

    def exists(self, key: str) -> bool:
        return self._data_path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[ArtifactInfo]:
        check_prefix(prefix)
        return self._infos(sorted(self._keys_with_prefix(prefix)))

    def delete(self, key: str) -> None:
        path = self._data_path(key)
        record = self._record_path(key)
        with self._locked(exclusive=True):
            self._regular_file_size(key, path)
            path.unlink()
            with contextlib.suppress(FileNotFoundError):
                record.unlink()
            _fsync_dir(path.parent)
            _remove_empty_dirs(path.parent, stop_at=self._root)
            _remove_empty_dirs(record.parent, stop_at=self._records)

    def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        if not prefix:
            raise InvalidArtifactKey(prefix, "must not be empty: refusing to delete every artifact")
        deleted = 0
        for key in sorted(self._keys_with_prefix(prefix)):
            with contextlib.suppress(ArtifactNotFound):  # deleted by someone else meanwhile
                self.delete(key)
                deleted += 1
        return deleted

    # -- paths ----------------------------------------------------------------------------------

    def _data_path(self, key: str) -> Path:
        path = self._root.joinpath(*check_key(key).split("/"))
        # Keys cannot climb out lexically; a symbolic link inside the root still could.
        real = os.path.realpath(path)
        if not real.startswith(self._real_root):
            raise InvalidArtifactKey(key, "resolves outside the store root through a symbolic link")
        return path

    def _record_path(self, key: str) -> Path:
        return self._records.joinpath(*key.split("/"))

    def _check_no_conflict(self, key: str, path: Path) -> None:
        """A file system cannot hold 'a' as a file and 'a/b' at once (S3 can)."""
        if path.is_dir():
            raise InvalidArtifactKey(key, "is a folder that holds other artifacts")
        for parent in path.parents:
            if parent == self._root:
                break
            if parent.exists() and not parent.is_dir():
                taken = parent.relative_to(self._root).as_posix()
                raise InvalidArtifactKey(key, f"{taken!r} is an artifact, so it cannot be a folder")

    def _clear_stale_records(self, key: str) -> None:
        """Drop records whose data is gone (a crash mid-publish) where `key` needs the room."""
        record = self._record_path(key)
        if record.is_dir() and not self._root.joinpath(*key.split("/")).is_dir():
            shutil.rmtree(record)
        for parent in record.parents:
            if parent == self._records:
                break
            if parent.is_file():
                parent.unlink()

    # -- records and listing --------------------------------------------------------------------

    def _read_record(self, key: str) -> tuple[str, str]:
        try:
            text = self._record_path(key).read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ArtifactCorrupted(
                key, self.root_uri, "no sha256 digest is recorded (written outside the store?)"
            ) from None
        try:
            record = json.loads(text)
            sha256, content_type = record["sha256"], record["content_type"]
        except (ValueError, KeyError, TypeError):
            raise ArtifactCorrupted(key, self.root_uri, "its digest record is unreadable") from None
        if not isinstance(sha256, str) or not isinstance(content_type, str):
            raise ArtifactCorrupted(key, self.root_uri, "its digest record is unreadable")
        return sha256, content_type

    def _regular_file_size(self, key: str, path: Path) -> int:
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ArtifactNotFound(key, self.root_uri) from None
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactNotFound(key, self.root_uri)
        return info.st_size

    def _keys_with_prefix(self, prefix: str) -> Iterator[str]:
        folder = prefix.rpartition("/")[0]
        start = self._root.joinpath(*folder.split("/")) if folder else self._root
        if not os.path.join(os.path.realpath(start), "").startswith(self._real_root):
            return
        yield from (key for key in _walk_files(start, folder, prefix) if is_valid_key(key))

    def _infos(self, keys: Iterable[str]) -> Iterator[ArtifactInfo]:
        for key in keys:
            with contextlib.suppress(ArtifactNotFound):  # deleted since it was listed
                yield self.stat(key)

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        # flock locks belong to the open file description, so this also excludes other threads.
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)


def _walk_files(folder: Path, relative: str, prefix: str) -> Iterator[str]:
    """Keys starting with `prefix` of the regular files below `folder` (which is at `relative`);
    skips the store's own folder and symbolic links."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name == RESERVED_SEGMENT:
            continue
        key = f"{relative}/{entry.name}" if relative else entry.name
        if entry.is_dir(follow_symlinks=False):
            folder_key = key + "/"
            if folder_key.startswith(prefix) or prefix.startswith(folder_key):
                yield from _walk_files(Path(entry.path), key, prefix)
        elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
            yield key


def _flush_to_disk(sink: IO[Any]) -> None:
    sink.flush()
    os.fsync(sink.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_empty_dirs(folder: Path, *, stop_at: Path) -> None:
    while folder != stop_at and stop_at in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): stop climbing
            return
        folder = folder.parent
