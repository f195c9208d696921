"""Prometheus metrics of the data plane, per model and version.

- ``sluice_serving_requests_total{model,version,protocol,code}``: prediction requests by final code.
- ``sluice_serving_request_latency_seconds{model,version,protocol}``: request handling time.
- ``sluice_serving_batch_size{model,version}``: rows per model call (1 for unbatched calls).
- ``sluice_serving_model_load_seconds{model,version}``: fetch + load + warm-up time of a version.
- ``sluice_serving_model_loads_total{model,result}``: version loads, ``available`` or ``failed``.
- ``sluice_serving_schema_violations_total{model,feature,problem,action}``.
- ``sluice_serving_request_log_rows_total{model}``, ``..._files_total{model}``,
  ``..._dropped_total{model}``, ``..._write_errors_total{model}``.

Requests for models the server does not know are counted under ``model="<unknown>"``, so callers
cannot grow the label set.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

UNKNOWN_MODEL = "<unknown>"
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServingMetrics:
    """The data plane's metrics in ``registry`` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sluice_serving_requests",
            "Prediction requests by model, version, protocol and final status code.",
            ("model", "version", "protocol", "code"),
            registry=r,
        )
        self.latency = Histogram(
            "sluice_serving_request_latency_seconds",
            "Seconds spent handling a prediction request, decoding and encoding included.",
            ("model", "version", "protocol"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "sluice_serving_batch_size",
            "Rows per model call.",
            ("model", "version"),
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.load_seconds = Gauge(
            "sluice_serving_model_load_seconds",
            "Seconds to fetch, load and warm up a model version.",
            ("model", "version"),
            registry=r,
        )
        self.loads = Counter(
            "sluice_serving_model_loads",
            "Model version loads by result (available or failed).",
            ("model", "result"),
            registry=r,
        )
        self.schema_violations = Counter(
            "sluice_serving_schema_violations",
            "Data schema violations in requests, by feature, problem and action (reject or flag).",
            ("model", "feature", "problem", "action"),
            registry=r,
        )
        self.log_rows = Counter(
            "sluice_serving_request_log_rows",
            "Rows written to the request log.",
            ("model",),
            registry=r,
        )
        self.log_files = Counter(
            "sluice_serving_request_log_files",
            "Parquet files written to the request log.",
            ("model",),
            registry=r,
        )
        self.log_dropped = Counter(
            "sluice_serving_request_log_dropped",
            "Sampled requests dropped because the request log queue was full.",
            ("model",),
            registry=r,
        )
        self.log_write_errors = Counter(
            "sluice_serving_request_log_write_errors",
            "Request log files that could not be written (their rows are lost).",
            ("model",),
            registry=r,
        )

        # labels() checks and locks on every call: the per-request children are kept here.
        self._request_children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}

    def count_request(
        self, model: str, version: str, protocol: str, code: str, seconds: float
    ) -> None:
        """One finished prediction request: its count by code and its latency."""
        key = (model, version, protocol, code)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(model, version, protocol, code),
                self.latency.labels(model, version, protocol),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def forwarder(self) -> Collector:
        """A collector that exposes these metrics inside another registry (the server's)."""
        return _Forward(self.registry)

    def forget_version(self, model: str, version: int) -> None:
        """Drop the per-version gauge of an unloaded version (counters keep their history)."""
        with contextlib.suppress(KeyError):
            self.load_seconds.remove(model, str(version))


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self):  # type: ignore[no-untyped-def]
        return self._registry.collect()
