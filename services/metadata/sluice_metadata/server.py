"""The composition root: a store, the core over it, and the servicer on sluice_runtime's server."""

from __future__ import annotations

import dataclasses

from opentelemetry.sdk.trace.export import SpanExporter
from sluice_runtime import server as runtime_server
from sluice_runtime.server import ServiceServer

from sluice_metadata.config import SERVICE, MetadataConfig
from sluice_metadata.core import MetadataCore
from sluice_metadata.migrate import ensure_schema
from sluice_metadata.servicer import register_with
from sluice_metadata.sql_store import SqlStore, create_store_engine
from sluice_metadata.store import Store


def open_store(config: MetadataConfig) -> SqlStore:
    """The configured store, its schema checked (and created when the database is empty).

    Raises FailedPrecondition naming the command to run when the schema is at another revision.
    """
    engine = create_store_engine(
        config.database_url,
        pool_size=config.pool_size,
        max_overflow=config.pool_size,
        sqlite_busy_timeout_s=config.sqlite_busy_timeout_s,
    )
    try:
        ensure_schema(engine, create_if_empty=config.create_schema)
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(engine)


# A running metadata server: `stop` it (or use it in a ``with``) to release the port and, when the
# server opened it, the store.
MetadataServer = ServiceServer[MetadataCore]


def build_server(
    config: MetadataConfig | None = None,
    store: Store | None = None,
    port: int | None = None,
    *,
    span_exporter: SpanExporter | None = None,
) -> MetadataServer:
    """Builds and starts the server.

    Args:
        config: the settings; default `MetadataConfig.from_env()`.
        store: a store to serve (tests pass their own); default: open `config.database_url`.
        port: overrides the configured port (0 binds a free one, see `MetadataServer.port`).
        span_exporter: an extra span exporter for tests.
    """
    config = config or MetadataConfig.from_env()
    server_config = config.server
    if port is not None:
        server_config = dataclasses.replace(server_config, port=port)
    owns_store = store is None
    the_store: Store = open_store(config) if store is None else store
    core = MetadataCore(the_store)
    try:
        running = runtime_server.build_server(
            server_config,
            register=register_with(core),
            service_name=SERVICE,
            span_exporter=span_exporter,
        )
    except BaseException:
        if owns_store:
            the_store.close()
        raise
    return MetadataServer(running, core, after_stop=the_store.close if owns_store else None)


def serve(config: MetadataConfig) -> None:
    """Serves until SIGTERM or SIGINT (see `sluice_runtime.server.serve`)."""
    store = open_store(config)
    try:
        runtime_server.serve(
            config.server, register=register_with(MetadataCore(store)), service_name=SERVICE
        )
    finally:
        store.close()
