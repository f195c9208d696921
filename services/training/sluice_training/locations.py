"""Where a URI of a spec points: a key in the service's artifact store, or a local file.

Every input and output of a job lives in the one artifact store the service is configured with
(``SLUICE_ARTIFACT_STORE_URI``): give a full URI under its root or a key relative to it. A
``file://`` URI outside the store is read straight from the local disk (no digest to check), which
is handy on one machine and refused by nothing, but a Kubernetes pod cannot see such a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sluice_runtime.artifacts import ArtifactStore, check_prefix
from sluice_runtime.errors import InvalidArgument


@dataclass(frozen=True)
class Location:
    """Exactly one of ``key`` (in the artifact store) and ``path`` (a local file) is set."""

    key: str = ""
    path: str = ""

    @property
    def is_prefix(self) -> bool:
        """True when the location names every file under a folder (it ends with '/')."""
        return (self.key or self.path).endswith("/")


def locate(uri: str, store_root_uri: str, field: str) -> Location:
    """Resolve ``uri`` against the store whose root is ``store_root_uri``.

    Raises:
        InvalidArgument: the URI is empty, names the store's root itself, is not a valid key,
            or uses a scheme outside the store (e.g. another bucket).
    """
    if not uri:
        raise InvalidArgument(f"{field} is empty: give an artifact URI or key", field=field)
    root = store_root_uri.rstrip("/")
    if uri.startswith(root + "/"):
        return _key_location(unquote(uri[len(root) + 1 :]), uri, field)
    if uri == root:
        raise InvalidArgument(f"{field} names the artifact store's root itself", field=field)
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidArgument(
                f"{field} {uri!r}: a file URI needs an absolute local path (file:///...)",
                field=field,
            )
        return Location(path=unquote(parts.path))
    if parts.scheme:
        raise InvalidArgument(
            f"{field} {uri!r} is outside the training service's artifact store ({root}); put it "
            "there or give a key relative to it",
            field=field,
        )
    return _key_location(uri, uri, field)


def _key_location(key: str, uri: str, field: str) -> Location:
    try:
        check_prefix(key)
    except ValueError as error:
        raise InvalidArgument(f"{field} {uri!r}: {error}", field=field) from None
    if not key.rstrip("/"):
        raise InvalidArgument(f"{field} {uri!r} names no file", field=field)
    return Location(key=key)


def key_of(uri: str, store: ArtifactStore, field: str) -> str:
    """The store key of ``uri``; InvalidArgument when it is a local file outside the store."""
    location = locate(uri, store.root_uri, field)
    if not location.key:
        raise InvalidArgument(
            f"{field} {uri!r} must be in the artifact store ({store.root_uri})", field=field
        )
    return location.key
