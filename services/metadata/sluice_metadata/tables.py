"""The SQL schema, as SQLAlchemy Core tables. Alembic migrations (migrations/versions) create it;
tests check that the migrated database and these tables agree.

Properties live in JSON columns as {"name": {"<kind>": value}} (kind: int, double, string, bool,
struct, proto), so a node is one row and a filter reaches a value by a JSON path.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")

types = Table(
    "types",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", SmallInteger, nullable=False),
    Column("name", String(255), nullable=False),
    Column("version", String(255), nullable=False),
    Column("description", Text, nullable=False),
    # {"property name": PropertyType number}
    Column("properties", Json, nullable=False),
    UniqueConstraint("kind", "name", "version"),
)


def _node_columns() -> list[Column[object]]:
    return [
        Column("id", Id, primary_key=True),
        Column("type_id", Id, ForeignKey("types.id"), nullable=False),
        Column("name", String(255), nullable=False),
        # NULL when unset: unique constraints ignore NULLs on both SQLite and PostgreSQL.
        Column("external_id", String(255), nullable=True),
        Column("properties", Json, nullable=False),
        Column("custom_properties", Json, nullable=False),
        Column("create_time_us", BigInteger, nullable=False),
        Column("update_time_us", BigInteger, nullable=False),
    ]


artifacts = Table(
    "artifacts",
    metadata,
    *_node_columns(),
    Column("uri", Text, nullable=False),
    Column("state", SmallInteger, nullable=False),
    Column("digest", String(255), nullable=False),
    UniqueConstraint("type_id", "external_id"),
    Index(None, "create_time_us", "id"),
    Index(None, "update_time_us", "id"),
)

executions = Table(
    "executions",
    metadata,
    *_node_columns(),
    Column("state", SmallInteger, nullable=False),
    UniqueConstraint("type_id", "external_id"),
    Index(None, "create_time_us", "id"),
    Index(None, "update_time_us", "id"),
)

contexts = Table(
    "contexts",
    metadata,
    *_node_columns(),
    UniqueConstraint("type_id", "external_id"),
    UniqueConstraint("type_id", "name"),
    Index(None, "create_time_us", "id"),
    Index(None, "update_time_us", "id"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("artifact_id", Id, ForeignKey("artifacts.id"), nullable=False),
    Column("execution_id", Id, ForeignKey("executions.id"), nullable=False),
    Column("type", SmallInteger, nullable=False),
    Column("path", String(255), nullable=False),
    Column("create_time_us", BigInteger, nullable=False),
    # Recording the same edge twice is a no-op; the index also serves walks from artifacts.
    UniqueConstraint("artifact_id", "execution_id", "type", "path"),
    Index(None, "execution_id"),
)

attributions = Table(
    "attributions",
    metadata,
    Column("context_id", Id, ForeignKey("contexts.id"), nullable=False),
    Column("artifact_id", Id, ForeignKey("artifacts.id"), nullable=False),
    PrimaryKeyConstraint("context_id", "artifact_id"),
    Index(None, "artifact_id"),
)

associations = Table(
    "associations",
    metadata,
    Column("context_id", Id, ForeignKey("contexts.id"), nullable=False),
    Column("execution_id", Id, ForeignKey("executions.id"), nullable=False),
    PrimaryKeyConstraint("context_id", "execution_id"),
    Index(None, "execution_id"),
)

parent_contexts = Table(
    "parent_contexts",
    metadata,
    Column("child_id", Id, ForeignKey("contexts.id"), nullable=False),
    Column("parent_id", Id, ForeignKey("contexts.id"), nullable=False),
    PrimaryKeyConstraint("child_id", "parent_id"),
    Index(None, "parent_id"),
)
