"""Resample weights: Poisson(1) bootstrap weights, and the unit weights of the point estimate.

The Poisson bootstrap gives each example an independent Poisson(1) count per resample instead of
drawing n examples with replacement; for large n the two agree, and the Poisson form can be drawn a
block at a time, in any example order, without knowing n (TFMA uses it for the same reason).

Counts are drawn by table lookup: 16 random bits per count index a 65,536-entry table of the
Poisson(1) quantile function, so each probability is exact to 1/65,536 (counts above 8, with
probability 1e-6, are cut to 8). That is ~10x faster than numpy's Poisson sampler and does not
move any interval measurably.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

_TABLE_BITS = 16


def _poisson_table() -> npt.NDArray[np.float32]:
    # cdf[k] = P(X <= k) for X ~ Poisson(1), as table positions.
    size = 1 << _TABLE_BITS
    pmf = [math.exp(-1.0) / math.factorial(k) for k in range(9)]
    cdf = np.cumsum(pmf)
    edges = np.minimum(np.round(cdf * size).astype(np.int64), size)
    counts = np.searchsorted(edges, np.arange(size), side="right")
    return np.minimum(counts, 8).astype(np.float32)


_POISSON_TABLE = _poisson_table()


class ResampleWeights(Protocol):
    """Per-example weights of each resample, a block of examples at a time."""

    @property
    def resamples(self) -> int: ...

    def draw(self, rows: int) -> npt.NDArray[np.floating]:
        """A (rows, resamples) array of weights for the next ``rows`` examples."""
        ...


class UnitWeights:
    """One "resample" that is the data itself: the point estimate, in float64."""

    resamples = 1

    def draw(self, rows: int) -> npt.NDArray[np.float64]:
        return np.ones((rows, 1))


class PoissonWeights:
    """Poisson(1) counts as float32, ``resamples`` per example, reproducible from ``seed``."""

    def __init__(self, resamples: int, seed: int = 0) -> None:
        if resamples < 1:
            raise ValueError(f"resamples must be at least 1, got {resamples}")
        self._resamples = resamples
        self._rng = np.random.default_rng(seed)

    @property
    def resamples(self) -> int:
        return self._resamples

    def draw(self, rows: int) -> npt.NDArray[np.float32]:
        bits = self._rng.integers(
            0, 1 << _TABLE_BITS, size=(rows, self._resamples), dtype=np.uint16
        )
        return np.take(_POISSON_TABLE, bits)


def percentile_interval(
    replicates: npt.NDArray[np.float64], confidence: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Lower and upper percentile-bootstrap bounds along the last axis, ignoring NaN replicates
    (resamples in which the metric is undefined); NaN where every replicate is NaN."""
    alpha = (1.0 - confidence) / 2.0
    defined = ~np.isnan(replicates)
    lower = np.full(replicates.shape[:-1], np.nan)
    upper = np.full(replicates.shape[:-1], np.nan)
    has_any = defined.any(axis=-1)
    if has_any.any():
        chosen = replicates[has_any]
        bounds = np.nanquantile(chosen, [alpha, 1.0 - alpha], axis=-1)
        lower[has_any], upper[has_any] = bounds[0], bounds[1]
    return lower, upper
