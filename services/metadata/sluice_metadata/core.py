"""The lineage store's rules: validation, idempotent puts, listing, lineage and provenance.

Plain Python over the `Store` interface: no gRPC, no SQL. Every public method is one transaction,
and raises the runtime's domain errors (InvalidArgument, NotFound, AlreadyExists, ...) naming the
request field at fault, e.g. ``artifacts[3].properties.span``. Validation happens before or inside
the transaction, so a rejected request writes nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence, Sized
from dataclasses import dataclass, replace
from typing import TypeVar, cast

from sluice_runtime.errors import AlreadyExists, InvalidArgument, NotFound

from sluice_metadata.filters import parse_filter
from sluice_metadata.model import (
    INPUT_EVENT_TYPES,
    MAX_BATCH_ITEMS,
    MAX_NAME_LENGTH,
    OUTPUT_EVENT_TYPES,
    PROPERTY_NAME_RE,
    AnyNode,
    Artifact,
    ArtifactAndEvent,
    ArtifactState,
    Association,
    Attribution,
    Context,
    Direction,
    Event,
    EventType,
    Execution,
    ExecutionState,
    LineageGraph,
    NodeKind,
    Page,
    ParentLink,
    PropertyType,
    Provenance,
    ProvenanceStep,
    PutExecutionResult,
    TypeDef,
)
from sluice_metadata.paging import decode_page_token, encode_page_token, query_fingerprint
from sluice_metadata.store import ORDER_FIELDS, LinkKind, ListQuery, Store, Transaction

N = TypeVar("N", Artifact, Execution, Context)

MAX_URI_LENGTH = 4_096
MAX_DESCRIPTION_LENGTH = 4_096
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000
DEFAULT_MAX_HOPS = 20
MAX_HOPS = 100
DEFAULT_MAX_NODES = 10_000

FIELD_PLURALS = {
    NodeKind.ARTIFACT: "artifacts",
    NodeKind.EXECUTION: "executions",
    NodeKind.CONTEXT: "contexts",
}


def _now_us() -> int:
    return time.time_ns() // 1_000


# ---------------------------------------------------------------------------------------------
# Field checks (pure)


def check_count(items: Sized, field: str, limit: int = MAX_BATCH_ITEMS) -> None:
    if len(items) > limit:
        raise InvalidArgument(
            f"{field}: {len(items):,} items in one request; the limit is {limit:,}",
            field=field,
            reason="TOO_MANY_ITEMS",
        )


def check_text(
    value: str, field: str, *, limit: int = MAX_NAME_LENGTH, required: bool = False
) -> None:
    if required and not value:
        raise InvalidArgument(f"{field} is required", field=field, reason="REQUIRED")
    if len(value) > limit:
        raise InvalidArgument(
            f"{field} is {len(value)} characters long; the limit is {limit}",
            field=field,
            reason="TOO_LONG",
        )
    if "\x00" in value:
        raise InvalidArgument(f"{field} contains a NUL character", field=field)


def check_property_name(name: str, field: str) -> None:
    if not PROPERTY_NAME_RE.fullmatch(name):
        raise InvalidArgument(
            f"{field}: {name!r} is not a valid property name (1 to 255 of A-Z a-z 0-9 _ . : / -, "
            "not starting with . : / -)",
            field=field,
        )


def _text_is_fine(value: str, limit: int = MAX_NAME_LENGTH) -> bool:
    return len(value) <= limit and "\x00" not in value


def check_node_fields(kind: NodeKind, node: AnyNode, field: str) -> None:
    """The checks that need no type and no database. (The fast path builds no field names: this
    runs for every node of a 10,000-node batch.)"""
    # A context always has a name, unless it is named by its id alone.
    name_required = kind is NodeKind.CONTEXT and not (node.id and is_reference(node))
    if not (
        _text_is_fine(node.name)
        and _text_is_fine(node.external_id)
        and _text_is_fine(node.type_name)
        and (node.name or not name_required)
    ):
        check_text(node.name, f"{field}.name", required=name_required)
        check_text(node.external_id, f"{field}.external_id")
        check_text(node.type_name, f"{field}.type")
    if node.id < 0 or node.type_id < 0:
        bad = "id" if node.id < 0 else "type_id"
        raise InvalidArgument(f"{field}.{bad} must not be negative", field=f"{field}.{bad}")
    if isinstance(node, Artifact):
        if not (_text_is_fine(node.uri, MAX_URI_LENGTH) and _text_is_fine(node.digest)):
            check_text(node.uri, f"{field}.uri", limit=MAX_URI_LENGTH)
            check_text(node.digest, f"{field}.digest")
        if not isinstance(node.state, ArtifactState):
            raise InvalidArgument(
                f"{field}.state: unknown state {node.state}", field=f"{field}.state"
            )
    if isinstance(node, Execution) and not isinstance(node.state, ExecutionState):
        raise InvalidArgument(f"{field}.state: unknown state {node.state}", field=f"{field}.state")
    for group, properties in (
        ("properties", node.properties),
        ("custom_properties", node.custom_properties),
    ):
        for name, value in properties.items():
            if not PROPERTY_NAME_RE.fullmatch(name):
                check_property_name(name, f"{field}.{group}.{name}")
            data = value.data
            if isinstance(data, str) and "\x00" in data:
                where = f"{field}.{group}.{name}"
                raise InvalidArgument(f"{where} contains a NUL character", field=where)


def property_mismatch(type_def: TypeDef, node: AnyNode, field: str) -> InvalidArgument | None:
    """The first declared-property problem of a node, or None."""
    for name, value in node.properties.items():
        declared = type_def.properties.get(name)
        where = f"{field}.properties.{name}"
        if declared is None:
            known = ", ".join(sorted(type_def.properties)) or "none"
            return InvalidArgument(
                f"{where}: type {type_def.display_name} declares no property {name!r} "
                f"(declared: {known}); put it in custom_properties or add it to the type with "
                "PutType(can_add_fields=true)",
                field=where,
                reason="UNDECLARED_PROPERTY",
            )
        if value.kind is not declared:
            return InvalidArgument(
                f"{where}: type {type_def.display_name} declares {name!r} as {declared.name}, "
                f"got a {value.kind.name} value",
                field=where,
                reason="PROPERTY_TYPE_MISMATCH",
            )
    return None


def is_reference(node: AnyNode) -> bool:
    """A node given by its id alone names a stored node and leaves it unchanged."""
    return replace(node, id=0) == type(node)()


def page_size_of(page_size: int) -> int:
    if page_size < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    return min(page_size, MAX_PAGE_SIZE)


def parse_order_by(order_by: str) -> tuple[str, bool]:
    words = order_by.split()
    if not words:
        return "id", False
    if (
        len(words) <= 2
        and words[0] in ORDER_FIELDS
        and (len(words) == 1 or words[1].lower() in ("asc", "desc"))
    ):
        return words[0], len(words) == 2 and words[1].lower() == "desc"
    raise InvalidArgument(
        f"order_by {order_by!r} is not one of {', '.join(ORDER_FIELDS)}, optionally followed by "
        '" desc" or " asc"',
        field="order_by",
    )


# ---------------------------------------------------------------------------------------------
# The type cache


class TypeCache:
    """Types by id and by name. Types only ever gain properties, so a cached copy can be stale
    only by missing a property; the core rereads a type before refusing a property for that."""

    def __init__(self) -> None:
        self._by_id: dict[int, TypeDef] = {}
        self._by_name: dict[tuple[NodeKind, str, str], int] = {}
        self._lock = threading.Lock()

    def by_id(self, type_id: int) -> TypeDef | None:
        return self._by_id.get(type_id)

    def by_name(self, kind: NodeKind, name: str, version: str = "") -> TypeDef | None:
        type_id = self._by_name.get((kind, name, version))
        return None if type_id is None else self._by_id.get(type_id)

    def add(self, types: Iterable[TypeDef]) -> None:
        with self._lock:
            for type_def in types:
                self._by_id[type_def.id] = type_def
                self._by_name[(type_def.kind, type_def.name, type_def.version)] = type_def.id


@dataclass(slots=True)
class _PutOutcome:
    ids: list[int]
    created: list[bool]


# ---------------------------------------------------------------------------------------------
# The core


class MetadataCore:
    """The metadata service's operations over a `Store`."""

    def __init__(self, store: Store, *, clock: Callable[[], int] = _now_us) -> None:
        self._store = store
        self._clock = clock
        self._types = TypeCache()

    @property
    def store(self) -> Store:
        return self._store

    # Types ------------------------------------------------------------------------------------

    def put_type(self, type_def: TypeDef, *, can_add_fields: bool = False) -> TypeDef:
        if type_def.kind not in NodeKind.__members__.values():
            raise InvalidArgument(
                "type.kind must be ARTIFACT, EXECUTION or CONTEXT", field="type.kind"
            )
        check_text(type_def.name, "type.name", required=True)
        check_text(type_def.version, "type.version")
        check_text(type_def.description, "type.description", limit=MAX_DESCRIPTION_LENGTH)
        for name, property_type in type_def.properties.items():
            where = f"type.properties.{name}"
            check_property_name(name, where)
            if property_type not in PropertyType.__members__.values():
                raise InvalidArgument(
                    f"{where}: give a property type (INT, DOUBLE, STRING, BOOL, STRUCT or PROTO)",
                    field=where,
                )

        def work(tx: Transaction) -> TypeDef:
            existing = tx.get_type_by_name(type_def.kind, type_def.name, type_def.version)
            if existing is None:
                created = replace(type_def, id=0, properties=dict(type_def.properties))
                created.id = tx.insert_type(created)
                return created
            added = _check_compatible(existing, type_def, can_add_fields)
            if added:
                existing.properties.update(added)
                tx.update_type(existing)
            return existing

        result = self._store.run(work, write=True)
        self._types.add([result])
        return result

    def get_type(
        self, *, type_id: int = 0, kind: NodeKind | None = None, name: str = "", version: str = ""
    ) -> TypeDef:
        if type_id:
            found = self._store.run(lambda tx: tx.get_types([type_id]), write=False).get(type_id)
            if found is None:
                raise NotFound(f"type {type_id} does not exist", field="id")
        else:
            if not name:
                raise InvalidArgument("give the type's id, or its kind and name", field="name")
            if kind is None:
                raise InvalidArgument("give the kind of the type named " + repr(name), field="kind")
            found = self._store.run(
                lambda tx: tx.get_type_by_name(kind, name, version), write=False
            )
            if found is None:
                label = f"{name} (version {version!r})" if version else name
                raise NotFound(f"{kind.label} type {label} does not exist", field="name")
        self._types.add([found])
        return found

    def list_types(
        self, kind: NodeKind | None, *, page_size: int = 0, page_token: str = ""
    ) -> Page[TypeDef]:
        size = page_size_of(page_size)
        fingerprint = query_fingerprint("types", str(int(kind or 0)))
        after_id = 0
        if page_token:
            _, after_id = decode_page_token(page_token, fingerprint)
        found = self._store.run(lambda tx: tx.list_types(kind, after_id, size + 1), write=False)
        self._types.add(found)
        if len(found) <= size:
            return Page(found)
        last = found[size - 1]
        return Page(found[:size], encode_page_token(fingerprint, last.id, last.id))

    def _load_types(self, tx: Transaction, ids: Collection[int]) -> None:
        missing = [type_id for type_id in ids if self._types.by_id(type_id) is None]
        if missing:
            self._types.add(tx.get_types(missing).values())

    def _type_named(self, tx: Transaction, kind: NodeKind, name: str) -> TypeDef | None:
        found = self._types.by_name(kind, name)
        if found is None:
            found = tx.get_type_by_name(kind, name, "")
            if found is not None:
                self._types.add([found])
        return found

    def _resolve_type(
        self, tx: Transaction, kind: NodeKind, node: AnyNode, field: str, stored_type_id: int
    ) -> TypeDef:
        """The node's type from type_id and/or type (its name); for an update, the stored one."""
        by_id: TypeDef | None = None
        if node.type_id:
            self._load_types(tx, [node.type_id])
            by_id = self._types.by_id(node.type_id)
            if by_id is None:
                raise NotFound(
                    f"{field}.type_id: type {node.type_id} does not exist", field=f"{field}.type_id"
                )
        by_name: TypeDef | None = None
        if node.type_name:
            by_name = self._type_named(tx, kind, node.type_name)
            if by_name is None:
                raise NotFound(
                    f"{field}.type: {kind.label} type {node.type_name!r} does not exist; "
                    "register it with PutType first",
                    field=f"{field}.type",
                )
        if by_id is not None and by_name is not None and by_id.id != by_name.id:
            raise InvalidArgument(
                f"{field}: type_id {by_id.id} is type {by_id.name!r}, not {node.type_name!r}",
                field=f"{field}.type",
            )
        resolved = by_id or by_name
        if resolved is None:
            if not stored_type_id:
                raise InvalidArgument(
                    f"{field}.type: give the type's name (type) or its id (type_id)",
                    field=f"{field}.type",
                    reason="REQUIRED",
                )
            self._load_types(tx, [stored_type_id])
            stored = self._types.by_id(stored_type_id)
            assert stored is not None
            return stored
        if resolved.kind is not kind:
            raise InvalidArgument(
                f"{field}: type {resolved.name!r} is an {resolved.kind.label} type, not an "
                f"{kind.label} type",
                field=f"{field}.type",
            )
        if stored_type_id and resolved.id != stored_type_id:
            raise InvalidArgument(
                f"{field}: {kind.label} {node.id} has type {stored_type_id}; a node's type "
                "cannot change",
                field=f"{field}.type",
            )
        return resolved

    def _check_properties(
        self, tx: Transaction, type_def: TypeDef, node: AnyNode, field: str
    ) -> None:
        problem = property_mismatch(type_def, node, field)
        if problem is None:
            return
        # Another process may have added the property since we cached the type.
        fresh = tx.get_types([type_def.id]).get(type_def.id, type_def)
        self._types.add([fresh])
        problem = property_mismatch(fresh, node, field)
        if problem is not None:
            raise problem

    def _fill_type_names(self, tx: Transaction, nodes: Iterable[AnyNode]) -> None:
        nodes = list(nodes)
        self._load_types(tx, {node.type_id for node in nodes})
        for node in nodes:
            type_def = self._types.by_id(node.type_id)
            node.type_name = type_def.name if type_def is not None else ""

    # Puts -------------------------------------------------------------------------------------

    def put_artifacts(self, artifacts: Sequence[Artifact]) -> list[int]:
        return self._put_batch(NodeKind.ARTIFACT, artifacts)

    def put_executions(self, executions: Sequence[Execution]) -> list[int]:
        return self._put_batch(NodeKind.EXECUTION, executions)

    def put_contexts(self, contexts: Sequence[Context]) -> list[int]:
        return self._put_batch(NodeKind.CONTEXT, contexts)

    def _put_batch(self, kind: NodeKind, nodes: Sequence[AnyNode]) -> list[int]:
        plural = FIELD_PLURALS[kind]
        check_count(nodes, plural)

        def field_of(index: int) -> str:
            return f"{plural}[{index}]"

        for index, node in enumerate(nodes):
            check_node_fields(kind, node, field_of(index))
        return self._store.run(
            lambda tx: self._put_nodes(tx, kind, nodes, field_of).ids, write=True
        )

    def _put_nodes(
        self,
        tx: Transaction,
        kind: NodeKind,
        nodes: Sequence[AnyNode],
        field_of: Callable[[int], str],
    ) -> _PutOutcome:
        """Inserts new nodes, updates those with an id, and resolves retries by external id (and,
        for contexts, by name) to the existing node. Runs inside the caller's transaction."""
        now = self._clock()
        stored = tx.get_nodes(kind, [node.id for node in nodes if node.id])
        types: list[TypeDef] = []
        for index, node in enumerate(nodes):
            field = field_of(index)
            previous = stored.get(node.id) if node.id else None
            if node.id and previous is None:
                raise NotFound(
                    f"{field}.id: {kind.label} {node.id} does not exist", field=f"{field}.id"
                )
            type_def = self._resolve_type(
                tx, kind, node, field, previous.type_id if previous else 0
            )
            self._check_properties(tx, type_def, node, field)
            types.append(type_def)

        ids = [0] * len(nodes)
        created = [False] * len(nodes)
        new_by_key: dict[
            tuple[int, str], int
        ] = {}  # (type_id, external id or "name:" name) -> index
        external_keys = [
            (types[i].id, node.external_id) for i, node in enumerate(nodes) if node.external_id
        ]
        existing_by_external = tx.ids_by_external_id(kind, external_keys) if external_keys else {}
        existing_by_name: dict[tuple[int, str], tuple[int, str]] = {}
        if kind is NodeKind.CONTEXT:
            existing_by_name = tx.contexts_by_name(
                [(types[i].id, n.name) for i, n in enumerate(nodes)]
            )

        inserts: list[AnyNode] = []
        insert_indexes: list[int] = []
        updates: list[AnyNode] = []
        aliases: list[tuple[int, int]] = []  # (index, index of the first new node it repeats)
        for index, node in enumerate(nodes):
            field = field_of(index)
            type_id = types[index].id
            previous = stored.get(node.id) if node.id else None
            if previous is not None and is_reference(node):
                ids[index] = node.id
                continue
            if previous is not None:
                updates.append(self._updated(tx, kind, node, previous, field, now))
                ids[index] = node.id
                continue
            if node.external_id:
                existing = existing_by_external.get((type_id, node.external_id))
                if existing is not None:
                    ids[index] = existing
                    continue
            if kind is NodeKind.CONTEXT:
                named = existing_by_name.get((type_id, node.name))
                if named is not None:
                    named_id, named_external = named
                    if node.external_id and named_external and named_external != node.external_id:
                        raise AlreadyExists(
                            f"{field}.name: context {node.name!r} of type "
                            f"{types[index].name!r} exists with external id {named_external!r}",
                            field=f"{field}.name",
                        )
                    ids[index] = named_id
                    continue
            keys = []
            if node.external_id:
                keys.append((type_id, node.external_id))
            if kind is NodeKind.CONTEXT:
                keys.append((type_id, "name:" + node.name))
            repeated = next((new_by_key[k] for k in keys if k in new_by_key), None)
            if repeated is not None:
                aliases.append((index, repeated))
                continue
            for key in keys:
                new_by_key[key] = index
            inserts.append(node)
            insert_indexes.append(index)

        new_ids = tx.insert_nodes(
            kind, inserts, type_ids=[types[i].id for i in insert_indexes], time_us=now
        )
        for index, new_id in zip(insert_indexes, new_ids, strict=True):
            ids[index] = new_id
            created[index] = True
        for index, first in aliases:
            ids[index] = ids[first]
        tx.update_nodes(kind, updates)
        return _PutOutcome(ids, created)

    def _updated(
        self,
        tx: Transaction,
        kind: NodeKind,
        node: AnyNode,
        previous: AnyNode,
        field: str,
        now: int,
    ) -> AnyNode:
        """The stored node as the update leaves it: every field replaced except the external id
        (empty keeps the stored one: it is the idempotency key) and the create time."""
        external_id = node.external_id or previous.external_id
        if external_id != previous.external_id:
            taken = tx.ids_by_external_id(kind, [(previous.type_id, external_id)])
            if taken:
                raise AlreadyExists(
                    f"{field}.external_id: {external_id!r} already names {kind.label} "
                    f"{next(iter(taken.values()))}",
                    field=f"{field}.external_id",
                )
        if kind is NodeKind.CONTEXT and node.name != previous.name:
            clash = tx.contexts_by_name([(previous.type_id, node.name)])
            if clash:
                raise AlreadyExists(
                    f"{field}.name: a context named {node.name!r} of this type exists",
                    field=f"{field}.name",
                )
        return replace(
            node,
            type_id=previous.type_id,
            type_name="",
            external_id=external_id,
            create_time_us=previous.create_time_us,
            update_time_us=now,
        )

    def put_events(self, events: Sequence[Event]) -> None:
        check_count(events, "events")
        for index, event in enumerate(events):
            _check_event(event, f"events[{index}]", ids_required=True)

        def work(tx: Transaction) -> None:
            self._require_existing(
                tx, NodeKind.ARTIFACT, [e.artifact_id for e in events], "events", "artifact_id"
            )
            self._require_existing(
                tx, NodeKind.EXECUTION, [e.execution_id for e in events], "events", "execution_id"
            )
            self._insert_new_events(tx, events, check_existing=True)

        self._store.run(work, write=True)

    def _insert_new_events(
        self, tx: Transaction, events: Sequence[Event], *, check_existing: bool
    ) -> None:
        now = self._clock()
        existing = tx.existing_event_keys(events) if check_existing else set()
        fresh: dict[tuple[int, int, int, str], Event] = {}
        for event in events:
            if event.key not in existing and event.key not in fresh:
                fresh[event.key] = replace(event, create_time_us=now)
        tx.insert_events(list(fresh.values()))

    @staticmethod
    def _require_existing(
        tx: Transaction, kind: NodeKind, ids: Sequence[int], list_field: str, id_field: str
    ) -> None:
        if not ids:
            return
        found = tx.existing_ids(kind, ids)
        for index, node_id in enumerate(ids):
            if node_id not in found:
                field = f"{list_field}[{index}]" + (f".{id_field}" if id_field else "")
                raise NotFound(f"{field}: {kind.label} {node_id} does not exist", field=field)

    def put_context_links(
        self,
        attributions: Sequence[Attribution] = (),
        associations: Sequence[Association] = (),
        parent_contexts: Sequence[ParentLink] = (),
    ) -> None:
        check_count(attributions, "attributions")
        check_count(associations, "associations")
        check_count(parent_contexts, "parent_contexts")
        for index, link in enumerate(parent_contexts):
            if link.child_id == link.parent_id:
                field = f"parent_contexts[{index}].parent_id"
                raise InvalidArgument(f"{field}: a context cannot be its own parent", field=field)

        def work(tx: Transaction) -> None:
            ctx = NodeKind.CONTEXT
            self._require_existing(
                tx, ctx, [a.context_id for a in attributions], "attributions", "context_id"
            )
            self._require_existing(
                tx,
                NodeKind.ARTIFACT,
                [a.artifact_id for a in attributions],
                "attributions",
                "artifact_id",
            )
            self._require_existing(
                tx, ctx, [a.context_id for a in associations], "associations", "context_id"
            )
            self._require_existing(
                tx,
                NodeKind.EXECUTION,
                [a.execution_id for a in associations],
                "associations",
                "execution_id",
            )
            self._require_existing(
                tx, ctx, [p.child_id for p in parent_contexts], "parent_contexts", "child_id"
            )
            self._require_existing(
                tx, ctx, [p.parent_id for p in parent_contexts], "parent_contexts", "parent_id"
            )
            self._check_no_cycles(tx, parent_contexts)
            self._insert_new_links(
                tx, LinkKind.ATTRIBUTION, [(a.context_id, a.artifact_id) for a in attributions]
            )
            self._insert_new_links(
                tx, LinkKind.ASSOCIATION, [(a.context_id, a.execution_id) for a in associations]
            )
            self._insert_new_links(
                tx, LinkKind.PARENT, [(p.child_id, p.parent_id) for p in parent_contexts]
            )

        self._store.run(work, write=True)

    @staticmethod
    def _insert_new_links(
        tx: Transaction,
        kind: LinkKind,
        pairs: Sequence[tuple[int, int]],
        *,
        check_existing: bool = True,
    ) -> None:
        if not pairs:
            return
        existing = tx.existing_links(kind, pairs) if check_existing else set()
        tx.insert_links(kind, sorted(set(pairs) - existing))

    @staticmethod
    def _check_no_cycles(tx: Transaction, links: Sequence[ParentLink]) -> None:
        """Refuses a parent link whose parent already descends from its child."""
        if not links:
            return
        parents: dict[int, set[int]] = {}
        for index, link in enumerate(links):
            # Ancestors of the new parent, through stored links and the links before this one.
            seen: set[int] = set()
            frontier = {link.parent_id}
            while frontier:
                seen |= frontier
                stored = tx.parents_of(frontier)
                step = {parent for _, parent in stored}
                for child in frontier:
                    step |= parents.get(child, set())
                frontier = step - seen
            if link.child_id in seen:
                field = f"parent_contexts[{index}].parent_id"
                raise InvalidArgument(
                    f"{field}: making context {link.parent_id} a parent of {link.child_id} "
                    "would make a cycle",
                    field=field,
                )
            parents.setdefault(link.child_id, set()).add(link.parent_id)

    def put_execution(
        self,
        execution: Execution,
        artifact_events: Sequence[ArtifactAndEvent] = (),
        contexts: Sequence[Context] = (),
    ) -> PutExecutionResult:
        check_count(artifact_events, "artifact_events")
        check_count(contexts, "contexts")
        check_node_fields(NodeKind.EXECUTION, execution, "execution")
        for index, pair in enumerate(artifact_events):
            field = f"artifact_events[{index}]"
            check_node_fields(NodeKind.ARTIFACT, pair.artifact, f"{field}.artifact")
            _check_event(
                Event(0, 0, pair.event_type, pair.path), f"{field}.event", ids_required=False
            )
        for index, context in enumerate(contexts):
            if not context.id:
                check_node_fields(NodeKind.CONTEXT, context, f"contexts[{index}]")

        def work(tx: Transaction) -> PutExecutionResult:
            put = self._put_nodes(tx, NodeKind.EXECUTION, [execution], lambda _: "execution")
            execution_id, execution_is_new = put.ids[0], put.created[0]
            artifacts = self._put_nodes(
                tx,
                NodeKind.ARTIFACT,
                [pair.artifact for pair in artifact_events],
                lambda i: f"artifact_events[{i}].artifact",
            )
            events = [
                Event(artifact_id, execution_id, pair.event_type, pair.path)
                for artifact_id, pair in zip(artifacts.ids, artifact_events, strict=True)
            ]
            # Edges of a brand-new execution cannot exist yet: skip the lookup.
            self._insert_new_events(tx, events, check_existing=not execution_is_new)
            context_ids = self._contexts_for_execution(tx, contexts)
            all_new = execution_is_new and all(artifacts.created)
            self._insert_new_links(
                tx,
                LinkKind.ATTRIBUTION,
                [(c, a) for c in context_ids for a in artifacts.ids],
                check_existing=not all_new,
            )
            self._insert_new_links(
                tx,
                LinkKind.ASSOCIATION,
                [(c, execution_id) for c in context_ids],
                check_existing=not execution_is_new,
            )
            return PutExecutionResult(execution_id, artifacts.ids, context_ids)

        return self._store.run(work, write=True)

    def _contexts_for_execution(self, tx: Transaction, contexts: Sequence[Context]) -> list[int]:
        """Contexts given by id are references (checked, not updated); the others are created or
        reused by external id or by type and name."""
        ids = [0] * len(contexts)
        referenced = [c.id for c in contexts if c.id]
        if referenced:
            found = tx.existing_ids(NodeKind.CONTEXT, referenced)
            for index, context in enumerate(contexts):
                if context.id and context.id not in found:
                    field = f"contexts[{index}].id"
                    raise NotFound(f"{field}: context {context.id} does not exist", field=field)
        fresh_indexes = [i for i, c in enumerate(contexts) if not c.id]
        put = self._put_nodes(
            tx,
            NodeKind.CONTEXT,
            [contexts[i] for i in fresh_indexes],
            lambda position: f"contexts[{fresh_indexes[position]}]",
        )
        for index, context in enumerate(contexts):
            if context.id:
                ids[index] = context.id
        for position, index in enumerate(fresh_indexes):
            ids[index] = put.ids[position]
        return ids

    # Gets and lists -----------------------------------------------------------------------------

    def get_artifacts(self, ids: Sequence[int]) -> list[Artifact]:
        return cast(list[Artifact], self._get_nodes(NodeKind.ARTIFACT, ids))

    def get_executions(self, ids: Sequence[int]) -> list[Execution]:
        return cast(list[Execution], self._get_nodes(NodeKind.EXECUTION, ids))

    def get_contexts(self, ids: Sequence[int]) -> list[Context]:
        return cast(list[Context], self._get_nodes(NodeKind.CONTEXT, ids))

    def _get_nodes(self, kind: NodeKind, ids: Sequence[int]) -> list[AnyNode]:
        field = f"{kind.label}_ids"
        check_count(ids, field)

        def work(tx: Transaction) -> list[AnyNode]:
            found = tx.get_nodes(kind, ids)
            for index, node_id in enumerate(ids):
                if node_id not in found:
                    where = f"{field}[{index}]"
                    raise NotFound(f"{where}: {kind.label} {node_id} does not exist", field=where)
            self._fill_type_names(tx, found.values())
            return [found[node_id] for node_id in ids]

        return self._store.run(work, write=False)

    def list_artifacts(
        self, filter: str = "", order_by: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[Artifact]:
        return cast(
            Page[Artifact],
            self._list_nodes(NodeKind.ARTIFACT, filter, order_by, page_size, page_token),
        )

    def list_executions(
        self, filter: str = "", order_by: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[Execution]:
        return cast(
            Page[Execution],
            self._list_nodes(NodeKind.EXECUTION, filter, order_by, page_size, page_token),
        )

    def list_contexts(
        self, filter: str = "", order_by: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[Context]:
        return cast(
            Page[Context],
            self._list_nodes(NodeKind.CONTEXT, filter, order_by, page_size, page_token),
        )

    def _list_nodes(
        self, kind: NodeKind, filter: str, order_by: str, page_size: int, page_token: str
    ) -> Page[AnyNode]:
        expr = parse_filter(filter, kind)
        order_field, descending = parse_order_by(order_by)
        size = page_size_of(page_size)
        fingerprint = query_fingerprint(kind.name, filter, order_field, str(descending))
        after = decode_page_token(page_token, fingerprint) if page_token else None
        if after is not None and isinstance(after[0], str) != (order_field == "name"):
            raise InvalidArgument("page_token does not fit order_by", field="page_token")
        query = ListQuery(expr, order_field, descending, size + 1, after)

        def work(tx: Transaction) -> list[AnyNode]:
            found = tx.list_nodes(kind, query)
            self._fill_type_names(tx, found)
            return found

        found = self._store.run(work, write=False)
        if len(found) <= size:
            return Page(found)
        last = found[size - 1]
        return Page(
            found[:size], encode_page_token(fingerprint, _sort_key(last, order_field), last.id)
        )

    def list_events(
        self, artifact_ids: Sequence[int] = (), execution_ids: Sequence[int] = ()
    ) -> list[Event]:
        check_count(artifact_ids, "artifact_ids")
        check_count(execution_ids, "execution_ids")
        if not artifact_ids and not execution_ids:
            raise InvalidArgument(
                "give artifact_ids or execution_ids to list their events", field="artifact_ids"
            )
        return self._store.run(
            lambda tx: tx.events_of(artifact_ids=artifact_ids, execution_ids=execution_ids),
            write=False,
        )

    # Lineage ----------------------------------------------------------------------------------

    def get_lineage(
        self,
        artifact_ids: Sequence[int] = (),
        execution_ids: Sequence[int] = (),
        direction: Direction | None = None,
        max_hops: int = 0,
        max_nodes: int = 0,
    ) -> LineageGraph:
        if not artifact_ids and not execution_ids:
            raise InvalidArgument("give at least one starting node", field="artifact_ids")
        check_count(artifact_ids, "artifact_ids")
        check_count(execution_ids, "execution_ids")
        hops = _hops(max_hops, "max_hops")
        if max_nodes < 0:
            raise InvalidArgument("max_nodes must not be negative", field="max_nodes")
        node_cap = max_nodes or DEFAULT_MAX_NODES
        directions = {
            None: (Direction.UPSTREAM, Direction.DOWNSTREAM),
            Direction.BOTH: (Direction.UPSTREAM, Direction.DOWNSTREAM),
            Direction.UPSTREAM: (Direction.UPSTREAM,),
            Direction.DOWNSTREAM: (Direction.DOWNSTREAM,),
        }[direction]

        def work(tx: Transaction) -> LineageGraph:
            self._require_existing(tx, NodeKind.ARTIFACT, artifact_ids, "artifact_ids", "")
            self._require_existing(tx, NodeKind.EXECUTION, execution_ids, "execution_ids", "")
            walk = _Walk(set(artifact_ids), set(execution_ids), node_cap)
            for way in directions:
                walk.run(tx, way, hops)
            return self._graph(tx, walk)

        return self._store.run(work, write=False)

    def _graph(self, tx: Transaction, walk: _Walk) -> LineageGraph:
        artifacts = tx.get_nodes(NodeKind.ARTIFACT, walk.artifacts)
        executions = tx.get_nodes(NodeKind.EXECUTION, walk.executions)
        context_ids = {c for c, _ in tx.links_of(LinkKind.ATTRIBUTION, walk.artifacts)}
        context_ids |= {c for c, _ in tx.links_of(LinkKind.ASSOCIATION, walk.executions)}
        contexts = tx.get_nodes(NodeKind.CONTEXT, context_ids)
        every = [*artifacts.values(), *executions.values(), *contexts.values()]
        self._fill_type_names(tx, every)
        return LineageGraph(
            artifacts=[cast(Artifact, artifacts[i]) for i in sorted(artifacts)],
            executions=[cast(Execution, executions[i]) for i in sorted(executions)],
            events=sorted(walk.events.values(), key=lambda e: e.key),
            contexts=[cast(Context, contexts[i]) for i in sorted(contexts)],
            truncated=walk.truncated,
        )

    def get_provenance(self, artifact_id: int, max_hops: int = 0) -> Provenance:
        """The executions around an artifact in pipeline order.

        `max_hops` counts executions each way. A step's hop is its longest chain of executions
        to the artifact, so every step comes after each step whose outputs it read.
        """
        steps_each_way = _hops(max_hops, "max_hops")

        def work(tx: Transaction) -> Provenance:
            found = tx.get_nodes(NodeKind.ARTIFACT, [artifact_id])
            if artifact_id not in found:
                raise NotFound(f"artifact {artifact_id} does not exist", field="artifact_id")
            depths: dict[int, int] = {}
            for way, sign in ((Direction.UPSTREAM, -1), (Direction.DOWNSTREAM, 1)):
                walk = _Walk({artifact_id}, set(), DEFAULT_MAX_NODES)
                walk.run(tx, way, 2 * steps_each_way)
                for execution_id, depth in _step_depths(
                    walk, artifact_id, way, steps_each_way
                ).items():
                    depths.setdefault(execution_id, sign * depth)
            return self._provenance(tx, cast(Artifact, found[artifact_id]), depths)

        return self._store.run(work, write=False)

    def _provenance(
        self, tx: Transaction, artifact: Artifact, depths: dict[int, int]
    ) -> Provenance:
        executions = tx.get_nodes(NodeKind.EXECUTION, depths)
        events = tx.events_of(execution_ids=list(depths))
        artifacts = tx.get_nodes(NodeKind.ARTIFACT, {e.artifact_id for e in events})
        self._fill_type_names(tx, [artifact, *executions.values(), *artifacts.values()])
        inputs: dict[int, list[Artifact]] = {i: [] for i in depths}
        outputs: dict[int, list[Artifact]] = {i: [] for i in depths}
        for event in events:
            side = inputs if event.type in INPUT_EVENT_TYPES else outputs
            chosen = side[event.execution_id]
            node = cast(Artifact, artifacts[event.artifact_id])
            if all(a.id != node.id for a in chosen):
                chosen.append(node)
        ordered = sorted(
            depths,
            key=lambda i: (depths[i] > 0, depths[i], executions[i].create_time_us, i),
        )
        steps = [
            ProvenanceStep(cast(Execution, executions[i]), inputs[i], outputs[i], depths[i])
            for i in ordered
        ]
        return Provenance(artifact, steps)


# ---------------------------------------------------------------------------------------------
# Helpers


def _check_compatible(
    existing: TypeDef, wanted: TypeDef, can_add_fields: bool
) -> dict[str, PropertyType]:
    """The properties `wanted` adds to `existing`; AlreadyExists naming the first conflict."""
    label = f"{existing.kind.label} type {existing.display_name}"
    # A changed property type is the likeliest mistake, so it is reported before a removal.
    for name, declared in sorted(existing.properties.items()):
        if name in wanted.properties and wanted.properties[name] is not declared:
            raise AlreadyExists(
                f"{label} exists with property {name!r} as {declared.name}, not "
                f"{wanted.properties[name].name}",
                field=f"type.properties.{name}",
                reason="INCOMPATIBLE_TYPE",
            )
    for name, declared in sorted(existing.properties.items()):
        if name not in wanted.properties:
            raise AlreadyExists(
                f"{label} exists with property {name!r} ({declared.name}), which this definition "
                "leaves out; properties cannot be removed",
                field=f"type.properties.{name}",
                reason="INCOMPATIBLE_TYPE",
            )
    added = {n: p for n, p in sorted(wanted.properties.items()) if n not in existing.properties}
    if added and not can_add_fields:
        name = next(iter(added))
        raise AlreadyExists(
            f"{label} exists without property {name!r}; set can_add_fields to add it",
            field=f"type.properties.{name}",
            reason="INCOMPATIBLE_TYPE",
        )
    return added


def _check_event(event: Event, field: str, *, ids_required: bool) -> None:
    if ids_required:
        for name in ("artifact_id", "execution_id"):
            if getattr(event, name) <= 0:
                raise InvalidArgument(f"{field}.{name} is required", field=f"{field}.{name}")
    if event.type not in EventType.__members__.values() or event.type is EventType.UNSPECIFIED:
        raise InvalidArgument(
            f"{field}.type: give the event type (INPUT, OUTPUT, DECLARED_INPUT, ...)",
            field=f"{field}.type",
        )
    check_text(event.path, f"{field}.path")


def _hops(value: int, field: str) -> int:
    if value == 0:
        return DEFAULT_MAX_HOPS
    if not 1 <= value <= MAX_HOPS:
        raise InvalidArgument(
            f"{field} must be between 1 and {MAX_HOPS} (0 means {DEFAULT_MAX_HOPS})", field=field
        )
    return value


def _sort_key(node: AnyNode, order_field: str) -> int | str:
    if order_field == "name":
        return node.name
    if order_field == "create_time":
        return node.create_time_us
    if order_field == "update_time":
        return node.update_time_us
    return node.id


class _Walk:
    """A breadth-first walk over events, one batched query per hop and kind of frontier."""

    def __init__(self, artifacts: set[int], executions: set[int], max_nodes: int) -> None:
        self.artifacts = set(artifacts)
        self.executions = set(executions)
        self.events: dict[tuple[int, int, int, str], Event] = {}
        self.max_nodes = max_nodes
        self.truncated = False
        self._starts = (set(artifacts), set(executions))

    def run(self, tx: Transaction, direction: Direction, max_hops: int) -> None:
        upstream = direction is Direction.UPSTREAM
        # Upstream: an artifact's producers (output events), an execution's inputs.
        from_artifacts = OUTPUT_EVENT_TYPES if upstream else INPUT_EVENT_TYPES
        from_executions = INPUT_EVENT_TYPES if upstream else OUTPUT_EVENT_TYPES
        seen_artifacts, seen_executions = set(self._starts[0]), set(self._starts[1])
        frontier_artifacts, frontier_executions = set(self._starts[0]), set(self._starts[1])
        for _ in range(max_hops):
            if not frontier_artifacts and not frontier_executions:
                return
            next_artifacts: set[int] = set()
            next_executions: set[int] = set()
            for event in self._step(
                tx, frontier_artifacts, frontier_executions, from_artifacts, from_executions
            ):
                if event.artifact_id in frontier_artifacts and event.type in from_artifacts:
                    target_is_artifact, target = False, event.execution_id
                else:
                    target_is_artifact, target = True, event.artifact_id
                seen = seen_artifacts if target_is_artifact else seen_executions
                if target not in seen:
                    if len(self.artifacts) + len(self.executions) >= self.max_nodes:
                        self.truncated = True
                        continue
                    seen.add(target)
                    (self.artifacts if target_is_artifact else self.executions).add(target)
                    (next_artifacts if target_is_artifact else next_executions).add(target)
                self.events[event.key] = event
            frontier_artifacts, frontier_executions = next_artifacts, next_executions
        if frontier_artifacts or frontier_executions:
            # The hop limit stopped the walk; say so only if it actually cut something off.
            further = self._step(
                tx, frontier_artifacts, frontier_executions, from_artifacts, from_executions
            )
            for event in further:
                if event.type in from_artifacts and event.artifact_id in frontier_artifacts:
                    unseen = event.execution_id not in seen_executions
                else:
                    unseen = event.artifact_id not in seen_artifacts
                if unseen:
                    self.truncated = True
                    break

    @staticmethod
    def _step(
        tx: Transaction,
        artifacts: set[int],
        executions: set[int],
        from_artifacts: frozenset[EventType],
        from_executions: frozenset[EventType],
    ) -> list[Event]:
        found: list[Event] = []
        if artifacts:
            found.extend(tx.events_of(artifact_ids=artifacts, types=from_artifacts))
        if executions:
            found.extend(tx.events_of(execution_ids=executions, types=from_executions))
        return found


def _step_depths(walk: _Walk, artifact_id: int, direction: Direction, limit: int) -> dict[int, int]:
    """For each execution the walk reached: the longest chain of executions between it and the
    artifact (1 for the artifact's producer or consumer), capped at `limit`."""
    upstream = direction is Direction.UPSTREAM
    toward_artifact = OUTPUT_EVENT_TYPES if upstream else INPUT_EVENT_TYPES
    # executions that touch each artifact on the near side, and artifacts on the far side of each
    near: dict[int, set[int]] = {}
    far: dict[int, set[int]] = {}
    for event in walk.events.values():
        if event.type in toward_artifact:
            near.setdefault(event.artifact_id, set()).add(event.execution_id)
        else:
            far.setdefault(event.execution_id, set()).add(event.artifact_id)
    depths = {execution_id: 1 for execution_id in near.get(artifact_id, set())}
    frontier = dict(depths)
    while frontier:
        step: dict[int, int] = {}
        for execution_id, depth in frontier.items():
            if depth >= limit:
                continue
            for next_artifact in far.get(execution_id, set()):
                for next_execution in near.get(next_artifact, set()):
                    if depths.get(next_execution, 0) < depth + 1:
                        depths[next_execution] = depth + 1
                        step[next_execution] = depth + 1
        frontier = step
    return depths
