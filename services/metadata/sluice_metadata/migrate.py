"""Schema versions: Alembic run in code (no alembic.ini), and the start-up check.

The server refuses a database at another revision than the one its code was written for; an
EMPTY database (no tables at all) is created at the head revision, so the embedded SQLite default
works on first start. A database with data is never touched without `sluice-metadata migrate`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sluice_runtime.errors import FailedPrecondition
from sqlalchemy import Engine, inspect

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATE_COMMAND = "sluice-metadata migrate"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def known_revisions() -> set[str]:
    return {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrades the database to `revision` (default: the newest) in one transaction."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class SchemaState(enum.Enum):
    CURRENT = "current"
    EMPTY = "empty"
    BEHIND = "behind"
    AHEAD = "ahead"
    UNVERSIONED = "unversioned"


@dataclass(frozen=True)
class SchemaStatus:
    state: SchemaState
    revision: str | None
    head: str


def schema_status(engine: Engine) -> SchemaStatus:
    head = head_revision()
    revision = current_revision(engine)
    if revision == head:
        return SchemaStatus(SchemaState.CURRENT, revision, head)
    if revision is None:
        tables = inspect(engine).get_table_names()
        state = SchemaState.EMPTY if not tables else SchemaState.UNVERSIONED
        return SchemaStatus(state, None, head)
    state = SchemaState.BEHIND if revision in known_revisions() else SchemaState.AHEAD
    return SchemaStatus(state, revision, head)


def ensure_schema(engine: Engine, *, create_if_empty: bool = True) -> SchemaStatus:
    """Makes sure the database is at the head revision before serving.

    Creates the schema in an empty database when `create_if_empty`; otherwise raises
    FailedPrecondition with the command that fixes it.
    """
    status = schema_status(engine)
    if status.state is SchemaState.CURRENT:
        return status
    if status.state is SchemaState.EMPTY and create_if_empty:
        upgrade(engine)
        return schema_status(engine)
    url = engine.url.render_as_string(hide_password=True)
    fix = f"run `SLUICE_METADATA_DATABASE_URL='{url}' {MIGRATE_COMMAND}`"
    messages = {
        SchemaState.EMPTY: f"the database {url} has no metadata schema; {fix} to create it",
        SchemaState.BEHIND: (
            f"the database {url} is at schema revision {status.revision} but this server needs "
            f"{status.head}; {fix} to upgrade it"
        ),
        SchemaState.AHEAD: (
            f"the database {url} is at schema revision {status.revision}, newer than this "
            f"server knows ({status.head}); upgrade the server to a version that knows it"
        ),
        SchemaState.UNVERSIONED: (
            f"the database {url} has tables but no Alembic version record, so it was not made "
            "by sluice-metadata; point SLUICE_METADATA_DATABASE_URL at an empty database"
        ),
    }
    raise FailedPrecondition(messages[status.state], reason="SCHEMA_VERSION_MISMATCH")
