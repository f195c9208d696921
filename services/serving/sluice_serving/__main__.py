"""``python -m sluice_serving`` / ``sluice-serving``: run the serving service until SIGTERM."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

from grpc_health.v1 import health_pb2
from sluice_runtime.config import ServerConfig
from sluice_runtime.logs import configure_logging
from sluice_runtime.server import wait_for_shutdown_signal

from sluice_serving.core import ServingCore
from sluice_serving.resolver import MetadataArtifactResolver
from sluice_serving.server import (
    ServingServer,
    build_core,
    build_serving_server,
    load_model_config,
)
from sluice_serving.settings import DEFAULT_PORT, ServingSettings

logger = logging.getLogger("sluice_serving")


def configure_tensorflow(settings: ServingSettings) -> None:
    """Apply the TensorFlow thread settings, then start TensorFlow's runtime (its thread pools)."""
    import tensorflow as tf

    if settings.tf_intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(settings.tf_intra_op_threads)
    if settings.tf_inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(settings.tf_inter_op_threads)
    tf.constant(0.0).numpy()


# A span per prediction costs the event loop about a third of its time at full load; requests that
# arrive with a sampled trace are always traced, others one in a hundred, unless OTEL_TRACES_SAMPLER
# says otherwise (OpenTelemetry's standard variables).
DEFAULT_TRACES_SAMPLER = ("parentbased_traceidratio", "0.01")


def default_trace_sampling(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Set the serving default sampler unless the OpenTelemetry sampler variable is set."""
    if not environ.get("OTEL_TRACES_SAMPLER", "").strip():
        environ["OTEL_TRACES_SAMPLER"], environ["OTEL_TRACES_SAMPLER_ARG"] = DEFAULT_TRACES_SAMPLER


def main() -> None:
    default_trace_sampling()
    config = ServerConfig.from_env("serving", default_port=DEFAULT_PORT)
    settings = ServingSettings.from_env()
    configure_logging(config.log_level, config.log_format, service="serving")
    configure_tensorflow(settings)
    resolver = MetadataArtifactResolver()
    core = build_core(settings, artifact_resolver=resolver)
    server = build_serving_server(config, core)
    freeze_startup_objects()
    logger.info("serving on %s", server.address, extra={"port": server.port})
    if server.running.metrics_port is not None:
        logger.info("metrics on port %d", server.running.metrics_port)
    if settings.model_config_file is not None:
        # Not ready for traffic until the configured models have loaded (or failed).
        server.running.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        count = load_model_config(core, settings.model_config_file)
        logger.info("loading %d model versions from %s", count, settings.model_config_file)
        threading.Thread(target=_mark_ready, args=(server, core), daemon=True).start()

    try:
        wait_for_shutdown_signal(server.running, name="serving", drain=server.stop)
    finally:
        resolver.close()


def freeze_startup_objects() -> None:
    """Exclude what exists now (TensorFlow's modules above all) from garbage collection.

    With TensorFlow imported the heap holds some 440,000 objects, and every full collection walks
    them all: about 0.4 s here, with every thread stopped - the p99 of the whole server. Frozen,
    they are never walked again (they live as long as the process anyway); models load later, so
    an unloaded version's reference cycles are still collected, and in milliseconds.
    """
    gc.collect()
    gc.freeze()


def _mark_ready(server: ServingServer, core: ServingCore) -> None:
    while not core.is_ready():
        time.sleep(0.2)
    server.running.health.set("", health_pb2.HealthCheckResponse.SERVING)


if __name__ == "__main__":
    main()
