"""Dataset statistics, overall and per slice, as TFDV's DatasetFeatureStatisticsList.

    files = DataResolver().list_files("file:///data/spans/7/")
    result = compute_statistics(files, StatsOptions(slices=(("country",),)))
    result.statistics  # tensorflow_metadata DatasetFeatureStatisticsList

The output fills the fields the way TFDV does, so TFDV, Facets and TFX read it unchanged: one
dataset per slice (unnamed without slicing; "All Examples" plus "<feature>_<value>" keys with it),
features by `path`, `num_stats` (mean, population std_dev, zeros, min, median, max, an equal-width
STANDARD and a QUANTILES histogram with `num_nan`) for INT/FLOAT, `string_stats` (unique,
top_values, avg_length in bytes, rank_histogram) for STRING, and `common_stats` (presence,
valency, a QUANTILES num_values_histogram) for all.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sluice_runtime.errors import Aborted, InvalidArgument
from tensorflow_metadata.proto.v0 import path_pb2, statistics_pb2

from .accumulators import (
    DatasetAccumulator,
    FeatureAccumulator,
    NumericValues,
    SketchSettings,
    as_numpy,
)
from .inputs import (
    ColumnTypeChange,
    DataFile,
    FileBatch,
    ReadSettings,
    ValueKind,
    is_list_type,
    prefetched,
    read_batches,
)

ALL_EXAMPLES = "All Examples"  # TFDV's name of the unsliced dataset when slicing
DEFAULT_TOP_K = 20
DEFAULT_NUM_QUANTILES = 10
DEFAULT_NUM_HISTOGRAM_BUCKETS = 10
DEFAULT_NUM_RANK_HISTOGRAM_BUCKETS = 1000  # TFDV's default; schema inference reads domains here
DEFAULT_NUM_VALUES_HISTOGRAM_BUCKETS = 10
DEFAULT_MAX_SLICES = 1000
MAX_TYPE_RESTARTS = 8
SLICE_EXACT_DISTINCT_LIMIT = 1000


@dataclass(frozen=True)
class StatsOptions:
    """What to compute. Defaults match TFDV's StatsOptions.

    Attributes:
        slices: feature crosses to slice by, e.g. (("country",), ("country", "device")).
        top_k: most frequent values kept per string feature.
        num_quantiles: buckets of the QUANTILES histogram (10: deciles).
        num_histogram_buckets: buckets of the equal-width STANDARD histogram.
        num_rank_histogram_buckets: values kept in the rank histogram (schema inference reads
            string domains from it, so keep it above the largest domain).
        num_values_histogram_buckets: buckets of the values-per-example QUANTILES histogram.
        sample_rate: fraction of rows used, (0, 1]; rows are drawn with `seed`.
        list_separators: feature -> separator of the values packed in one text field.
        max_slices: slices allowed per slice spec; more is an error, not a silent cut.
        sketches: sizes of the sketches and the exact-counting limit.
        csv_block_size, parquet_batch_rows: batch sizes of the readers.
        prefetch: parse the next batch on a background thread while this one is counted.
    """

    slices: tuple[tuple[str, ...], ...] = ()
    top_k: int = DEFAULT_TOP_K
    num_quantiles: int = DEFAULT_NUM_QUANTILES
    num_histogram_buckets: int = DEFAULT_NUM_HISTOGRAM_BUCKETS
    num_rank_histogram_buckets: int = DEFAULT_NUM_RANK_HISTOGRAM_BUCKETS
    num_values_histogram_buckets: int = DEFAULT_NUM_VALUES_HISTOGRAM_BUCKETS
    sample_rate: float = 1.0
    seed: int = 0
    list_separators: Mapping[str, str] = field(default_factory=dict)
    max_slices: int = DEFAULT_MAX_SLICES
    sketches: SketchSettings = field(default_factory=SketchSettings)
    csv_block_size: int = 4 * 1024 * 1024
    parquet_batch_rows: int = 64 * 1024
    prefetch: bool = True

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("top_k", self.top_k >= 1, "must be at least 1"),
            ("num_quantiles", self.num_quantiles >= 1, "must be at least 1"),
            ("num_histogram_buckets", self.num_histogram_buckets >= 1, "must be at least 1"),
            ("num_rank_histogram_buckets", self.num_rank_histogram_buckets >= 1, "must be >= 1"),
            (
                "num_values_histogram_buckets",
                self.num_values_histogram_buckets >= 1,
                "must be >= 1",
            ),
            ("sample_rate", 0.0 < self.sample_rate <= 1.0, "must be in (0, 1]"),
            ("max_slices", self.max_slices >= 1, "must be at least 1"),
        ]
        for name, ok, problem in checks:
            if not ok:
                raise InvalidArgument(
                    f"options.{name} {problem}, got {getattr(self, name)!r}",
                    field=f"options.{name}",
                )
        for index, spec in enumerate(self.slices):
            if not spec or any(not name for name in spec):
                raise InvalidArgument(
                    f"slices[{index}] must name at least one feature and no empty name",
                    field=f"slices[{index}]",
                )
        for name, separator in self.list_separators.items():
            if not separator:
                raise InvalidArgument(
                    f"options.list_separators[{name!r}] is empty; give the separator, e.g. '|'",
                    field="options.list_separators",
                )

    def read_settings(self, forced_kinds: Mapping[str, ValueKind]) -> ReadSettings:
        return ReadSettings(
            csv_block_size=self.csv_block_size,
            parquet_batch_rows=self.parquet_batch_rows,
            list_separators=dict(self.list_separators),
            forced_kinds=dict(forced_kinds),
        )


# -- slicing ---------------------------------------------------------------------------------------


def slice_key(spec: Sequence[str], values: Sequence[str]) -> str:
    """TFDV's slice key: "country_US", "country_US_device_mobile"."""
    return "_".join(f"{name}_{value}" for name, value in zip(spec, values, strict=True))


def _value_labels(dictionary: pa.Array) -> list[str]:
    if pa.types.is_floating(dictionary.type):
        return [repr(value) if value is not None else "" for value in dictionary.to_pylist()]
    return [str(value) for value in dictionary.to_pylist()]


def split_slices(
    batch: pa.RecordBatch, specs: Sequence[Sequence[str]], max_slices: int
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """(slice key, rows of the batch in that slice) for every slice spec; rows missing a slice
    feature belong to no slice of that spec."""
    names = batch.schema.names
    for spec in specs:
        codes: np.ndarray | None = None
        labels: list[list[str]] = []
        for feature in spec:
            if feature not in names:
                raise InvalidArgument(
                    f"slice feature {feature!r} is not a column of the data (columns: {names})",
                    field="slices",
                    reason="UNKNOWN_SLICE_FEATURE",
                )
            column = batch.column(names.index(feature))
            if is_list_type(column.type):
                raise InvalidArgument(
                    f"slice feature {feature!r} holds lists; slice by a single-valued feature",
                    field="slices",
                    reason="LIST_SLICE_FEATURE",
                )
            encoded = pc.dictionary_encode(column)
            indices = as_numpy(pc.fill_null(encoded.indices, -1))
            feature_labels = _value_labels(encoded.dictionary)
            if codes is None:
                codes = indices.astype(np.int64)
            else:
                codes = np.where(
                    (codes < 0) | (indices < 0), -1, codes * len(feature_labels) + indices
                )
            labels.append(feature_labels)
        assert codes is not None
        valid = codes >= 0
        if not valid.any():
            continue
        kept = codes[valid]
        order = np.argsort(kept, kind="stable")
        unique, starts, counts = np.unique(kept[order], return_index=True, return_counts=True)
        if len(unique) > max_slices:
            raise InvalidArgument(
                f"slicing by {list(spec)} makes more than {max_slices} slices; slice by features"
                " with fewer values or raise max_slices",
                field="slices",
                reason="TOO_MANY_SLICES",
            )
        rows = np.flatnonzero(valid)[order]
        taken = batch.take(pa.array(rows))
        for code, start, count in zip(
            unique.tolist(), starts.tolist(), counts.tolist(), strict=True
        ):
            values: list[str] = []
            for feature_labels in reversed(labels):
                code, index = divmod(code, len(feature_labels))
                values.append(feature_labels[index])
            yield slice_key(spec, values[::-1]), taken.slice(start, count)


# -- the accumulator of a whole computation --------------------------------------------------------


class StatisticsAccumulator:
    """Per-slice dataset accumulators: add batches, merge partial results, emit the proto."""

    def __init__(self, options: StatsOptions) -> None:
        self.options = options
        self.slices: dict[str, DatasetAccumulator] = {
            ALL_EXAMPLES: DatasetAccumulator(options.sketches)
        }

    def _new(self) -> DatasetAccumulator:
        """A slice's accumulator: it counts fewer distinct values exactly, since slices multiply
        the memory (still enough for the rank histogram and schema domains)."""
        sketches = self.options.sketches
        limit = min(sketches.exact_distinct_limit, SLICE_EXACT_DISTINCT_LIMIT)
        return DatasetAccumulator(replace(sketches, exact_distinct_limit=limit))

    @property
    def num_examples(self) -> int:
        return self.slices[ALL_EXAMPLES].num_examples

    def add(self, batch: pa.RecordBatch) -> None:
        self.slices[ALL_EXAMPLES].add(batch)
        if not self.options.slices:
            return
        for key, rows in split_slices(batch, self.options.slices, self.options.max_slices):
            accumulator = self.slices.get(key)
            if accumulator is None:
                accumulator = self.slices[key] = self._new()
                self._check_slice_count()
            accumulator.add(rows)

    def _check_slice_count(self) -> None:
        limit = self.options.max_slices * len(self.options.slices) + 1
        if len(self.slices) > limit:
            raise InvalidArgument(
                f"the slices make more than {limit - 1} slices in all; slice by features with"
                " fewer values or raise max_slices",
                field="slices",
                reason="TOO_MANY_SLICES",
            )

    def merge(self, other: StatisticsAccumulator) -> StatisticsAccumulator:
        for key, theirs in other.slices.items():
            mine = self.slices.get(key)
            if mine is None:
                self.slices[key] = mine = self._new()
            mine.merge(theirs)
        self._check_slice_count()
        return self

    def to_proto(self) -> statistics_pb2.DatasetFeatureStatisticsList:
        result = statistics_pb2.DatasetFeatureStatisticsList()
        sliced = bool(self.options.slices)
        keys = [ALL_EXAMPLES, *sorted(key for key in self.slices if key != ALL_EXAMPLES)]
        for key in keys:
            dataset = result.datasets.add()
            if sliced:
                dataset.name = key
            fill_dataset(dataset, self.slices[key], self.options)
        return result


# -- proto building --------------------------------------------------------------------------------


def fill_dataset(
    dataset: statistics_pb2.DatasetFeatureStatistics,
    accumulator: DatasetAccumulator,
    options: StatsOptions,
) -> None:
    dataset.num_examples = accumulator.num_examples
    for name, feature in accumulator.features.items():
        fill_feature(dataset.features.add(), name, feature, options)


def fill_feature(
    proto: statistics_pb2.FeatureNameStatistics,
    name: str,
    feature: FeatureAccumulator,
    options: StatsOptions,
) -> None:
    proto.path.CopyFrom(path_pb2.Path(step=[name]))
    if feature.kind in (ValueKind.INT, ValueKind.FLOAT):
        proto.type = (
            statistics_pb2.FeatureNameStatistics.INT
            if feature.kind is ValueKind.INT
            else statistics_pb2.FeatureNameStatistics.FLOAT
        )
        _fill_numeric(proto.num_stats, feature, options)
    else:
        # A feature that never had a value is reported as STRING with its presence only.
        proto.type = statistics_pb2.FeatureNameStatistics.STRING
        _fill_string(proto.string_stats, feature, options)


def _fill_common(
    common: statistics_pb2.CommonStatistics, feature: FeatureAccumulator, options: StatsOptions
) -> None:
    common.num_non_missing = feature.num_present
    common.num_missing = feature.num_missing
    if not feature.value_counts:
        return
    sizes = sorted(feature.value_counts)
    total = feature.total_values
    common.min_num_values = sizes[0]
    common.max_num_values = sizes[-1]
    common.tot_num_values = total
    common.avg_num_values = total / feature.num_present if feature.num_present else 0.0
    histogram = common.num_values_histogram
    histogram.type = statistics_pb2.Histogram.QUANTILES
    buckets = options.num_values_histogram_buckets
    edges = _exact_quantiles(feature.value_counts, buckets)
    per_bucket = feature.num_present / buckets
    for low, high in itertools.pairwise(edges):
        histogram.buckets.add(low_value=low, high_value=high, sample_count=per_bucket)


def _exact_quantiles(distribution: Mapping[int, int], buckets: int) -> list[float]:
    """buckets + 1 quantile boundaries of a {value: rows} distribution (inverted CDF)."""
    values = np.array(sorted(distribution), dtype=np.float64)
    counts = np.array([distribution[int(v)] for v in values], dtype=np.float64)
    cumulative = np.cumsum(counts)
    total = cumulative[-1]
    ranks = np.linspace(0.0, 1.0, buckets + 1) * total
    indices = np.searchsorted(cumulative, ranks, side="left")
    indices = np.clip(indices, 0, len(values) - 1)
    edges = values[indices].tolist()
    edges[0] = float(values[0])
    return [float(edge) for edge in edges]


def _fill_numeric(
    stats: statistics_pb2.NumericStatistics, feature: FeatureAccumulator, options: StatsOptions
) -> None:
    _fill_common(stats.common_stats, feature, options)
    numbers = feature.numeric
    if numbers is None:
        return
    stats.mean = numbers.mean
    stats.std_dev = numbers.std_dev
    stats.num_zeros = numbers.num_zeros
    low = -math.inf if numbers.num_neg_inf else numbers.min
    high = math.inf if numbers.num_pos_inf else numbers.max
    if numbers.num_values:
        stats.min = low
        stats.max = high
        stats.median = numbers.quantiles.get_quantile(0.5)
    standard = stats.histograms.add(type=statistics_pb2.Histogram.STANDARD)
    standard.num_nan = numbers.num_nan
    quantiles = stats.histograms.add(type=statistics_pb2.Histogram.QUANTILES)
    quantiles.num_nan = numbers.num_nan
    if numbers.num_values == 0:
        return
    _fill_equal_width(standard, numbers, options.num_histogram_buckets)
    ranks = np.linspace(0.0, 1.0, options.num_quantiles + 1).tolist()
    edges = numbers.quantiles.get_quantiles(ranks)
    edges[0], edges[-1] = low, high
    per_bucket = numbers.num_values / options.num_quantiles
    for bucket_low, bucket_high in itertools.pairwise(edges):
        quantiles.buckets.add(low_value=bucket_low, high_value=bucket_high, sample_count=per_bucket)


def _fill_equal_width(
    histogram: statistics_pb2.Histogram, numbers: NumericValues, num_buckets: int
) -> None:
    total = numbers.num_values
    if numbers.count == 0:  # only infinities
        if numbers.num_neg_inf:
            histogram.buckets.add(
                low_value=-math.inf, high_value=-math.inf, sample_count=numbers.num_neg_inf
            )
        if numbers.num_pos_inf:
            histogram.buckets.add(
                low_value=math.inf, high_value=math.inf, sample_count=numbers.num_pos_inf
            )
        return
    low, high = numbers.min, numbers.max
    edges = np.linspace(low, high, num_buckets + 1).tolist()
    if low == high or any(a >= b for a, b in itertools.pairwise(edges)):
        edges = [low, high]
        counts = [float(total)]
    else:
        # The sketch's CDF at the inner edges; infinities sit in the end buckets.
        below = numbers.quantiles.get_cdf(edges[1:-1], False)[:-1]
        cumulative = [0.0, *below, 1.0]
        counts = [(b - a) * total for a, b in itertools.pairwise(cumulative)]
    if numbers.num_neg_inf:
        edges[0] = -math.inf
    if numbers.num_pos_inf:
        edges[-1] = math.inf
    for index, count in enumerate(counts):
        histogram.buckets.add(
            low_value=edges[index], high_value=edges[index + 1], sample_count=count
        )


def _fill_string(
    stats: statistics_pb2.StringStatistics, feature: FeatureAccumulator, options: StatsOptions
) -> None:
    _fill_common(stats.common_stats, feature, options)
    strings = feature.strings
    if strings is None or strings.num_values == 0:
        return
    stats.unique = strings.unique()
    stats.avg_length = strings.total_bytes / strings.num_values
    ranked = strings.ranked(max(options.top_k, options.num_rank_histogram_buckets))
    for value, frequency in ranked[: options.top_k]:
        stats.top_values.add(value=value, frequency=frequency)
    for rank, (value, frequency) in enumerate(ranked[: options.num_rank_histogram_buckets]):
        stats.rank_histogram.buckets.add(
            low_rank=rank, high_rank=rank, label=value, sample_count=frequency
        )


# -- the single-process driver ---------------------------------------------------------------------


class Cancelled(Exception):
    """The computation was asked to stop."""


@dataclass(frozen=True)
class Progress:
    rows: int
    bytes_read: int
    bytes_total: int
    files_done: int
    files_total: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.bytes_read / self.bytes_total) if self.bytes_total else 0.0


@dataclass(frozen=True)
class StatisticsResult:
    statistics: statistics_pb2.DatasetFeatureStatisticsList
    num_examples: int  # rows used (after sampling)
    rows_read: int  # rows read from the files
    files: tuple[str, ...]
    restarts: int  # re-reads after a column turned out to need a wider type
    forced_kinds: Mapping[str, ValueKind]
    seconds: float


def compute_statistics(
    files: Sequence[DataFile],
    options: StatsOptions | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> StatisticsResult:
    """Statistics of every row of `files`, in this process (no Beam).

    A column whose type changes part way (an int column with text further down, or across files)
    is read again from the start with the wider type, as TFDV would type it from the whole data.
    Raises the domain errors of `inputs` for unreadable data, and Cancelled when `should_stop`.
    """
    options = options or StatsOptions()
    started = time.perf_counter()
    forced: dict[str, ValueKind] = {}
    for restart in range(MAX_TYPE_RESTARTS + 1):
        try:
            accumulator, rows_read = _one_pass(files, options, forced, on_progress, should_stop)
        except ColumnTypeChange as change:
            previous = forced.get(change.column, ValueKind.NULL)
            widened = previous.widen(change.kind)
            if widened is previous:
                raise InvalidArgument(
                    f"column {change.column!r} cannot be read as {widened.name.lower()}:"
                    f" {change.why}",
                    field="source.data.uri",
                    reason="MIXED_TYPES",
                ) from None
            forced[change.column] = widened
            continue
        return StatisticsResult(
            statistics=accumulator.to_proto(),
            num_examples=accumulator.num_examples,
            rows_read=rows_read,
            files=tuple(f.uri for f in files),
            restarts=restart,
            forced_kinds=dict(forced),
            seconds=time.perf_counter() - started,
        )
    raise Aborted(
        f"column types kept changing after {MAX_TYPE_RESTARTS} re-reads ({forced}); give the"
        " data consistent types",
        reason="MIXED_TYPES",
    )


def _one_pass(
    files: Sequence[DataFile],
    options: StatsOptions,
    forced: Mapping[str, ValueKind],
    on_progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[StatisticsAccumulator, int]:
    accumulator = StatisticsAccumulator(options)
    sampler = RowSampler(options.sample_rate, options.seed)
    bytes_total = sum(f.size for f in files)
    bytes_before = 0
    files_done = 0
    current = ""
    rows_read = 0
    batches: Iterable[FileBatch] = read_batches(files, options.read_settings(forced))
    stream = prefetched(iter(batches)) if options.prefetch else iter(batches)
    try:
        for item in stream:
            if should_stop is not None and should_stop():
                raise Cancelled()
            if item.file.uri != current:
                if current:
                    bytes_before += _size_of(files, current)
                    files_done += 1
                current = item.file.uri
            rows_read += item.batch.num_rows
            accumulator.add(sampler.sample(item.batch))
            if on_progress is not None:
                on_progress(
                    Progress(
                        rows_read,
                        bytes_before + item.bytes_read,
                        bytes_total,
                        files_done,
                        len(files),
                    )
                )
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return accumulator, rows_read


def _size_of(files: Sequence[DataFile], uri: str) -> int:
    return next((f.size for f in files if f.uri == uri), 0)


class RowSampler:
    """Keeps each row with probability `rate` (reproducible with `seed`)."""

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self._random = np.random.default_rng(seed)

    def sample(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self.rate >= 1.0:
            return batch
        keep = self._random.random(batch.num_rows) < self.rate
        return batch.filter(pa.array(keep))
