"""OpenTelemetry tracing for servers and for the calls services make to each other.

`setup_tracing` installs one SDK TracerProvider for the process. Spans leave the process only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set: a batching
OTLP/gRPC exporter then sends them there, configured by the standard ``OTEL_EXPORTER_OTLP_*``
variables (headers, TLS, timeout). ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` apply too.

Trace context travels in W3C ``traceparent`` metadata: wrap outgoing channels with `traced_channel`
and the server span of the callee becomes a child of the caller's client span.

Sampling: ``OTEL_TRACES_SAMPLER`` as the SDK reads it. For the parent-based samplers
(``parentbased_traceidratio`` with ``OTEL_TRACES_SAMPLER_ARG``, ``parentbased_always_on`` - the
default - and ``parentbased_always_off``) the servers decide a call without a trace context before
the tracing interceptor runs (`call_filter`): a call left out gets no span at all, not even a
non-recording one. Measured on the serving hot path at 1% sampling: the interceptor on every call,
only to drop 99% of the spans, cost a third of the requests/s (RESULTS.md, Serving). The sampler
(`PreSampledServerRoots`) then samples the root SERVER spans that got through, and everything else
as the parent-based sampler would.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation import grpc as otel_grpc
from opentelemetry.instrumentation.grpc import grpcext
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

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
            provider = TracerProvider(
                sampler=sampler_from_env(env),
                resource=Resource.create({SERVICE_NAME: service_name}),
            )
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


class PreSampledServerRoots(Sampler):
    """``parentbased_traceidratio`` at ``ratio``, except that a root SERVER span is sampled: the
    server's `call_filter` has already let through only ``ratio`` of the calls without a trace."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self._parent_based = ParentBased(root=TraceIdRatioBased(ratio))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.SERVER and not parent.is_valid:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._parent_based.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"PreSampledServerRoots{{{self.ratio}}}"


def sampler_from_env(environ: Mapping[str, str]) -> Sampler | None:
    """`PreSampledServerRoots` for the parent-based samplers the servers can decide up front;
    None (the SDK reads the variables itself, and reports what is wrong) for any other."""
    name = (environ.get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").strip().lower()
    if name == "parentbased_always_on":
        return PreSampledServerRoots(1.0)
    if name == "parentbased_always_off":
        return PreSampledServerRoots(0.0)
    if name == "parentbased_traceidratio":
        try:
            ratio = float(environ.get("OTEL_TRACES_SAMPLER_ARG") or 1.0)
        except ValueError:
            return None
        return PreSampledServerRoots(ratio) if 0.0 <= ratio <= 1.0 else None
    return None


# Metadata keys that carry a caller's trace context (W3C trace context; baggage alone is not one).
TRACE_CONTEXT_KEYS = frozenset({"traceparent", "tracestate"})


def call_filter(
    tracer_provider: TracerProvider, chance: Callable[[], float] = random.random
) -> Callable[[Any], bool]:
    """Which calls the tracing interceptor sees: not health and reflection; and, when the
    provider samples with `PreSampledServerRoots`, calls with a trace context (their parent
    decides) and ``ratio`` of the others. ``chance`` draws from [0, 1) (tests pass their own)."""
    sampler = tracer_provider.sampler
    if not isinstance(sampler, PreSampledServerRoots) or sampler.ratio >= 1.0:
        return is_traced
    ratio = sampler.ratio

    def traced(handler_call_details: Any) -> bool:
        if not is_traced(handler_call_details):
            return False
        metadata = getattr(handler_call_details, "invocation_metadata", None) or ()
        if any(key in TRACE_CONTEXT_KEYS for key, _ in metadata):
            return True
        return chance() < ratio

    return traced


def server_interceptor(tracer_provider: TracerProvider) -> ServerInterceptor:
    """A server interceptor that opens a SERVER span per RPC, continuing the caller's trace.

    Health and reflection calls are not traced, nor the calls `call_filter` leaves out. Put it first
    (outermost) in the interceptor list.
    """
    interceptor: ServerInterceptor = otel_grpc.server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=tracer_provider, filter_=call_filter(tracer_provider)
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
