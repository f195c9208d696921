"""The composition root: job store, artifact store, launchers, lineage, core, gRPC server."""

from __future__ import annotations

import dataclasses

from opentelemetry.sdk.trace.export import SpanExporter
from sluice.client import MetadataClient
from sluice_runtime import server as runtime_server
from sluice_runtime.artifacts import open_artifact_store
from sluice_runtime.server import ServiceServer

from sluice_training.config import SERVICE, TrainingConfig
from sluice_training.core import CoreSettings, TrainingCore
from sluice_training.launchers import Launcher, LocalLauncher
from sluice_training.lineage import Lineage, MetadataLineage, NoLineage
from sluice_training.servicer import register_with
from sluice_training.spec import SpecContext
from sluice_training.store import SqlJobStore


def build_core(
    config: TrainingConfig,
    *,
    launchers: dict[str, Launcher] | None = None,
    lineage: Lineage | None = None,
) -> TrainingCore:
    """The core with its adapters, not started (tests pass fakes for launchers and lineage)."""
    artifacts = open_artifact_store(config.artifact_store_uri)
    if launchers is None:
        launchers = {"local": LocalLauncher()}
        if config.kubernetes.enabled:
            from sluice_training.kubernetes import HttpKubernetesApi, KubernetesLauncher

            launchers["kubernetes"] = KubernetesLauncher(
                HttpKubernetesApi.in_cluster(config.kubernetes.api_url),
                config.kubernetes,
                artifacts,
            )
    if lineage is None:
        lineage = (
            MetadataLineage(MetadataClient(config.metadata_address))
            if config.metadata_address
            else NoLineage()
        )
    context = SpecContext(
        store_root_uri=artifacts.root_uri,
        default_backend=config.default_backend,
        metadata_configured=not isinstance(lineage, NoLineage),
        kubernetes_enabled="kubernetes" in launchers,
    )
    settings = CoreSettings(
        jobs_dir=config.jobs_dir,
        max_concurrent_jobs=config.max_concurrent_jobs,
        max_attempts=config.max_attempts,
        cancel_grace_seconds=config.cancel_grace_seconds,
        poll_seconds=config.poll_seconds,
    )
    return TrainingCore(
        SqlJobStore(config.effective_database_url), artifacts, launchers, lineage, context, settings
    )


# A running training server: `stop` drains the RPCs, then stops the scheduler and closes the store.
TrainingServer = ServiceServer[TrainingCore]


def build_server(
    config: TrainingConfig | None = None,
    *,
    port: int | None = None,
    core: TrainingCore | None = None,
    span_exporter: SpanExporter | None = None,
) -> TrainingServer:
    """Build the core (unless given), start its scheduler and the gRPC server."""
    config = config or TrainingConfig.from_env()
    server_config = config.server
    if port is not None:
        server_config = dataclasses.replace(server_config, port=port)
    core = core or build_core(config)
    core.start()
    try:
        running = runtime_server.build_server(
            server_config,
            register=register_with(core),
            service_name=SERVICE,
            span_exporter=span_exporter,
        )
    except BaseException:
        core.stop()
        raise

    def stop_core() -> None:
        core.stop()
        core.store.close()

    return TrainingServer(running, core, after_stop=stop_core)


def serve(config: TrainingConfig) -> None:
    """Serve until SIGTERM or SIGINT (see `sluice_runtime.server.serve`)."""
    core = build_core(config)
    core.start()
    try:
        runtime_server.serve(config.server, register=register_with(core), service_name=SERVICE)
    finally:
        core.stop()
        core.store.close()
