"""The SQLAlchemy implementation of the store: SQLite (default) and PostgreSQL (psycopg 3).

SQLite runs in WAL mode with a busy timeout; write transactions start with BEGIN IMMEDIATE (the
pysqlite "serializable" recipe from the SQLAlchemy docs), so two writers never interleave and a
read never blocks. PostgreSQL runs at READ COMMITTED with a pre-pinged pool; a writer that loses a
race on a unique key, a serialization failure, a deadlock or a dropped connection is retried whole.
"""

from __future__ import annotations

import base64
import logging
import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sluice_runtime.errors import Aborted, InvalidArgument
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from sluice_metadata import filters as f
from sluice_metadata import tables
from sluice_metadata.model import (
    AnyNode,
    Artifact,
    ArtifactState,
    Context,
    Event,
    EventType,
    Execution,
    ExecutionState,
    NodeKind,
    PropertyType,
    ProtoPayload,
    TypeDef,
    Value,
)
from sluice_metadata.store import ORDER_FIELDS, LinkKind, ListQuery, Transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bound parameters per IN list; well under SQLite's 32,766 and PostgreSQL's 65,535 limits.
IN_CHUNK = 5_000
# Statements to retry: unique violations lost to a concurrent writer, serialization failures,
# deadlocks, lock timeouts and dropped connections.
RETRYABLE_SQLSTATES = frozenset({"23505", "40001", "40P01", "55P03", "57P01"})

NODE_TABLES: dict[NodeKind, sa.Table] = {
    NodeKind.ARTIFACT: tables.artifacts,
    NodeKind.EXECUTION: tables.executions,
    NodeKind.CONTEXT: tables.contexts,
}
LINK_TABLES: dict[LinkKind, tuple[sa.Table, str, str]] = {
    LinkKind.ATTRIBUTION: (tables.attributions, "context_id", "artifact_id"),
    LinkKind.ASSOCIATION: (tables.associations, "context_id", "execution_id"),
    LinkKind.PARENT: (tables.parent_contexts, "child_id", "parent_id"),
}
MEMBERSHIP_LINKS: dict[NodeKind, tuple[sa.Table, str, str]] = {
    # node kind -> (link table, column holding the node, column holding the related context)
    NodeKind.ARTIFACT: (tables.attributions, "artifact_id", "context_id"),
    NodeKind.EXECUTION: (tables.associations, "execution_id", "context_id"),
    NodeKind.CONTEXT: (tables.parent_contexts, "child_id", "parent_id"),
}


# ---------------------------------------------------------------------------------------------
# Property values <-> JSON

_KIND_KEYS = {
    PropertyType.INT: "int",
    PropertyType.DOUBLE: "double",
    PropertyType.STRING: "string",
    PropertyType.BOOL: "bool",
    PropertyType.STRUCT: "struct",
    PropertyType.PROTO: "proto",
}
_KINDS_BY_KEY = {key: kind for kind, key in _KIND_KEYS.items()}
_SCALAR_KEYS = ("", "int", "double", "string", "bool")


def encode_value(value: Value) -> dict[str, Any]:
    data = value.data
    kind = value.kind
    # Scalars first, with int-indexed lookups: hashing an enum member runs Python code.
    if kind <= PropertyType.BOOL and (kind is not PropertyType.DOUBLE or math.isfinite(data)):  # type: ignore[arg-type]
        return {_SCALAR_KEYS[kind]: data}
    if value.kind is PropertyType.DOUBLE and isinstance(data, float) and not math.isfinite(data):
        # JSON (and PostgreSQL's JSONB) has no NaN or infinity; keep them as their names.
        return {"double": str(data)}
    if isinstance(data, ProtoPayload):
        return {
            "proto": {"type_url": data.type_url, "value": base64.b64encode(data.value).decode()}
        }
    return {_KIND_KEYS[value.kind]: data}


def decode_value(stored: dict[str, Any]) -> Value:
    ((key, data),) = stored.items()
    kind = _KINDS_BY_KEY[key]
    if kind is PropertyType.PROTO:
        return Value(kind, ProtoPayload(data["type_url"], base64.b64decode(data["value"])))
    if kind is PropertyType.DOUBLE:
        return Value(kind, float(data))
    return Value(kind, data)


def encode_properties(properties: dict[str, Value]) -> dict[str, Any]:
    return {name: encode_value(value) for name, value in properties.items()}


def decode_properties(stored: dict[str, Any] | None) -> dict[str, Value]:
    return {name: decode_value(value) for name, value in (stored or {}).items()}


# ---------------------------------------------------------------------------------------------
# Engines


def normalize_url(url: str | URL) -> URL:
    """Picks the psycopg 3 driver for plain postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_store_engine(
    url: str | URL,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    sqlite_busy_timeout_s: float = 30.0,
) -> Engine:
    """An engine set up for the store: SQLite pragmas and BEGIN IMMEDIATE, or a pinged pool."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite_engine(parsed, pool_size, max_overflow, sqlite_busy_timeout_s)
    if backend == "postgresql":
        return sa.create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=True,
            pool_recycle=1800,
        )
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)}: "
        "use sqlite:///path/to/metadata.db or postgresql+psycopg://user@host/db"
    )


def _is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _create_sqlite_engine(
    url: URL, pool_size: int, max_overflow: int, busy_timeout_s: float
) -> Engine:
    memory = _is_memory_sqlite(url)
    if memory:
        # One shared connection (the database lives in it); SqlStore serializes its use.
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
    else:
        assert url.database is not None
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=max_overflow,
        )

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is unreliable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            # With WAL, NORMAL never corrupts the database; a power cut may lose the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # LIKE is case-sensitive on PostgreSQL; make SQLite agree.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("sluice_write", True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


# ---------------------------------------------------------------------------------------------
# The store


def _pairs(rows: Iterable[Any]) -> list[tuple[int, int]]:
    return [(int(row[0]), int(row[1])) for row in rows]


def _chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _is_retryable(error: DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    if isinstance(error, IntegrityError):
        # Only unique violations are races; our code never writes a dangling foreign key.
        sqlstate = getattr(error.orig, "sqlstate", None)
        return sqlstate == "23505" or "UNIQUE constraint failed" in str(error.orig)
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    if isinstance(error, OperationalError):
        text = str(error.orig).lower()
        return "database is locked" in text or "server closed the connection" in text
    return False


class SqlStore:
    """`Store` over a SQLAlchemy engine; see the module docstring for the locking story."""

    def __init__(self, engine: Engine, *, max_attempts: int = 5) -> None:
        self.engine = engine
        self._max_attempts = max_attempts
        self._dialect = engine.dialect.name
        memory = self._dialect == "sqlite" and _is_memory_sqlite(engine.url)
        self._lock: AbstractContextManager[object] = threading.Lock() if memory else nullcontext()

    @classmethod
    def from_url(cls, url: str | URL, **engine_options: Any) -> SqlStore:
        return cls(create_store_engine(url, **engine_options))

    def run(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        for attempt in range(1, self._max_attempts + 1):
            try:
                with self._lock, self.engine.connect() as connection:
                    connection.execution_options(sluice_write=write)
                    with connection.begin():
                        return work(SqlTransaction(connection))
            except DBAPIError as error:
                if not _is_retryable(error):
                    raise
                if attempt == self._max_attempts:
                    raise Aborted(
                        "the database reported a conflict with a concurrent transaction "
                        f"{self._max_attempts} times; retry the request",
                        reason="TRANSACTION_CONFLICT",
                    ) from error
                log.debug("retrying a transaction after %s", type(error.orig).__name__)
                # Jittered backoff so that colliding writers do not collide again.
                time.sleep(random.uniform(0.002, 0.01) * attempt)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.engine.dispose()


class SqlTransaction:
    """`Transaction` over one open connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _execute(self, statement: sa.Executable, parameters: Any = None) -> sa.CursorResult[Any]:
        return self._connection.execute(statement, parameters)

    # Types

    @staticmethod
    def _type_from_row(row: sa.Row[Any]) -> TypeDef:
        return TypeDef(
            id=row.id,
            kind=NodeKind(row.kind),
            name=row.name,
            version=row.version,
            description=row.description,
            properties={name: PropertyType(value) for name, value in row.properties.items()},
        )

    def get_type_by_name(self, kind: NodeKind, name: str, version: str) -> TypeDef | None:
        t = tables.types
        row = self._execute(
            sa.select(t).where(t.c.kind == int(kind), t.c.name == name, t.c.version == version)
        ).first()
        return None if row is None else self._type_from_row(row)

    def get_types(self, ids: Collection[int]) -> dict[int, TypeDef]:
        t = tables.types
        found: dict[int, TypeDef] = {}
        for chunk in _chunks(sorted(set(ids))):
            for row in self._execute(sa.select(t).where(t.c.id.in_(chunk))):
                found[row.id] = self._type_from_row(row)
        return found

    def list_types(self, kind: NodeKind | None, after_id: int, limit: int) -> list[TypeDef]:
        t = tables.types
        query = sa.select(t).where(t.c.id > after_id).order_by(t.c.id).limit(limit)
        if kind is not None:
            query = query.where(t.c.kind == int(kind))
        return [self._type_from_row(row) for row in self._execute(query)]

    @staticmethod
    def _type_row(type_def: TypeDef) -> dict[str, Any]:
        return {
            "kind": int(type_def.kind),
            "name": type_def.name,
            "version": type_def.version,
            "description": type_def.description,
            "properties": {name: int(p) for name, p in sorted(type_def.properties.items())},
        }

    def insert_type(self, type_def: TypeDef) -> int:
        t = tables.types
        result = self._execute(sa.insert(t).values(self._type_row(type_def)).returning(t.c.id))
        return int(result.scalar_one())

    def update_type(self, type_def: TypeDef) -> None:
        t = tables.types
        self._execute(sa.update(t).where(t.c.id == type_def.id).values(self._type_row(type_def)))

    # Nodes

    @staticmethod
    def _node_from_row(kind: NodeKind, row: sa.Row[Any]) -> AnyNode:
        common: dict[str, Any] = {
            "id": row.id,
            "type_id": row.type_id,
            "name": row.name,
            "external_id": row.external_id or "",
            "properties": decode_properties(row.properties),
            "custom_properties": decode_properties(row.custom_properties),
            "create_time_us": row.create_time_us,
            "update_time_us": row.update_time_us,
        }
        if kind is NodeKind.ARTIFACT:
            return Artifact(
                **common, uri=row.uri, state=ArtifactState(row.state), digest=row.digest
            )
        if kind is NodeKind.EXECUTION:
            return Execution(**common, state=ExecutionState(row.state))
        return Context(**common)

    @staticmethod
    def _node_row(kind: NodeKind, node: AnyNode) -> dict[str, Any]:
        row: dict[str, Any] = {
            "type_id": node.type_id,
            "name": node.name,
            "external_id": node.external_id or None,
            "properties": encode_properties(node.properties),
            "custom_properties": encode_properties(node.custom_properties),
            "create_time_us": node.create_time_us,
            "update_time_us": node.update_time_us,
        }
        if isinstance(node, Artifact):
            row.update(uri=node.uri, state=int(node.state), digest=node.digest)
        elif isinstance(node, Execution):
            row["state"] = int(node.state)
        return row

    def get_nodes(self, kind: NodeKind, ids: Collection[int]) -> dict[int, AnyNode]:
        table = NODE_TABLES[kind]
        found: dict[int, AnyNode] = {}
        for chunk in _chunks(sorted(set(ids))):
            for row in self._execute(sa.select(table).where(table.c.id.in_(chunk))):
                found[row.id] = self._node_from_row(kind, row)
        return found

    def existing_ids(self, kind: NodeKind, ids: Collection[int]) -> set[int]:
        table = NODE_TABLES[kind]
        found: set[int] = set()
        for chunk in _chunks(sorted(set(ids))):
            found.update(
                self._execute(sa.select(table.c.id).where(table.c.id.in_(chunk))).scalars()
            )
        return found

    def ids_by_external_id(
        self, kind: NodeKind, keys: Collection[tuple[int, str]]
    ) -> dict[tuple[int, str], int]:
        table = NODE_TABLES[kind]
        found: dict[tuple[int, str], int] = {}
        by_type: dict[int, list[str]] = {}
        for type_id, external_id in keys:
            by_type.setdefault(type_id, []).append(external_id)
        for type_id, external_ids in by_type.items():
            for chunk in _chunks(sorted(set(external_ids))):
                query = sa.select(table.c.id, table.c.external_id).where(
                    table.c.type_id == type_id, table.c.external_id.in_(chunk)
                )
                for row in self._execute(query):
                    found[(type_id, row.external_id)] = row.id
        return found

    def contexts_by_name(
        self, keys: Collection[tuple[int, str]]
    ) -> dict[tuple[int, str], tuple[int, str]]:
        table = tables.contexts
        found: dict[tuple[int, str], tuple[int, str]] = {}
        by_type: dict[int, list[str]] = {}
        for type_id, name in keys:
            by_type.setdefault(type_id, []).append(name)
        for type_id, names in by_type.items():
            for chunk in _chunks(sorted(set(names))):
                query = sa.select(table.c.id, table.c.name, table.c.external_id).where(
                    table.c.type_id == type_id, table.c.name.in_(chunk)
                )
                for row in self._execute(query):
                    found[(type_id, row.name)] = (row.id, row.external_id or "")
        return found

    def insert_nodes(
        self, kind: NodeKind, nodes: Sequence[AnyNode], *, type_ids: Sequence[int], time_us: int
    ) -> list[int]:
        if not nodes:
            return []
        table = NODE_TABLES[kind]
        # Insert in unique-key order so that two overlapping batches lock keys in the same order
        # (no deadlock on PostgreSQL), then hand the ids back in request order.
        order = sorted(range(len(nodes)), key=lambda i: (type_ids[i], nodes[i].external_id))
        rows = []
        for i in order:
            row = self._node_row(kind, nodes[i])
            row.update(type_id=type_ids[i], create_time_us=time_us, update_time_us=time_us)
            rows.append(row)
        ids = self._insert_returning_ids(table, rows)
        result = [0] * len(nodes)
        for position, index in enumerate(order):
            result[index] = ids[position]
        return result

    def _insert_returning_ids(self, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
        if self._connection.dialect.name == "sqlite":
            # SQLAlchemy can only return ordered ids from SQLite one row at a time. Writers hold
            # the database's write lock (BEGIN IMMEDIATE), so numbering the rows ourselves is
            # safe and lets one executemany insert them all.
            last = self._execute(sa.select(sa.func.max(table.c.id))).scalar_one() or 0
            ids = list(range(last + 1, last + 1 + len(rows)))
            for row, new_id in zip(rows, ids, strict=True):
                row["id"] = new_id
            self._execute(sa.insert(table), rows)
            return ids
        statement = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(self._execute(statement, rows).scalars())

    def update_nodes(self, kind: NodeKind, nodes: Sequence[AnyNode]) -> None:
        if not nodes:
            return
        table = NODE_TABLES[kind]
        rows = []
        for node in sorted(nodes, key=lambda n: n.id):
            row = self._node_row(kind, node)
            del row["create_time_us"]
            row["node_id"] = node.id
            rows.append(row)
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("node_id"))
            .values({name: sa.bindparam(name) for name in rows[0] if name != "node_id"})
        )
        self._execute(statement, rows)

    def list_nodes(self, kind: NodeKind, query: ListQuery) -> list[AnyNode]:
        table = NODE_TABLES[kind]
        statement = sa.select(table)
        if query.filter is not None:
            statement = statement.where(compile_filter(query.filter, kind, table))
        sort_column = _sort_column(table, query.order_field)
        id_column = table.c.id
        if query.after is not None:
            key, last_id = query.after
            if sort_column is id_column:
                after = id_column < last_id if query.descending else id_column > last_id
            elif query.descending:
                after = sa.or_(sort_column < key, sa.and_(sort_column == key, id_column < last_id))
            else:
                after = sa.or_(sort_column > key, sa.and_(sort_column == key, id_column > last_id))
            statement = statement.where(after)
        columns = [sort_column] if sort_column is id_column else [sort_column, id_column]
        ordering = [c.desc() if query.descending else c.asc() for c in columns]
        statement = statement.order_by(*ordering).limit(query.limit)
        return [self._node_from_row(kind, row) for row in self._execute(statement)]

    # Events

    @staticmethod
    def _event_from_row(row: sa.Row[Any]) -> Event:
        return Event(
            artifact_id=row.artifact_id,
            execution_id=row.execution_id,
            type=EventType(row.type),
            path=row.path,
            create_time_us=row.create_time_us,
        )

    def existing_event_keys(self, events: Collection[Event]) -> set[tuple[int, int, int, str]]:
        t = tables.events
        wanted = {event.key for event in events}
        found: set[tuple[int, int, int, str]] = set()
        artifact_ids = sorted({key[0] for key in wanted})
        execution_ids = sorted({key[1] for key in wanted})
        for artifact_chunk in _chunks(artifact_ids):
            for execution_chunk in _chunks(execution_ids):
                query = sa.select(t.c.artifact_id, t.c.execution_id, t.c.type, t.c.path).where(
                    t.c.artifact_id.in_(artifact_chunk), t.c.execution_id.in_(execution_chunk)
                )
                for row in self._execute(query):
                    key = (row.artifact_id, row.execution_id, row.type, row.path)
                    if key in wanted:
                        found.add(key)
        return found

    def insert_events(self, events: Sequence[Event]) -> None:
        if not events:
            return
        rows = [
            {
                "artifact_id": e.artifact_id,
                "execution_id": e.execution_id,
                "type": int(e.type),
                "path": e.path,
                "create_time_us": e.create_time_us,
            }
            for e in sorted(events, key=lambda e: e.key)
        ]
        self._execute(sa.insert(tables.events), rows)

    def events_of(
        self,
        *,
        artifact_ids: Collection[int] = (),
        execution_ids: Collection[int] = (),
        types: Collection[EventType] | None = None,
    ) -> list[Event]:
        t = tables.events
        found: dict[int, Event] = {}
        for column, ids in ((t.c.artifact_id, artifact_ids), (t.c.execution_id, execution_ids)):
            for chunk in _chunks(sorted(set(ids))):
                query = sa.select(t).where(column.in_(chunk))
                if types is not None:
                    query = query.where(t.c.type.in_(sorted(int(x) for x in types)))
                for row in self._execute(query):
                    found[row.id] = self._event_from_row(row)
        return [found[event_id] for event_id in sorted(found)]

    # Context links

    def existing_links(
        self, kind: LinkKind, pairs: Collection[tuple[int, int]]
    ) -> set[tuple[int, int]]:
        table, first, second = LINK_TABLES[kind]
        wanted = set(pairs)
        found: set[tuple[int, int]] = set()
        firsts = sorted({pair[0] for pair in wanted})
        seconds = sorted({pair[1] for pair in wanted})
        for first_chunk in _chunks(firsts):
            for second_chunk in _chunks(seconds):
                query = sa.select(table.c[first], table.c[second]).where(
                    table.c[first].in_(first_chunk), table.c[second].in_(second_chunk)
                )
                found.update(pair for pair in _pairs(self._execute(query)) if pair in wanted)
        return found

    def insert_links(self, kind: LinkKind, pairs: Sequence[tuple[int, int]]) -> None:
        if not pairs:
            return
        table, first, second = LINK_TABLES[kind]
        rows = [{first: a, second: b} for a, b in sorted(set(pairs))]
        self._execute(sa.insert(table), rows)

    def links_of(self, kind: LinkKind, node_ids: Collection[int]) -> list[tuple[int, int]]:
        table, first, second = LINK_TABLES[kind]
        found: list[tuple[int, int]] = []
        for chunk in _chunks(sorted(set(node_ids))):
            query = sa.select(table.c[first], table.c[second]).where(table.c[second].in_(chunk))
            found.extend(_pairs(self._execute(query)))
        return sorted(found)

    def parents_of(self, child_ids: Collection[int]) -> list[tuple[int, int]]:
        t = tables.parent_contexts
        found: list[tuple[int, int]] = []
        for chunk in _chunks(sorted(set(child_ids))):
            query = sa.select(t.c.child_id, t.c.parent_id).where(t.c.child_id.in_(chunk))
            found.extend(_pairs(self._execute(query)))
        return sorted(found)


# ---------------------------------------------------------------------------------------------
# Filters -> SQL expressions (bound parameters only)


def _sort_column(table: sa.Table, order_field: str) -> sa.ColumnElement[Any]:
    assert order_field in ORDER_FIELDS
    column_name = {"create_time": "create_time_us", "update_time": "update_time_us"}.get(
        order_field, order_field
    )
    return table.c[column_name]


def _compare(column: sa.ColumnElement[Any], op: str, values: tuple[Any, ...]) -> Any:
    if op == "IN":
        return column.in_(values)
    (value,) = values
    if op == "LIKE":
        return column.like(value, escape="\\")
    operators: dict[str, Callable[[Any, Any], Any]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return operators[op](column, value)


def _two_valued(condition: Any) -> sa.ColumnElement[bool]:
    """NULL (a missing property) compares as false, so NOT flips every comparison cleanly."""
    return sa.func.coalesce(condition, sa.false(), type_=sa.Boolean)


def _property_condition(column: sa.ColumnElement[Any], comparison: f.Comparison) -> Any:
    assert isinstance(comparison.field, f.PropertyField)
    name = comparison.field.name
    # Group the literals by the stored kinds they can match.
    ints = [v for v in comparison.values if isinstance(v, int) and not isinstance(v, bool)]
    floats = [v for v in comparison.values if isinstance(v, float)]
    strings = [v for v in comparison.values if isinstance(v, str)]
    bools = [v for v in comparison.values if isinstance(v, bool)]
    op = comparison.op
    parts: list[Any] = []

    def add(expression: sa.ColumnElement[Any], values: list[Any]) -> None:
        if not values:
            return
        if op == "IN":
            parts.append(_two_valued(expression.in_(values)))
        else:
            parts.append(_two_valued(_compare(expression, op, (values[0],))))

    int_path = sa.cast(column[(name, "int")].as_string(), sa.BigInteger)
    double_path = column[(name, "double")].as_float()
    add(int_path, ints)
    add(double_path, [float(v) for v in ints])
    add(sa.cast(int_path, sa.Float), floats)
    add(double_path, floats)
    add(column[(name, "string")].as_string(), strings)
    add(column[(name, "bool")].as_boolean(), bools)
    return sa.or_(*parts)


def _type_ids(kind: NodeKind, op: str, values: tuple[Any, ...]) -> sa.Select[Any]:
    t = tables.types
    return sa.select(t.c.id).where(t.c.kind == int(kind), _compare(t.c.name, op, values))


def _membership_condition(node_kind: NodeKind, table: sa.Table, comparison: f.Comparison) -> Any:
    assert isinstance(comparison.field, f.MembershipField)
    link, node_column, context_column = MEMBERSHIP_LINKS[node_kind]
    related = tables.contexts.alias("related")
    attribute = comparison.field.attribute
    if attribute == "type":
        condition = related.c.type_id.in_(
            _type_ids(NodeKind.CONTEXT, comparison.op, comparison.values)
        )
    else:
        condition = _compare(related.c[attribute], comparison.op, comparison.values)
    members = (
        sa.select(link.c[node_column])
        .join(related, related.c.id == link.c[context_column])
        .where(condition)
    )
    return table.c.id.in_(members)


def compile_filter(expr: f.Expr, kind: NodeKind, table: sa.Table) -> sa.ColumnElement[bool]:
    """A parsed filter as a SQLAlchemy condition on `table`; every literal is a bound parameter."""
    condition: sa.ColumnElement[bool]
    if isinstance(expr, f.And):
        condition = sa.and_(*(compile_filter(part, kind, table) for part in expr.parts))
        return condition
    if isinstance(expr, f.Or):
        condition = sa.or_(*(compile_filter(part, kind, table) for part in expr.parts))
        return condition
    if isinstance(expr, f.Not):
        return sa.not_(compile_filter(expr.part, kind, table))
    field = expr.field
    if isinstance(field, f.TypeNameField):
        return table.c.type_id.in_(_type_ids(kind, expr.op, expr.values))
    if isinstance(field, f.PropertyField):
        properties = table.c.custom_properties if field.custom else table.c.properties
        condition = _property_condition(properties, expr)
        return condition
    if isinstance(field, f.MembershipField):
        condition = _membership_condition(kind, table, expr)
        return condition
    column_name = {"create_time": "create_time_us", "update_time": "update_time_us"}.get(
        field.name, field.name
    )
    if column_name not in table.c:
        raise InvalidArgument(f"{kind.label}s have no field {field.name}", field="filter")
    column: sa.ColumnElement[Any] = table.c[column_name]
    if column_name == "external_id":
        # Unset external ids are NULL in the table; to the filter they are "".
        column = sa.func.coalesce(column, "")
    condition = _compare(column, expr.op, expr.values)
    return condition
