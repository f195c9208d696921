"""The artifact store: binary artifacts with a sha256 digest recorded at write and checked on read.

`open_artifact_store("file:///var/lib/sluice/artifacts")` (or `"s3://bucket/prefix"`) gives an
ArtifactStore: `put(key, stream)`, `open(key)` (a verifying stream), `stat`, `list`, `delete`.
"""

from .base import DEFAULT_CONTENT_TYPE, ArtifactInfo, ArtifactStore
from .errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    ArtifactStoreError,
    InvalidArtifactKey,
    StorageUnavailable,
)
from .factory import open_artifact_store
from .keys import check_key, check_prefix
from .local import LocalArtifactStore
from .s3 import S3ArtifactStore, S3Settings
from .streams import ReadableBinary

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "ArtifactCorrupted",
    "ArtifactInfo",
    "ArtifactNotFound",
    "ArtifactStore",
    "ArtifactStoreError",
    "InvalidArtifactKey",
    "LocalArtifactStore",
    "ReadableBinary",
    "S3ArtifactStore",
    "S3Settings",
    "StorageUnavailable",
    "check_key",
    "check_prefix",
    "open_artifact_store",
]
