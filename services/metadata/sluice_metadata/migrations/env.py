"""Alembic environment: runs on the connection that `sluice_metadata.migrate` hands over.

Configured in code (no alembic.ini): `config.attributes["connection"]` carries an open
connection; without one, `sqlalchemy.url` names the database (for the `alembic` command line).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sluice_metadata.tables import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as new_connection:
        context.configure(connection=new_connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations()
