"""The composition root: store, lineage, core and servicer on sluice_runtime's server."""

from __future__ import annotations

import dataclasses
import logging

from opentelemetry.sdk.trace.export import SpanExporter
from sluice.client import ClientConfig, MetadataClient
from sluice_runtime import server as runtime_server
from sluice_runtime.artifacts import ArtifactStore, open_artifact_store
from sluice_runtime.logs import configure_logging
from sluice_runtime.server import ServiceServer, wait_for_shutdown_signal

from sluice_evaluation.config import SERVICE, EvaluationConfig
from sluice_evaluation.core import EvaluationCore
from sluice_evaluation.evaluator import Workspace
from sluice_evaluation.infra import SandboxSettings
from sluice_evaluation.lineage import Lineage, MetadataLineage, NoLineage
from sluice_evaluation.model import ModelLoader, SavedModelPredictor
from sluice_evaluation.servicer import register_with

logger = logging.getLogger("sluice_evaluation")


def build_core(
    config: EvaluationConfig,
    *,
    store: ArtifactStore | None = None,
    lineage: Lineage | None = None,
    load_model: ModelLoader = SavedModelPredictor,
) -> EvaluationCore:
    """The core over the configured store and metadata service (tests pass their own)."""
    store = store if store is not None else open_artifact_store(config.artifact_store_uri)
    if lineage is None:
        lineage = NoLineage()
        if config.metadata_address is not None:
            client_config = dataclasses.replace(
                ClientConfig.from_env("metadata"), address=config.metadata_address
            )
            lineage = MetadataLineage(MetadataClient(client_config))
    config.scratch_dir.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(
        store=store,
        lineage=lineage,
        scratch_dir=config.scratch_dir,
        load_model=load_model,
        prediction_batch=config.prediction_batch,
    )
    sandbox = SandboxSettings(
        artifact_store_uri=store.root_uri,
        command=config.sandbox_command,
        start_timeout_seconds=config.sandbox_start_timeout_seconds,
    )
    return EvaluationCore(
        workspace,
        sandbox,
        evaluation_workers=config.workers,
        infra_workers=config.infra_workers,
    )


# A running evaluation server: `stop` cancels the jobs (their watchers see it and end), drains the
# RPCs and waits for the workers.
EvaluationServer = ServiceServer[EvaluationCore]


def build_server(
    config: EvaluationConfig | None = None,
    *,
    port: int | None = None,
    core: EvaluationCore | None = None,
    span_exporter: SpanExporter | None = None,
) -> EvaluationServer:
    """Builds and starts the server; ``port`` overrides the configured one (0: a free port)."""
    config = config or EvaluationConfig.from_env()
    server_config = config.server
    if port is not None:
        server_config = dataclasses.replace(server_config, port=port)
    core = core or build_core(config)
    try:
        running = runtime_server.build_server(
            server_config,
            register=register_with(core),
            service_name=SERVICE,
            span_exporter=span_exporter,
        )
    except BaseException:
        core.close()
        raise
    return EvaluationServer(
        running, core, before_stop=lambda: core.close(wait=False), after_stop=core.close
    )


def serve(config: EvaluationConfig) -> None:
    """Serve until SIGTERM or SIGINT, then cancel the jobs and drain (`EvaluationServer.stop`)."""
    configure_logging(config.server.log_level, config.server.log_format, service=SERVICE)
    server = build_server(config)
    logger.info(
        "evaluation serving on %s (artifacts: %s, metadata: %s)",
        server.address,
        config.artifact_store_uri,
        config.metadata_address or "none",
        extra={"port": server.port},
    )
    wait_for_shutdown_signal(server.running, name=SERVICE, drain=server.stop)
