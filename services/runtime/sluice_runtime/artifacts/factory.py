"""Choose the artifact store backend from a URI."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from .base import ArtifactStore
from .local import LocalArtifactStore
from .s3 import S3ArtifactStore, S3Settings

SUPPORTED_FORMS = "file:///absolute/path or s3://bucket/prefix"


def open_artifact_store(uri: str, settings: S3Settings | None = None) -> ArtifactStore:
    """The store at `uri`: `file:///abs/path` (a local directory, created if missing) or
    `s3://bucket/prefix` (with `settings`, or S3Settings.from_env() when none are given)."""
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"artifact store URI must be a non-empty string, got {uri!r}")
    parts = urlsplit(uri)
    if parts.query or parts.fragment:
        raise ValueError(f"artifact store URI {uri!r} must not have a query or fragment")
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"artifact store URI {uri!r} names host {parts.netloc!r}; a file URI needs an"
                " absolute local path, as in file:///var/lib/sluice/artifacts"
            )
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"artifact store URI {uri!r} needs an absolute path")
        if "\x00" in path or any(segment == ".." for segment in path.split("/")):
            raise ValueError(f"artifact store URI {uri!r} must not contain '..' or NUL")
        return LocalArtifactStore(path)
    if scheme == "s3":
        if not parts.hostname or parts.port is not None or "@" in parts.netloc:
            raise ValueError(
                f"artifact store URI {uri!r} needs a bucket name right after s3:// (the server"
                " comes from S3Settings / SLUICE_S3_ENDPOINT)"
            )
        try:
            return S3ArtifactStore(
                parts.netloc, parts.path, settings if settings else S3Settings.from_env()
            )
        except ValueError as error:
            raise ValueError(f"artifact store URI {uri!r}: {error}") from None
    raise ValueError(f"unsupported artifact store URI {uri!r}: use {SUPPORTED_FORMS}")
