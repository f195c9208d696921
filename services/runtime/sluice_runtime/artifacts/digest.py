"""The digest of a model folder: one sha256 over its files, independent of where they are stored.

Definition (``sha256:<hex>``): the sha256 of the lines ``<relative path>\\0<file sha256 hex>\\n``,
one per regular file, sorted by relative path (``/``-separated, UTF-8). Folders themselves do not
count, so a SavedModel gives the same digest on a local disk and in an object store (which has no
empty folders). Because only per-file digests enter it, it can be computed from an artifact store
listing (`ArtifactInfo.sha256`) without downloading anything: `digest_of_entries`.

Lives in the runtime so that the training service (which records it with each exported model)
and the serving service (which verifies it at load) share one definition.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

DIGEST_PREFIX = "sha256:"
_CHUNK = 1 << 20


def digest_of_entries(entries: Iterable[tuple[str, str]]) -> str:
    """The model digest of (relative path, file sha256 hex) pairs, in any order.

    Raises:
        ValueError: a path is absolute, empty, repeated or has a ``..`` segment, or a file digest
            is not 64 hex digits.
    """
    seen: dict[str, str] = {}
    for path, file_sha256 in entries:
        _check_relative(path)
        if path in seen:
            raise ValueError(f"file {path!r} is listed twice")
        if len(file_sha256) != 64 or any(c not in "0123456789abcdef" for c in file_sha256):
            raise ValueError(f"file {path!r}: sha256 must be 64 lowercase hex digits")
        seen[path] = file_sha256
    total = hashlib.sha256()
    for path in sorted(seen):
        total.update(f"{path}\0{seen[path]}\n".encode())
    return DIGEST_PREFIX + total.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_digest(folder: str | os.PathLike[str]) -> str:
    """The digest of every regular file under ``folder`` (symbolic links are refused).

    Raises:
        ValueError: the folder holds a symbolic link or something that is not a regular file.
        FileNotFoundError: the folder does not exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"model folder {str(root)!r} does not exist")
    return digest_of_entries(
        (relative, file_sha256(root / relative)) for relative in model_files(root)
    )


def model_files(folder: Path) -> list[str]:
    """Relative ``/``-separated paths of the regular files under ``folder``, sorted."""
    found: list[str] = []
    for directory, subdirectories, files in os.walk(folder):
        base = Path(directory)
        for name in subdirectories:
            if (base / name).is_symlink():
                raise ValueError(f"{base / name}: symbolic links are not allowed in a model")
        for name in files:
            path = base / name
            if path.is_symlink() or not path.is_file():
                raise ValueError(f"{path}: only regular files are allowed in a model")
            found.append(path.relative_to(folder).as_posix())
    return sorted(found)


def check_digest(digest: str) -> str:
    """``digest`` when it reads ``sha256:<64 hex digits>``, else ValueError saying so."""
    hex_part = digest.removeprefix(DIGEST_PREFIX)
    if (
        not digest.startswith(DIGEST_PREFIX)
        or len(hex_part) != 64
        or any(c not in "0123456789abcdef" for c in hex_part)
    ):
        raise ValueError(f"must read 'sha256:' and 64 lowercase hex digits, got {digest!r}")
    return digest


def _check_relative(path: str) -> None:
    if not path or path.startswith("/") or "\\" in path:
        raise ValueError(f"file path {path!r} must be relative and '/'-separated")
    if any(segment in ("", ".", "..") for segment in path.split("/")):
        raise ValueError(f"file path {path!r} has an empty, '.' or '..' segment")
