"""Concurrent writers on both backends: no lost or duplicated records, conflicts retried or
ABORTED, and a killed PostgreSQL connection does not fail the next call."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from sluice_metadata import tables
from sluice_metadata.core import MetadataCore
from sluice_metadata.model import Artifact, NodeKind, TypeDef
from sluice_metadata.sql_store import SqlStore
from sluice_metadata.store import Transaction
from sluice_metadata.testing import put_by_external_id
from sluice_runtime.errors import Aborted

WRITERS = 8
IDS_PER_WRITER = 30


def overlapping_ids(writer: int) -> list[str]:
    """Writer w puts ids w*10 .. w*10+29: each id is shared by up to three writers, and each
    writer goes through its ids in its own order so that batches collide differently."""
    ids = [f"ext-{writer * 10 + offset}" for offset in range(IDS_PER_WRITER)]
    return ids if writer % 2 == 0 else ids[::-1]


def expected_distinct() -> int:
    return len({i for w in range(WRITERS) for i in overlapping_ids(w)})


def stored_external_ids(store: SqlStore) -> dict[str, int]:
    a = tables.artifacts
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(a.c.external_id, a.c.id)).all()
    assert len(rows) == len({row.external_id for row in rows}), "an external id was duplicated"
    return {row.external_id: row.id for row in rows}


def check_results(store: SqlStore, results: list[list[int]]) -> None:
    stored = stored_external_ids(store)
    assert len(stored) == expected_distinct()
    for writer, ids in enumerate(results):
        assert ids == [stored[external_id] for external_id in overlapping_ids(writer)]


@pytest.mark.parametrize("batch_size", [1, 5])
def test_threads_putting_overlapping_external_ids(
    core: MetadataCore, store: SqlStore, database_url: str, batch_size: int
) -> None:
    core.put_type(TypeDef(NodeKind.ARTIFACT, "Shared"))
    start = threading.Barrier(WRITERS)

    def writer(index: int) -> list[int]:
        start.wait()
        return put_by_external_id(database_url, "Shared", overlapping_ids(index), batch_size)

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(writer, range(WRITERS)))
    check_results(store, results)


def test_processes_putting_overlapping_external_ids(
    core: MetadataCore, store: SqlStore, database_url: str
) -> None:
    core.put_type(TypeDef(NodeKind.ARTIFACT, "Shared"))
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        pending = [
            pool.apply_async(put_by_external_id, (database_url, "Shared", overlapping_ids(w), 3))
            for w in range(WRITERS)
        ]
        results = [result.get(timeout=120) for result in pending]
    check_results(store, results)


def test_one_store_shared_by_threads(core: MetadataCore, store: SqlStore) -> None:
    """The server's case: one core and one pool serving many RPC threads at once."""
    core.put_type(TypeDef(NodeKind.ARTIFACT, "Shared"))

    def writer(index: int) -> list[int]:
        return [
            core.put_artifacts([Artifact(type_name="Shared", external_id=e)])[0]
            for e in overlapping_ids(index)
        ]

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(writer, range(WRITERS)))
    check_results(store, results)


class _Conflict(Exception):
    sqlstate = "40001"  # serialization_failure


def test_persistent_conflicts_become_aborted(store: SqlStore) -> None:
    attempts = []

    def always_conflicting(tx: Transaction) -> None:
        attempts.append(1)
        raise sa.exc.OperationalError("UPDATE ...", {}, _Conflict("could not serialize"))

    with pytest.raises(Aborted):
        store.run(always_conflicting, write=True)
    assert len(attempts) == 5


def test_a_conflict_that_clears_is_retried_transparently(store: SqlStore) -> None:
    attempts = []

    def conflicting_once(tx: Transaction) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise sa.exc.OperationalError("UPDATE ...", {}, _Conflict("deadlock"))
        return len(tx.list_types(None, 0, 10))

    assert store.run(conflicting_once, write=True) == 0
    assert len(attempts) == 2


def _terminate(admin_url: str, where: str, params: dict[str, Any]) -> int:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            killed = connection.execute(
                sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {where}"),
                params,
            ).all()
        return len(killed)
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_killed_postgres_connections_do_not_fail_the_next_call(postgres_schema_url: str) -> None:
    store = SqlStore.from_url(postgres_schema_url, pool_size=2)
    try:
        from sluice_metadata.migrate import upgrade

        upgrade(store.engine)
        core = MetadataCore(store)
        core.put_type(TypeDef(NodeKind.ARTIFACT, "Model"))
        core.put_artifacts([Artifact(type_name="Model", uri="before")])
        database = store.engine.url.database
        # Every pooled connection dies between calls: the pre-ping notices and reconnects.
        killed = _terminate(
            postgres_schema_url,
            "datname = :db AND pid <> pg_backend_pid()",
            {"db": database},
        )
        assert killed >= 1
        (artifact_id,) = core.put_artifacts([Artifact(type_name="Model", uri="after")])
        assert core.get_artifacts([artifact_id])[0].uri == "after"

        # A connection dies in the middle of a transaction: the store retries the whole unit.
        attempts = []

        def dies_midway(tx: Transaction) -> int:
            attempts.append(1)
            pid = tx._connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()  # type: ignore[attr-defined]
            if len(attempts) == 1:
                _terminate(postgres_schema_url, "pid = :pid", {"pid": pid})
            return len(tx.get_nodes(NodeKind.ARTIFACT, [artifact_id]))

        assert store.run(dies_midway, write=True) == 1
        assert len(attempts) == 2
    finally:
        store.close()
