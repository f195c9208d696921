"""Looking up a model artifact in the metadata service (through the SDK), for loads by id."""

from __future__ import annotations

import threading

from sluice.client.errors import NotFoundError, SluiceRpcError
from sluice.client.metadata import MetadataClient
from sluice_runtime.errors import NotFound, Unavailable


class MetadataArtifactResolver:
    """Resolves ``artifact_id`` to (uri, digest) with a `MetadataClient` made on first use
    (``SLUICE_METADATA_ADDRESS``, default 127.0.0.1:50051)."""

    def __init__(self, client: MetadataClient | None = None) -> None:
        self._client = client
        self._lock = threading.Lock()

    def resolve(self, artifact_id: int) -> tuple[str, str]:
        with self._lock:
            if self._client is None:
                self._client = MetadataClient()
            client = self._client
        try:
            artifact = client.get_artifact(artifact_id)
        except NotFoundError:
            raise NotFound(
                f"artifact {artifact_id} is not in the metadata service", field="artifact_id"
            ) from None
        except SluiceRpcError as error:
            raise Unavailable(f"cannot look up artifact {artifact_id}: {error}") from None
        if not artifact.uri:
            raise NotFound(f"artifact {artifact_id} has no uri", field="artifact_id")
        return artifact.uri, artifact.digest

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
