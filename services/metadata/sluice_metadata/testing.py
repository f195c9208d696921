"""Helpers for tests and benchmarks of the metadata service (not used by the server).

They live in the package, not in a test folder, because `multiprocessing` with the spawn start
method must import a worker function by module name in the child process.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa

from sluice_metadata.core import MetadataCore
from sluice_metadata.model import Artifact, PropertyType, Value
from sluice_metadata.sql_store import SqlStore, normalize_url

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def put_by_external_id(
    database_url: str, type_name: str, external_ids: Sequence[str], batch_size: int = 1
) -> list[int]:
    """Puts one artifact per external id (in batches) through a store of its own; the ids.

    A worker of the concurrent-writers tests: several of these run at once, in threads or in
    spawned processes, over overlapping external ids.
    """
    store = SqlStore.from_url(database_url, pool_size=2, max_overflow=0)
    try:
        core = MetadataCore(store)
        ids: list[int] = []
        for start in range(0, len(external_ids), batch_size):
            chunk = external_ids[start : start + batch_size]
            ids.extend(
                core.put_artifacts(
                    [
                        Artifact(
                            type_name=type_name,
                            uri=f"mem://{external_id}",
                            external_id=external_id,
                            custom_properties={"writer": Value(PropertyType.STRING, "worker")},
                        )
                        for external_id in chunk
                    ]
                )
            )
        return ids
    finally:
        store.close()


@contextmanager
def temporary_postgres_database(admin_url: str = DEFAULT_POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A fresh PostgreSQL database named sluice_test_<random>, dropped afterwards; its URL.

    Connection errors propagate: a test that needs PostgreSQL fails when it is down.
    """
    admin = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"sluice_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield normalize_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
