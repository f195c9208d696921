"""Errors of the artifact store.

Each class names the gRPC status code it stands for in `grpc_code_name`, so the runtime's error
mapping needs no table of its own and this package needs no grpc import.
"""

from __future__ import annotations


class ArtifactStoreError(Exception):
    """Base of every artifact store error; on its own it means a fault of the store itself."""

    grpc_code_name: str = "INTERNAL"


class ArtifactNotFound(ArtifactStoreError):
    """No artifact is stored under the key."""

    grpc_code_name = "NOT_FOUND"

    def __init__(self, key: str, where: str) -> None:
        super().__init__(f"artifact {key!r} not found in {where}")
        self.key = key


class InvalidArtifactKey(ArtifactStoreError, ValueError):
    """The key (or list prefix) is not one the store accepts; nothing was read or written."""

    grpc_code_name = "INVALID_ARGUMENT"

    def __init__(self, key: object, reason: str) -> None:
        super().__init__(f"invalid artifact key {key!r}: {reason}")
        self.key = key
        self.reason = reason


class ArtifactCorrupted(ArtifactStoreError):
    """The stored bytes do not match the sha256 digest recorded when the artifact was written."""

    grpc_code_name = "DATA_LOSS"

    def __init__(self, key: str, where: str, detail: str) -> None:
        super().__init__(f"artifact {key!r} in {where} is corrupted: {detail}")
        self.key = key


class StorageUnavailable(ArtifactStoreError):
    """The storage service cannot be reached or keeps failing, even after retries."""

    grpc_code_name = "UNAVAILABLE"

    def __init__(self, endpoint: str, detail: str) -> None:
        super().__init__(f"artifact storage at {endpoint} is unavailable: {detail}")
        self.endpoint = endpoint
