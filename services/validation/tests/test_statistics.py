"""Statistics against exact numpy answers, shard merges, slices, lists, special values."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sluice_validation.accumulators import SketchSettings
from sluice_validation.inputs import DataResolver, ReadSettings, read_batches
from sluice_validation.statistics import StatisticsAccumulator, StatsOptions, compute_statistics
from sluice_validation.testing import Writer, feature, make_table, stats_of
from tensorflow_metadata.proto.v0 import statistics_pb2

Histogram = statistics_pb2.Histogram
ROWS = 40_000


def rank_error(sorted_values: np.ndarray, value: float, rank: float) -> float:
    """How far `value` is from the `rank` quantile, as a fraction of the data."""
    low = np.searchsorted(sorted_values, value, side="left") / len(sorted_values)
    high = np.searchsorted(sorted_values, value, side="right") / len(sorted_values)
    return 0.0 if low <= rank <= high else min(abs(rank - low), abs(rank - high))


@pytest.mark.parametrize("name", ["data.csv", "data.parquet"])
def test_numeric_statistics_match_numpy(write: Writer, name: str) -> None:
    table = make_table(ROWS, seed=1)
    statistics = stats_of(write(table, name)).statistics
    assert statistics.datasets[0].num_examples == ROWS

    price = feature(statistics, "price")
    values = table["price"].drop_null().to_numpy()
    assert price.type == statistics_pb2.FeatureNameStatistics.FLOAT
    numbers = price.num_stats
    assert numbers.common_stats.num_non_missing == len(values)
    assert numbers.common_stats.num_missing == ROWS - len(values)
    assert numbers.mean == pytest.approx(values.mean(), rel=1e-9)
    assert numbers.std_dev == pytest.approx(values.std(), rel=1e-9)  # population, as TFDV
    assert (numbers.min, numbers.max) == (values.min(), values.max())

    ordered = np.sort(values)
    assert rank_error(ordered, numbers.median, 0.5) < 0.01
    (quantiles,) = [h for h in numbers.histograms if h.type == Histogram.QUANTILES]
    assert len(quantiles.buckets) == 10
    for i, bucket in enumerate(quantiles.buckets):
        assert rank_error(ordered, bucket.low_value, i / 10) < 0.01
        assert bucket.sample_count == pytest.approx(len(values) / 10)

    (standard,) = [h for h in numbers.histograms if h.type == Histogram.STANDARD]
    assert len(standard.buckets) == 10
    assert sum(b.sample_count for b in standard.buckets) == pytest.approx(len(values))
    edges = [standard.buckets[0].low_value] + [b.high_value for b in standard.buckets]
    exact_counts, _ = np.histogram(values, bins=edges)
    for bucket, exact in zip(standard.buckets, exact_counts, strict=True):
        assert abs(bucket.sample_count - exact) <= 0.01 * len(values)

    quantity = feature(statistics, "quantity")
    ints = table["quantity"].to_numpy()
    assert quantity.type == statistics_pb2.FeatureNameStatistics.INT
    assert quantity.num_stats.mean == pytest.approx(ints.mean(), rel=1e-9)
    assert quantity.num_stats.num_zeros == int((ints == 0).sum())
    common = quantity.num_stats.common_stats
    assert (common.min_num_values, common.max_num_values, common.tot_num_values) == (1, 1, ROWS)
    assert common.num_values_histogram.type == Histogram.QUANTILES


@pytest.mark.parametrize("name", ["data.csv", "data.parquet"])
def test_string_statistics_are_exact(write: Writer, name: str) -> None:
    table = make_table(ROWS, seed=2)
    statistics = stats_of(write(table, name), top_k=3).statistics
    color = feature(statistics, "color")
    assert color.type == statistics_pb2.FeatureNameStatistics.STRING
    values, counts = np.unique(table["color"].to_numpy(zero_copy_only=False), return_counts=True)
    expected = sorted(zip(values.tolist(), counts.tolist(), strict=True), key=lambda p: -p[1])
    strings = color.string_stats
    assert strings.unique == 4
    assert [(v.value, v.frequency) for v in strings.top_values] == expected[:3]
    assert [(b.label, b.sample_count) for b in strings.rank_histogram.buckets] == expected
    lengths = sum(len(v) * c for v, c in expected)
    assert strings.avg_length == pytest.approx(lengths / ROWS, rel=1e-6)


def test_shard_merge_equals_one_pass(write: Writer) -> None:
    table = make_table(30_000, seed=3)
    uris = [write(table.slice(i * 10_000, 10_000), f"shard-{i}.csv") for i in range(3)]
    options = StatsOptions(slices=(("country",),))
    resolver = DataResolver()

    one_pass = StatisticsAccumulator(options)
    for item in read_batches(
        [f for u in uris for f in resolver.list_files(u)], ReadSettings(csv_block_size=1 << 16)
    ):
        one_pass.add(item.batch)

    shards = []
    for uri in uris:
        shard = StatisticsAccumulator(options)
        for item in read_batches(resolver.list_files(uri), ReadSettings(csv_block_size=1 << 15)):
            shard.add(item.batch)
        shards.append(pickle.loads(pickle.dumps(shard)))  # as Beam ships them
    merged = shards[0].merge(shards[1]).merge(shards[2])

    a, b = one_pass.to_proto(), merged.to_proto()
    assert [d.name for d in a.datasets] == [d.name for d in b.datasets]
    for left, right in zip(a.datasets, b.datasets, strict=True):
        assert left.num_examples == right.num_examples
        for x, y in zip(left.features, right.features, strict=True):
            assert x.path == y.path and x.type == y.type
            if x.HasField("string_stats"):
                assert x.string_stats == y.string_stats  # exact counts merge exactly
                continue
            xs, ys = x.num_stats, y.num_stats
            assert xs.common_stats == ys.common_stats
            assert (xs.min, xs.max, xs.num_zeros) == (ys.min, ys.max, ys.num_zeros)
            assert xs.mean == pytest.approx(ys.mean, rel=1e-12)
            assert xs.std_dev == pytest.approx(ys.std_dev, rel=1e-12)
            if x.type != x.FLOAT:
                continue  # quantiles of a few discrete values may fall either side of a step
            span = xs.max - xs.min
            for q1, q2 in zip(xs.histograms[1].buckets, ys.histograms[1].buckets, strict=True):
                assert abs(q1.low_value - q2.low_value) <= 0.05 * span


def test_slices_follow_tfdv_naming(write: Writer) -> None:
    table = make_table(6_000, seed=4)
    statistics = stats_of(
        write(table, "data.parquet"), slices=(("country",), ("country", "color"))
    ).statistics
    names = [d.name for d in statistics.datasets]
    assert names[0] == "All Examples"
    assert {"country_FR", "country_JP", "country_US", "country_US_color_red"} <= set(names)
    by_country = {d.name: d.num_examples for d in statistics.datasets if d.name.count("_") == 1}
    countries = table["country"].to_numpy(zero_copy_only=False)
    assert by_country == {f"country_{c}": int((countries == c).sum()) for c in ("FR", "JP", "US")}
    crosses = [d for d in statistics.datasets if d.name.startswith("country_US_color_")]
    assert sum(d.num_examples for d in crosses) == by_country["country_US"]


def test_unsliced_dataset_has_no_name(write: Writer) -> None:
    statistics = stats_of(write(make_table(100), "data.csv")).statistics
    assert [d.name for d in statistics.datasets] == [""]


def test_list_features_from_a_separator_and_from_arrow_lists(write: Writer, tmp_path: Path) -> None:
    csv = pa.table({"tags": ["a|b", "a", None, "a|b|c"], "scores": ["1|2", "3", "4|5|6", None]})
    statistics = stats_of(
        write(csv, "lists.csv"), list_separators={"tags": "|", "scores": "|"}
    ).statistics
    tags = feature(statistics, "tags").string_stats
    assert (tags.common_stats.num_non_missing, tags.common_stats.num_missing) == (3, 1)
    assert (tags.common_stats.min_num_values, tags.common_stats.max_num_values) == (1, 3)
    assert tags.common_stats.tot_num_values == 6
    assert tags.common_stats.avg_num_values == pytest.approx(2.0)
    assert [(v.value, v.frequency) for v in tags.top_values] == [("a", 3), ("b", 2), ("c", 1)]
    scores = feature(statistics, "scores")
    assert scores.type == statistics_pb2.FeatureNameStatistics.INT
    assert scores.num_stats.mean == pytest.approx(3.5)
    assert scores.num_stats.common_stats.tot_num_values == 6

    arrow = pa.table({"embedding": pa.array([[1.0, 2.0], [], None, [3.0]])})
    statistics = stats_of(write(arrow, "lists.parquet")).statistics
    embedding = feature(statistics, "embedding").num_stats
    assert embedding.common_stats.num_non_missing == 3  # an empty list is present
    assert (embedding.common_stats.min_num_values, embedding.common_stats.max_num_values) == (0, 2)
    assert embedding.mean == pytest.approx(2.0)


def test_nan_and_infinity_are_counted_not_averaged(write: Writer) -> None:
    table = pa.table({"x": pa.array([1.0, math.nan, math.inf, -math.inf, 3.0, None])})
    for name in ("special.parquet", "special.csv"):
        x = feature(stats_of(write(table, name)).statistics, "x").num_stats
        assert x.mean == pytest.approx(2.0)
        assert (x.min, x.max) == (-math.inf, math.inf)
        assert all(h.num_nan == 1 for h in x.histograms)
        assert x.common_stats.num_missing == 1
        standard = x.histograms[0]
        assert standard.buckets[0].low_value == -math.inf
        assert standard.buckets[-1].high_value == math.inf


def test_sample_rate_keeps_about_that_share(write: Writer) -> None:
    uri = write(make_table(20_000, seed=5), "data.parquet")
    kept = stats_of(uri, sample_rate=0.25, seed=1).num_examples
    assert abs(kept - 5_000) < 4 * math.sqrt(20_000 * 0.25 * 0.75)


def test_past_the_exact_limit_sketches_take_over(write: Writer) -> None:
    rng = np.random.default_rng(6)
    heavy = rng.choice(np.array(["x", "y", "z"]), 6_000, p=[0.5, 0.3, 0.2])
    tail = np.array([f"id-{i}" for i in range(4_000)])
    values = np.concatenate([heavy, tail])
    rng.shuffle(values)
    statistics = stats_of(
        write(pa.table({"v": values}), "wide.parquet"),
        sketches=SketchSettings(exact_distinct_limit=100),
    ).statistics
    strings = feature(statistics, "v").string_stats
    assert abs(strings.unique - 4_003) < 0.03 * 4_003
    top = [(v.value, v.frequency) for v in strings.top_values[:3]]
    assert [value for value, _ in top] == ["x", "y", "z"]
    exact = {"x": 3_000, "y": 1_800, "z": 1_200}
    for value, frequency in top:
        assert abs(frequency - exact[value]) <= 0.01 * len(values) + 1


def test_progress_and_cancellation(write: Writer) -> None:
    from sluice_validation.statistics import Cancelled, Progress

    uri = write(make_table(20_000, seed=7), "data.csv")
    files = DataResolver().list_files(uri)
    seen: list[Progress] = []
    compute_statistics(files, StatsOptions(csv_block_size=1 << 14), on_progress=seen.append)
    assert seen[-1].rows == 20_000
    assert seen[-1].fraction == pytest.approx(1.0, abs=0.05)
    with pytest.raises(Cancelled):
        compute_statistics(files, StatsOptions(csv_block_size=1 << 14), should_stop=lambda: True)
