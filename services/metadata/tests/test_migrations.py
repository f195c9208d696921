"""Schema migrations on both backends, the start-up schema check, and the migrate command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sluice_metadata import tables
from sluice_metadata.config import MetadataConfig
from sluice_metadata.core import MetadataCore
from sluice_metadata.migrate import (
    SchemaState,
    current_revision,
    head_revision,
    schema_status,
    upgrade,
)
from sluice_metadata.model import Artifact, NodeKind, TypeDef
from sluice_metadata.server import build_server, open_store
from sluice_metadata.sql_store import SqlStore, create_store_engine
from sluice_runtime.errors import FailedPrecondition

FIRST_REVISION = "0001"


def insert_at_first_revision(engine: sa.Engine) -> None:
    """Rows written the way revision 0001 stores them (raw SQL: the code only knows head)."""
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO types (id, kind, name, version, description, properties) "
                "VALUES (1, 1, 'Examples', '', '', '{\"span\": 1}')"
            )
        )
        for index in range(1, 4):
            connection.execute(
                sa.text(
                    "INSERT INTO artifacts (id, type_id, name, external_id, properties, "
                    "custom_properties, create_time_us, update_time_us, uri, state, digest) "
                    "VALUES (:id, 1, '', :ext, :props, '{}', 1, 1, :uri, 2, '')"
                ),
                {
                    "id": index,
                    "ext": f"span-{index}",
                    "props": json.dumps({"span": {"int": index}}),
                    "uri": f"s3://b/{index}",
                },
            )
        if engine.dialect.name == "postgresql":
            # Explicit ids leave the sequence behind; bring it along as a real writer would.
            connection.execute(sa.text("SELECT setval('artifacts_id_seq', 3)"))
            connection.execute(sa.text("SELECT setval('types_id_seq', 1)"))


def test_upgrade_an_empty_database_step_by_step(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        assert schema_status(engine).state is SchemaState.EMPTY
        upgrade(engine, FIRST_REVISION)
        assert current_revision(engine) == FIRST_REVISION
        assert schema_status(engine).state is SchemaState.BEHIND
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert schema_status(engine).state is SchemaState.CURRENT
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, tables.metadata) == []
    finally:
        engine.dispose()


def test_upgrade_keeps_existing_data(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        upgrade(engine, FIRST_REVISION)
        insert_at_first_revision(engine)
        upgrade(engine)
    finally:
        engine.dispose()
    store = SqlStore.from_url(database_url)
    try:
        core = MetadataCore(store)
        page = core.list_artifacts("properties.span >= 2")
        assert [(a.id, a.uri, a.external_id) for a in page.items] == [
            (2, "s3://b/2", "span-2"),
            (3, "s3://b/3", "span-3"),
        ]
        assert core.put_artifacts([Artifact(type_name="Examples", external_id="span-1")]) == [1]
        (new_id,) = core.put_artifacts([Artifact(type_name="Examples", external_id="span-4")])
        assert new_id == 4
    finally:
        store.close()


def test_server_creates_the_schema_in_an_empty_database(tmp_path: Path) -> None:
    config = MetadataConfig(database_url=f"sqlite:///{tmp_path}/new/metadata.db")
    with build_server(config, port=0) as server:
        server.core.put_type(TypeDef(NodeKind.ARTIFACT, "Model"))
    engine = create_store_engine(config.database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_server_refuses_a_database_at_another_revision(database_url: str) -> None:
    engine = create_store_engine(database_url)
    upgrade(engine, FIRST_REVISION)
    engine.dispose()
    with pytest.raises(FailedPrecondition) as caught:
        open_store(MetadataConfig(database_url=database_url))
    message = caught.value.message
    assert "sluice-metadata migrate" in message and FIRST_REVISION in message
    assert "SLUICE_METADATA_DATABASE_URL=" in message


def test_server_refuses_foreign_or_empty_databases_when_told(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path}/empty.db"
    with pytest.raises(FailedPrecondition) as caught:
        open_store(MetadataConfig(database_url=empty, create_schema=False))
    assert "sluice-metadata migrate" in caught.value.message
    foreign = f"sqlite:///{tmp_path}/foreign.db"
    engine = create_store_engine(foreign)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE something_else (x INTEGER)")
    engine.dispose()
    with pytest.raises(FailedPrecondition) as caught:
        open_store(MetadataConfig(database_url=foreign))
    assert "not made by sluice-metadata" in caught.value.message


def _run_cli(command: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLUICE_METADATA_DATABASE_URL": database_url}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_migrate_command_upgrades_and_status_reports(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/metadata.db"
    engine = create_store_engine(database_url)
    upgrade(engine, FIRST_REVISION)
    engine.dispose()
    status = _run_cli([sys.executable, "-m", "sluice_metadata", "status"], database_url)
    assert status.returncode == 1 and "behind" in status.stdout
    migrated = _run_cli([sys.executable, "-m", "sluice_metadata", "migrate"], database_url)
    assert migrated.returncode == 0, migrated.stderr
    assert f"{FIRST_REVISION} -> {head_revision()}" in migrated.stdout
    script = Path(sys.executable).with_name("sluice-metadata")
    status = _run_cli([str(script), "status"], database_url)
    assert status.returncode == 0 and "current" in status.stdout
