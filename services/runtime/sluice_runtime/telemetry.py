"""OpenTelemetry tracing for servers and for the calls services make to each other.

`setup_tracing` installs one SDK TracerProvider for the process. Spans leave the process only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set: a batching
OTLP/gRPC exporter then sends them there, configured by the standard ``OTEL_EXPORTER_OTLP_*``
variables (headers, TLS, timeout). ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` apply too.

Trace context travels in W3C ``traceparent`` metadata: wrap outgoing channels with `traced_channel`
and the server span of the callee becomes a child of the caller's client span.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation import grpc as otel_grpc
from opentelemetry.instrumentation.grpc import grpcext
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from sluice_runtime.interceptors import INFRASTRUCTURE_METHOD_PREFIXES, ServerInterceptor

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_attached_exporters: weakref.WeakSet[SpanExporter] = weakref.WeakSet()


def setup_tracing(
    service_name: str,
    *,
    span_exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> TracerProvider:
    """Install the process-wide TracerProvider once and return it; later calls return the same one.

    Args:
        service_name: the ``service.name`` resource attribute (``OTEL_SERVICE_NAME`` wins); only the
            first call's value counts.
        span_exporter: an extra exporter fed synchronously as each span ends (for tests, e.g. an
            ``InMemorySpanExporter``); attached once, also when the provider exists already.
        environ: where to look for the OTLP endpoint (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
            if any(env.get(name) for name in OTLP_ENDPOINT_VARIABLES):
                provider.add_span_processor(_otlp_processor())
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is not provider:
                # Someone installed a non-SDK provider first; our servers still use this one.
                logger.warning("a tracer provider was installed already; keeping it global")
        if span_exporter is not None and span_exporter not in _attached_exporters:
            provider.add_span_processor(SimpleSpanProcessor(span_exporter))
            _attached_exporters.add(span_exporter)
        return provider


def _otlp_processor() -> Any:
    # Imported here: the exporter is only needed (and only loaded) when spans leave the process.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(OTLPSpanExporter())


def is_traced(handler_call_details: Any) -> bool:
    # Health probes arrive every few seconds; their spans would drown the useful ones.
    method = getattr(handler_call_details, "method", "") or ""
    return not str(method).startswith(INFRASTRUCTURE_METHOD_PREFIXES)


def server_interceptor(tracer_provider: TracerProvider | None = None) -> ServerInterceptor:
    """A server interceptor that opens a SERVER span per RPC, continuing the caller's trace.

    Health and reflection calls are not traced. Put it first (outermost) in the interceptor list.
    """
    interceptor: ServerInterceptor = otel_grpc.server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=tracer_provider, filter_=is_traced
    )
    return interceptor


def client_interceptor(tracer_provider: TracerProvider | None = None) -> Any:
    """A client interceptor that opens a CLIENT span per call and sends ``traceparent``.

    It is an OpenTelemetry ``grpcext`` interceptor, not a ``grpc.*ClientInterceptor``: apply it
    with `traced_channel` (``grpc.intercept_channel`` refuses it).
    """
    return otel_grpc.client_interceptor(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]


def traced_channel(
    channel: grpc.Channel, tracer_provider: TracerProvider | None = None
) -> grpc.Channel:
    """``channel`` with tracing: use it for every call a service makes to another service."""
    traced: grpc.Channel = grpcext.intercept_channel(  # type: ignore[no-untyped-call]
        channel, client_interceptor(tracer_provider)
    )
    return traced
