"""The composition root of a Sluice gRPC server: one place that wires every cross-cutting concern.

A service's ``__main__`` is two lines::

    config = ServerConfig.from_env("metadata", default_port=50051)
    serve(config, register=register_metadata_service)

where ``register(server)`` adds the servicers and returns their full service names. Every server
gets grpc.health.v1, server reflection, tracing, Prometheus metrics, optional bearer-token auth,
TLS or mutual TLS, the error interceptor, message size limits and graceful shutdown on SIGTERM or
SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType, TracebackType
from typing import Generic, Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry

from sluice_runtime.auth import BearerTokenInterceptor
from sluice_runtime.config import ConfigError, ServerConfig, env_prefix
from sluice_runtime.interceptors import ErrorInterceptor, ServerInterceptor
from sluice_runtime.logs import configure_logging
from sluice_runtime.metrics import MetricsEndpoint, MetricsInterceptor, RpcMetrics
from sluice_runtime.telemetry import server_interceptor, setup_tracing

RegisterServices = Callable[[grpc.Server], Iterable[str]]
"""Adds a service's servicers to the server and returns their full names (``pkg.v1.Service``)."""

logger = logging.getLogger(__name__)


class RunningServer:
    """A started server and what goes with it; `stop` it when done (or use it in a ``with``).

    Attributes:
        server: the grpc.Server, started.
        port: the bound gRPC port (the real one when the configured port was 0).
        address: ``host:port`` the server listens on.
        services: the full names of the registered services (health and reflection excluded).
        health: the health servicer; every registered service and ``""`` start SERVING.
        registry: this server's Prometheus registry.
        metrics_port: the bound port of ``/metrics``, or None when metrics are not served.
        tracer_provider: the provider that records this server's spans.
        config: the settings it was built from.
    """

    def __init__(
        self,
        *,
        server: grpc.Server,
        executor: ThreadPoolExecutor,
        port: int,
        services: tuple[str, ...],
        health_servicer: health.HealthServicer,
        registry: CollectorRegistry,
        metrics_endpoint: MetricsEndpoint | None,
        tracer_provider: TracerProvider,
        config: ServerConfig,
    ) -> None:
        self.server = server
        self.port = port
        self.address = address_of(config.host, port)
        self.services = services
        self.health = health_servicer
        self.registry = registry
        self.metrics_port = None if metrics_endpoint is None else metrics_endpoint.port
        self.tracer_provider = tracer_provider
        self.config = config
        self._executor = executor
        self._metrics_endpoint = metrics_endpoint
        self._lock = threading.Lock()
        self._terminated: threading.Event | None = None

    def stop(self, grace: float | None = None, *, wait: bool = True) -> threading.Event:
        """Stop taking RPCs and let those in flight finish for up to ``grace`` seconds.

        Health turns NOT_SERVING first, new RPCs are refused at once, the metrics endpoint closes
        and calls still running after ``grace`` are cancelled (None: cancel them now). Safe to call
        again, for example with a shorter grace. Returns the event set once the server has
        terminated; with ``wait`` (the default) it is set on return.
        """
        with self._lock:
            if self._terminated is None:
                self.health.enter_graceful_shutdown()
                if self._metrics_endpoint is not None:
                    self._metrics_endpoint.close()
            terminated = self.server.stop(grace)
            if self._terminated is None:
                self._terminated = terminated
                threading.Thread(
                    target=_shutdown_after, args=(terminated, self._executor), daemon=True
                ).start()
        if wait:
            terminated.wait()
        return terminated

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(0)


class StoppableServer(Protocol):
    """What `wait_for_shutdown_signal` needs: `RunningServer` or the aio `RunningAioServer`."""

    config: ServerConfig

    def stop(self, grace: float | None = None, *, wait: bool = True) -> threading.Event: ...


CoreT = TypeVar("CoreT")


class ServiceServer(Generic[CoreT]):
    """A started server and the core it serves, stopped together (also in a ``with``).

    `stop` runs ``before_stop`` (e.g. cancel jobs so their Watch streams end), drains the RPCs for
    ``grace`` seconds, then runs ``after_stop`` (worker pools, stores the service opened).
    """

    def __init__(
        self,
        running: RunningServer,
        core: CoreT,
        *,
        before_stop: Callable[[], object] | None = None,
        after_stop: Callable[[], object] | None = None,
    ) -> None:
        self.running = running
        self.core = core
        self._before_stop = before_stop
        self._after_stop = after_stop

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def address(self) -> str:
        return self.running.address

    def stop(self, grace: float | None = None) -> None:
        if self._before_stop is not None:
            self._before_stop()
        self.running.stop(grace)
        if self._after_stop is not None:
            self._after_stop()

    def __enter__(self) -> ServiceServer[CoreT]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(0)


def build_server(
    config: ServerConfig,
    *,
    register: RegisterServices,
    service_name: str | None = None,
    span_exporter: SpanExporter | None = None,
) -> RunningServer:
    """Build, bind and start a server; the returned `RunningServer` says where it listens.

    Args:
        config: the settings (port 0 binds a free port, reported as ``RunningServer.port``).
        register: adds the servicers and returns their full service names, which health and
            reflection then announce.
        service_name: the name in traces and logs; default ``config.service``.
        span_exporter: an extra span exporter (tests pass an ``InMemorySpanExporter``).

    Interceptors run outermost first: tracing (so every span covers the whole call), metrics (so
    the code counted is the final one), auth (so refused calls never reach the handler), errors
    (innermost, next to the handler whose exceptions it converts).
    """
    name = service_name or config.service
    tracer_provider = setup_tracing(name, span_exporter=span_exporter)
    registry = CollectorRegistry()
    interceptors: list[ServerInterceptor] = [
        server_interceptor(tracer_provider),
        MetricsInterceptor(RpcMetrics(registry)),
    ]
    if config.auth_token is not None:
        interceptors.append(BearerTokenInterceptor(config.auth_token))
    interceptors.append(ErrorInterceptor())

    executor = ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix=f"{name}-rpc")
    server = grpc.server(
        executor,
        interceptors=interceptors,
        options=[
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.max_receive_message_length", config.max_message_bytes),
            # A second process on the same port must fail, not share (and split) the traffic.
            ("grpc.so_reuseport", 0),
        ],
    )
    metrics_endpoint: MetricsEndpoint | None = None
    try:
        services = unique_service_names(register(server))
        health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        port = bind_port(server, config)
        if config.metrics_port is not None:
            metrics_endpoint = start_metrics_endpoint(registry, config)
        server.start()
    except BaseException:
        server.stop(None)
        executor.shutdown(wait=False)
        if metrics_endpoint is not None:
            metrics_endpoint.close()
        raise
    for service in ("", *services):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(
        server=server,
        executor=executor,
        port=port,
        services=services,
        health_servicer=health_servicer,
        registry=registry,
        metrics_endpoint=metrics_endpoint,
        tracer_provider=tracer_provider,
        config=config,
    )


def serve(
    config: ServerConfig,
    *,
    register: RegisterServices,
    service_name: str | None = None,
    span_exporter: SpanExporter | None = None,
) -> None:
    """Run a server until SIGTERM or SIGINT, then drain it gracefully; call from the main thread.

    Configures logging from ``config``, builds the server with `build_server`, logs the endpoint
    and waits. On the first signal health turns NOT_SERVING and in-flight RPCs get
    ``config.grace_seconds`` to finish; a second signal cancels them at once.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("serve() must run in the main thread: it installs signal handlers")
    name = service_name or config.service
    configure_logging(config.log_level, config.log_format, service=name)
    running = build_server(
        config, register=register, service_name=name, span_exporter=span_exporter
    )
    security = "mutual TLS" if config.mutual_tls else "TLS" if config.tls_enabled else "plaintext"
    logger.info(
        "%s serving %s on %s (%s)",
        name,
        ", ".join(running.services) or "no services",
        running.address,
        security,
        extra={"address": running.address, "port": running.port, "security": security},
    )
    if running.metrics_port is not None:
        logger.info(
            "metrics on http://%s/metrics",
            address_of(config.host, running.metrics_port),
            extra={"metrics_port": running.metrics_port},
        )

    wait_for_shutdown_signal(running, name=name)


def wait_for_shutdown_signal(
    running: StoppableServer,
    *,
    name: str,
    drain: Callable[[float], object] | None = None,
) -> None:
    """Block until SIGTERM or SIGINT, then drain the server; call from the main thread.

    On the first signal in-flight RPCs get ``grace_seconds`` to finish through ``drain`` (default
    ``running.stop``; a service that owns more than the server, such as a model data plane, passes
    its own stop). A second signal cancels the RPCs at once.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("signal handlers can only be installed from the main thread")
    grace = running.config.grace_seconds
    stop_requested = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        if stop_requested.is_set():
            running.stop(None, wait=False)  # second signal: do not wait for the grace period
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop_requested.wait()
        logger.info("%s received: draining for up to %g s", received[0], grace)
        (drain or running.stop)(grace)
    finally:
        running.stop(None)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("%s stopped", name)


def unique_service_names(names: Iterable[str]) -> tuple[str, ...]:
    unique: dict[str, None] = {}
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"register() must return full service names, got {name!r}")
        unique[name] = None
    return tuple(unique)


def address_of(host: str, port: int) -> str:
    # IPv6 literals need brackets before the port.
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def bind_port(server: grpc.Server | grpc.aio.Server, config: ServerConfig) -> int:
    address = address_of(config.host, config.port)
    try:
        if config.tls_enabled:
            return server.add_secure_port(address, _server_credentials(config))
        return server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(
            f"cannot listen on {address} (SLUICE_HOST, {env_prefix(config.service)}PORT): "
            "is the port taken or the address not local?"
        ) from error


def _server_credentials(config: ServerConfig) -> grpc.ServerCredentials:
    assert config.tls_cert is not None and config.tls_key is not None
    certificate = _read_pem("SLUICE_TLS_CERT", config.tls_cert)
    private_key = _read_pem("SLUICE_TLS_KEY", config.tls_key)
    client_ca = (
        None
        if config.tls_client_ca is None
        else _read_pem("SLUICE_TLS_CLIENT_CA", config.tls_client_ca)
    )
    return grpc.ssl_server_credentials(
        [(private_key, certificate)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _read_pem(variable: str, path: object) -> bytes:
    try:
        with open(str(path), "rb") as pem:
            return pem.read()
    except OSError as error:
        raise ConfigError(variable, f"cannot read {path}: {error.strerror}") from error


def start_metrics_endpoint(registry: CollectorRegistry, config: ServerConfig) -> MetricsEndpoint:
    assert config.metrics_port is not None
    try:
        return MetricsEndpoint(registry, config.host, config.metrics_port)
    except OSError as error:
        address = address_of(config.host, config.metrics_port)
        raise OSError(
            f"cannot serve metrics on {address} ({env_prefix(config.service)}METRICS_PORT): "
            f"{error.strerror or error}"
        ) from error


def _shutdown_after(terminated: threading.Event, executor: ThreadPoolExecutor) -> None:
    # grpc does not own the executor; release its threads once no RPC can use them.
    terminated.wait()
    executor.shutdown(wait=False)
