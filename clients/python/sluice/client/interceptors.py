"""Client interceptors: retries with backoff, and headers (the bearer token) on every call."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import grpc

from sluice.client.config import RetryPolicy

log = logging.getLogger("sluice.client")

# UNAVAILABLE means the call never reached a server that acted on it, so any call may be retried.
ALWAYS_RETRYABLE: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE})

Metadata = tuple[tuple[str, str | bytes], ...]

# grpc's interceptor classes are generic only in the type stubs.
if TYPE_CHECKING:
    _UnaryUnaryInterceptor = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStreamInterceptor = grpc.UnaryStreamClientInterceptor[Any, Any]
else:
    _UnaryUnaryInterceptor = grpc.UnaryUnaryClientInterceptor
    _UnaryStreamInterceptor = grpc.UnaryStreamClientInterceptor


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Metadata | None  # type: ignore[assignment]
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def _replace_details(
    details: grpc.ClientCallDetails,
    *,
    timeout: float | None = None,
    metadata: Metadata | None = None,
) -> _CallDetails:
    return _CallDetails(
        method=details.method,
        timeout=timeout if timeout is not None else details.timeout,
        metadata=metadata if metadata is not None else details.metadata,
        credentials=details.credentials,
        wait_for_ready=details.wait_for_ready,
        compression=getattr(details, "compression", None),
    )


class HeaderInterceptor(_UnaryUnaryInterceptor, _UnaryStreamInterceptor):
    """Adds fixed metadata (for example ``authorization: Bearer <token>``) to every call."""

    def __init__(self, headers: Sequence[tuple[str, str]]) -> None:
        self._headers: Metadata = tuple(headers)

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        existing = cast(Metadata, tuple(details.metadata or ()))
        return _replace_details(details, metadata=existing + self._headers)

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        return continuation(self._details(client_call_details), request)


class _Backoff:
    """The retry schedule of one logical call, bounded by attempts and by its deadline."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float | None,
        retryable: frozenset[grpc.StatusCode],
        clock: Callable[[], float],
        rng: Callable[[], float],
    ) -> None:
        self._policy = policy
        self._retryable = retryable
        self._clock = clock
        self._rng = rng
        self._deadline = None if timeout is None else clock() + timeout
        self.attempt = 1

    def remaining(self) -> float | None:
        """Seconds left of the overall deadline (at least a sliver, so gRPC reports the expiry)."""
        if self._deadline is None:
            return None
        return max(self._deadline - self._clock(), 0.001)

    def wait_before_retry(self, code: grpc.StatusCode | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and report `code`."""
        if code not in self._retryable or self.attempt >= self._policy.max_attempts:
            return None
        wait = self._policy.backoff(self.attempt, self._rng())
        if self._deadline is not None and self._clock() + wait >= self._deadline:
            return None  # the deadline would pass while waiting: report the real failure now
        self.attempt += 1
        return wait


class RetryInterceptor(_UnaryUnaryInterceptor, _UnaryStreamInterceptor):
    """Retries failed calls whose status code is retryable, with exponential backoff and jitter.

    The call's timeout is the deadline of the whole call, retries included; each attempt gets
    what is left of it. A server stream is retried only while it has not delivered a message, so
    no message is ever seen twice.

    Args:
        policy: attempts and backoff.
        retryable: status codes to retry; UNAVAILABLE is always among them. Add ABORTED only for
            services whose writes are transactions (nothing half-done to repeat).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        retryable: Iterable[grpc.StatusCode] = (),
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.retryable = ALWAYS_RETRYABLE | frozenset(retryable)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng

    def _backoff(self, details: grpc.ClientCallDetails) -> _Backoff:
        return _Backoff(self.policy, details.timeout, self.retryable, self._clock, self._rng)

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        backoff = self._backoff(client_call_details)
        while True:
            details = _replace_details(client_call_details, timeout=backoff.remaining())
            outcome = continuation(details, request)
            # For a blocking call the outcome is complete here; code() is None on success.
            code = outcome.code()
            wait = backoff.wait_before_retry(code)
            if wait is None:
                return outcome
            log.debug(
                "%s failed with %s; attempt %d in %.3fs",
                client_call_details.method,
                code.name if code else code,
                backoff.attempt,
                wait,
            )
            self._sleep(wait)

    def intercept_unary_stream(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        backoff = self._backoff(client_call_details)

        def start() -> Any:
            details = _replace_details(client_call_details, timeout=backoff.remaining())
            return continuation(details, request)

        return _RetryingStream(start, backoff, self._sleep, client_call_details.method)


class _RetryingStream(grpc.Call):  # type: ignore[misc]
    """A server stream that restarts the call on a retryable failure before its first message."""

    def __init__(
        self,
        start: Callable[[], Any],
        backoff: _Backoff,
        sleep: Callable[[float], None],
        method: str,
    ) -> None:
        self._start = start
        self._backoff = backoff
        self._sleep = sleep
        self._method = method
        self._received = False
        self._cancelled = False
        self._call = start()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                message = next(self._call)
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                wait = None
                if not self._received and not self._cancelled:
                    wait = self._backoff.wait_before_retry(code)
                if wait is None:
                    raise
                log.debug("%s failed with %s; retry %d", self._method, code, self._backoff.attempt)
                self._sleep(wait)
                self._call = self._start()
                continue
            self._received = True
            return message

    # grpc.Call, delegated to the current attempt (which may be a plain iterator when another
    # interceptor, such as OpenTelemetry's, wrapped it).
    def _delegate(self, name: str, default: Any = None) -> Any:
        method = getattr(self._call, name, None)
        return method() if method is not None else default

    def cancel(self) -> bool:
        self._cancelled = True
        return bool(self._delegate("cancel", False))

    def is_active(self) -> bool:
        return bool(self._delegate("is_active", False))

    def time_remaining(self) -> float:
        return cast(float, self._delegate("time_remaining"))

    def add_callback(self, callback: Callable[[], None]) -> bool:
        add = getattr(self._call, "add_callback", None)
        return bool(add(callback)) if add is not None else False

    def code(self) -> grpc.StatusCode:
        return cast(grpc.StatusCode, self._delegate("code"))

    def details(self) -> str:
        return cast(str, self._delegate("details"))

    def initial_metadata(self) -> Any:
        return self._delegate("initial_metadata")

    def trailing_metadata(self) -> Any:
        return self._delegate("trailing_metadata")
