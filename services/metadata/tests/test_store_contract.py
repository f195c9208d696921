"""The store contract: the core's behaviour over every SQL backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sluice_metadata import tables
from sluice_metadata.core import MetadataCore
from sluice_metadata.model import (
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
    NodeKind,
    ParentLink,
    PropertyType,
    ProtoPayload,
    TypeDef,
    Value,
)
from sluice_metadata.sql_store import SqlStore
from sluice_runtime.errors import AlreadyExists, InvalidArgument, NotFound, SluiceError

INT, DOUBLE, STRING = PropertyType.INT, PropertyType.DOUBLE, PropertyType.STRING


@contextmanager
def raises_at(error: type[SluiceError], field: str) -> Iterator[None]:
    """Expects `error` naming the request field `field`."""
    with pytest.raises(error) as caught:
        yield
    assert caught.value.field == field


def count(store: SqlStore, table: sa.Table) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def counts(store: SqlStore) -> dict[str, int]:
    every = (tables.artifacts, tables.executions, tables.contexts, tables.events)
    links = (tables.attributions, tables.associations, tables.parent_contexts, tables.types)
    return {table.name: count(store, table) for table in (*every, *links)}


def span(value: int) -> dict[str, Value]:
    return {"span": Value(INT, value)}


# Types -----------------------------------------------------------------------------------------


def test_type_registration_is_idempotent_and_readable(core: MetadataCore) -> None:
    first = core.put_type(TypeDef(NodeKind.ARTIFACT, "Model", properties={"span": INT}))
    again = core.put_type(TypeDef(NodeKind.ARTIFACT, "Model", properties={"span": INT}))
    assert again.id == first.id
    assert core.get_type(type_id=first.id).properties == {"span": INT}
    assert core.get_type(kind=NodeKind.ARTIFACT, name="Model").id == first.id
    versioned = core.put_type(TypeDef(NodeKind.ARTIFACT, "Model", version="2"))
    assert versioned.id != first.id
    other_kind = core.put_type(TypeDef(NodeKind.EXECUTION, "Model"))
    assert other_kind.id not in (first.id, versioned.id)


@pytest.mark.parametrize(
    ("properties", "can_add", "field"),
    [
        ({"span": STRING}, False, "type.properties.span"),  # changed
        ({}, False, "type.properties.span"),  # removed
        ({"span": INT, "extra": DOUBLE}, False, "type.properties.extra"),  # added, not allowed
        ({"extra": DOUBLE}, True, "type.properties.span"),  # removed, even with can_add_fields
    ],
)
def test_incompatible_redefinition_names_the_property(
    core: MetadataCore, properties: dict[str, PropertyType], can_add: bool, field: str
) -> None:
    core.put_type(TypeDef(NodeKind.ARTIFACT, "Model", properties={"span": INT}))
    with raises_at(AlreadyExists, field):
        core.put_type(
            TypeDef(NodeKind.ARTIFACT, "Model", properties=properties), can_add_fields=can_add
        )
    assert core.get_type(kind=NodeKind.ARTIFACT, name="Model").properties == {"span": INT}


def test_can_add_fields_extends_a_type(core: MetadataCore) -> None:
    first = core.put_type(TypeDef(NodeKind.ARTIFACT, "Model", properties={"span": INT}))
    grown = core.put_type(
        TypeDef(NodeKind.ARTIFACT, "Model", properties={"span": INT, "acc": DOUBLE}),
        can_add_fields=True,
    )
    assert grown.id == first.id
    assert core.get_type(type_id=first.id).properties == {"span": INT, "acc": DOUBLE}
    # The new property is usable right away.
    core.put_artifacts([Artifact(type_name="Model", properties={"acc": Value(DOUBLE, 0.5)})])


def test_list_types_pages_and_filters_by_kind(core: MetadataCore) -> None:
    for index in range(5):
        core.put_type(TypeDef(NodeKind.ARTIFACT, f"A{index}"))
        core.put_type(TypeDef(NodeKind.EXECUTION, f"E{index}"))
    first = core.list_types(NodeKind.ARTIFACT, page_size=3)
    assert len(first.items) == 3 and first.next_page_token
    second = core.list_types(NodeKind.ARTIFACT, page_size=3, page_token=first.next_page_token)
    assert [t.name for t in first.items + second.items] == [f"A{i}" for i in range(5)]
    assert second.next_page_token == ""
    assert len(core.list_types(None).items) == 10
    with raises_at(InvalidArgument, "page_token"):
        core.list_types(NodeKind.EXECUTION, page_token=first.next_page_token)


@pytest.mark.parametrize(
    ("type_def", "field"),
    [
        (TypeDef(NodeKind.ARTIFACT, ""), "type.name"),
        (TypeDef(NodeKind.ARTIFACT, "x" * 256), "type.name"),
        (TypeDef(NodeKind.ARTIFACT, "M", properties={"bad name": INT}), "type.properties.bad name"),
    ],
)
def test_bad_type_definitions(core: MetadataCore, type_def: TypeDef, field: str) -> None:
    with raises_at(InvalidArgument, field):
        core.put_type(type_def)


def test_get_missing_type(core: MetadataCore) -> None:
    with raises_at(NotFound, "name"):
        core.get_type(kind=NodeKind.ARTIFACT, name="Nope")
    with pytest.raises(NotFound):
        core.get_type(type_id=999)


# Artifacts, executions, contexts ------------------------------------------------------------


def test_artifact_round_trip_keeps_every_field(core: MetadataCore, std: object) -> None:
    artifact = Artifact(
        type_name="Model",
        uri="s3://bucket/models/7",
        name="model-7",
        external_id="model-7",
        state=ArtifactState.LIVE,
        digest="sha256:" + "ab" * 32,
        properties={
            "span": Value(INT, 2**62),
            "accuracy": Value(DOUBLE, 0.875),
            "blessed": Value(PropertyType.BOOL, True),
            "config": Value(PropertyType.STRUCT, {"layers": [256.0, 128.0], "name": "mlp"}),
            "signature": Value(
                PropertyType.PROTO, ProtoPayload("type.googleapis.com/x.Y", b"\x00\x01")
            ),
        },
        custom_properties={"nan": Value(DOUBLE, float("inf")), "note": Value(STRING, "héllo")},
    )
    (artifact_id,) = core.put_artifacts([artifact])
    (stored,) = core.get_artifacts([artifact_id])
    assert stored.id == artifact_id
    assert stored.type_name == "Model" and stored.type_id > 0
    assert (stored.uri, stored.name, stored.external_id) == (artifact.uri, "model-7", "model-7")
    assert stored.state is ArtifactState.LIVE and stored.digest == artifact.digest
    assert stored.properties == artifact.properties
    assert stored.custom_properties == artifact.custom_properties
    assert stored.create_time_us > 0 and stored.update_time_us == stored.create_time_us


def test_update_replaces_fields_but_keeps_create_time(store: SqlStore, std: object) -> None:
    ticks = itertools.count(1_000_000)
    core = MetadataCore(store, clock=lambda: next(ticks))
    (artifact_id,) = core.put_artifacts(
        [Artifact(type_name="Model", uri="u1", external_id="m", properties=span(1))]
    )
    core.put_artifacts([Artifact(id=artifact_id, uri="u2", state=ArtifactState.LIVE)])
    (stored,) = core.get_artifacts([artifact_id])
    assert stored.uri == "u2" and stored.state is ArtifactState.LIVE
    assert stored.properties == {}  # a put is the whole record
    assert stored.external_id == "m"  # empty keeps the idempotency key
    assert stored.create_time_us < stored.update_time_us
    # An artifact given by its id alone is a reference: nothing changes.
    core.put_artifacts([Artifact(id=artifact_id)])
    assert core.get_artifacts([artifact_id])[0].uri == "u2"


def test_external_id_makes_puts_idempotent(
    core: MetadataCore, store: SqlStore, std: object
) -> None:
    batch = [
        Artifact(type_name="Examples", uri=f"u{i}", external_id=f"span-{i % 3}") for i in range(6)
    ]
    first = core.put_artifacts(batch)
    assert first[:3] == first[3:]  # repeats within one batch share the id
    assert core.put_artifacts(batch) == first  # a retried put returns the same ids
    assert count(store, tables.artifacts) == 3
    # Unique per type only.
    (other,) = core.put_artifacts([Artifact(type_name="Schema", external_id="span-0")])
    assert other not in first


def test_update_cannot_steal_an_external_id(core: MetadataCore, std: object) -> None:
    _a, b = core.put_artifacts(
        [
            Artifact(type_name="Schema", external_id="a"),
            Artifact(type_name="Schema", external_id="b"),
        ]
    )
    with raises_at(AlreadyExists, "artifacts[0].external_id"):
        core.put_artifacts([Artifact(id=b, type_name="Schema", external_id="a")])


@pytest.mark.parametrize(
    ("bad", "error", "field"),
    [
        (Artifact(type_name="Nope"), NotFound, "artifacts[3].type"),
        (Artifact(type_id=424242), NotFound, "artifacts[3].type_id"),
        (Artifact(), InvalidArgument, "artifacts[3].type"),
        (Artifact(type_name="Component"), NotFound, "artifacts[3].type"),
        (
            Artifact(type_name="Model", properties={"span": Value(STRING, "3")}),
            InvalidArgument,
            "artifacts[3].properties.span",
        ),
        (
            Artifact(type_name="Model", properties={"colour": Value(STRING, "red")}),
            InvalidArgument,
            "artifacts[3].properties.colour",
        ),
        (Artifact(type_name="Model", name="n" * 256), InvalidArgument, "artifacts[3].name"),
        (
            Artifact(type_name="Model", external_id="e" * 256),
            InvalidArgument,
            "artifacts[3].external_id",
        ),
        (
            Artifact(type_name="Model", custom_properties={"a b": Value(INT, 1)}),
            InvalidArgument,
            "artifacts[3].custom_properties.a b",
        ),
        (Artifact(id=99999, type_name="Model"), NotFound, "artifacts[3].id"),
        (Artifact(type_name="Model", uri="bad\x00uri"), InvalidArgument, "artifacts[3].uri"),
    ],
)
def test_a_batch_with_one_bad_item_writes_nothing(
    core: MetadataCore,
    store: SqlStore,
    std: object,
    bad: Artifact,
    error: type[SluiceError],
    field: str,
) -> None:
    good = [
        Artifact(type_name="Model", uri=f"u{i}", external_id=f"g{i}", properties=span(i))
        for i in range(3)
    ]
    before = counts(store)
    with raises_at(error, field):
        core.put_artifacts([*good, bad, *good])
    assert counts(store) == before


def test_oversized_batches_are_refused(core: MetadataCore, std: object) -> None:
    with raises_at(InvalidArgument, "artifacts"):
        core.put_artifacts([Artifact(type_name="Schema")] * 10_001)
    with raises_at(InvalidArgument, "artifact_ids"):
        core.get_artifacts(list(range(10_001)))


def test_batch_get_keeps_request_order_and_names_the_missing_id(
    core: MetadataCore, std: object
) -> None:
    ids = core.put_artifacts([Artifact(type_name="Schema", uri=f"u{i}") for i in range(3)])
    assert [a.uri for a in core.get_artifacts([ids[2], ids[0], ids[2]])] == ["u2", "u0", "u2"]
    with raises_at(NotFound, "artifact_ids[1]"):
        core.get_artifacts([ids[0], 987654])


def test_executions_have_states_and_idempotent_puts(core: MetadataCore, std: object) -> None:
    (execution_id,) = core.put_executions(
        [
            Execution(
                type_name="Component", external_id="run-1/trainer", state=ExecutionState.RUNNING
            )
        ]
    )
    assert core.put_executions([Execution(type_name="Component", external_id="run-1/trainer")]) == [
        execution_id
    ]
    core.put_executions([Execution(id=execution_id, state=ExecutionState.COMPLETE)])
    (stored,) = core.get_executions([execution_id])
    assert stored.state is ExecutionState.COMPLETE and stored.type_name == "Component"
    assert stored.external_id == "run-1/trainer"


def test_contexts_are_unique_by_type_and_name(
    core: MetadataCore, store: SqlStore, std: object
) -> None:
    (first,) = core.put_contexts([Context(type_name="PipelineRun", name="run-1", external_id="r1")])
    assert core.put_contexts([Context(type_name="PipelineRun", name="run-1")]) == [first]
    assert core.put_contexts(
        [Context(type_name="PipelineRun", name="other", external_id="r1")]
    ) == [first]
    with raises_at(AlreadyExists, "contexts[0].name"):
        core.put_contexts([Context(type_name="PipelineRun", name="run-1", external_id="r2")])
    with raises_at(InvalidArgument, "contexts[0].name"):
        core.put_contexts([Context(type_name="PipelineRun")])
    (pipeline,) = core.put_contexts([Context(type_name="Pipeline", name="run-1")])  # other type
    assert pipeline != first
    assert count(store, tables.contexts) == 2


# Events and context links -------------------------------------------------------------------


def test_events_need_both_ends_and_are_recorded_once(
    core: MetadataCore, store: SqlStore, std: object
) -> None:
    (artifact_id,) = core.put_artifacts([Artifact(type_name="Schema")])
    (execution_id,) = core.put_executions([Execution(type_name="Component")])
    good = Event(artifact_id, execution_id, EventType.OUTPUT, "schema")
    with raises_at(NotFound, "events[1].artifact_id"):
        core.put_events([good, Event(777777, execution_id, EventType.INPUT)])
    with raises_at(NotFound, "events[1].execution_id"):
        core.put_events([good, Event(artifact_id, 777777, EventType.INPUT)])
    with raises_at(InvalidArgument, "events[0].type"):
        core.put_events([Event(artifact_id, execution_id, EventType.UNSPECIFIED)])
    assert count(store, tables.events) == 0
    core.put_events([good, good])
    core.put_events([good])
    events = core.list_events(artifact_ids=[artifact_id])
    assert [(e.artifact_id, e.execution_id, e.type, e.path) for e in events] == [
        (artifact_id, execution_id, EventType.OUTPUT, "schema")
    ]
    assert events[0].create_time_us > 0
    assert core.list_events(execution_ids=[execution_id]) == events


def test_context_links_are_idempotent_and_parents_cannot_cycle(
    core: MetadataCore, store: SqlStore, std: object
) -> None:
    (artifact_id,) = core.put_artifacts([Artifact(type_name="Schema")])
    (execution_id,) = core.put_executions([Execution(type_name="Component")])
    pipeline, run, sub = core.put_contexts(
        [
            Context(type_name="Pipeline", name="p"),
            Context(type_name="PipelineRun", name="r"),
            Context(type_name="PipelineRun", name="s"),
        ]
    )
    for _ in range(2):
        core.put_context_links(
            [Attribution(artifact_id, run)],
            [Association(execution_id, run)],
            [ParentLink(run, pipeline), ParentLink(sub, run)],
        )
    assert count(store, tables.attributions) == 1
    assert count(store, tables.associations) == 1
    assert count(store, tables.parent_contexts) == 2
    with raises_at(InvalidArgument, "parent_contexts[0].parent_id"):
        core.put_context_links(parent_contexts=[ParentLink(pipeline, sub)])
    with pytest.raises(InvalidArgument):
        core.put_context_links(parent_contexts=[ParentLink(run, run)])
    with raises_at(NotFound, "attributions[0].context_id"):
        core.put_context_links(attributions=[Attribution(artifact_id, 55555)])
    assert [c.name for c in core.list_contexts('parent.name = "p"').items] == ["r"]
    assert [a.id for a in core.list_artifacts('context.name = "r"').items] == [artifact_id]
    assert [e.id for e in core.list_executions('context.type = "PipelineRun"').items] == [
        execution_id
    ]


# PutExecution --------------------------------------------------------------------------------


def _trainer_step(
    model_external_id: str = "model-1",
) -> tuple[Execution, list[ArtifactAndEvent], list[Context]]:
    return (
        Execution(
            type_name="Component", external_id="run-1/trainer", state=ExecutionState.COMPLETE
        ),
        [
            ArtifactAndEvent(
                Artifact(type_name="Examples", external_id="span-1", properties=span(1)),
                EventType.INPUT,
                "examples",
            ),
            ArtifactAndEvent(
                Artifact(type_name="Model", external_id=model_external_id, properties=span(1)),
                EventType.OUTPUT,
                "model",
            ),
        ],
        [Context(type_name="PipelineRun", name="run-1"), Context(type_name="Pipeline", name="p")],
    )


def test_put_execution_writes_the_whole_step_once(
    core: MetadataCore, store: SqlStore, std: object
) -> None:
    first = core.put_execution(*_trainer_step())
    assert len(first.artifact_ids) == 2 and len(first.context_ids) == 2
    after_first = counts(store)
    again = core.put_execution(*_trainer_step())
    assert again == first
    assert counts(store) == after_first
    assert (
        after_first["events"] == 2
        and after_first["attributions"] == 4
        and after_first["associations"] == 2
    )
    events = core.list_events(execution_ids=[first.execution_id])
    assert {(e.artifact_id, e.type, e.path) for e in events} == {
        (first.artifact_ids[0], EventType.INPUT, "examples"),
        (first.artifact_ids[1], EventType.OUTPUT, "model"),
    }
    # Contexts by id are references.
    _, pairs, _ = _trainer_step("model-2")
    result = core.put_execution(
        Execution(type_name="Component"), pairs, [Context(id=first.context_ids[0])]
    )
    assert result.context_ids == [first.context_ids[0]]
    assert core.get_contexts([first.context_ids[0]])[0].name == "run-1"


def test_put_execution_is_atomic(core: MetadataCore, store: SqlStore, std: object) -> None:
    execution, pairs, contexts = _trainer_step()
    before = counts(store)
    bad_pair = ArtifactAndEvent(
        Artifact(type_name="Model", properties={"span": Value(STRING, "x")}), EventType.OUTPUT
    )
    with raises_at(InvalidArgument, "artifact_events[2].artifact.properties.span"):
        core.put_execution(execution, [*pairs, bad_pair], contexts)
    with raises_at(NotFound, "contexts[2].id"):
        core.put_execution(execution, pairs, [*contexts, Context(id=31337)])
    with raises_at(InvalidArgument, "artifact_events[0].event.type"):
        core.put_execution(
            execution, [ArtifactAndEvent(Artifact(type_name="Schema"), EventType.UNSPECIFIED)]
        )
    assert counts(store) == before


# Listing -------------------------------------------------------------------------------------


@dataclass
class Listed:
    ids: list[int]


@pytest.fixture
def listed(store: SqlStore, std: object) -> Listed:
    ticks = itertools.count(1_767_225_600_000_000, 1_000_000)  # 2026-01-01, one second apart
    core = MetadataCore(store, clock=lambda: next(ticks))
    ids = []
    for index in range(12):
        ids += core.put_artifacts(
            [
                Artifact(
                    type_name="Model" if index % 2 else "Examples",
                    uri=f"s3://bucket/{index:02d}",
                    name=f"n{(11 - index):02d}",
                    state=ArtifactState.LIVE if index < 6 else ArtifactState.PENDING,
                    properties=span(index),
                    custom_properties={"tag": Value(STRING, "even" if index % 2 == 0 else "odd")}
                    | ({"score": Value(DOUBLE, index / 2)} if index % 3 == 0 else {}),
                )
            ]
        )
    (run,) = core.put_contexts([Context(type_name="PipelineRun", name="run-7")])
    core.put_context_links([Attribution(ids[0], run), Attribution(ids[5], run)])
    return Listed(ids)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('type = "Model"', [1, 3, 5, 7, 9, 11]),
        ("state = LIVE", [0, 1, 2, 3, 4, 5]),
        ('state IN (PENDING, "STATE_DELETED")', [6, 7, 8, 9, 10, 11]),
        ("properties.span >= 9", [9, 10, 11]),
        ("properties.span < 2 OR properties.span = 11", [0, 1, 11]),
        ("properties.span > 2.5 AND properties.span <= 4", [3, 4]),
        ('custom_properties.tag = "odd" AND NOT properties.span > 3', [1, 3]),
        ("custom_properties.score >= 3", [6, 9]),
        ("NOT custom_properties.score >= 3", [0, 1, 2, 3, 4, 5, 7, 8, 10, 11]),
        ('create_time >= "2026-01-01T00:00:10Z"', [10, 11]),
        ('create_time < "2026-01-01T00:00:02+00:00"', [0, 1]),
        ('context.name = "run-7"', [0, 5]),
        ('uri LIKE "s3://bucket/1%"', [10, 11]),
        ('name != "n00" AND name > "n08"', [0, 1, 2]),
        ('external_id = ""', list(range(12))),
        ('(properties.span = 1 OR properties.span = 2) AND type = "Examples"', [2]),
        ('type = "Model" AND state = LIVE AND properties.span >= 3', [3, 5]),
    ],
)
def test_filters(core: MetadataCore, listed: Listed, text: str, expected: list[int]) -> None:
    id_list = ", ".join(str(i) for i in listed.ids[:3])
    found = [a.id for a in core.list_artifacts(text, page_size=1000).items]
    assert found == [listed.ids[i] for i in expected]
    assert [a.id for a in core.list_artifacts(f"id IN ({id_list})").items] == listed.ids[:3]


def test_ordering_and_paging_cover_every_row_once(core: MetadataCore, listed: Listed) -> None:
    for order_by, key in [
        ("id", lambda i: i),
        ("name", lambda i: 11 - i),
        ("name desc", lambda i: i),
        ("create_time desc", lambda i: -i),
        ("update_time", lambda i: i),
    ]:
        seen: list[int] = []
        token = ""
        pages = 0
        while True:
            page = core.list_artifacts(
                "state != DELETED", order_by=order_by, page_size=5, page_token=token
            )
            seen += [a.id for a in page.items]
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert pages == 3, order_by
        assert seen == [listed.ids[i] for i in sorted(range(12), key=key)], order_by


def test_foreign_and_tampered_page_tokens_are_refused(core: MetadataCore, listed: Listed) -> None:
    page = core.list_artifacts('type = "Model"', page_size=2)
    for call in (
        lambda: core.list_artifacts(
            'type = "Examples"', page_size=2, page_token=page.next_page_token
        ),
        lambda: core.list_artifacts(
            'type = "Model"', order_by="name", page_token=page.next_page_token
        ),
        lambda: core.list_executions('type = "Model"', page_token=page.next_page_token),
        lambda: core.list_artifacts('type = "Model"', page_token=page.next_page_token[:-2] + "xx"),
        lambda: core.list_artifacts('type = "Model"', page_token="not a token"),
    ):
        with raises_at(InvalidArgument, "page_token"):
            call()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"filter": "properties.span >>= 3"}, "filter"),
        ({"filter": "state = 'RUNNING'"}, "filter"),
        ({"filter": "uri = 1; DROP TABLE artifacts"}, "filter"),
        ({"order_by": "uri"}, "order_by"),
        ({"page_size": -1}, "page_size"),
    ],
)
def test_bad_list_requests(core: MetadataCore, kwargs: dict[str, object], field: str) -> None:
    with raises_at(InvalidArgument, field):
        core.list_artifacts(**kwargs)  # type: ignore[arg-type]


def test_filters_with_hostile_strings_are_just_values(
    core: MetadataCore, store: SqlStore, listed: Listed
) -> None:
    assert core.list_artifacts('name = "x\' OR 1=1 --"').items == []
    with raises_at(InvalidArgument, "filter"):
        core.list_artifacts('properties."span\\"); DROP TABLE artifacts; --" = 1')
    assert count(store, tables.artifacts) == 12


# Lineage -------------------------------------------------------------------------------------


@dataclass
class Pipeline:
    executions: dict[str, int]
    artifacts: dict[str, int]


@pytest.fixture
def pipeline(core: MetadataCore, std: object) -> Pipeline:
    """ExampleGen -> StatisticsGen -> SchemaGen -> Trainer -> Evaluator -> Pusher, as in TFX."""
    executions: dict[str, int] = {}
    artifacts: dict[str, int] = {}

    def step(name: str, inputs: list[str], outputs: list[tuple[str, str]]) -> None:
        pairs = [ArtifactAndEvent(Artifact(id=artifacts[i]), EventType.INPUT, i) for i in inputs]
        pairs += [
            ArtifactAndEvent(Artifact(type_name=t, external_id=o), EventType.OUTPUT, o)
            for o, t in outputs
        ]
        result = core.put_execution(
            Execution(
                type_name="Component",
                external_id=name,
                properties={"component": Value(STRING, name)},
            ),
            pairs,
            [Context(type_name="PipelineRun", name="run-1")],
        )
        executions[name] = result.execution_id
        for (output, _), artifact_id in zip(
            outputs, result.artifact_ids[len(inputs) :], strict=True
        ):
            artifacts[output] = artifact_id

    step("ExampleGen", [], [("examples", "Examples")])
    step("StatisticsGen", ["examples"], [("statistics", "ExampleStatistics")])
    step("SchemaGen", ["statistics"], [("schema", "Schema")])
    step("Trainer", ["examples", "schema"], [("model", "Model")])
    step(
        "Evaluator",
        ["model", "examples"],
        [("evaluation", "ModelEvaluation"), ("blessing", "ModelBlessing")],
    )
    step("Pusher", ["model", "blessing"], [("pushed", "PushedModel")])
    return Pipeline(executions, artifacts)


def test_upstream_lineage_with_hop_limit(core: MetadataCore, pipeline: Pipeline) -> None:
    a, e = pipeline.artifacts, pipeline.executions
    near = core.get_lineage([a["model"]], direction=Direction.UPSTREAM, max_hops=2)
    assert {x.id for x in near.artifacts} == {a["model"], a["examples"], a["schema"]}
    assert {x.id for x in near.executions} == {e["Trainer"]}
    assert near.truncated
    assert {(ev.artifact_id, ev.execution_id) for ev in near.events} == {
        (a["model"], e["Trainer"]),
        (a["examples"], e["Trainer"]),
        (a["schema"], e["Trainer"]),
    }
    assert [c.name for c in near.contexts] == ["run-1"]
    full = core.get_lineage([a["model"]], direction=Direction.UPSTREAM)
    assert {x.id for x in full.artifacts} == {
        a["model"],
        a["examples"],
        a["schema"],
        a["statistics"],
    }
    assert {x.id for x in full.executions} == {
        e["Trainer"],
        e["SchemaGen"],
        e["StatisticsGen"],
        e["ExampleGen"],
    }
    assert not full.truncated


def test_downstream_and_both_directions(core: MetadataCore, pipeline: Pipeline) -> None:
    a, e = pipeline.artifacts, pipeline.executions
    down = core.get_lineage([a["model"]], direction=Direction.DOWNSTREAM)
    assert {x.id for x in down.executions} == {e["Evaluator"], e["Pusher"]}
    assert {x.id for x in down.artifacts} == {
        a["model"],
        a["evaluation"],
        a["blessing"],
        a["pushed"],
    }
    both = core.get_lineage(execution_ids=[e["Trainer"]], direction=Direction.BOTH, max_hops=1)
    assert {x.id for x in both.artifacts} == {a["model"], a["examples"], a["schema"]}
    capped = core.get_lineage([a["examples"]], direction=Direction.DOWNSTREAM, max_nodes=3)
    assert capped.truncated and len(capped.artifacts) + len(capped.executions) == 3
    with raises_at(NotFound, "artifact_ids[1]"):
        core.get_lineage([a["model"], 424242])
    with raises_at(InvalidArgument, "max_hops"):
        core.get_lineage([a["model"]], max_hops=101)


def test_provenance_is_in_pipeline_order(core: MetadataCore, pipeline: Pipeline) -> None:
    provenance = core.get_provenance(pipeline.artifacts["model"])
    assert provenance.artifact.id == pipeline.artifacts["model"]
    names = [step.execution.properties["component"].data for step in provenance.steps]
    assert names == ["ExampleGen", "StatisticsGen", "SchemaGen", "Trainer", "Evaluator", "Pusher"]
    assert [step.hop for step in provenance.steps] == [-4, -3, -2, -1, 1, 2]
    trainer = provenance.steps[3]
    assert {x.id for x in trainer.inputs} == {
        pipeline.artifacts["examples"],
        pipeline.artifacts["schema"],
    }
    assert [x.id for x in trainer.outputs] == [pipeline.artifacts["model"]]
    short = core.get_provenance(pipeline.artifacts["model"], max_hops=1)
    assert [step.hop for step in short.steps] == [-1, 1, 1]
    with pytest.raises(NotFound):
        core.get_provenance(999999)
