"""Helpers for tests and benchmarks of the validation service (not used by the server)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from tensorflow_metadata.proto.v0 import statistics_pb2

from .inputs import DataResolver
from .statistics import StatisticsResult, StatsOptions, compute_statistics

Writer = Callable[[pa.Table, str], str]
"""The tests' `write` fixture: (table, "name.csv" | "name.parquet") -> the file's URI."""


def make_table(rows: int, *, seed: int = 0, shift: float = 0.0) -> pa.Table:
    """A float column with 5% missing, an int column, two categorical columns (frequencies well
    apart) and a 0/1 label. `shift` moves the numbers and changes the color mix (drift)."""
    rng = np.random.default_rng(seed)
    colors = np.array(["red", "green", "blue", "black"])
    color_p = np.array([0.5, 0.3, 0.15, 0.05])
    if shift:
        color_p = np.array([0.2, 0.3, 0.15, 0.35])
    price = rng.normal(100.0 + 20 * shift, 15.0, rows)
    missing = rng.random(rows) < 0.05
    return pa.table(
        {
            "price": pa.array(price, mask=missing),
            "quantity": pa.array(rng.integers(0, 50 + int(shift * 50), rows)),
            "color": pa.array(rng.choice(colors, rows, p=color_p)),
            "country": pa.array(rng.choice(np.array(["US", "FR", "JP"]), rows)),
            "label": pa.array(rng.integers(0, 2, rows)),
        }
    )


def write_table(table: pa.Table, path: Path) -> str:
    """Write `table` as CSV or Parquet (by the extension); returns the file:// URI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".parquet"):
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)
    return path.as_uri()


def stats_of(uri: str, **options: object) -> StatisticsResult:
    """In-process statistics of the data at `uri`."""
    files = DataResolver().list_files(uri)
    return compute_statistics(files, StatsOptions(**options))  # type: ignore[arg-type]


def feature(
    statistics: statistics_pb2.DatasetFeatureStatisticsList, name: str, dataset: int = 0
) -> statistics_pb2.FeatureNameStatistics:
    for candidate in statistics.datasets[dataset].features:
        if ".".join(candidate.path.step) == name:
            return candidate
    raise KeyError(name)
