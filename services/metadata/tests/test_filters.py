"""The filter language's parser: what it accepts, the AST it builds, and what it refuses."""

from __future__ import annotations

import pytest
from sluice_metadata.filters import (
    And,
    ColumnField,
    Comparison,
    MembershipField,
    Not,
    Or,
    PropertyField,
    TypeNameField,
    parse_filter,
    parse_timestamp_us,
)
from sluice_metadata.model import ArtifactState, ExecutionState, NodeKind
from sluice_runtime.errors import InvalidArgument

A, E, C = NodeKind.ARTIFACT, NodeKind.EXECUTION, NodeKind.CONTEXT


def test_the_documented_example_parses() -> None:
    text = (
        'type = "Model" AND state = LIVE AND properties.span >= 3 AND custom_properties.tag = "x"'
        ' AND create_time >= "2026-01-01T00:00:00Z" AND context.name = "run-7" AND name != "m"'
        ' AND uri LIKE "s3://bucket/%" AND id IN (1, 2, 3)'
    )
    assert parse_filter(text, A) == And(
        (
            Comparison(TypeNameField(), "=", ("Model",)),
            Comparison(ColumnField("state"), "=", (int(ArtifactState.LIVE),)),
            Comparison(PropertyField("span", custom=False), ">=", (3,)),
            Comparison(PropertyField("tag", custom=True), "=", ("x",)),
            Comparison(ColumnField("create_time"), ">=", (1_767_225_600_000_000,)),
            Comparison(MembershipField("context", "name"), "=", ("run-7",)),
            Comparison(ColumnField("name"), "!=", ("m",)),
            Comparison(ColumnField("uri"), "LIKE", ("s3://bucket/%",)),
            Comparison(ColumnField("id"), "IN", (1, 2, 3)),
        )
    )


def test_precedence_keywords_and_literals() -> None:
    parsed = parse_filter("id = 1 or not (id = 2 AND id = 3) and id not in (4)", A)
    one, two, three, four = (
        Comparison(ColumnField("id"), op, (n,))
        for op, n in [("=", 1), ("=", 2), ("=", 3), ("IN", 4)]
    )
    assert parsed == Or((one, And((Not(And((two, three))), Not(four)))))
    assert parse_filter("properties.ok = true AND properties.x = -1.5e3", A) == And(
        (
            Comparison(PropertyField("ok", False), "=", (True,)),
            Comparison(PropertyField("x", False), "=", (-1500.0,)),
        )
    )
    assert parse_filter("properties.\"a-b.c\" = 'it\\'s'", A) == Comparison(
        PropertyField("a-b.c", False), "=", ("it's",)
    )
    assert parse_filter("state = STATE_COMPLETE", E) == Comparison(
        ColumnField("state"), "=", (int(ExecutionState.COMPLETE),)
    )
    assert parse_filter('parent.name = "p"', C) == Comparison(
        MembershipField("parent", "name"), "=", ("p",)
    )
    assert parse_filter("   ", A) is None


@pytest.mark.parametrize(
    ("text", "kind", "words"),
    [
        ("uri = 'x'", E, "unknown field 'uri'"),
        ("state = LIVE", C, "unknown field 'state'"),
        ("context.name = 'x'", C, "unknown field 'context.name'"),
        ("state = RUNNING", A, "unknown state RUNNING"),
        ("state < LIVE", A, "operator < does not apply"),
        ("id LIKE 'x'", A, "operator LIKE does not apply"),
        ("properties.ok > true", A, "booleans compare only"),
        ("properties.n LIKE 3", A, "LIKE needs a string"),
        ("create_time > 'yesterday'", A, "not an RFC 3339 time"),
        ("id = 1 AND", A, "expected a field name"),
        ("id == 1", A, "expected a value"),
        ("(id = 1", A, "expected ')'"),
        ("id = 1)", A, "unexpected ')'"),
        ("name = 'unterminated", A, "unexpected character"),
        ("id = 1; DROP TABLE artifacts", A, "unexpected character ';'"),
        ("__import__('os') = 1", A, "unknown field '__import__'"),
        ("NOT " * 40 + "id = 1", A, "nests deeper"),
        (" OR ".join(["id = 1"] * 201), A, "more than 200 comparisons"),
        ("x" * 10_001, A, "longer than"),
    ],
)
def test_refusals_name_the_filter_and_the_problem(text: str, kind: NodeKind, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_filter(text, kind)
    assert caught.value.field == "filter"
    assert words in caught.value.message


def test_timestamps() -> None:
    assert parse_timestamp_us("1970-01-01T00:00:01Z") == 1_000_000
    assert parse_timestamp_us("1970-01-01T01:00:00+01:00") == 0
    assert parse_timestamp_us("1970-01-02") == 86_400_000_000
    assert parse_timestamp_us("2026-01-01T00:00:00.000001Z") == 1_767_225_600_000_001
