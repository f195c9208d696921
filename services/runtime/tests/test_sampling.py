"""Sampling decided before the tracing interceptor: the sampler, the call filter, and a real aio
server (in a process of its own: the tracer provider and its sampler are process-wide)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from sluice_runtime.telemetry import (
    PreSampledServerRoots,
    call_filter,
    is_traced,
    sampler_from_env,
)

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
TRACEPARENT = f"00-{TRACE_ID:032x}-b7ad6b7169203331-01"
RATIO = "parentbased_traceidratio"


@pytest.mark.parametrize(
    ("variables", "ratio"),
    [
        ({}, 1.0),  # the SDK's default, parentbased_always_on
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, 0.0),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
            0.01,
        ),
        ({"OTEL_TRACES_SAMPLER": " ParentBased_TraceIdRatio "}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}, None),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, None),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, None),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, None),
    ],
)
def test_only_parent_based_samplers_are_decided_up_front(
    variables: dict[str, str], ratio: float | None
) -> None:
    sampler = sampler_from_env(variables)
    if ratio is None:
        assert sampler is None  # the SDK reads (and complains about) the variables itself
    else:
        assert isinstance(sampler, PreSampledServerRoots) and sampler.ratio == ratio


def _parent(sampled: bool) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    context = SpanContext(TRACE_ID, 0xB7AD6B7169203331, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(context))


def test_root_server_spans_are_sampled_the_rest_follow_parent_and_ratio() -> None:
    never = PreSampledServerRoots(0.0)
    sample = Decision.RECORD_AND_SAMPLE
    assert never.should_sample(None, 1, "rpc", SpanKind.SERVER).decision is sample
    assert never.should_sample(None, 1, "work", SpanKind.INTERNAL).decision is Decision.DROP
    sampled, unsampled = _parent(True), _parent(False)
    assert never.should_sample(sampled, TRACE_ID, "rpc", SpanKind.SERVER).decision is sample  # type: ignore[arg-type]
    assert (
        never.should_sample(unsampled, TRACE_ID, "rpc", SpanKind.SERVER).decision is Decision.DROP
    )  # type: ignore[arg-type]
    always = PreSampledServerRoots(1.0)
    assert always.should_sample(None, 1, "work", SpanKind.CLIENT).decision is sample


@dataclass
class _Call:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def test_the_call_filter_lets_through_traced_calls_and_ratio_of_the_others() -> None:
    draws = iter([0.004, 0.5, 0.009, 0.01])
    provider = TracerProvider(sampler=PreSampledServerRoots(0.01))
    traced = call_filter(provider, chance=lambda: next(draws))
    root = _Call("/pkg.Svc/Predict")
    assert [traced(root) for _ in range(4)] == [True, False, True, False]
    assert traced(_Call("/pkg.Svc/Predict", (("traceparent", TRACEPARENT),)))
    assert not traced(_Call("/grpc.health.v1.Health/Check", (("traceparent", TRACEPARENT),)))
    # Every call at ratio 1, and with any other sampler: the SDK's own sampler decides.
    assert call_filter(TracerProvider(sampler=PreSampledServerRoots(1.0))) is is_traced
    assert call_filter(TracerProvider()) is is_traced


SERVER_SCRIPT = """
import json, sys, grpc
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sluice_runtime.aio_server import build_aio_server
from sluice_runtime.config import ServerConfig

async def echo(request, context):
    return request

def register(server):
    handler = grpc.unary_unary_rpc_method_handler(
        echo, StringValue.FromString, StringValue.SerializeToString)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("test.Echo", {"Echo": handler})])
    return ["test.Echo"]

spans = InMemorySpanExporter()
running = build_aio_server(
    ServerConfig(service="echo", host="127.0.0.1", port=0), register=register, span_exporter=spans)
with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
    call = channel.unary_unary(
        "/test.Echo/Echo", StringValue.SerializeToString, StringValue.FromString)
    for _ in range(20):
        call(StringValue(value="root"), timeout=10)
    for parent in sys.argv[1:]:
        call(StringValue(value="child"), timeout=10, metadata=(("traceparent", parent),))
running.stop(5)
print(json.dumps([f"{span.context.trace_id:032x}" for span in spans.get_finished_spans()]))
"""


def _spans_of_a_server(ratio: str, *parents: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"OTEL_TRACES_SAMPLER": RATIO, "OTEL_TRACES_SAMPLER_ARG": ratio}
    done = subprocess.run(
        [sys.executable, "-c", SERVER_SCRIPT, *parents],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    trace_ids: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return trace_ids


def test_a_server_at_ratio_0_traces_only_calls_whose_caller_sampled_them() -> None:
    unsampled = TRACEPARENT[:-2] + "00"
    assert _spans_of_a_server("0", TRACEPARENT, unsampled) == [f"{TRACE_ID:032x}"]


def test_a_server_at_ratio_1_traces_every_call() -> None:
    trace_ids = _spans_of_a_server("1", TRACEPARENT)
    assert len(trace_ids) == 21 and trace_ids.count(f"{TRACE_ID:032x}") == 1
