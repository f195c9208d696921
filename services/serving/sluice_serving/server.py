"""The composition root: the data plane and its four gRPC services on one port.

``tensorflow.serving.PredictionService`` and ``ModelService`` (TF Serving clients),
``inference.GRPCInferenceService`` (Open Inference Protocol v2 clients: KServe, Triton, MLServer)
and ``sluice.serving.v1.ServingService`` (the control plane) share one `ServingCore`. The server
itself (health, reflection, tracing, RPC metrics, errors, TLS, auth) comes from `sluice_runtime`,
in its asyncio form: the prediction RPCs are coroutines on one event loop that hand their rows to
the batch workers, with no thread hand-over per request (measured with h2load on 2 vCPUs at 64
clients: 5,300-5,800 requests/s against 4,300 for the thread-per-RPC server); the control plane
and metadata RPCs are plain functions on the RPC threads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import grpc
from google.protobuf import json_format
from open_inference.grpc import service as oip_service
from opentelemetry.sdk.trace.export import SpanExporter
from sluice.serving.v1 import serving_service_pb2, serving_service_pb2_grpc
from sluice_runtime.aio_server import RegisterAioServices, RunningAioServer, build_aio_server
from sluice_runtime.artifacts import ArtifactStore, open_artifact_store
from sluice_runtime.config import ServerConfig
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from sluice_serving import control, oip, tfserving
from sluice_serving.core import ArtifactResolver, ServingCore
from sluice_serving.fetch import ModelFetcher
from sluice_serving.metrics import ServingMetrics
from sluice_serving.model_process import ModelProcesses
from sluice_serving.request_log import RequestLogCounters, RequestLogger
from sluice_serving.runner import RunnerFactory, SavedModelRunner
from sluice_serving.settings import ServingSettings

logger = logging.getLogger(__name__)

SERVICE_NAMES = (
    tfserving.PREDICTION_SERVICE,
    tfserving.MODEL_SERVICE,
    oip.SERVICE,
    control.SERVICE,
)


def build_core(
    settings: ServingSettings,
    *,
    store: ArtifactStore | None = None,
    runner_factory: RunnerFactory | None = None,
    artifact_resolver: ArtifactResolver | None = None,
) -> ServingCore:
    """A `ServingCore` with its fetcher, metrics and request logger, from ``settings``."""
    store = store if store is not None else open_artifact_store(settings.artifact_store_uri)
    on_close = None
    if runner_factory is None:
        if settings.model_processes:
            processes = ModelProcesses(
                intra_op_threads=settings.tf_intra_op_threads,
                inter_op_threads=settings.tf_inter_op_threads,
            )
            runner_factory, on_close = processes, processes.close
        else:
            runner_factory = SavedModelRunner
    metrics = ServingMetrics()
    counters = RequestLogCounters(
        rows_written=lambda model, n: metrics.log_rows.labels(model).inc(n),
        files_written=lambda model, n: metrics.log_files.labels(model).inc(n),
        dropped=lambda model, n: None,  # the core counts drops itself
        write_errors=lambda model, n: metrics.log_write_errors.labels(model).inc(n),
    )
    return ServingCore(
        settings,
        fetcher=ModelFetcher(store, settings.cache_dir),
        runner_factory=runner_factory,
        metrics=metrics,
        request_logger=RequestLogger(
            store,
            queue_size=settings.request_log_queue,
            flush_seconds=settings.request_log_flush_seconds,
            counters=counters,
        ),
        artifact_resolver=artifact_resolver,
        on_close=on_close,
    )


def register_services(core: ServingCore) -> RegisterAioServices:
    """The ``register`` callback of `build_aio_server` for the four services of ``core``."""

    def register(server: grpc.aio.Server) -> Iterable[str]:
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            tfserving.PredictionServicer(core), server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            tfserving.ModelStatusServicer(core), server
        )
        oip_service.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            oip.InferenceServicer(core), server
        )
        serving_service_pb2_grpc.add_ServingServiceServicer_to_server(
            control.ServingControlServicer(core), server
        )
        return SERVICE_NAMES

    return register


class ServingServer:
    """A running serving server and its core; `stop` stops both."""

    def __init__(self, running: RunningAioServer, core: ServingCore) -> None:
        self.running = running
        self.core = core
        self.port = running.port
        self.address = running.address

    def stop(self, grace: float | None = None) -> None:
        self.running.stop(grace)
        self.core.close()

    def __enter__(self) -> ServingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop(0)


def build_serving_server(
    config: ServerConfig,
    core: ServingCore,
    *,
    span_exporter: SpanExporter | None = None,
) -> ServingServer:
    """Start the server for ``core``; its metrics join the server's Prometheus registry."""
    running = build_aio_server(
        config,
        register=register_services(core),
        service_name="serving",
        span_exporter=span_exporter,
    )
    running.registry.register(core.metrics.forwarder())
    return ServingServer(running, core)


def load_model_config(core: ServingCore, path: Path) -> int:
    """Configure and load the models of a JSON file ``{"models": [Model, ...]}``; returns how many
    versions were asked for. Each Model's ``versions`` give version, uri and digest (or
    artifact_id); loading happens on the loader pool."""
    try:
        text = path.read_text()
        listing = json_format.Parse(text, serving_service_pb2.ListModelsResponse())
    except (OSError, json.JSONDecodeError, json_format.ParseError) as error:
        raise ValueError(f"SLUICE_SERVING_MODEL_CONFIG {path}: {error}") from None
    asked = 0
    for model in listing.models:
        core.update_model_config(model.name, **control.model_from_proto_config(model))  # type: ignore[arg-type]
        for version in model.versions:
            core.load_version(
                model.name,
                version.version,
                version.uri,
                digest=version.digest,
                artifact_id=version.artifact_id,
            )
            asked += 1
    return asked
