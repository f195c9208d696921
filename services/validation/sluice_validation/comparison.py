"""Distances between two statistics of the same features: drift (consecutive spans) and skew
(training vs serving), with the schema's comparators as TFDV applies them.

* L-infinity distance for categorical (string) features: the largest difference, over values, of
  the fraction of values equal to it (from the rank histograms; values past them pool as "other").
* Jensen-Shannon divergence for numeric features: both equal-width histograms rebinned onto the
  union of their bucket edges (mass spread evenly inside a bucket), NaN as its own bucket, log base
  2 so it lies in [0, 1].
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from .schema import feature_name, is_active, main_dataset, string_values

DEFAULT_THRESHOLD = 0.1
_OTHER = object()


class ComparisonKind(enum.Enum):
    DRIFT = "drift"
    SKEW = "skew"


class Measure(enum.Enum):
    L_INFINITY = "L_INFINITY"
    JENSEN_SHANNON = "JENSEN_SHANNON"


@dataclass(frozen=True)
class FeatureDistance:
    feature: str
    measure: Measure
    distance: float
    threshold: float
    # The value with the largest difference (L-infinity only).
    worst_value: str = ""

    @property
    def over_threshold(self) -> bool:
        return self.distance > self.threshold


def _stats_by_name(
    dataset: statistics_pb2.DatasetFeatureStatistics,
) -> dict[str, statistics_pb2.FeatureNameStatistics]:
    return {feature_name(f): f for f in dataset.features}


def comparator_of(
    feature: schema_pb2.Feature, kind: ComparisonKind
) -> schema_pb2.FeatureComparator | None:
    field = "drift_comparator" if kind is ComparisonKind.DRIFT else "skew_comparator"
    return getattr(feature, field) if feature.HasField(field) else None


def compare(
    baseline: statistics_pb2.DatasetFeatureStatisticsList,
    candidate: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema | None,
    kind: ComparisonKind,
    *,
    default_threshold: float = DEFAULT_THRESHOLD,
) -> list[FeatureDistance]:
    """Distances for the features both statistics have.

    With a schema, only features with the comparator of `kind` are compared, with its measures
    and thresholds; without one, every common feature is, with `default_threshold` (L-infinity
    for string features, Jensen-Shannon for numeric ones).
    """
    base = _stats_by_name(main_dataset(baseline, "baseline"))
    current = _stats_by_name(main_dataset(candidate, "candidate"))
    return list(_distances(base, current, schema, kind, default_threshold))


def _distances(
    base: dict[str, statistics_pb2.FeatureNameStatistics],
    current: dict[str, statistics_pb2.FeatureNameStatistics],
    schema: schema_pb2.Schema | None,
    kind: ComparisonKind,
    default_threshold: float,
) -> Iterator[FeatureDistance]:
    if schema is None:
        for name, before in base.items():
            after = current.get(name)
            if after is None:
                continue
            if _is_categorical(before) and _is_categorical(after):
                yield l_infinity(name, before, after, default_threshold)
            elif _is_numeric(before) and _is_numeric(after):
                yield jensen_shannon(name, before, after, default_threshold)
        return
    for feature in schema.feature:
        comparator = comparator_of(feature, kind)
        if comparator is None or not is_active(feature):
            continue
        before, after = base.get(feature.name), current.get(feature.name)
        if before is None or after is None:
            continue
        if (
            comparator.HasField("infinity_norm")
            and _is_categorical(before)
            and _is_categorical(after)
        ):
            yield l_infinity(feature.name, before, after, comparator.infinity_norm.threshold)
        if comparator.HasField("jensen_shannon_divergence"):
            threshold = comparator.jensen_shannon_divergence.threshold
            if _is_numeric(before) and _is_numeric(after):
                yield jensen_shannon(feature.name, before, after, threshold)
            elif _is_categorical(before) and _is_categorical(after):
                yield categorical_jensen_shannon(feature.name, before, after, threshold)


def _is_categorical(stats: statistics_pb2.FeatureNameStatistics) -> bool:
    return bool(stats.WhichOneof("stats") == "string_stats")


def _is_numeric(stats: statistics_pb2.FeatureNameStatistics) -> bool:
    return bool(stats.WhichOneof("stats") == "num_stats")


def _categorical_distribution(
    stats: statistics_pb2.FeatureNameStatistics,
) -> dict[object, float]:
    counts: dict[object, float] = dict(string_values(stats))
    total = float(stats.string_stats.common_stats.tot_num_values)
    listed = sum(counts.values())
    if total > listed:
        counts[_OTHER] = total - listed
    norm = max(total, listed)
    return {value: count / norm for value, count in counts.items()} if norm else {}


def l_infinity(
    name: str,
    baseline: statistics_pb2.FeatureNameStatistics,
    candidate: statistics_pb2.FeatureNameStatistics,
    threshold: float,
) -> FeatureDistance:
    before = _categorical_distribution(baseline)
    after = _categorical_distribution(candidate)
    worst, distance = "", 0.0
    for value in sorted(set(before) | set(after), key=lambda v: (v is _OTHER, str(v))):
        gap = abs(before.get(value, 0.0) - after.get(value, 0.0))
        if gap > distance:
            worst = "<other values>" if value is _OTHER else str(value)
            distance = gap
    return FeatureDistance(name, Measure.L_INFINITY, distance, threshold, worst)


def categorical_jensen_shannon(
    name: str,
    baseline: statistics_pb2.FeatureNameStatistics,
    candidate: statistics_pb2.FeatureNameStatistics,
    threshold: float,
) -> FeatureDistance:
    before = _categorical_distribution(baseline)
    after = _categorical_distribution(candidate)
    keys = list(set(before) | set(after))
    p = np.array([before.get(k, 0.0) for k in keys])
    q = np.array([after.get(k, 0.0) for k in keys])
    return FeatureDistance(name, Measure.JENSEN_SHANNON, js_divergence(p, q), threshold)


def jensen_shannon(
    name: str,
    baseline: statistics_pb2.FeatureNameStatistics,
    candidate: statistics_pb2.FeatureNameStatistics,
    threshold: float,
) -> FeatureDistance:
    # Each reading of the histograms misleads in a known way: equal-width buckets blur heavy
    # tails, quantile edges jump across the steps of a few discrete values, and their blend
    # suffers a little of both. Sampling noise inflates some readings but not all, while real
    # drift shows in every one: so the smallest reading is the estimate.
    estimates = []
    for kinds in (_BOTH, _STANDARD, _QUANTILES):
        before, after = NumericCdf.of(baseline, kinds), NumericCdf.of(candidate, kinds)
        if before is None or after is None:
            continue
        grid = np.union1d(before.xs, after.xs)
        estimates.append(js_divergence(before.masses(grid), after.masses(grid)))
    return FeatureDistance(name, Measure.JENSEN_SHANNON, min(estimates, default=0.0), threshold)


_STANDARD = frozenset({statistics_pb2.Histogram.STANDARD})
_QUANTILES = frozenset({statistics_pb2.Histogram.QUANTILES})
_BOTH = _STANDARD | _QUANTILES


@dataclass(frozen=True)
class NumericCdf:
    """A piecewise-linear CDF rebuilt from the histograms of a numeric feature.

    The STANDARD and QUANTILES histograms each pin the CDF at their bucket edges; together they
    pin it in the body (quantiles) and the tails (equal width) alike, so two samples of the same
    distribution come out close even when their extremes differ. Mass is spread evenly inside a
    bucket; a zero-width bucket is a point mass (a jump). NaN gets a slot of its own.
    """

    xs: np.ndarray  # knots, increasing
    left: np.ndarray  # F(x-) at each knot
    right: np.ndarray  # F(x) at each knot
    nan_fraction: float

    @staticmethod
    def of(
        stats: statistics_pb2.FeatureNameStatistics, kinds: frozenset[int] = _BOTH
    ) -> NumericCdf | None:
        knots: dict[float, list[float]] = {}
        num_nan = 0
        for histogram in stats.num_stats.histograms:
            if histogram.type not in kinds:
                continue
            total = sum(b.sample_count for b in histogram.buckets)
            num_nan = max(num_nan, histogram.num_nan)
            if total <= 0:
                continue
            cumulative = 0.0
            for bucket in histogram.buckets:
                knots.setdefault(bucket.low_value, []).append(cumulative / total)
                cumulative += bucket.sample_count
                knots.setdefault(bucket.high_value, []).append(cumulative / total)
        finite = sorted(x for x in knots if math.isfinite(x))
        if not finite:
            return None
        # Infinite edges carry their mass onto the nearest finite knot.
        left = np.array([min(knots[x]) for x in finite])
        right = np.array([max(knots[x]) for x in finite])
        left[0], right[-1] = 0.0, 1.0
        # Histograms are estimates: make the CDF monotone across both of them.
        both = np.maximum.accumulate(np.column_stack([left, right]).ravel())
        values = stats.num_stats.common_stats.tot_num_values or 1
        return NumericCdf(
            np.array(finite),
            both[0::2],
            both[1::2],
            num_nan / (values + num_nan) if num_nan else 0.0,
        )

    def at(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F(g-), F(g)) at each grid point, interpolating between knots."""
        index = np.searchsorted(self.xs, grid)
        inside = np.interp(grid, self.xs, self.left, left=0.0, right=1.0)
        exact = (index < len(self.xs)) & (self.xs[np.minimum(index, len(self.xs) - 1)] == grid)
        clamped = np.minimum(index, len(self.xs) - 1)
        f_left = np.where(exact, self.left[clamped], inside)
        f_right = np.where(exact, self.right[clamped], inside)
        # Between knots the CDF runs from F(x_k) to F(x_k+1 -).
        between = (~exact) & (index > 0) & (index < len(self.xs))
        if between.any():
            lower = index[between] - 1
            x0, x1 = self.xs[lower], self.xs[lower + 1]
            y0, y1 = self.right[lower], self.left[lower + 1]
            share = (grid[between] - x0) / (x1 - x0)
            f_left[between] = f_right[between] = y0 + share * (y1 - y0)
        return f_left, f_right

    def masses(self, grid: np.ndarray) -> np.ndarray:
        """Mass at each grid point, in each gap between them, and in the NaN slot."""
        f_left, f_right = self.at(grid)
        points = f_right - f_left
        gaps = f_left[1:] - f_right[:-1]
        mass = np.clip(np.concatenate([points, gaps]), 0.0, None) * (1.0 - self.nan_fraction)
        return np.append(mass, self.nan_fraction)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two distributions, base 2 (0 same, 1 disjoint)."""
    p_total, q_total = p.sum(), q.sum()
    if p_total <= 0 or q_total <= 0:
        return 0.0 if p_total == q_total else 1.0
    p, q = p / p_total, q / q_total
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))
