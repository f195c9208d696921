"""The asyncio twin of `build_server`, for services whose hot path must not hop between threads.

A synchronous grpc server hands every RPC from its polling thread to a pool thread and back, and
under the GIL each hand-over costs a thread switch: a bare unary RPC (no interceptors, h2load on
2 vCPUs) ran at 8,500 calls/s on the thread-per-RPC server and 17,400 on the asyncio one.
`build_aio_server` gives such a service the same cross-cutting parts as `build_server` - health,
reflection, tracing, Prometheus metrics, bearer-token auth, TLS, the error contract of
`sluice_runtime.interceptors`, message limits, graceful stop - on a ``grpc.aio`` server whose event
loop runs in a thread of its own, so the rest of the service (and its tests) stays synchronous.

Handlers may be coroutines (the hot path: they run on the loop) or plain functions (the rest:
unary-unary and unary-stream handlers run on a thread pool with the caller's trace context). A
plain function must not call ``context.abort`` (a coroutine on this server): it raises a domain
error instead, which the error interceptor turns into the status.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.instrumentation import grpc as otel_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry

from sluice_runtime.auth import BearerTokenInterceptor
from sluice_runtime.config import ServerConfig
from sluice_runtime.interceptors import (
    INFRASTRUCTURE_METHOD_PREFIXES,
    internal_error_status,
    record_status_on_span,
    split_method,
    status_from_error,
    wrap_handler,
)
from sluice_runtime.metrics import MetricsEndpoint, RpcMetrics
from sluice_runtime.server import (
    address_of,
    bind_port,
    start_metrics_endpoint,
    unique_service_names,
)
from sluice_runtime.telemetry import call_filter, setup_tracing

if TYPE_CHECKING:
    AioServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    AioServerInterceptor = grpc.aio.ServerInterceptor

logger = logging.getLogger(__name__)

RegisterAioServices = Callable[[grpc.aio.Server], Iterable[str]]
"""Adds the servicers to the aio server and returns their full service names."""

# (request, context) -> response, response stream or awaitable; wrapped with
# `sluice_runtime.interceptors.wrap_handler`, which keeps the handler's shape.
AsyncBehavior = Callable[[Any, Any], Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Any]]


class _WrappedHandlers:
    """Wrapped handlers by method, made once: the server asks the interceptors on every RPC, and
    building closures and a handler per call was a visible share of a small RPC's cost."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    def get(self, method: str, handler: Any, make: Callable[[], Any]) -> Any:
        if handler is None:  # unknown methods are not remembered: their names are the caller's
            return None
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = make()
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class AioErrorInterceptor(AioServerInterceptor):
    """Innermost: runs plain-function handlers on ``executor`` and turns exceptions into statuses.

    Same contract as `sluice_runtime.interceptors.ErrorInterceptor`: domain errors carry ErrorInfo
    (and BadRequest), anything else is INTERNAL with a trace id and logged, and a handler's own
    ``await context.abort(...)`` stands.
    """

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self._executor = executor
        self._handlers = _WrappedHandlers()

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        method = handler_call_details.method
        executor = self._executor

        def wrap(behavior: AsyncBehavior, response_streaming: bool) -> AsyncBehavior:
            # A coroutine that streams with ``await context.write(...)`` (the aio health Watch)
            # is awaited like a unary one, below.
            if response_streaming and not inspect.iscoroutinefunction(behavior):
                stream = (
                    behavior
                    if inspect.isasyncgenfunction(behavior)
                    else _threaded_stream(behavior, executor)
                )

                async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
                    try:
                        async for item in stream(request, context):
                            yield item
                    except grpc.aio.AbortError:
                        raise
                    except Exception as error:
                        await _abort_for(error, context, method)

                return streaming

            call = (
                behavior
                if inspect.iscoroutinefunction(behavior)
                else _threaded_call(behavior, executor)
            )

            async def unary(request: Any, context: Any) -> Any:
                try:
                    return await call(request, context)
                except grpc.aio.AbortError:
                    raise
                except Exception as error:
                    await _abort_for(error, context, method)

            return unary

        handler = await continuation(handler_call_details)
        return self._handlers.get(method, handler, lambda: wrap_handler(handler, wrap))


def _threaded_call(behavior: Callable[..., Any], executor: ThreadPoolExecutor) -> AsyncBehavior:
    async def call(request: Any, context: Any) -> Any:
        # copy_context: the handler sees the RPC's span (and anything else in context variables).
        run = functools.partial(contextvars.copy_context().run, behavior, request, context)
        return await asyncio.get_running_loop().run_in_executor(executor, run)

    return call


_END = object()


def _threaded_stream(behavior: Callable[..., Any], executor: ThreadPoolExecutor) -> AsyncBehavior:
    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        loop = asyncio.get_running_loop()
        variables = contextvars.copy_context()
        iterator = await loop.run_in_executor(
            executor, functools.partial(variables.run, lambda: iter(behavior(request, context)))
        )
        while True:
            item = await loop.run_in_executor(
                executor, functools.partial(variables.run, next, iterator, _END)
            )
            if item is _END:
                return
            yield item

    return stream


async def _abort_for(error: Exception, context: Any, method: str) -> None:
    span = trace.get_current_span()
    status = status_from_error(error)
    if status is None:
        status = internal_error_status(error, span, method)
    record_status_on_span(span, status)
    await context.abort(status.code, status.details, status.trailing_metadata)


class AioMetricsInterceptor(AioServerInterceptor):
    """Records every RPC in `RpcMetrics` with the code the caller receives (outside auth/errors)."""

    def __init__(self, metrics: RpcMetrics) -> None:
        self._metrics = metrics
        self._handlers = _WrappedHandlers()

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        service, method = split_method(handler_call_details.method)
        observe = self._metrics.observe

        def wrap(behavior: AsyncBehavior, response_streaming: bool) -> AsyncBehavior:
            if response_streaming and not inspect.iscoroutinefunction(behavior):

                async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
                    start = time.perf_counter()
                    failed = True
                    try:
                        async for item in behavior(request, context):
                            yield item
                        failed = False
                    finally:
                        code = _final_code(context, failed)
                        observe(service, method, code, time.perf_counter() - start)

                return streaming

            async def unary(request: Any, context: Any) -> Any:
                start = time.perf_counter()
                failed = True
                try:
                    response = await behavior(request, context)
                    failed = False
                    return response
                finally:
                    code = _final_code(context, failed)
                    observe(service, method, code, time.perf_counter() - start)

            return unary

        handler = await continuation(handler_call_details)
        return self._handlers.get(
            handler_call_details.method, handler, lambda: wrap_handler(handler, wrap)
        )


def _final_code(context: Any, failed: bool) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # the aio context reports the raw status number
        return _CODES_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    if not failed:
        return grpc.StatusCode.OK
    return grpc.StatusCode.CANCELLED if context.cancelled() else grpc.StatusCode.UNKNOWN


_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class AioBearerTokenInterceptor(AioServerInterceptor):
    """Refuses RPCs without the bearer token (health and reflection stay open), as
    `sluice_runtime.auth.BearerTokenInterceptor` does on the synchronous server."""

    def __init__(self, token: str) -> None:
        self._check = BearerTokenInterceptor(token)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler_call_details.method.startswith(INFRASTRUCTURE_METHOD_PREFIXES):
            return handler
        refusal = self._check.refusal(handler_call_details.invocation_metadata)
        if refusal is None:
            return handler

        async def refuse(request: Any, context: Any) -> None:
            await context.abort(refusal.code, refusal.details, refusal.trailing_metadata)

        async def refuse_stream(request: Any, context: Any) -> AsyncIterator[None]:
            await refuse(request, context)
            yield None  # pragma: no cover - abort raised

        if handler is None:  # unknown methods are refused too, not revealed as UNIMPLEMENTED
            return grpc.unary_unary_rpc_method_handler(refuse)
        return wrap_handler(
            handler, lambda _behavior, streaming: refuse_stream if streaming else refuse
        )


class ThreadSafeHealth:
    """The aio health servicer, callable from any thread (as `RunningServer.health` is)."""

    def __init__(self, servicer: AioHealthServicer, loop: asyncio.AbstractEventLoop) -> None:
        self.servicer = servicer
        self._loop = loop

    def set(self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        self._run(self.servicer.set(service, status))

    def enter_graceful_shutdown(self) -> None:
        self._run(self.servicer.enter_graceful_shutdown())

    def _run(self, coroutine: Any) -> None:
        if _on_loop(self._loop):
            self._loop.create_task(coroutine)
            return
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class RunningAioServer:
    """A started aio server and its loop thread; the same surface as `RunningServer`.

    Attributes:
        server: the ``grpc.aio.Server`` (use it only from ``loop``).
        loop: the event loop the server and the coroutine handlers run on.
        port, address, services, health, registry, metrics_port, tracer_provider, config: as on
            `RunningServer`.
    """

    def __init__(
        self,
        *,
        server: grpc.aio.Server,
        loop: asyncio.AbstractEventLoop,
        loop_thread: threading.Thread,
        executor: ThreadPoolExecutor,
        port: int,
        services: tuple[str, ...],
        health: ThreadSafeHealth,
        registry: CollectorRegistry,
        metrics_endpoint: MetricsEndpoint | None,
        tracer_provider: TracerProvider,
        config: ServerConfig,
    ) -> None:
        self.server = server
        self.loop = loop
        self.port = port
        self.address = address_of(config.host, port)
        self.services = services
        self.health = health
        self.registry = registry
        self.metrics_port = None if metrics_endpoint is None else metrics_endpoint.port
        self.tracer_provider = tracer_provider
        self.config = config
        self._loop_thread = loop_thread
        self._executor = executor
        self._metrics_endpoint = metrics_endpoint
        self._lock = threading.Lock()
        self._terminated: threading.Event | None = None

    def stop(self, grace: float | None = None, *, wait: bool = True) -> threading.Event:
        """Health NOT_SERVING, refuse new RPCs, give those in flight ``grace`` seconds (None:
        cancel them now), then end the loop. Safe to call again with a shorter grace."""
        with self._lock:
            first = self._terminated is None
            if first:
                self._terminated = threading.Event()
                if self._metrics_endpoint is not None:
                    self._metrics_endpoint.close()
            terminated = self._terminated
            assert terminated is not None
        if self.loop.is_closed() or not self._loop_thread.is_alive():
            terminated.set()
        else:
            asyncio.run_coroutine_threadsafe(self._stop(grace, first, terminated), self.loop)
        if wait:
            terminated.wait()
            self._loop_thread.join()
        return terminated

    async def _stop(self, grace: float | None, first: bool, terminated: threading.Event) -> None:
        if first:
            await self.health.servicer.enter_graceful_shutdown()
        await self.server.stop(grace)
        if first:
            self._executor.shutdown(wait=False)
            terminated.set()
            self.loop.call_soon(self.loop.stop)

    def __enter__(self) -> RunningAioServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(0)


def build_aio_server(
    config: ServerConfig,
    *,
    register: RegisterAioServices,
    service_name: str | None = None,
    span_exporter: SpanExporter | None = None,
) -> RunningAioServer:
    """Build, bind and start an aio server on a new event-loop thread; see `build_server` for the
    arguments. ``register`` runs on the loop thread. Interceptors, outermost first: tracing,
    metrics, auth, errors."""
    name = service_name or config.service
    tracer_provider = setup_tracing(name, span_exporter=span_exporter)
    registry = CollectorRegistry()
    executor = ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix=f"{name}-rpc")
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run_loop() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_forever()
        # Let cancelled handlers unwind before the loop goes.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run_loop, name=f"{name}-aio", daemon=True)
    thread.start()
    started.wait()

    async def start() -> tuple[grpc.aio.Server, AioHealthServicer, tuple[str, ...], int]:
        interceptors: list[AioServerInterceptor] = [
            otel_grpc.aio_server_interceptor(  # type: ignore[no-untyped-call]
                tracer_provider=tracer_provider, filter_=call_filter(tracer_provider)
            ),
            AioMetricsInterceptor(RpcMetrics(registry)),
        ]
        if config.auth_token is not None:
            interceptors.append(AioBearerTokenInterceptor(config.auth_token))
        interceptors.append(AioErrorInterceptor(executor))
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_send_message_length", config.max_message_bytes),
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        try:
            services = unique_service_names(register(server))
            health_servicer = AioHealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
            reflection.enable_server_reflection(
                [*services, "grpc.health.v1.Health", reflection.SERVICE_NAME], server
            )
            port = bind_port(server, config)
            await server.start()
        except BaseException:
            await server.stop(None)
            raise
        for service in ("", *services):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        return server, health_servicer, services, port

    metrics_endpoint: MetricsEndpoint | None = None
    try:
        if config.metrics_port is not None:
            metrics_endpoint = start_metrics_endpoint(registry, config)
        server, health_servicer, services, port = asyncio.run_coroutine_threadsafe(
            start(), loop
        ).result()
    except BaseException:
        if metrics_endpoint is not None:
            metrics_endpoint.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        executor.shutdown(wait=False)
        raise
    return RunningAioServer(
        server=server,
        loop=loop,
        loop_thread=thread,
        executor=executor,
        port=port,
        services=services,
        health=ThreadSafeHealth(health_servicer, loop),
        registry=registry,
        metrics_endpoint=metrics_endpoint,
        tracer_provider=tracer_provider,
        config=config,
    )
