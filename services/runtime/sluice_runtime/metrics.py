"""Prometheus metrics of the RPCs a server handles, in a registry of its own.

- ``sluice_rpc_requests_total{service,method,code}``: RPCs finished, by final status code.
- ``sluice_rpc_latency_seconds{service,method,code}``: time from the handler's start to the end of
  its response (the whole stream for streaming responses).

``service`` is the full gRPC service name (``sluice.metadata.v1.MetadataService``), ``method`` the
RPC name and ``code`` the status code name (``OK``, ``NOT_FOUND``...). Calls to methods the server
does not implement are not counted, so unknown names cannot grow the label set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from sluice_runtime.interceptors import (
    Behavior,
    MethodHandler,
    ServerInterceptor,
    split_method,
    wrap_handler,
)

LABELS = ("service", "method", "code")
# Prometheus' defaults stop at 10 s; long uploads and Watch streams need a few wider buckets.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)


class RpcMetrics:
    """The RPC counter and latency histogram, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "sluice_rpc_requests",
            "RPCs finished, by gRPC service, method and final status code.",
            LABELS,
            registry=registry,
        )
        self.latency = Histogram(
            "sluice_rpc_latency_seconds",
            "Seconds from the start of an RPC handler to the end of its response.",
            LABELS,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )

        # labels() checks and locks on every call; the children of a label set never change.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe(self, service: str, method: str, code: grpc.StatusCode, seconds: float) -> None:
        labels = (service, method, code.name)
        children = self._children.get(labels)
        if children is None:
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[labels] = children
        children[0].inc()
        children[1].observe(seconds)


class MetricsInterceptor(ServerInterceptor):
    """Records every RPC in `RpcMetrics`, with the status code the caller receives.

    Place it outside the error and auth interceptors: their aborts then show as the final code.
    """

    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], MethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        service, method = split_method(handler_call_details.method)
        observe = self._metrics.observe

        def wrap(behavior: Behavior, response_streaming: bool) -> Behavior:
            if response_streaming:

                def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    start = time.perf_counter()
                    failed = True
                    try:
                        yield from behavior(request, context)
                        failed = False
                    finally:
                        code = _final_code(context, failed)
                        observe(service, method, code, time.perf_counter() - start)

                return streaming

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                failed = True
                try:
                    response = behavior(request, context)
                    failed = False
                    return response
                finally:
                    code = _final_code(context, failed)
                    observe(service, method, code, time.perf_counter() - start)

            return unary

        return wrap_handler(continuation(handler_call_details), wrap)


def _final_code(context: grpc.ServicerContext, failed: bool) -> grpc.StatusCode:
    # abort() and set_code() leave the code on the context (grpc's ServicerContext.code()).
    code_of = getattr(context, "code", None)
    code: grpc.StatusCode | None = code_of() if code_of is not None else None
    if code is not None:
        return code
    if not failed:
        return grpc.StatusCode.OK
    if not context.is_active():
        return grpc.StatusCode.CANCELLED  # the stream was closed because the caller went away
    return grpc.StatusCode.UNKNOWN  # what grpc answers for an exception it has to catch itself


class MetricsEndpoint:
    """Serves a registry at ``http://host:port/metrics`` from a daemon thread."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        server, thread = start_http_server(port, addr=host, registry=registry)
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.port: int = server.server_port

    def close(self) -> None:
        """Stops serving and frees the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
