"""Drift (span vs span) and skew (training vs serving) with the schema's comparators."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sluice_validation.comparison import ComparisonKind, Measure, compare, js_divergence
from sluice_validation.inputs import DataFormat, DataResolver
from sluice_validation.schema import find_feature, infer_schema, must
from sluice_validation.statistics import compute_statistics
from sluice_validation.testing import Writer, make_table, stats_of
from sluice_validation.validation import validate_statistics
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

Spans = dict[str, statistics_pb2.DatasetFeatureStatisticsList]

ROWS = 20_000


@pytest.fixture()
def spans(write: Writer) -> Spans:
    """Statistics of a span, a resample of it, and a shifted span."""
    return {
        name: stats_of(write(make_table(ROWS, seed=seed, shift=shift), f"{name}.csv")).statistics
        for name, seed, shift in (("base", 1, 0.0), ("resampled", 2, 0.0), ("shifted", 3, 1.0))
    }


def with_comparators(
    statistics: statistics_pb2.DatasetFeatureStatisticsList, kind: str, threshold: float = 0.1
) -> schema_pb2.Schema:
    schema = infer_schema(statistics)
    for name in ("color", "country"):
        getattr(must(find_feature(schema, name)), kind).infinity_norm.threshold = threshold
    for name in ("price", "quantity"):
        comparator = getattr(must(find_feature(schema, name)), kind)
        comparator.jensen_shannon_divergence.threshold = threshold
    return schema


def test_defaults_compare_every_common_feature(spans: Spans) -> None:
    quiet = compare(spans["base"], spans["resampled"], None, ComparisonKind.DRIFT)
    measures = {d.feature: d.measure for d in quiet}
    assert measures["color"] is Measure.L_INFINITY and measures["price"] is Measure.JENSEN_SHANNON
    assert not [d for d in quiet if d.over_threshold], quiet
    assert all(d.distance < 0.03 for d in quiet)

    loud = {
        d.feature: d for d in compare(spans["base"], spans["shifted"], None, ComparisonKind.DRIFT)
    }
    assert loud["color"].over_threshold and loud["color"].worst_value == "black"
    assert loud["price"].over_threshold and loud["quantity"].over_threshold
    assert not loud["country"].over_threshold  # that feature did not move


def test_drift_fires_on_shifted_spans_only(spans: Spans) -> None:
    schema = with_comparators(spans["base"], "drift_comparator")
    quiet = validate_statistics(spans["resampled"], schema, previous_statistics=spans["base"])
    assert not quiet.findings

    loud = validate_statistics(spans["shifted"], schema, previous_statistics=spans["base"])
    kinds = {(f.feature, f.kind) for f in loud.findings}
    assert ("color", "COMPARATOR_L_INFTY_HIGH") in kinds
    assert ("price", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH") in kinds
    assert ("country", "COMPARATOR_L_INFTY_HIGH") not in kinds
    color = loud.anomalies.anomaly_info["color"].description
    assert "previous span" in color and "'black'" in color
    # The proposed thresholds accept this drift (an explicit, reviewed decision).
    again = validate_statistics(
        spans["shifted"], loud.proposed_schema, previous_statistics=spans["base"]
    )
    assert not [f for f in again.findings if f.kind.startswith("COMPARATOR")]


def test_skew_compares_training_with_serving(spans: Spans) -> None:
    schema = with_comparators(spans["base"], "skew_comparator")
    quiet = validate_statistics(spans["base"], schema, serving_statistics=spans["resampled"])
    assert not quiet.findings
    loud = validate_statistics(spans["base"], schema, serving_statistics=spans["shifted"])
    assert {f.kind for f in loud.findings} == {
        "COMPARATOR_L_INFTY_HIGH",
        "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
    }
    assert "training and serving" in loud.findings[0].description
    # A drift comparator alone does not make skew checks.
    drift_only = with_comparators(spans["base"], "drift_comparator")
    assert not validate_statistics(
        spans["base"], drift_only, serving_statistics=spans["shifted"]
    ).findings


def test_skew_against_a_serving_request_log(write: Writer, spans: Spans) -> None:
    table = make_table(5_000, seed=4, shift=1.0).drop_columns(["label"])
    log = table.append_column("output.score", pa.array(np.linspace(0, 1, 5_000))).append_column(
        "sluice.model_version", pa.array([3] * 5_000)
    )
    uri = write(log, "log/2024-01-01/120000-a.parquet")
    files = DataResolver().list_files(uri.rsplit("/", 1)[0] + "/", DataFormat.REQUEST_LOG)
    serving = compute_statistics(files).statistics
    schema = with_comparators(spans["base"], "skew_comparator")
    must(find_feature(schema, "label")).not_in_environment.append("SERVING")
    result = validate_statistics(spans["base"], schema, serving_statistics=serving)
    assert {f.feature for f in result.findings} >= {"color", "price"}
    # The log itself fits the schema in SERVING, where the label is not expected.
    assert not validate_statistics(serving, schema, environment="SERVING").findings


def test_jensen_shannon_bounds() -> None:
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert js_divergence(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0


def test_point_masses_are_compared(write: Writer) -> None:
    a = stats_of(write(pa.table({"x": [5.0] * 100}), "a.parquet")).statistics
    b = stats_of(write(pa.table({"x": [6.0] * 100}), "b.parquet")).statistics
    same = compare(a, a, None, ComparisonKind.DRIFT)[0]
    apart = compare(a, b, None, ComparisonKind.DRIFT)[0]
    assert same.distance == 0.0
    assert apart.distance == pytest.approx(1.0)
