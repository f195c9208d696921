"""Domain errors that core logic raises without importing grpc.

Each class names the gRPC status code it stands for in ``grpc_code_name``; the error interceptor
(`sluice_runtime.interceptors`) turns any raised exception whose class has that attribute into a
``google.rpc.Status`` with ``ErrorInfo`` (and ``BadRequest`` when a field is named). Exceptions
defined elsewhere (for example in ``sluice_runtime.artifacts``) join in the same way: give the class
a ``grpc_code_name`` attribute, and optionally ``field``, ``reason`` and ``metadata`` attributes.

    raise NotFound(f"artifact {artifact_id} does not exist", field="artifact_id")
"""

from __future__ import annotations

from typing import Any, ClassVar

# The status names of grpc.StatusCode, so a typo in a grpc_code_name is caught without grpc.
GRPC_CODE_NAMES = frozenset(
    {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)


class SluiceError(Exception):
    """Base of the domain errors; the message is shown to the caller as the status message.

    Args:
        message: what went wrong, written for the caller (it crosses the wire).
        field: the request field at fault (for example ``"artifact.uri"``), if any.
        reason: a stable UPPER_SNAKE_CASE identifier for the SDK to branch on; defaults to the
            status code name.
        metadata: extra machine-readable context for ``ErrorInfo.metadata``.
    """

    grpc_code_name: ClassVar[str] = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments are not restored by Exception's default pickling.
        return (_rebuild, (type(self), self.message, self.field, self.reason, self.metadata))

    def __repr__(self) -> str:
        parts = [repr(self.message)]
        if self.field is not None:
            parts.append(f"field={self.field!r}")
        if self.reason is not None:
            parts.append(f"reason={self.reason!r}")
        if self.metadata:
            parts.append(f"metadata={self.metadata!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _rebuild(
    cls: type[SluiceError],
    message: str,
    field: str | None,
    reason: str | None,
    metadata: dict[str, str],
) -> SluiceError:
    return cls(message, field=field, reason=reason, metadata=metadata)


class NotFound(SluiceError):
    """The requested resource does not exist."""

    grpc_code_name = "NOT_FOUND"


class AlreadyExists(SluiceError):
    """The resource to create exists already."""

    grpc_code_name = "ALREADY_EXISTS"


class InvalidArgument(SluiceError):
    """The request is malformed, whatever the state of the system; name the ``field``."""

    grpc_code_name = "INVALID_ARGUMENT"


class FailedPrecondition(SluiceError):
    """The system is not in a state that allows the operation (for example a job still running)."""

    grpc_code_name = "FAILED_PRECONDITION"


class Aborted(SluiceError):
    """A concurrency conflict (for example a stale etag); the caller may retry the whole call."""

    grpc_code_name = "ABORTED"


class OutOfRange(SluiceError):
    """A value is past the valid range (for example a page token beyond the end)."""

    grpc_code_name = "OUT_OF_RANGE"


class ResourceExhausted(SluiceError):
    """A quota or a capacity limit was hit."""

    grpc_code_name = "RESOURCE_EXHAUSTED"


class Unavailable(SluiceError):
    """A dependency is down for now; the caller may retry with backoff."""

    grpc_code_name = "UNAVAILABLE"


class PermissionDenied(SluiceError):
    """The caller is known but not allowed to do this."""

    grpc_code_name = "PERMISSION_DENIED"


class Unauthenticated(SluiceError):
    """The caller did not prove who it is."""

    grpc_code_name = "UNAUTHENTICATED"


class DataLoss(SluiceError):
    """Stored data is lost or corrupt (for example a checksum mismatch)."""

    grpc_code_name = "DATA_LOSS"


class Internal(SluiceError):
    """A broken invariant that is safe to describe to the caller (unexpected exceptions are not)."""

    grpc_code_name = "INTERNAL"


def grpc_code_name_of(error: BaseException) -> str | None:
    """The status code name an exception maps to, or None when it is not a domain error.

    Any exception class with a string ``grpc_code_name`` attribute that names a real status code
    counts, whether or not it derives from `SluiceError`.
    """
    name = getattr(type(error), "grpc_code_name", None)
    if isinstance(name, str) and name in GRPC_CODE_NAMES and name != "OK":
        return name
    return None
