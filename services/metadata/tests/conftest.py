"""Fixtures of the metadata service's tests.

`database_url` runs a test once per backend: SQLite in a temporary file, and the real PostgreSQL
at 127.0.0.1:5432 (SLUICE_TEST_POSTGRES_URL overrides the admin URL) in a fresh schema of a
database made for this test session (sluice_test_<random>, dropped at the end). PostgreSQL being
down makes those tests fail, never skip. `store` and `core` sit on a migrated database.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sluice_metadata.core import MetadataCore
from sluice_metadata.migrate import upgrade
from sluice_metadata.model import NodeKind, PropertyType, TypeDef
from sluice_metadata.sql_store import SqlStore, normalize_url
from sluice_metadata.testing import DEFAULT_POSTGRES_ADMIN_URL, temporary_postgres_database
from sqlalchemy.pool import NullPool

POSTGRES_ADMIN_URL = os.environ.get("SLUICE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    try:
        database = temporary_postgres_database(POSTGRES_ADMIN_URL)
        url = database.__enter__()
    except sa.exc.OperationalError as error:
        pytest.fail(
            f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable ({error.orig}); start it, or set "
            "SLUICE_TEST_POSTGRES_URL to an admin URL of a running server",
            pytrace=False,
        )
    try:
        yield url
    finally:
        database.__exit__(None, None, None)


@pytest.fixture
def postgres_schema_url(postgres_database: str) -> Iterator[str]:
    """A URL whose connections work in a fresh, empty schema of the session database."""
    schema = f"t_{secrets.token_hex(6)}"
    # No pooled connection lingers, so tests may kill every connection to the database.
    admin = sa.create_engine(postgres_database, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = normalize_url(postgres_database).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/metadata.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    store = SqlStore.from_url(database_url, pool_size=4)
    upgrade(store.engine)
    yield store
    store.close()


@pytest.fixture
def core(store: SqlStore) -> MetadataCore:
    return MetadataCore(store)


@dataclass
class StandardTypes:
    examples: TypeDef
    statistics: TypeDef
    schema: TypeDef
    model: TypeDef
    evaluation: TypeDef
    blessing: TypeDef
    pushed: TypeDef
    component: TypeDef
    run: TypeDef
    pipeline: TypeDef


@pytest.fixture
def std(core: MetadataCore) -> StandardTypes:
    """The types of a TFX-style pipeline, registered in the store."""
    a, e, c = NodeKind.ARTIFACT, NodeKind.EXECUTION, NodeKind.CONTEXT
    return StandardTypes(
        examples=core.put_type(
            TypeDef(
                a, "Examples", properties={"span": PropertyType.INT, "split": PropertyType.STRING}
            )
        ),
        statistics=core.put_type(
            TypeDef(a, "ExampleStatistics", properties={"span": PropertyType.INT})
        ),
        schema=core.put_type(TypeDef(a, "Schema")),
        model=core.put_type(
            TypeDef(
                a,
                "Model",
                properties={
                    "span": PropertyType.INT,
                    "accuracy": PropertyType.DOUBLE,
                    "blessed": PropertyType.BOOL,
                    "config": PropertyType.STRUCT,
                    "signature": PropertyType.PROTO,
                },
            )
        ),
        evaluation=core.put_type(TypeDef(a, "ModelEvaluation")),
        blessing=core.put_type(TypeDef(a, "ModelBlessing")),
        pushed=core.put_type(TypeDef(a, "PushedModel")),
        component=core.put_type(
            TypeDef(e, "Component", properties={"component": PropertyType.STRING})
        ),
        run=core.put_type(TypeDef(c, "PipelineRun")),
        pipeline=core.put_type(TypeDef(c, "Pipeline")),
    )
