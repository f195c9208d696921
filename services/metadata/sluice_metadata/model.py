"""The lineage store's domain model: plain dataclasses, free of protobuf and SQL.

Times are integer microseconds since the Unix epoch (exact, portable, and cheap to compare in SQL).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar

MAX_NAME_LENGTH = 255
MAX_BATCH_ITEMS = 10_000
# Property names travel inside JSON paths, so they keep to a conservative alphabet.
PROPERTY_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/\-]{0,254}")


class NodeKind(enum.IntEnum):
    """The three kinds of typed node; the numbers match the proto's TypeKind."""

    ARTIFACT = 1
    EXECUTION = 2
    CONTEXT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class PropertyType(enum.IntEnum):
    """Declared property types; the numbers match the proto's PropertyType."""

    INT = 1
    DOUBLE = 2
    STRING = 3
    BOOL = 4
    STRUCT = 5
    PROTO = 6


class ArtifactState(enum.IntEnum):
    UNSPECIFIED = 0
    PENDING = 1
    LIVE = 2
    MARKED_FOR_DELETION = 3
    DELETED = 4


class ExecutionState(enum.IntEnum):
    UNSPECIFIED = 0
    NEW = 1
    RUNNING = 2
    COMPLETE = 3
    FAILED = 4
    CACHED = 5
    CANCELED = 6


class EventType(enum.IntEnum):
    UNSPECIFIED = 0
    DECLARED_INPUT = 1
    DECLARED_OUTPUT = 2
    INPUT = 3
    OUTPUT = 4
    INTERNAL_INPUT = 5
    INTERNAL_OUTPUT = 6

    @property
    def is_input(self) -> bool:
        return self in INPUT_EVENT_TYPES

    @property
    def is_output(self) -> bool:
        return self in OUTPUT_EVENT_TYPES


INPUT_EVENT_TYPES = frozenset({EventType.DECLARED_INPUT, EventType.INPUT, EventType.INTERNAL_INPUT})
OUTPUT_EVENT_TYPES = frozenset(
    {EventType.DECLARED_OUTPUT, EventType.OUTPUT, EventType.INTERNAL_OUTPUT}
)


class Direction(enum.IntEnum):
    UPSTREAM = 1
    DOWNSTREAM = 2
    BOTH = 3


@dataclass(frozen=True, slots=True)
class ProtoPayload:
    """A packed protobuf message (google.protobuf.Any) kept as opaque bytes."""

    type_url: str
    value: bytes


# What a Value holds, by kind: INT int, DOUBLE float, STRING str, BOOL bool, STRUCT a JSON object
# (dict), PROTO a ProtoPayload.
ValueData: TypeAlias = int | float | str | bool | dict[str, Any] | ProtoPayload


class Value(NamedTuple):
    """A property value tagged with its kind (Python's bool-is-an-int makes the tag necessary).
    A named tuple: batches build tens of thousands of these, and frozen dataclasses are slow."""

    kind: PropertyType
    data: ValueData


Properties: TypeAlias = dict[str, Value]


@dataclass(slots=True)
class TypeDef:
    """A registered type; `id` is 0 until the store assigns one."""

    kind: NodeKind
    name: str
    version: str = ""
    description: str = ""
    properties: dict[str, PropertyType] = field(default_factory=dict)
    id: int = 0

    @property
    def display_name(self) -> str:
        return f"{self.name} (version {self.version!r})" if self.version else self.name


@dataclass(slots=True)
class Node:
    """The fields shared by artifacts, executions and contexts.

    On input, `type_id` or `type_name` names the type (the core resolves both); on output both are
    filled. `state` is an ArtifactState or ExecutionState number (0 for contexts).
    """

    id: int = 0
    type_id: int = 0
    type_name: str = ""
    name: str = ""
    external_id: str = ""
    properties: Properties = field(default_factory=dict)
    custom_properties: Properties = field(default_factory=dict)
    create_time_us: int = 0
    update_time_us: int = 0


@dataclass(slots=True)
class Artifact(Node):
    uri: str = ""
    state: ArtifactState = ArtifactState.UNSPECIFIED
    digest: str = ""


@dataclass(slots=True)
class Execution(Node):
    state: ExecutionState = ExecutionState.UNSPECIFIED


@dataclass(slots=True)
class Context(Node):
    pass


AnyNode: TypeAlias = Artifact | Execution | Context


@dataclass(frozen=True, slots=True)
class Event:
    artifact_id: int
    execution_id: int
    type: EventType
    path: str = ""
    create_time_us: int = 0

    @property
    def key(self) -> tuple[int, int, int, str]:
        """What makes an event unique: recording the same edge twice is a no-op."""
        return (self.artifact_id, self.execution_id, int(self.type), self.path)


@dataclass(frozen=True, slots=True)
class Attribution:
    artifact_id: int
    context_id: int


@dataclass(frozen=True, slots=True)
class Association:
    execution_id: int
    context_id: int


@dataclass(frozen=True, slots=True)
class ParentLink:
    child_id: int
    parent_id: int


@dataclass(slots=True)
class ArtifactAndEvent:
    """One artifact of PutExecution and the event linking it to the execution."""

    artifact: Artifact
    event_type: EventType
    path: str = ""


@dataclass(slots=True)
class PutExecutionResult:
    execution_id: int
    artifact_ids: list[int]
    context_ids: list[int]


@dataclass(slots=True)
class LineageGraph:
    artifacts: list[Artifact] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    contexts: list[Context] = field(default_factory=list)
    truncated: bool = False


@dataclass(slots=True)
class ProvenanceStep:
    execution: Execution
    inputs: list[Artifact]
    outputs: list[Artifact]
    hop: int


@dataclass(slots=True)
class Provenance:
    artifact: Artifact
    steps: list[ProvenanceStep]


T = TypeVar("T")


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str = ""


NODE_CLASSES: dict[NodeKind, type[Artifact] | type[Execution] | type[Context]] = {
    NodeKind.ARTIFACT: Artifact,
    NodeKind.EXECUTION: Execution,
    NodeKind.CONTEXT: Context,
}
