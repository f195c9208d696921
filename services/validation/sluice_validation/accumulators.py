"""Mergeable accumulators of feature statistics: update with Arrow batches, merge, summarize.

Everything here is exact or a mergeable sketch from Apache DataSketches, so statistics computed on
shards (files, Beam bundles) and merged equal the one-pass result: counts, sums, min/max and the
value-count distribution are exact; mean and variance use Chan's parallel update; quantiles use a
KLL sketch; distinct values are counted exactly up to a limit, then by a CPC sketch, with top-k
from a frequent-items sketch. Work per batch is vectorised (numpy/pyarrow); Python loops run over
the distinct values of a batch, never over its rows.

Accumulators pickle (sketches travel serialized), so Beam and process pools can ship them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datasketches as ds
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .inputs import ColumnTypeChange, ValueKind, is_list_type, kind_of

KLL_K = 400  # normalized rank error about 0.7% (99% confidence)
CPC_LG_K = 12  # relative error about 1% on distinct counts past the exact limit
FREQUENT_LG_MAX_K = 12  # up to 4096 tracked values for top-k and rank histograms


@dataclass(frozen=True)
class SketchSettings:
    """Sizes of the sketches. `exact_distinct_limit`: distinct values per feature counted exactly
    (giving exact top-k, rank histogram and unique count) before switching to sketches."""

    exact_distinct_limit: int = 10_000
    kll_k: int = KLL_K
    cpc_lg_k: int = CPC_LG_K
    frequent_lg_max_k: int = FREQUENT_LG_MAX_K


def as_numpy(values: pa.Array) -> np.ndarray:
    """A numpy view of a primitive array without nulls (a copy only when it must)."""
    if values.null_count == 0:
        try:
            # zero_copy_only=False would take a slow path whenever a validity bitmap exists.
            view: np.ndarray = values.to_numpy(zero_copy_only=True)
            return view
        except pa.ArrowInvalid:
            pass
    copy: np.ndarray = values.to_numpy(zero_copy_only=False)
    return copy


class NumericValues:
    """Exact moments and extremes plus a KLL quantile sketch of the non-NaN values."""

    def __init__(self, settings: SketchSettings) -> None:
        self.count = 0  # finite values
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean
        self.min = math.inf  # finite values only
        self.max = -math.inf
        self.num_zeros = 0
        self.num_nan = 0
        self.num_pos_inf = 0
        self.num_neg_inf = 0
        self.quantiles = ds.kll_doubles_sketch(settings.kll_k)

    @property
    def num_values(self) -> int:
        """Values that are numbers or infinities (NaN excluded)."""
        return self.count + self.num_pos_inf + self.num_neg_inf

    def add(self, values: pa.Array) -> None:
        array = as_numpy(values)
        if array.dtype.kind == "f":
            finite_mask = np.isfinite(array)
            if finite_mask.all():
                finite = array
                sketched = array
            else:
                nan_mask = np.isnan(array)
                self.num_nan += int(np.count_nonzero(nan_mask))
                self.num_pos_inf += int(np.count_nonzero(array == math.inf))
                self.num_neg_inf += int(np.count_nonzero(array == -math.inf))
                sketched = array[~nan_mask]
                finite = array[finite_mask]
        else:
            finite = sketched = array.astype(np.float64)
        if not sketched.flags.writeable:  # the sketch binding takes writable arrays only
            sketched = sketched.copy()
        self.quantiles.update(sketched)
        n = int(finite.size)
        if n == 0:
            return
        batch_mean = float(finite.mean())
        deviations = finite - batch_mean
        # Squares summed in place, not np.dot: BLAS worker threads spin and steal the CPU the
        # CSV parser needs.
        np.square(deviations, out=deviations)
        self._combine(n, batch_mean, float(deviations.sum()))
        self.min = min(self.min, float(finite.min()))
        self.max = max(self.max, float(finite.max()))
        self.num_zeros += n - int(np.count_nonzero(finite))

    def _combine(self, n: int, mean: float, m2: float) -> None:
        # Chan et al.'s pairwise update: exact in exact arithmetic, stable in floating point.
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def merge(self, other: NumericValues) -> None:
        if other.count:
            self._combine(other.count, other.mean, other.m2)
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.num_zeros += other.num_zeros
        self.num_nan += other.num_nan
        self.num_pos_inf += other.num_pos_inf
        self.num_neg_inf += other.num_neg_inf
        self.quantiles.merge(other.quantiles)

    @property
    def std_dev(self) -> float:
        """The population standard deviation (ddof=0), as TFDV reports it."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["quantiles"] = self.quantiles.serialize()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["quantiles"] = ds.kll_doubles_sketch.deserialize(state["quantiles"])
        self.__dict__.update(state)


class StringValues:
    """Value frequencies: exact up to a limit of distinct values, then DataSketches sketches."""

    def __init__(self, settings: SketchSettings) -> None:
        self.settings = settings
        self.num_values = 0
        self.total_bytes = 0
        self.exact: dict[str, int] | None = {}
        self.frequent: ds.frequent_strings_sketch | None = None
        self.distinct: ds.cpc_sketch | None = None

    def add(self, values: pa.Array) -> None:
        if len(values) == 0:
            return
        if pa.types.is_dictionary(values.type):
            # Count the indices; keep the dictionary entries in use (and not null).
            per_entry = np.bincount(as_numpy(values.indices), minlength=len(values.dictionary))
            used = np.flatnonzero(per_entry)
            distinct_values = values.dictionary.take(pa.array(used))
            counts = per_entry[used]
            if distinct_values.null_count:
                keep = as_numpy(distinct_values.is_valid())
                distinct_values, counts = distinct_values.filter(pa.array(keep)), counts[keep]
        else:
            counted = pc.value_counts(values)
            distinct_values = counted.field("values")
            counts = as_numpy(counted.field("counts"))
        lengths = as_numpy(pc.fill_null(pc.binary_length(distinct_values), 0))
        self.num_values += len(values)
        self.total_bytes += int(np.dot(lengths.astype(np.int64), counts))
        self._add_counts(zip(distinct_values.to_pylist(), counts.tolist(), strict=True))

    def _add_counts(self, pairs: Iterator[tuple[str, int]] | Any) -> None:
        exact = self.exact
        if exact is not None:
            for value, count in pairs:
                exact[value] = exact.get(value, 0) + count
            if len(exact) > self.settings.exact_distinct_limit:
                self._switch_to_sketches()
            return
        assert self.frequent is not None and self.distinct is not None
        frequent, distinct = self.frequent, self.distinct
        for value, count in pairs:
            frequent.update(value, count)
            distinct.update(value)

    def _switch_to_sketches(self) -> None:
        exact = self.exact or {}
        self.exact = None
        self.frequent = ds.frequent_strings_sketch(self.settings.frequent_lg_max_k)
        self.distinct = ds.cpc_sketch(self.settings.cpc_lg_k)
        self._add_counts(exact.items())

    def merge(self, other: StringValues) -> None:
        self.num_values += other.num_values
        self.total_bytes += other.total_bytes
        if other.exact is not None:
            self._add_counts(other.exact.items())
            return
        if self.exact is not None:
            self._switch_to_sketches()
        assert self.frequent is not None and self.distinct is not None
        assert other.frequent is not None and other.distinct is not None
        self.frequent.merge(other.frequent)
        union = ds.cpc_union(self.settings.cpc_lg_k)
        union.update(self.distinct)
        union.update(other.distinct)
        self.distinct = union.get_result()

    @property
    def is_exact(self) -> bool:
        return self.exact is not None

    def unique(self) -> int:
        if self.exact is not None:
            return len(self.exact)
        assert self.distinct is not None
        estimate: float = self.distinct.get_estimate()
        return round(estimate)

    def ranked(self, limit: int) -> list[tuple[str, float]]:
        """Up to `limit` (value, frequency) pairs, most frequent first, ties by value.

        Exact below the distinct limit; past it, frequent-items estimates with no false positives.
        """
        if self.exact is not None:
            items = list(self.exact.items())
        else:
            assert self.frequent is not None
            items = [
                (value, estimate)
                for value, estimate, _lower, _upper in self.frequent.get_frequent_items(
                    ds.frequent_items_error_type.NO_FALSE_POSITIVES
                )
            ]
        items.sort(key=lambda item: (-item[1], item[0]))
        return [(value, float(count)) for value, count in items[:limit]]

    def counts_for(self, values: list[str]) -> dict[str, float]:
        """Frequencies of the given values (estimates past the distinct limit)."""
        if self.exact is not None:
            return {value: float(self.exact.get(value, 0)) for value in values}
        assert self.frequent is not None
        return {value: float(self.frequent.get_estimate(value)) for value in values}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["frequent"] = self.frequent.serialize() if self.frequent is not None else None
        state["distinct"] = self.distinct.serialize() if self.distinct is not None else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if state["frequent"] is not None:
            state["frequent"] = ds.frequent_strings_sketch.deserialize(state["frequent"])
        if state["distinct"] is not None:
            state["distinct"] = ds.cpc_sketch.deserialize(state["distinct"])
        self.__dict__.update(state)


class FeatureAccumulator:
    """Presence, valency and values of one feature in one slice."""

    def __init__(self, name: str, settings: SketchSettings) -> None:
        self.name = name
        self.settings = settings
        self.kind = ValueKind.NULL
        self.num_present = 0  # rows with the feature (a value or a list, maybe empty)
        self.num_missing = 0
        self.is_list = False
        # Values per present row -> rows; {1: n} for a plain column. Exact: rows hold few lengths.
        self.value_counts: dict[int, int] = {}
        self.numeric: NumericValues | None = None
        self.strings: StringValues | None = None

    def add(self, column: pa.Array) -> None:
        """Account for one batch of the feature's (normalized) column."""
        missing = column.null_count
        self.num_missing += missing
        present = len(column) - missing
        self.num_present += present
        if present == 0:
            return
        if is_list_type(column.type):
            self.is_list = True
            lengths = as_numpy(pc.list_value_length(column).drop_null())
            sizes, rows = np.unique(lengths, return_counts=True)
            for size, count in zip(sizes.tolist(), rows.tolist(), strict=True):
                self.value_counts[size] = self.value_counts.get(size, 0) + count
            values = pc.list_flatten(column).drop_null()
        else:
            self.value_counts[1] = self.value_counts.get(1, 0) + present
            values = column.drop_null() if missing else column
        kind = kind_of(column.type)
        if kind is ValueKind.NULL or len(values) == 0:
            return
        self._accept_kind(kind)
        if kind is ValueKind.STRING:
            assert self.strings is not None
            self.strings.add(values)
        else:
            assert self.numeric is not None
            self.numeric.add(values)

    def add_missing(self, rows: int) -> None:
        self.num_missing += rows

    def _accept_kind(self, kind: ValueKind) -> None:
        if kind is self.kind:
            return
        merged = self.kind.widen(kind)
        if (merged is ValueKind.STRING and self.kind in (ValueKind.INT, ValueKind.FLOAT)) or (
            kind is not ValueKind.STRING and self.kind is ValueKind.STRING
        ):
            raise ColumnTypeChange(self.name, ValueKind.STRING, "it holds both numbers and text")
        self.kind = merged
        if merged is ValueKind.STRING and self.strings is None:
            self.strings = StringValues(self.settings)
        elif merged in (ValueKind.INT, ValueKind.FLOAT) and self.numeric is None:
            self.numeric = NumericValues(self.settings)

    def merge(self, other: FeatureAccumulator) -> None:
        self.num_present += other.num_present
        self.num_missing += other.num_missing
        self.is_list = self.is_list or other.is_list
        for size, rows in other.value_counts.items():
            self.value_counts[size] = self.value_counts.get(size, 0) + rows
        if other.kind is ValueKind.NULL:
            return
        self._accept_kind(other.kind)
        if other.strings is not None:
            assert self.strings is not None
            self.strings.merge(other.strings)
        if other.numeric is not None:
            assert self.numeric is not None
            self.numeric.merge(other.numeric)

    @property
    def total_values(self) -> int:
        return sum(size * rows for size, rows in self.value_counts.items())


class DatasetAccumulator:
    """All features of one slice (or of the whole dataset)."""

    def __init__(self, settings: SketchSettings) -> None:
        self.settings = settings
        self.num_examples = 0
        self.features: dict[str, FeatureAccumulator] = {}

    def add(self, batch: pa.RecordBatch) -> None:
        rows = batch.num_rows
        names = batch.schema.names
        for name, column in zip(names, batch.columns, strict=True):
            feature = self.features.get(name)
            if feature is None:
                feature = self.features[name] = FeatureAccumulator(name, self.settings)
                feature.add_missing(self.num_examples)  # rows seen before the column appeared
            feature.add(column)
        if len(self.features) > len(names):
            present = set(names)
            for name, feature in self.features.items():
                if name not in present:
                    feature.add_missing(rows)
        self.num_examples += rows

    def merge(self, other: DatasetAccumulator) -> None:
        for name, feature in self.features.items():
            if name not in other.features:
                feature.add_missing(other.num_examples)
        for name, theirs in other.features.items():
            mine = self.features.get(name)
            if mine is None:
                mine = self.features[name] = FeatureAccumulator(name, self.settings)
                mine.add_missing(self.num_examples)
            mine.merge(theirs)
        self.num_examples += other.num_examples
