"""Benchmark: statistics with sluice_validation vs a bare pyarrow pass (and TFDV on request).

Each measurement runs in a fresh process, which reports its wall time and peak RSS, so the numbers
do not leak into each other. The data comes from make_tabular_data.py (generated on first use).

    .venv/bin/python benchmarks/validation_bench.py                       # 1M rows, CSV + Parquet
    .venv/bin/python benchmarks/validation_bench.py --memory-rows 10000000  # + flat memory at 10M
    .venv/bin/python benchmarks/validation_bench.py --tfdv-python /opt/tfdv/bin/python

The pyarrow floor is what a bare script does for the core numbers: read the whole file with
pyarrow's multithreaded reader, then count/mean/std/min/max, t-digest quantiles and top-k value
counts per column. sluice_validation does all of that plus TFDV's full statistics (histograms,
rank histograms, valency, presence) in bounded memory, streaming.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
TFDV_REFERENCE_SECONDS = 86.0  # TFDV on the 1M-row CSV, as measured for the project brief


# -- the measured work (each in its own process) --------------------------------------------------


def run_ours(path: str) -> dict[str, float]:
    from sluice_validation.inputs import DataResolver
    from sluice_validation.statistics import StatsOptions, compute_statistics

    started = time.perf_counter()
    files = DataResolver().list_files(Path(path).as_uri())
    result = compute_statistics(files, StatsOptions())
    payload = result.statistics.SerializeToString()
    return {
        "seconds": time.perf_counter() - started,
        "rows": result.num_examples,
        "features": len(result.statistics.datasets[0].features),
        "proto_bytes": len(payload),
    }


def run_floor(path: str) -> dict[str, float]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    started = time.perf_counter()
    if path.endswith(".parquet"):
        table = pq.read_table(path)
    else:
        table = pa_csv.read_csv(
            path, convert_options=pa_csv.ConvertOptions(null_values=[""], strings_can_be_null=True)
        )
    quantiles = [i / 10 for i in range(11)]
    for name in table.column_names:
        column = table[name]
        if pa.types.is_string(column.type):
            counts = pc.value_counts(column)
            order = pc.sort_indices(counts.field("counts"), sort_keys=[("", "descending")])
            counts.take(order[:20]).to_pylist()
        else:
            pc.count(column)
            pc.mean(column)
            pc.stddev(column)
            pc.min_max(column)
            pc.tdigest(column, q=quantiles)
    return {"seconds": time.perf_counter() - started, "rows": table.num_rows}


TFDV_SCRIPT = """
import json, resource, sys, time
import tensorflow_data_validation as tfdv
path = sys.argv[1]
started = time.perf_counter()
if path.endswith(".parquet"):
    import pyarrow.parquet as pq
    stats = tfdv.generate_statistics_from_dataframe(pq.read_table(path).to_pandas())
else:
    stats = tfdv.generate_statistics_from_csv(path)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "rows": stats.datasets[0].num_examples,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(kind: str, path: Path, python: str = sys.executable) -> dict[str, float]:
    """Run one measurement in a child process and return its figures."""
    if kind == "tfdv":
        command = [python, "-c", TFDV_SCRIPT, str(path)]
    else:
        command = [python, str(Path(__file__).resolve()), "--child", kind, str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} on {path.name} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def child(kind: str, path: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    figures = run_ours(path) if kind == "ours" else run_floor(path)
    after = resource.getrusage(resource.RUSAGE_SELF)
    figures["peak_rss_mb"] = after.ru_maxrss / 1024
    # CPU seconds of the work (all threads): steadier than wall time on a shared machine.
    figures["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps(figures))


# -- the driver ------------------------------------------------------------------------------------


def dataset(out: Path, rows: int, formats: tuple[str, ...]) -> dict[str, Path]:
    sys.path.insert(0, str(BENCHMARKS))
    from make_tabular_data import generate

    stem = f"data-{rows}"
    paths = {fmt: out / f"{stem}.{fmt}" for fmt in formats}
    missing = tuple(fmt for fmt, path in paths.items() if not path.exists())
    if missing:
        print(f"generating {rows} rows as {', '.join(missing)} in {out} ...", flush=True)
        generate(out, rows, formats=missing, name=stem)
    return paths


def best_of(repeat: int, kinds: tuple[str, ...], path: Path) -> dict[str, dict[str, float]]:
    """The fastest of `repeat` runs of each kind, interleaved so that both see the same load."""
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for _ in range(repeat):
        for kind in kinds:
            runs[kind].append(measure(kind, path))
    best = {}
    for kind, measured in runs.items():
        fastest = min(measured, key=lambda run: run["seconds"])
        fastest["peak_rss_mb"] = max(run["peak_rss_mb"] for run in measured)
        fastest["cpu_seconds"] = min(run["cpu_seconds"] for run in measured)
        best[kind] = fastest
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/sluice-bench"))
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best time)")
    parser.add_argument(
        "--memory-rows", type=int, default=0, help="also show our peak memory at this many rows"
    )
    parser.add_argument("--tfdv-python", help="a Python with tensorflow_data_validation installed")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    formats = tuple(args.formats.split(","))
    paths = dataset(args.out, args.rows, formats)
    print(
        f"\n{args.rows:,} rows x 21 columns; best of {args.repeat} interleaved runs, each in a"
        " fresh process"
    )
    header = f"{'input':8s} {'size MB':>8s} {'sluice s':>9s} {'floor s':>8s} {'ratio':>6s}"
    header += f" {'vs TFDV':>8s} {'sluice MB':>10s} {'floor MB':>9s} {'CPU s sluice/floor':>19s}"
    print(header)
    for fmt, path in paths.items():
        best = best_of(args.repeat, ("ours", "floor"), path)
        ours, floor = best["ours"], best["floor"]
        assert ours["rows"] == floor["rows"] == args.rows, (ours, floor)
        tfdv_seconds = TFDV_REFERENCE_SECONDS * args.rows / 1_000_000
        print(
            f"{fmt:8s} {path.stat().st_size / 1e6:8.1f} {ours['seconds']:9.2f}"
            f" {floor['seconds']:8.2f} {ours['seconds'] / floor['seconds']:6.2f}"
            f" {tfdv_seconds / ours['seconds']:7.0f}x {ours['peak_rss_mb']:10.0f}"
            f" {floor['peak_rss_mb']:9.0f}"
            f" {ours['cpu_seconds']:10.2f} / {floor['cpu_seconds']:.2f}"
        )
        if args.tfdv_python:
            tfdv = measure("tfdv", path, args.tfdv_python)
            print(
                f"{'  TFDV':8s} {'':8s} {tfdv['seconds']:9.2f} {'':8s} {'':6s}"
                f" {tfdv['seconds'] / ours['seconds']:7.1f}x {tfdv['peak_rss_mb']:10.0f}"
            )
    print(
        "ratio = sluice / floor; vs TFDV = TFDV time / sluice time"
        + ("" if args.tfdv_python else f" (TFDV's {TFDV_REFERENCE_SECONDS:.0f} s per 1M rows)")
    )

    if args.memory_rows:
        big = dataset(args.out, args.memory_rows, ("csv",))["csv"]
        ours = measure("ours", big)
        print(
            f"\nflat memory: {args.memory_rows:,} rows ({big.stat().st_size / 1e9:.1f} GB CSV):"
            f" {ours['seconds']:.1f} s, peak RSS {ours['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
