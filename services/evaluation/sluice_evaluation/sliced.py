"""Metrics of every slice, with bootstrap confidence intervals, in two streaming passes.

The first pass gives the point estimates (unit weights, float64); the second the bootstrap
replicates (Poisson(1) weights, float32: only interval bounds come from it). Each pass walks the
examples once in blocks, draws one (block rows x resamples) weight matrix per block and uses it for
every slice of every slicing spec:

- additive statistics (`sluice_evaluation.metrics`): per slice, ``weights.T @ statistics`` over the
  block's rows of that slice - one small matrix product per slice and block;
- ranking metrics (binary AUC-ROC and AUC-PR): the examples are sorted by prediction once, before
  both passes; each block hands its tie runs per slice to a `RankingAccumulator`.

Blocks end where the prediction changes, so a run of tied predictions never straddles two blocks;
a run longer than a block (a model that outputs few distinct values) is its own block, summed a
sub-block at a time and handed over as one level per slice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from sluice_evaluation.bootstrap import (
    PoissonWeights,
    ResampleWeights,
    UnitWeights,
    percentile_interval,
)
from sluice_evaluation.metrics import FloatArray, MetricSuite
from sluice_evaluation.ranking import IntArray, RankingAccumulator

# Elements (rows x resamples) of one block's weight matrix: 2,048 rows of 200 resamples keep each
# temporary array near 1.6 MB, in cache; larger blocks measured slower, not faster.
DEFAULT_BLOCK_ELEMENTS = 2048 * 200
MIN_BLOCK_ROWS = 256
MAX_BLOCK_ROWS = 65536
DEFAULT_BOOTSTRAP_SAMPLES = 200
DEFAULT_CONFIDENCE_LEVEL = 0.95
DEFAULT_MIN_SLICE_SIZE = 100
OVERALL_SLICE = ""


@dataclass(frozen=True)
class Partition:
    """Examples cut into disjoint slices: the overall slice (one group), or one slicing spec.

    Attributes:
        groups: (examples,) the index into ``keys`` of each example's slice.
        keys: the slice key of each group, e.g. "country=BR" or "country=BR,device=phone".
    """

    groups: IntArray
    keys: tuple[str, ...]

    @classmethod
    def overall(cls, examples: int) -> Partition:
        return cls(np.zeros(examples, dtype=np.int64), (OVERALL_SLICE,))


@dataclass(frozen=True)
class SliceMetrics:
    """The metrics of one slice.

    Attributes:
        slice: "" for the overall slice, else "feature=value[,feature=value]".
        example_count: examples in the slice.
        weighted_example_count: their summed example weight.
        too_small: fewer examples than the minimum slice size: reported, but not judged by
            thresholds that apply to every slice.
        values: metric name -> value (NaN when undefined on this slice).
        intervals: metric name -> (lower, upper) bootstrap bounds; empty without a bootstrap, and
            without the metrics whose every replicate was undefined.
    """

    slice: str
    example_count: int
    weighted_example_count: float
    too_small: bool
    values: dict[str, float]
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


Checkpoint = Callable[[float], None]
"""Called between blocks with the fraction of the work done; raises to stop the computation."""


def compute_sliced_metrics(
    suite: MetricSuite,
    labels: FloatArray,
    predictions: FloatArray,
    weights: FloatArray,
    partitions: Sequence[Partition],
    *,
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
    min_slice_size: int = DEFAULT_MIN_SLICE_SIZE,
    seed: int = 0,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    checkpoint: Checkpoint | None = None,
) -> list[SliceMetrics]:
    """Every slice's metrics, in the order of ``partitions`` and their keys.

    Args:
        suite: the task's metrics.
        labels: (n,) labels (class indices for multi-class).
        predictions: (n,) scores, or (n, classes) probabilities for multi-class.
        weights: (n,) non-negative example weights (ones when the data has none).
        partitions: the slicings; each covers every example.
        bootstrap_samples: resamples for the intervals; 0 turns them off.
        confidence_level: coverage of the intervals, e.g. 0.95.
        min_slice_size: slices with fewer examples are flagged ``too_small``.
        seed: seeds the resample weights, so a rerun gives the same intervals.
        block_elements: examples x resamples per block (the unit of work and of memory).
        checkpoint: called between blocks (progress, cancellation).
    """
    statistics, scores, groups = _sorted_inputs(suite, labels, predictions, weights, partitions)
    passes: list[ResampleWeights] = [UnitWeights()]
    if bootstrap_samples > 0:
        passes.append(PoissonWeights(bootstrap_samples, seed))
    sums = []
    # The matrix products here are small (a block of rows by a few statistics): BLAS threads
    # only add hand-offs, measured 10x slower on a busy 2-core machine. Parallelism comes from
    # running evaluations side by side instead.
    with threadpool_limits(limits=1, user_api="blas"):
        for i, resamples in enumerate(passes):
            block_rows = block_elements // resamples.resamples
            block_rows = min(max(block_rows, MIN_BLOCK_ROWS), MAX_BLOCK_ROWS)
            blocks = _plan_blocks(scores, len(labels), block_rows)
            one_pass = _Pass(statistics, scores, groups, partitions, resamples)
            progress = None if checkpoint is None else _share(checkpoint, i, len(passes))
            sums.append(one_pass.run(blocks, block_rows, progress))
    return _slices(suite, partitions, sums, confidence_level, min_slice_size)


def _share(checkpoint: Checkpoint, index: int, count: int) -> Checkpoint:
    """Pass ``index`` of ``count`` reports its own fraction as its share of the whole."""
    return lambda fraction: checkpoint((index + fraction) / count)


def _sorted_inputs(
    suite: MetricSuite,
    labels: FloatArray,
    predictions: FloatArray,
    weights: FloatArray,
    partitions: Sequence[Partition],
) -> tuple[FloatArray, FloatArray | None, list[IntArray]]:
    """(statistics, scores, groups): for a ranked suite, sorted by prediction, highest first -
    one sort that serves every slice and every resample - with the ranking inputs (positive and
    negative weight) as two extra statistic columns; otherwise as they come, without scores."""
    groups = [partition.groups for partition in partitions]
    if not suite.ranked:
        return suite.statistics(labels, predictions, weights), None, groups
    order = np.argsort(-predictions, kind="stable")
    labels, predictions, weights = labels[order], predictions[order], weights[order]
    columns = len(suite.columns)
    statistics = np.empty((len(labels), columns + 2))
    statistics[:, :columns] = suite.statistics(labels, predictions, weights)
    statistics[:, columns] = weights * labels
    statistics[:, columns + 1] = weights - statistics[:, columns]
    return statistics, predictions, [g[order] for g in groups]


@dataclass
class _PassSums:
    # Per partition: (groups, resamples, columns) sums, and the ranking accumulator when ranked.
    sums: list[FloatArray]
    ranking: list[RankingAccumulator] | None


@dataclass(frozen=True)
class _Block:
    start: int
    end: int
    # One run of tied predictions longer than a block: summed in sub-blocks, handed over as one
    # level per slice.
    tied: bool = False


def _plan_blocks(scores: FloatArray | None, n: int, block_rows: int) -> list[_Block]:
    if scores is None:
        return [_Block(s, min(s + block_rows, n)) for s in range(0, n, block_rows)]
    run_starts = np.flatnonzero(np.r_[True, scores[1:] != scores[:-1]])
    run_ends = np.r_[run_starts[1:], n]
    blocks: list[_Block] = []
    start = 0
    while start < n:
        end = min(start + block_rows, n)
        run = int(np.searchsorted(run_starts, end - 1, side="right")) - 1
        run_start, run_end = int(run_starts[run]), int(run_ends[run])
        if run_end - start <= 2 * block_rows:
            end = run_end  # finish the tie run in this block
        elif run_start > start:
            end = run_start  # the long run gets a block of its own next
        else:
            blocks.append(_Block(start, run_end, tied=True))
            start = run_end
            continue
        blocks.append(_Block(start, end))
        start = end
    return blocks


class _Pass:
    """One walk over the examples with one kind of resample weights."""

    def __init__(
        self,
        statistics: FloatArray,
        scores: FloatArray | None,
        groups: Sequence[IntArray],
        partitions: Sequence[Partition],
        resamples: ResampleWeights,
    ) -> None:
        dtype = np.float64 if isinstance(resamples, UnitWeights) else np.float32
        self.statistics: npt.NDArray[np.floating[Any]] = statistics.astype(dtype)
        self.scores = scores
        self.groups = groups
        self.single = [len(p.keys) == 1 for p in partitions]
        self.resamples = resamples
        b = resamples.resamples
        columns = statistics.shape[1]
        self.result = _PassSums(
            sums=[np.zeros((len(p.keys), b, columns)) for p in partitions],
            ranking=None
            if scores is None
            else [RankingAccumulator(len(p.keys), b) for p in partitions],
        )

    def run(
        self, blocks: Sequence[_Block], block_rows: int, checkpoint: Checkpoint | None
    ) -> _PassSums:
        total = blocks[-1].end if blocks else 0
        for block in blocks:
            if checkpoint is not None:
                checkpoint(block.start / total)
            if block.tied:
                self._tied_run(block, block_rows)
            else:
                self._block(block.start, block.end, rank=self.result.ranking is not None)
        return self.result

    def _grouped(self, p: int, start: int, end: int) -> tuple[IntArray | None, IntArray]:
        """The block's rows of partition p ordered by slice (stable), and their slice ids."""
        g = self.groups[p][start:end]
        if self.single[p]:
            return None, g
        order = np.argsort(g, kind="stable")
        return order, g[order]

    def _block(self, start: int, end: int, *, rank: bool) -> None:
        weights = self.resamples.draw(end - start)
        rows = self.statistics[start:end]
        for p, sums in enumerate(self.result.sums):
            order, g = self._grouped(p, start, end)
            w = weights if order is None else weights[order]
            x = rows if order is None else rows[order]
            starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
            for s, e in zip(starts, np.r_[starts[1:], len(g)], strict=True):
                sums[g[s]] += w[s:e].T @ x[s:e]
            if rank:
                assert self.scores is not None and self.result.ranking is not None
                scores = self.scores[start:end]
                first, last = _tie_runs(g, scores if order is None else scores[order])
                self.result.ranking[p].add_levels(
                    w * x[:, -2, None], w * x[:, -1, None], g, first, last
                )

    def _tied_run(self, block: _Block, block_rows: int) -> None:
        """A run of equal predictions longer than a block: its per-slice positive and negative
        sums, gathered a sub-block at a time, are one ranking level per slice."""
        assert self.result.ranking is not None
        before = [sums[..., -2:].copy() for sums in self.result.sums]
        for start in range(block.start, block.end, block_rows):
            self._block(start, min(start + block_rows, block.end), rank=False)
        for p, sums in enumerate(self.result.sums):
            present = np.unique(self.groups[p][block.start : block.end])
            level = sums[present, :, -2:] - before[p][present]
            self.result.ranking[p].add_levels(level[..., 0], level[..., 1], present)


def _tie_runs(groups: IntArray, scores: FloatArray) -> tuple[IntArray | None, IntArray | None]:
    """For rows ordered by slice and then by prediction: the first and last row of each row's run
    of equal predictions within its slice; (None, None) when no two rows tie."""
    new_run = np.r_[True, (groups[1:] != groups[:-1]) | (scores[1:] != scores[:-1])]
    if new_run.all():
        return None, None
    run = np.cumsum(new_run) - 1
    run_starts = np.flatnonzero(new_run)
    return run_starts[run], (np.r_[run_starts[1:], len(groups)] - 1)[run]


def _slices(
    suite: MetricSuite,
    partitions: Sequence[Partition],
    passes: Sequence[_PassSums],
    confidence_level: float,
    min_slice_size: int,
) -> list[SliceMetrics]:
    columns = len(suite.columns)
    names = suite.metric_names()
    out: list[SliceMetrics] = []
    for p, partition in enumerate(partitions):
        per_pass = [_metrics(suite, result, p, columns) for result in passes]
        point = {name: values[:, 0] for name, values in per_pass[0].items()}
        bounds: dict[str, tuple[FloatArray, FloatArray]] = {}
        if len(per_pass) > 1:
            bounds = {
                name: percentile_interval(values, confidence_level)
                for name, values in per_pass[1].items()
            }
        counts = np.bincount(partition.groups, minlength=len(partition.keys))
        weighted = passes[0].sums[p][:, 0, 0]
        for g, key in enumerate(partition.keys):
            intervals = {
                name: (float(bounds[name][0][g]), float(bounds[name][1][g]))
                for name in names
                if name in bounds and not np.isnan(bounds[name][0][g])
            }
            out.append(
                SliceMetrics(
                    slice=key,
                    example_count=int(counts[g]),
                    weighted_example_count=float(weighted[g]),
                    too_small=bool(counts[g] < min_slice_size),
                    values={name: float(point[name][g]) for name in names},
                    intervals=intervals,
                )
            )
    return out


def _metrics(
    suite: MetricSuite, result: _PassSums, p: int, columns: int
) -> dict[str, npt.NDArray[np.float64]]:
    values = suite.metrics(result.sums[p][..., :columns])
    if result.ranking is not None:
        values["auc"] = result.ranking[p].auc()
        values["auc_pr"] = result.ranking[p].auc_pr()
    return values
