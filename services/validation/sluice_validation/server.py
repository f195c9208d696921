"""The composition root: the artifact store, lineage, the core and its servicer on a runtime server.

with build_server(config, port=0) as server:
    stub = ValidationServiceStub(grpc.insecure_channel(server.address))
"""

from __future__ import annotations

import dataclasses

import grpc
from opentelemetry.sdk.trace.export import SpanExporter
from sluice.validation.v1 import validation_service_pb2, validation_service_pb2_grpc
from sluice_runtime.artifacts import open_artifact_store
from sluice_runtime.server import ServiceServer
from sluice_runtime.server import build_server as build_runtime_server

from .config import ValidationConfig
from .core import (
    ValidationCore,
    outcome_from_json,
    outcome_to_json,
    spec_from_json,
    spec_to_json,
)
from .job_store import JobCodec, SqlJobStore
from .lineage import Lineage, MetadataLineage, NoLineage
from .servicer import ValidationServicer

SERVICE_NAME = validation_service_pb2.DESCRIPTOR.services_by_name["ValidationService"].full_name
STATISTICS_JOB_CODEC = JobCodec(spec_to_json, spec_from_json, outcome_to_json, outcome_from_json)


def build_core(config: ValidationConfig, lineage: Lineage | None = None) -> ValidationCore:
    """The core with the configured store, lineage (MetadataLineage when an address is set) and
    job records (a database when a URL is set)."""
    if lineage is None:
        lineage = (
            MetadataLineage.connect(config.metadata_address)
            if config.metadata_address
            else NoLineage()
        )
    job_store = (
        SqlJobStore(config.job_database_url, STATISTICS_JOB_CODEC)
        if config.job_database_url
        else None
    )
    try:
        return ValidationCore(
            open_artifact_store(config.artifact_store_uri),
            lineage,
            job_workers=config.job_workers,
            max_jobs_kept=config.max_jobs_kept,
            beam_pipeline_args=config.beam_pipeline_args,
            beam_temp_location=config.beam_temp_location,
            job_store=job_store,
        )
    except BaseException:
        if job_store is not None:
            job_store.close()
        raise


def registrar(core: ValidationCore):  # type: ignore[no-untyped-def]
    def register(server: grpc.Server) -> list[str]:
        validation_service_pb2_grpc.add_ValidationServiceServicer_to_server(
            ValidationServicer(core), server
        )
        return [SERVICE_NAME]

    return register


# A started validation server: `address`, `port`, the `core`; `stop()` also ends the jobs.
ValidationServer = ServiceServer[ValidationCore]


def build_server(
    config: ValidationConfig,
    port: int | None = None,
    *,
    lineage: Lineage | None = None,
    span_exporter: SpanExporter | None = None,
) -> ValidationServer:
    """Build and start the server; `port` overrides the configured one (0: a free port)."""
    if port is not None:
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, port=port))
    core = build_core(config, lineage)
    try:
        running = build_runtime_server(
            config.server,
            register=registrar(core),
            service_name="validation",
            span_exporter=span_exporter,
        )
    except BaseException:
        core.close()
        raise
    return ValidationServer(running, core, after_stop=core.close)
