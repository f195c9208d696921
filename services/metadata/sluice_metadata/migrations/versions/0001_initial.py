"""Initial schema: types, artifacts, executions, contexts, events and context links.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _node_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", Id, nullable=False),
        sa.Column("type_id", Id, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("properties", Json, nullable=False),
        sa.Column("custom_properties", Json, nullable=False),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
    ]


def _node_constraints(table: str) -> list[sa.Constraint]:
    return [
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(["type_id"], ["types.id"], name=f"fk_{table}_type_id_types"),
        sa.UniqueConstraint("type_id", "external_id", name=f"uq_{table}_type_id_external_id"),
    ]


def upgrade() -> None:
    op.create_table(
        "types",
        sa.Column("id", Id, nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("properties", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_types"),
        sa.UniqueConstraint("kind", "name", "version", name="uq_types_kind_name_version"),
    )
    op.create_table(
        "artifacts",
        *_node_columns(),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("digest", sa.String(255), nullable=False),
        *_node_constraints("artifacts"),
    )
    op.create_table(
        "executions",
        *_node_columns(),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        *_node_constraints("executions"),
    )
    op.create_table(
        "contexts",
        *_node_columns(),
        *_node_constraints("contexts"),
        sa.UniqueConstraint("type_id", "name", name="uq_contexts_type_id_name"),
    )
    op.create_table(
        "events",
        sa.Column("id", Id, nullable=False),
        sa.Column("artifact_id", Id, nullable=False),
        sa.Column("execution_id", Id, nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["artifact_id"], ["artifacts.id"], name="fk_events_artifact_id_artifacts"
        ),
        sa.ForeignKeyConstraint(
            ["execution_id"], ["executions.id"], name="fk_events_execution_id_executions"
        ),
        sa.UniqueConstraint(
            "artifact_id",
            "execution_id",
            "type",
            "path",
            name="uq_events_artifact_id_execution_id_type_path",
        ),
    )
    for table, node_table, node_column in (
        ("attributions", "artifacts", "artifact_id"),
        ("associations", "executions", "execution_id"),
    ):
        op.create_table(
            table,
            sa.Column("context_id", Id, nullable=False),
            sa.Column(node_column, Id, nullable=False),
            sa.PrimaryKeyConstraint("context_id", node_column, name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["context_id"], ["contexts.id"], name=f"fk_{table}_context_id_contexts"
            ),
            sa.ForeignKeyConstraint(
                [node_column], [f"{node_table}.id"], name=f"fk_{table}_{node_column}_{node_table}"
            ),
        )
    op.create_table(
        "parent_contexts",
        sa.Column("child_id", Id, nullable=False),
        sa.Column("parent_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("child_id", "parent_id", name="pk_parent_contexts"),
        sa.ForeignKeyConstraint(
            ["child_id"], ["contexts.id"], name="fk_parent_contexts_child_id_contexts"
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["contexts.id"], name="fk_parent_contexts_parent_id_contexts"
        ),
    )


def downgrade() -> None:
    for table in (
        "parent_contexts",
        "associations",
        "attributions",
        "events",
        "contexts",
        "executions",
        "artifacts",
        "types",
    ):
        op.drop_table(table)
