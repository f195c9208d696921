"""Generate the tabular benchmark dataset (numeric, categorical, label columns) as CSV and Parquet.

The default shape (1,000,000 rows x 21 columns: num_0..num_9, cat_0..cat_9, label) gives a CSV of
about 253 MB, the size TFDV takes 86 s on. Rows are written in chunks, so any row count runs in
flat memory.

    .venv/bin/python benchmarks/make_tabular_data.py --rows 1000000 --out /tmp/sluice-bench
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

NUM_NUMERIC = 10
NUM_CATEGORICAL = 10
CHUNK_ROWS = 200_000
# Vocabulary size of each categorical column: small enums up to a long tail.
VOCABULARY_SIZES = (3, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
MISSING_FRACTION = 0.01


def column_names() -> list[str]:
    return (
        [f"num_{i}" for i in range(NUM_NUMERIC)]
        + [f"cat_{i}" for i in range(NUM_CATEGORICAL)]
        + ["label"]
    )


def make_chunk(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pa.Table:
    """One chunk of rows; `shift` moves every numeric mean and skews categories (for drift)."""
    columns: dict[str, pa.Array] = {}
    for i in range(NUM_NUMERIC):
        kind = i % 4
        if kind == 0:
            values = rng.normal(10.0 * i + shift, 1.0 + i, rows)
        elif kind == 1:
            values = rng.lognormal(0.5 + shift, 0.75, rows)
        elif kind == 2:
            values = rng.uniform(-100.0 + shift, 100.0 + shift, rows)
        else:  # an integer column, stored as floats would lose the INT type: keep int64
            ints = rng.integers(0, 1000 + int(shift * 100), rows)
            columns[f"num_{i}"] = _with_missing(rng, ints, pa.int64())
            continue
        columns[f"num_{i}"] = _with_missing(rng, values, pa.float64())
    for i, size in enumerate(VOCABULARY_SIZES):
        # Zipf-like ranks so top-k is well separated at the head and long-tailed after.
        ranks = np.minimum(rng.zipf(1.3 + shift * 0.2, rows), size) - 1
        vocabulary = np.array([f"c{i}_v{v:03d}" for v in range(size)], dtype=object)
        columns[f"cat_{i}"] = _with_missing(rng, vocabulary[ranks], pa.string())
    logits = columns["num_0"].fill_null(0.0).to_numpy() * 0.05 - 0.5
    columns["label"] = pa.array((rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(np.int64))
    return pa.table(columns)


def _with_missing(rng: np.random.Generator, values: np.ndarray, kind: pa.DataType) -> pa.Array:
    return pa.array(values, type=kind, mask=rng.random(len(values)) < MISSING_FRACTION)


def generate(
    out: Path,
    rows: int,
    *,
    seed: int = 7,
    shift: float = 0.0,
    formats: tuple[str, ...] = ("csv", "parquet"),
    name: str = "data",
) -> dict[str, Path]:
    """Write `rows` rows to `out/<name>.csv` and/or `out/<name>.parquet`; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths: dict[str, Path] = {}
    csv_writer = parquet_writer = None
    try:
        written = 0
        while written < rows:
            chunk = make_chunk(rng, min(CHUNK_ROWS, rows - written), shift)
            if "csv" in formats:
                if csv_writer is None:
                    paths["csv"] = out / f"{name}.csv"
                    csv_writer = pa_csv.CSVWriter(paths["csv"], chunk.schema)
                csv_writer.write_table(chunk)
            if "parquet" in formats:
                if parquet_writer is None:
                    paths["parquet"] = out / f"{name}.parquet"
                    parquet_writer = pq.ParquetWriter(paths["parquet"], chunk.schema)
                parquet_writer.write_table(chunk, row_group_size=CHUNK_ROWS)
            written += chunk.num_rows
    finally:
        if csv_writer is not None:
            csv_writer.close()
        if parquet_writer is not None:
            parquet_writer.close()
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/sluice-bench"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shift", type=float, default=0.0, help="move distributions (drift)")
    parser.add_argument("--formats", default="csv,parquet", help="csv, parquet or both")
    parser.add_argument("--name", default="data", help="file name stem")
    args = parser.parse_args()
    started = time.perf_counter()
    paths = generate(
        args.out,
        args.rows,
        seed=args.seed,
        shift=args.shift,
        formats=tuple(args.formats.split(",")),
        name=args.name,
    )
    for kind, path in paths.items():
        print(f"{kind:8s} {path}  {path.stat().st_size / 1e6:8.1f} MB")
    print(
        f"{args.rows} rows x {len(column_names())} columns in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
