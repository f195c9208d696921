"""Indexes for lineage walks from executions and contexts, and for listing by time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (table, columns): walks from an execution or a context, and keyset pages ordered by time.
INDEXES = [
    ("events", ["execution_id"]),
    ("attributions", ["artifact_id"]),
    ("associations", ["execution_id"]),
    ("parent_contexts", ["parent_id"]),
    *(
        (table, [time_column, "id"])
        for table in ("artifacts", "executions", "contexts")
        for time_column in ("create_time_us", "update_time_us")
    ),
]


def _name(table: str, columns: list[str]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    for table, columns in INDEXES:
        op.create_index(_name(table, columns), table, columns)


def downgrade() -> None:
    for table, columns in reversed(INDEXES):
        op.drop_index(_name(table, columns), table_name=table)
