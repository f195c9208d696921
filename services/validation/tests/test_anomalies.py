"""Every anomaly kind from a crafted dataset, each actionable and with the fix that accepts it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sluice_validation.schema import find_feature, infer_schema, must, schema_from_text
from sluice_validation.testing import Writer, make_table, stats_of
from sluice_validation.validation import ValidationResult, validate_statistics
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

Info = anomalies_pb2.AnomalyInfo
ROWS = 2_000


@pytest.fixture()
def baseline(write: Writer) -> schema_pb2.Schema:
    """The schema inferred from clean data, as a pipeline would keep it."""
    statistics = stats_of(write(make_table(ROWS, seed=1), "clean.csv")).statistics
    return infer_schema(statistics)


def check(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    expected: list[tuple[str, str]],
    environment: str = "",
) -> ValidationResult:
    """Validate; assert the kinds found; assert every anomaly is complete and its fix works."""
    result = validate_statistics(statistics, schema, environment=environment)
    assert sorted((f.feature, f.kind) for f in result.findings) == sorted(expected)
    anomalies = result.anomalies
    assert anomalies.baseline == schema
    for name, info in anomalies.anomaly_info.items():
        assert list(info.path.step) == [name]
        assert info.severity in (Info.WARNING, Info.ERROR)
        assert info.description and info.short_description
        assert all(r.description for r in info.reason)
        assert any(r.WhichOneof("details") != "unchanged" for r in info.diff_regions)
    # The proposed schema is the change that accepts this data: validating again is clean.
    again = validate_statistics(statistics, result.proposed_schema, environment=environment)
    assert not again.findings, [f.description for f in again.findings]
    return result


def test_clean_data_has_no_anomalies(write: Writer, baseline: schema_pb2.Schema) -> None:
    statistics = stats_of(write(make_table(ROWS, seed=2), "more.parquet")).statistics
    result = validate_statistics(statistics, baseline)
    assert not result.findings
    assert result.max_severity == Info.UNKNOWN
    assert not result.anomalies.anomaly_info and not result.anomalies.data_missing


def test_missing_and_new_columns(write: Writer, baseline: schema_pb2.Schema) -> None:
    table = (
        make_table(ROWS, seed=3)
        .drop_columns(["color"])
        .append_column("extra", pa.array([1] * ROWS))
    )
    statistics = stats_of(write(table, "cols.csv")).statistics
    result = check(
        statistics, baseline, [("color", "SCHEMA_MISSING_COLUMN"), ("extra", "SCHEMA_NEW_COLUMN")]
    )
    infos = result.anomalies.anomaly_info
    assert infos["color"].severity == Info.ERROR
    assert infos["extra"].severity == Info.WARNING  # an extra column breaks nothing downstream
    assert "deprecate" in infos["color"].description
    proposed = must(find_feature(result.proposed_schema, "color"))
    assert proposed.lifecycle_stage == schema_pb2.LifecycleStage.DEPRECATED
    assert must(find_feature(result.proposed_schema, "extra")).type == schema_pb2.INT
    added = [r for r in infos["extra"].diff_regions if r.WhichOneof("details") == "added"]
    assert added and 'name: "extra"' in "\n".join(added[0].added.contents)


def test_type_mismatch(tmp_path: Path, baseline: schema_pb2.Schema) -> None:
    rows = [f"{i % 50}" for i in range(ROWS - 1)] + ["n/a"]
    table = make_table(ROWS, seed=4).set_column(1, "quantity", pa.array(rows))
    path = tmp_path / "typed.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    result = check(
        stats_of(path.as_uri()).statistics, baseline, [("quantity", "UNEXPECTED_DATA_TYPE")]
    )
    description = result.anomalies.anomaly_info["quantity"].description
    assert "Expected data of type INT" in description and "BYTES" in description


def test_unexpected_string_values_with_fraction_and_examples(
    write: Writer, baseline: schema_pb2.Schema
) -> None:
    table = make_table(ROWS, seed=5)
    colors = table["color"].to_numpy(zero_copy_only=False).copy()
    colors[: ROWS // 10] = "purple"
    colors[ROWS // 10 : ROWS // 10 + 3] = "teal"
    table = table.set_column(2, "color", pa.array(colors))
    result = check(
        stats_of(write(table, "colors.csv")).statistics,
        baseline,
        [("color", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")],
    )
    description = result.anomalies.anomaly_info["color"].description
    assert "'purple' (~10%)" in description and "'teal' (<1%)" in description
    domain = next(d for d in result.proposed_schema.string_domain if d.name == "color")
    assert {"purple", "teal"} <= set(domain.value)


def test_min_domain_mass_tolerates_a_few_strays(write: Writer, baseline: schema_pb2.Schema) -> None:
    table = make_table(ROWS, seed=5)
    colors = table["color"].to_numpy(zero_copy_only=False).copy()
    colors[:10] = "purple"  # 0.5%
    table = table.set_column(2, "color", pa.array(colors))
    must(find_feature(baseline, "color")).distribution_constraints.min_domain_mass = 0.99
    check(stats_of(write(table, "few.csv")).statistics, baseline, [])


def test_out_of_range_nan_and_infinity(write: Writer, baseline: schema_pb2.Schema) -> None:
    price = must(find_feature(baseline, "price"))
    price.float_domain.min = 0.0
    price.float_domain.max = 200.0
    price.float_domain.disallow_nan = True
    price.float_domain.disallow_inf = True
    quantity = must(find_feature(baseline, "quantity"))
    quantity.int_domain.min = 1
    quantity.int_domain.max = 40
    table = make_table(ROWS, seed=6)
    prices = table["price"].to_numpy(zero_copy_only=False).copy()
    prices[:4] = [-5.0, 500.0, math.nan, math.inf]
    table = table.set_column(0, "price", pa.array(prices))
    result = check(
        stats_of(write(table, "range.parquet")).statistics,
        baseline,
        [
            ("price", "FLOAT_TYPE_SMALL_FLOAT"),
            ("price", "FLOAT_TYPE_BIG_FLOAT"),
            ("price", "FLOAT_TYPE_HAS_NAN"),
            ("price", "FLOAT_TYPE_HAS_INF"),
            ("quantity", "INT_TYPE_SMALL_INT"),
            ("quantity", "INT_TYPE_BIG_INT"),
        ],
    )
    info = result.anomalies.anomaly_info["price"]
    assert info.short_description == "Multiple errors" and len(info.reason) == 4
    assert "-5" in info.description and "NaN" in info.description


def test_presence_below_the_minimum(write: Writer, baseline: schema_pb2.Schema) -> None:
    table = make_table(ROWS, seed=7)
    mask = np.arange(ROWS) % 3 == 0
    table = table.set_column(3, "country", pa.array(table["country"].to_pylist(), mask=mask))
    must(find_feature(baseline, "price")).presence.min_count = ROWS  # price is 5% missing
    result = check(
        stats_of(write(table, "presence.csv")).statistics,
        baseline,
        [
            ("country", "FEATURE_TYPE_LOW_FRACTION_PRESENT"),
            ("price", "FEATURE_TYPE_LOW_NUMBER_PRESENT"),
        ],
    )
    assert "~67%" in result.anomalies.anomaly_info["country"].description
    fixed = must(find_feature(result.proposed_schema, "country"))
    assert fixed.value_count.min == 1 and not fixed.HasField("shape")


def test_valency(write: Writer) -> None:
    schema = schema_from_text('feature { name: "tags" type: BYTES value_count { min: 2 max: 3 } }')
    table = pa.table({"tags": ["a", "a|b", "a|b|c|d", None]})
    statistics = stats_of(write(table, "tags.csv"), list_separators={"tags": "|"}).statistics
    result = check(
        statistics,
        schema,
        [("tags", "FEATURE_TYPE_LOW_NUMBER_VALUES"), ("tags", "FEATURE_TYPE_HIGH_NUMBER_VALUES")],
    )
    fixed = must(find_feature(result.proposed_schema, "tags")).value_count
    assert (fixed.min, fixed.max) == (1, 4)


def test_single_valued_feature_gets_lists(write: Writer, baseline: schema_pb2.Schema) -> None:
    table = make_table(ROWS, seed=8)
    colors = table["color"].to_pylist()
    colors[0] = "red|blue"
    table = table.set_column(2, "color", pa.array(colors))
    statistics = stats_of(write(table, "multi.csv"), list_separators={"color": "|"}).statistics
    result = check(statistics, baseline, [("color", "FEATURE_TYPE_HIGH_NUMBER_VALUES")])
    assert "single-valued" in result.anomalies.anomaly_info["color"].description


def test_an_empty_dataset(tmp_path: Path, baseline: schema_pb2.Schema) -> None:
    (tmp_path / "empty.csv").write_text("price,quantity,color,country,label\n")
    result = check(
        stats_of((tmp_path / "empty.csv").as_uri()).statistics,
        baseline,
        [("", "DATASET_LOW_NUM_EXAMPLES")],
    )
    assert result.anomalies.data_missing
    info = result.anomalies.dataset_anomaly_info
    assert info.severity == Info.ERROR and "empty" in info.description
    assert result.max_severity == Info.ERROR


def test_too_few_examples_for_the_constraint(write: Writer, baseline: schema_pb2.Schema) -> None:
    baseline.dataset_constraints.min_examples_count = 10_000
    result = check(
        stats_of(write(make_table(ROWS, seed=9), "few.csv")).statistics,
        baseline,
        [("", "DATASET_LOW_NUM_EXAMPLES")],
    )
    assert f"{ROWS} examples" in result.anomalies.dataset_anomaly_info.description


def test_boolean_features_follow_tfdv(write: Writer, baseline: schema_pb2.Schema) -> None:
    assert must(find_feature(baseline, "label")).HasField("bool_domain")  # 0/1 ints, as TFDV
    labels = np.arange(ROWS) % 2
    labels[:3] = 2  # a third class sneaks in
    table = make_table(ROWS, seed=10).set_column(4, "label", pa.array(labels))
    result = check(
        stats_of(write(table, "label.csv")).statistics, baseline, [("label", "BOOL_TYPE_BIG_INT")]
    )
    fixed = must(find_feature(result.proposed_schema, "label"))
    assert not fixed.HasField("bool_domain") and (fixed.int_domain.min, fixed.int_domain.max) == (
        0,
        2,
    )
    negative = make_table(ROWS, seed=10).set_column(4, "label", pa.array(labels - 3))
    check(
        stats_of(write(negative, "neg.csv")).statistics,
        baseline,
        [("label", "BOOL_TYPE_SMALL_INT")],
    )


def test_boolean_floats_and_words(write: Writer) -> None:
    schema = schema_from_text(
        'feature { name: "flag" type: FLOAT bool_domain {} } feature { name: "answer"'
        ' type: BYTES bool_domain { true_value: "yes" false_value: "no" } }'
    )
    clean = pa.table({"flag": [0.0, 1.0, 1.0, 0.0], "answer": ["yes", "no", "no", "yes"]})
    assert not validate_statistics(stats_of(write(clean, "clean.csv")).statistics, schema).findings
    dirty = pa.table({"flag": [0.0, 1.0, 0.5, 0.0], "answer": ["yes", "no", "maybe", "yes"]})
    result = check(
        stats_of(write(dirty, "dirty.csv")).statistics,
        schema,
        [("flag", "BOOL_TYPE_UNEXPECTED_FLOAT"), ("answer", "BOOL_TYPE_UNEXPECTED_STRING")],
    )
    assert "'maybe'" in result.anomalies.anomaly_info["answer"].description
    assert "0.5" in result.anomalies.anomaly_info["flag"].description
