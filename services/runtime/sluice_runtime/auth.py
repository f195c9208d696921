"""Bearer-token authentication for every RPC but health checks and reflection.

Callers send the metadata ``authorization: Bearer <token>``; anything else is answered with
``UNAUTHENTICATED`` (ErrorInfo reason ``MISSING_BEARER_TOKEN`` or ``INVALID_BEARER_TOKEN``) before
the handler runs. Health and reflection stay open, so probes and tools such as grpcurl work as
they are.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from sluice_runtime.interceptors import (
    INFRASTRUCTURE_METHOD_PREFIXES,
    Behavior,
    MethodHandler,
    ServerInterceptor,
    rich_status,
    wrap_handler,
)

AUTHORIZATION_KEY = "authorization"
_SCHEME = "bearer"

MISSING_TOKEN = rich_status(
    grpc.StatusCode.UNAUTHENTICATED,
    "missing bearer token: send the metadata 'authorization: Bearer <token>'",
    reason="MISSING_BEARER_TOKEN",
)
INVALID_TOKEN = rich_status(
    grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token", reason="INVALID_BEARER_TOKEN"
)


def bearer_metadata(token: str) -> tuple[tuple[str, str]]:
    """The call metadata a client sends to authenticate with ``token``."""
    return ((AUTHORIZATION_KEY, f"Bearer {token}"),)


class BearerTokenInterceptor(ServerInterceptor):
    """Refuses RPCs that do not carry the configured bearer token."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("token must not be empty")
        self._token = token.encode("utf-8")

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], MethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        if handler_call_details.method.startswith(INFRASTRUCTURE_METHOD_PREFIXES):
            return continuation(handler_call_details)
        refusal = self.refusal(handler_call_details.invocation_metadata)
        if refusal is None:
            return continuation(handler_call_details)

        def refuse(request: Any, context: grpc.ServicerContext) -> NoReturn:
            context.abort_with_status(refusal)

        def wrap(_behavior: Behavior, _response_streaming: bool) -> Behavior:
            return refuse

        # Same handler shape as the real method, so grpc reads the request the way the caller sends
        # it; unknown methods are refused too rather than revealed as UNIMPLEMENTED.
        handler = continuation(handler_call_details)
        if handler is None:
            return grpc.unary_unary_rpc_method_handler(refuse)
        return wrap_handler(handler, wrap)

    def refusal(self, metadata: Any) -> grpc.Status | None:
        """The status refusing a call with this invocation metadata, or None to let it in."""
        values = [value for key, value in metadata or () if key == AUTHORIZATION_KEY]
        if not values:
            return MISSING_TOKEN
        scheme, _, token = str(values[0]).partition(" ")
        if len(values) != 1 or scheme.lower() != _SCHEME:
            return INVALID_TOKEN
        if not hmac.compare_digest(token.strip().encode("utf-8"), self._token):
            return INVALID_TOKEN
        return None
