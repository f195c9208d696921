"""The storage interface the core works through.

The core runs a function inside one transaction (`Store.run`); the function talks to the
`Transaction`, which offers set-at-a-time reads and writes (never one query per node). A write
function may run more than once: the store retries it when a concurrent writer won a race (a
unique key, a serialization failure, a deadlock, a dropped connection), so the function must not
have side effects outside the transaction. After the retries the store raises `Aborted`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sluice_metadata.filters import Expr
from sluice_metadata.model import AnyNode, Event, EventType, NodeKind, TypeDef

T = TypeVar("T")


class LinkKind(enum.Enum):
    """The three many-to-many link tables, as (context id, node id) or (child, parent) pairs."""

    ATTRIBUTION = "attribution"  # (context_id, artifact_id)
    ASSOCIATION = "association"  # (context_id, execution_id)
    PARENT = "parent"  # (child_id, parent_id)


ORDER_FIELDS = ("id", "create_time", "update_time", "name")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of a keyset-paginated listing: rows after `after` (sort key, id), in order."""

    filter: Expr | None
    order_field: str  # one of ORDER_FIELDS
    descending: bool
    limit: int
    after: tuple[int | str, int] | None = None


class Transaction(Protocol):
    # Types

    def get_type_by_name(self, kind: NodeKind, name: str, version: str) -> TypeDef | None: ...

    def get_types(self, ids: Collection[int]) -> dict[int, TypeDef]: ...

    def list_types(self, kind: NodeKind | None, after_id: int, limit: int) -> list[TypeDef]: ...

    def insert_type(self, type_def: TypeDef) -> int: ...

    def update_type(self, type_def: TypeDef) -> None: ...

    # Nodes (artifacts, executions, contexts); returned nodes carry type_id but no type_name.

    def get_nodes(self, kind: NodeKind, ids: Collection[int]) -> dict[int, AnyNode]: ...

    def existing_ids(self, kind: NodeKind, ids: Collection[int]) -> set[int]: ...

    def ids_by_external_id(
        self, kind: NodeKind, keys: Collection[tuple[int, str]]
    ) -> dict[tuple[int, str], int]: ...

    def contexts_by_name(
        self, keys: Collection[tuple[int, str]]
    ) -> dict[tuple[int, str], tuple[int, str]]:
        """(type_id, name) -> (id, external_id) of the contexts that exist."""
        ...

    def insert_nodes(
        self, kind: NodeKind, nodes: Sequence[AnyNode], *, type_ids: Sequence[int], time_us: int
    ) -> list[int]:
        """Inserts new nodes of the given types, created and updated at `time_us`; their ids in
        order. (The nodes' own type and time fields are ignored: no copies of big batches.)"""
        ...

    def update_nodes(self, kind: NodeKind, nodes: Sequence[AnyNode]) -> None: ...

    def list_nodes(self, kind: NodeKind, query: ListQuery) -> list[AnyNode]: ...

    # Events

    def existing_event_keys(self, events: Collection[Event]) -> set[tuple[int, int, int, str]]: ...

    def insert_events(self, events: Sequence[Event]) -> None: ...

    def events_of(
        self,
        *,
        artifact_ids: Collection[int] = (),
        execution_ids: Collection[int] = (),
        types: Collection[EventType] | None = None,
    ) -> list[Event]:
        """Events touching any of the artifacts or executions (of the given types), by id."""
        ...

    # Context links

    def existing_links(
        self, kind: LinkKind, pairs: Collection[tuple[int, int]]
    ) -> set[tuple[int, int]]: ...

    def insert_links(self, kind: LinkKind, pairs: Sequence[tuple[int, int]]) -> None: ...

    def links_of(self, kind: LinkKind, node_ids: Collection[int]) -> list[tuple[int, int]]:
        """Pairs whose second member (artifact, execution or parent) is in `node_ids`."""
        ...

    def parents_of(self, child_ids: Collection[int]) -> list[tuple[int, int]]:
        """(child_id, parent_id) pairs for the given children."""
        ...


class Store(Protocol):
    def run(self, work: Callable[[Transaction], T], *, write: bool) -> T:
        """Runs `work` in one transaction, committed when it returns (retried on conflicts)."""
        ...

    def close(self) -> None: ...
