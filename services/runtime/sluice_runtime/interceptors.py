"""The error interceptor: domain errors become gRPC statuses with google.rpc details.

Details contract (the SDK parses exactly this with ``grpc_status.rpc_status.from_call``):

- ``google.rpc.ErrorInfo``: ``reason`` = the error's reason, else the status code name (for example
  ``NOT_FOUND``); ``domain`` = ``sluice.dev``; ``metadata`` = the error's metadata plus ``field``
  when the error names a field.
- ``google.rpc.BadRequest`` with one ``FieldViolation(field, description=message)``, only when the
  error names a field.

Unexpected exceptions never reach the caller: they become ``INTERNAL`` with the message
``internal error (trace id <id>)`` and are logged server-side with their traceback under that id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from sluice_runtime.errors import grpc_code_name_of

if TYPE_CHECKING:
    ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    MethodHandler = grpc.RpcMethodHandler[Any, Any]
else:
    ServerInterceptor = grpc.ServerInterceptor
    MethodHandler = grpc.RpcMethodHandler

ERROR_DOMAIN = "sluice.dev"

# Infrastructure services every deployment probes without credentials and without tracing noise.
INFRASTRUCTURE_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# Behaviour of one RPC: (request or request iterator, context) -> response or response iterator.
Behavior = Callable[[Any, grpc.ServicerContext], Any]
# Wraps a behaviour; the flag says whether the behaviour returns a response stream.
BehaviorWrapper = Callable[[Behavior, bool], Behavior]

# Status codes that mean the server failed (OpenTelemetry semantic conventions for server spans);
# the others are the caller's problem and leave the span status unset.
_SERVER_FAULT_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

logger = logging.getLogger(__name__)


def split_method(full_method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (``pkg.Service``, ``Method``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


def wrap_handler(handler: MethodHandler | None, wrap: BehaviorWrapper) -> MethodHandler | None:
    """A handler of the same shape as ``handler`` whose behaviour is ``wrap(behavior, streaming)``.

    ``wrap`` must return a generator function when the flag is true, so errors raised while the
    response stream is consumed pass through it.
    """
    if handler is None:
        return None
    options: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream, True), **options)
    if handler.request_streaming:
        assert handler.stream_unary is not None
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary, False), **options)
    if handler.response_streaming:
        assert handler.unary_stream is not None
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream, True), **options)
    assert handler.unary_unary is not None
    return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary, False), **options)


def rich_status(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str | None = None,
    field: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> grpc.Status:
    """A status with ErrorInfo (and BadRequest when ``field`` is set), per the contract above."""
    info_metadata = {str(key): str(value) for key, value in (metadata or {}).items()}
    if field is not None:
        info_metadata["field"] = field
    details = [
        _packed(
            error_details_pb2.ErrorInfo(
                reason=reason or code.name, domain=ERROR_DOMAIN, metadata=info_metadata
            )
        )
    ]
    if field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[violation])))
    status = status_pb2.Status(code=code.value[0], message=message, details=details)
    return rpc_status.to_status(status)  # type: ignore[no-any-return]


def status_from_error(error: BaseException) -> grpc.Status | None:
    """The status for a domain error (any exception class with ``grpc_code_name``), else None."""
    code_name = grpc_code_name_of(error)
    if code_name is None:
        return None
    message = getattr(error, "message", None)
    if not isinstance(message, str):
        message = str(error)
    metadata = getattr(error, "metadata", None)
    return rich_status(
        grpc.StatusCode[code_name],
        message,
        reason=_optional_str(getattr(error, "reason", None)),
        field=_optional_str(getattr(error, "field", None)),
        metadata=metadata if isinstance(metadata, Mapping) else None,
    )


class ErrorInterceptor(ServerInterceptor):
    """Turns exceptions raised by handlers into statuses, for every kind of RPC.

    Place it innermost, so the metrics and tracing interceptors around it see the final code.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], MethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        method = handler_call_details.method

        def wrap(behavior: Behavior, response_streaming: bool) -> Behavior:
            if response_streaming:

                def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    try:
                        yield from behavior(request, context)
                    except Exception as error:
                        _abort_for(error, context, method)

                return streaming

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return behavior(request, context)
                except Exception as error:
                    _abort_for(error, context, method)

            return unary

        return wrap_handler(continuation(handler_call_details), wrap)


def _abort_for(error: Exception, context: grpc.ServicerContext, method: str) -> NoReturn:
    if _is_abort(error, context):
        raise error  # the handler aborted on purpose; its status stands
    span = trace.get_current_span()
    status = status_from_error(error)
    if status is None:
        status = internal_error_status(error, span, method)
    record_status_on_span(span, status)
    context.abort_with_status(status)


def internal_error_status(error: BaseException, span: trace.Span, method: str) -> grpc.Status:
    """INTERNAL naming only a trace id; the error and its traceback go to the log and the span."""
    trace_id = _trace_id(span)
    logger.error(
        "unhandled %s in %s (trace id %s)",
        type(error).__name__,
        method,
        trace_id,
        exc_info=error,
        extra={"grpc_method": method, "error_trace_id": trace_id},
    )
    span.record_exception(error)
    return rich_status(grpc.StatusCode.INTERNAL, f"internal error (trace id {trace_id})")


def _is_abort(error: Exception, context: grpc.ServicerContext) -> bool:
    # grpc's context.abort() raises a bare Exception() after recording the status on the context.
    code = getattr(context, "code", None)
    return type(error) is Exception and not error.args and code is not None and code() is not None


def _trace_id(span: trace.Span) -> str:
    span_context = span.get_span_context()
    if span_context.is_valid:
        return trace.format_trace_id(span_context.trace_id)
    # No trace (tracing off, no incoming context): a fresh id still ties the reply to the log.
    return uuid.uuid4().hex


def record_status_on_span(span: trace.Span, status: grpc.Status) -> None:
    # The OpenTelemetry server interceptor does not look at abort_with_status, so say it here.
    span.set_attribute("rpc.grpc.status_code", status.code.value[0])
    if status.code in _SERVER_FAULT_CODES:
        span.set_status(Status(StatusCode.ERROR, f"{status.code.name}: {status.details}"))


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
