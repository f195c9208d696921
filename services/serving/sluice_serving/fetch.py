"""Pulling a model folder from the artifact store into the local cache, verified.

Every file is read through the store's verifying stream (its own sha256 recorded at write), then
the folder's digest (`sluice_serving.digest`) is compared with the expected one. The download goes
to a temporary folder that is renamed into place only once complete and verified, so the cache
never holds half a model.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote

from sluice_runtime.artifacts import ArtifactStore, check_prefix
from sluice_runtime.artifacts.digest import digest_of_entries, model_digest
from sluice_runtime.errors import DataLoss, InvalidArgument, NotFound


class ModelFetcher:
    """Downloads model folders from ``store`` into ``cache_dir/<model>/<version>``."""

    def __init__(self, store: ArtifactStore, cache_dir: Path) -> None:
        self.store = store
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)

    def key_prefix(self, uri: str, field: str = "uri") -> str:
        """The store key prefix (ending in '/') of a model folder given as a key or a URI."""
        root = self.store.root_uri
        if "://" in uri:
            if not uri.startswith(root + "/"):
                raise InvalidArgument(
                    f"{field} {uri!r} is not in the serving artifact store ({root}); give a URI "
                    "under it or a key relative to it",
                    field=field,
                )
            uri = unquote(uri[len(root) + 1 :])
        prefix = uri.strip("/")
        if not prefix:
            raise InvalidArgument(f"{field} must name a model folder", field=field)
        try:
            check_prefix(prefix + "/")
        except ValueError as error:
            raise InvalidArgument(f"{field}: {error}", field=field) from None
        return prefix + "/"

    def fetch(self, model: str, version: int, uri: str, expected_digest: str) -> tuple[Path, str]:
        """Download the folder at ``uri``; return (local folder, digest).

        Raises:
            NotFound: nothing is stored under ``uri``.
            DataLoss: a file's bytes or the folder's digest do not match what was recorded or
                ``expected_digest`` (when not empty).
        """
        prefix = self.key_prefix(uri)
        infos = list(self.store.list(prefix))
        if not infos:
            raise NotFound(
                f"no model files under {self.store.uri_for(prefix.rstrip('/'))}", field="uri"
            )
        listed_digest = digest_of_entries((info.key[len(prefix) :], info.sha256) for info in infos)
        if expected_digest and listed_digest != expected_digest:
            raise DataLoss(
                f"model files under {uri!r} have digest {listed_digest}, expected "
                f"{expected_digest}",
                field="digest",
                reason="DIGEST_MISMATCH",
            )
        model_dir = self.cache_dir / model
        model_dir.mkdir(parents=True, exist_ok=True)
        target = model_dir / str(version)
        partial = model_dir / f".{version}.{uuid.uuid4().hex}.partial"
        try:
            for info in infos:
                relative = info.key[len(prefix) :]
                destination = partial / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                self.store.get_file(info.key, destination)  # verifies the file's own sha256
            local_digest = model_digest(partial)
            if local_digest != listed_digest:
                raise DataLoss(
                    f"model files under {uri!r} changed while downloading (digest "
                    f"{local_digest}, listed {listed_digest})",
                    field="uri",
                    reason="DIGEST_MISMATCH",
                )
            remove_folder(target)
            os.replace(partial, target)
        finally:
            remove_folder(partial)
        return target, listed_digest

    def forget(self, model: str, version: int) -> None:
        """Delete the cached copy of a version."""
        remove_folder(self.cache_dir / model / str(version))


def remove_folder(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
