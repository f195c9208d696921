"""Typed exceptions for failed calls, carrying the server's machine-readable error details.

Sluice services fail a call with a `google.rpc.Status` whose details hold an `ErrorInfo`
(reason, domain "sluice.dev", metadata with the offending "field") and, when a field is named, a
`BadRequest` with one `FieldViolation` per problem. `from_rpc_error` turns a `grpc.RpcError` into
the matching `SluiceRpcError` subclass so callers can write ``except NotFoundError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "sluice.dev"

T = TypeVar("T")


class SluiceRpcError(Exception):
    """A call failed. `str(error)` is one line a person can act on.

    Attributes:
        code: the gRPC status code.
        message: the server's message.
        reason: ErrorInfo.reason, a stable UPPER_SNAKE identifier to branch on (else the code name).
        field: the request field at fault, when the server named one.
        metadata: ErrorInfo.metadata.
        violations: (field, description) pairs from BadRequest.
        details: every raw detail of the google.rpc.Status, for kinds this class does not parse.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        field: str | None = None,
        metadata: dict[str, str] | None = None,
        violations: Sequence[tuple[str, str]] = (),
        details: Sequence[any_pb2.Any] = (),
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason or code.name
        self.field = field
        self.metadata: dict[str, str] = dict(metadata or {})
        self.violations: list[tuple[str, str]] = list(violations)
        self.details: list[any_pb2.Any] = list(details)
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        text = f"{self.code.name}: {self.message or '(no message)'}"
        if self.field:
            text += f" (field: {self.field})"
        others = [(f, d) for f, d in self.violations if (f, d) != (self.field, self.message)]
        if others:
            text += "; " + "; ".join(f"{f}: {d}" for f, d in others)
        return " ".join(text.split())  # one line, even when a message spans several

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are not restored by Exception's default pickling.
        return (_rebuild, (type(self), self.code, self.message, self._state()))

    def _state(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "field": self.field,
            "metadata": self.metadata,
            "violations": self.violations,
            "details": self.details,
        }


def _rebuild(
    cls: type[SluiceRpcError], code: grpc.StatusCode, message: str, state: dict[str, object]
) -> SluiceRpcError:
    return cls(code, message, **state)  # type: ignore[arg-type]


class SluiceCancelledError(SluiceRpcError):
    """The call was cancelled, usually by the caller."""


class InvalidArgumentError(SluiceRpcError):
    """The request is malformed; `field` and `violations` say where."""


class DeadlineExceededError(SluiceRpcError):
    """The deadline passed before the call finished (it may still have taken effect)."""


class NotFoundError(SluiceRpcError):
    """The requested resource does not exist."""


class AlreadyExistsError(SluiceRpcError):
    """The resource to create exists already."""


class PermissionDeniedError(SluiceRpcError):
    """The caller is known but not allowed to do this."""


class ResourceExhaustedError(SluiceRpcError):
    """A quota or capacity limit (or the message size limit) was hit."""


class FailedPreconditionError(SluiceRpcError):
    """The system is not in a state that allows the operation."""


class AbortedError(SluiceRpcError):
    """A concurrency conflict; the whole operation may be retried."""


class OutOfRangeError(SluiceRpcError):
    """A value is past the valid range."""


class UnimplementedError(SluiceRpcError):
    """The server does not implement this call (an older or a different service)."""


class InternalError(SluiceRpcError):
    """The server broke an invariant."""


class UnavailableError(SluiceRpcError):
    """The service could not be reached or is overloaded; retried already by the client."""


class DataLossError(SluiceRpcError):
    """Stored data is lost or corrupt."""


class UnauthenticatedError(SluiceRpcError):
    """The call carried no valid credentials (see SLUICE_TOKEN)."""


ERROR_CLASSES: dict[grpc.StatusCode, type[SluiceRpcError]] = {
    grpc.StatusCode.CANCELLED: SluiceCancelledError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def from_rpc_error(error: grpc.RpcError) -> SluiceRpcError:
    """The typed exception for a failed call, with the details of its google.rpc.Status."""
    code = _call_value(error, "code", grpc.StatusCode.UNKNOWN)
    message = _call_value(error, "details", "") or ""
    status = _rich_status(error)
    cls = ERROR_CLASSES.get(code, SluiceRpcError)
    if status is None:
        return cls(code, message)

    reason: str | None = None
    field: str | None = None
    metadata: dict[str, str] = {}
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason or reason
            metadata.update(info.metadata)
            field = info.metadata.get("field") or field
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend((v.field, v.description) for v in bad_request.field_violations)
    if field is None and violations:
        field = violations[0][0]
    return cls(
        code,
        status.message or message,
        reason=reason,
        field=field,
        metadata=metadata,
        violations=violations,
        details=list(status.details),
    )


def _rich_status(error: grpc.RpcError) -> status_pb2.Status | None:
    if not isinstance(error, grpc.Call):
        return None
    try:
        status: status_pb2.Status | None = rpc_status.from_call(error)
    except (ValueError, TypeError):
        # A detail trailer that disagrees with the call's status (a proxy rewrote it): ignore it.
        return None
    return status


def _call_value(error: grpc.RpcError, method: str, default: T) -> T:
    """error.code() / error.details(), which plain RpcErrors (not grpc.Call) do not have."""
    getter = getattr(error, method, None)
    if getter is None:
        return default
    try:
        value: T = getter()
    except Exception:
        return default
    return default if value is None else value
