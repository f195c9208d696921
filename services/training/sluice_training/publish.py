"""Publishing a model folder to the artifact store atomically, and its digest.

A model folder is ``saved_model/``, ``model.keras`` and ``sluice_manifest.json``. The manifest is
written last and its presence is the commit point: it lists every other file with its sha256, so a
folder without one is an interrupted upload that nobody may read (a retry clears it first).

The digest (``sha256:<hex>``) is `sluice_runtime.artifacts.digest`'s, the one the serving service
verifies: over every file of the folder, manifest included. It needs only the per-file digests the
store records, so it is computed from a listing. This module is plain Python (no Keras, no
TensorFlow).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sluice_runtime.artifacts import ArtifactNotFound, ArtifactStore
from sluice_runtime.artifacts.digest import digest_of_entries, file_sha256

from sluice_training.failures import TrainingFailure

MANIFEST_NAME = "sluice_manifest.json"
MANIFEST_FORMAT = "sluice-model/1"
KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"


def local_files(folder: Path) -> dict[str, Path]:
    """Relative '/'-separated path -> file, for every regular file under ``folder``."""
    return {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def stored_digest(store: ArtifactStore, prefix: str) -> str:
    """The digest of the folder under ``prefix`` from the store's listing."""
    base = prefix.rstrip("/") + "/"
    return digest_of_entries((info.key[len(base) :], info.sha256) for info in store.list(base))


def read_manifest(store: ArtifactStore, prefix: str) -> dict[str, Any] | None:
    """The committed manifest of the folder at ``prefix``, or None when it has none."""
    try:
        content = store.get_bytes(prefix.rstrip("/") + "/" + MANIFEST_NAME)
    except ArtifactNotFound:
        return None
    manifest: dict[str, Any] = json.loads(content)
    return manifest


def publish_folder(
    store: ArtifactStore, prefix: str, folder: Path, manifest: Mapping[str, Any]
) -> tuple[str, str]:
    """Upload ``folder`` under ``prefix`` and commit it with a manifest; return (uri, digest).

    ``manifest`` must name the ``job``; a committed folder of the same job is taken as already
    published (a retry after the commit), one of another job is never overwritten.

    Raises:
        TrainingFailure: ALREADY_PUBLISHED, or EXPORT_FAILED when the stored bytes do not match.
    """
    prefix = prefix.rstrip("/")
    existing = read_manifest(store, prefix)
    if existing is not None:
        if existing.get("job") == manifest.get("job"):
            return store.uri_for(prefix), stored_digest(store, prefix)
        raise TrainingFailure(
            "ALREADY_PUBLISHED",
            f"{store.uri_for(prefix)} already holds the model of {existing.get('job')}; choose "
            "another output_uri",
            field="spec.output_uri",
        )
    store.delete_prefix(prefix + "/")  # leftovers of an attempt that died before its commit
    hashes: dict[str, str] = {}
    for relative, path in local_files(folder).items():
        if relative == MANIFEST_NAME:
            continue
        local_hash = file_sha256(path)
        info = store.put_file(f"{prefix}/{relative}", path)
        if info.sha256 != local_hash:
            raise TrainingFailure(
                "EXPORT_FAILED",
                f"{relative} changed while it was uploaded (sha256 {info.sha256}, expected "
                f"{local_hash})",
            )
        hashes[relative] = local_hash
    document = {**manifest, "format": MANIFEST_FORMAT, "files": hashes}
    store.put(
        f"{prefix}/{MANIFEST_NAME}",
        json.dumps(document, indent=2, sort_keys=True).encode(),
        content_type="application/json",
    )
    return store.uri_for(prefix), stored_digest(store, prefix)


def fetch_files(store: ArtifactStore, prefix: str, names: Iterable[str], target: Path) -> None:
    """Download some files of a model folder into ``target`` (verified by the store)."""
    for name in names:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(prefix.rstrip("/") + "/" + name, destination)
