"""Benchmark: statistics with sluice_validation vs a bare pyarrow pass and TFDV, side by side.

Each measurement runs in a fresh process, which reports its peak RSS (VmHWM: the high-water mark
of its own memory map, which starts afresh at exec; ru_maxrss would carry over the driver's RSS at
fork), while the driver samples the summed RSS of its whole process tree (Beam's multi-processing
workers); the larger is the figure, so measurements do not leak into each other. The data comes
from make_tabular_data.py (generated on first use).

    .venv/bin/python benchmarks/validation_bench.py                       # 1M rows, CSV + Parquet
    .venv/bin/python benchmarks/validation_bench.py --memory-rows 10000000  # + flat memory at 10M
    bash benchmarks/peers/make_tfdv_venv.sh                              # TFDV 1.16.1, own venv
    .venv/bin/python benchmarks/validation_bench.py --tfdv-python /tmp/peers/tfdv-venv/bin/python

The pyarrow floor is what a bare script does for the core numbers: read the whole file with
pyarrow's multithreaded reader, then count/mean/std/min/max, t-digest quantiles and top-k value
counts per column. sluice_validation does all of that plus TFDV's full statistics (histograms,
rank histograms, valency, presence) in bounded memory, streaming. TFDV runs with both of its
engines, as its users run them: Beam (DirectRunner, as TFX runs it: `generate_statistics_from_csv`,
and `ParquetTFXIO` + `GenerateStatistics` for Parquet) and in memory
(`generate_statistics_from_dataframe` on the whole file read into pandas, which needs the data to
fit in RAM); `--tfdv-workers 2` adds runs with two worker processes. With `--tfdv-python` the
run starts with the compatibility checks of peers/tfdv_compat_check.py (TFDV reads our
statistics, we read TFDV's schema).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
TFDV_REFERENCE_SECONDS = 86.0  # TFDV on the 1M-row CSV (facts.md), used when TFDV is not run
GOAL_TFDV_SPEEDUP = 20.0  # sluice at least this many times faster than TFDV
GOAL_FLOOR_RATIO = 1.5  # sluice within this factor of the bare pyarrow pass
GOAL_PEAK_MB_AT_10M = 1024.0  # peak RSS at 10,000,000 rows


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
import json, os, resource, sys, tempfile, time
import tensorflow_data_validation as tfdv
path, engine, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
parquet = path.endswith(".parquet")

def cpu():
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime

scratch = tempfile.TemporaryDirectory()  # TFDV's Beam outputs; removed at the end
before = cpu()
started = time.perf_counter()
if engine == "dataframe":  # TFDV's in-memory engine: the whole dataset as one pandas DataFrame
    if parquet:
        import pyarrow.parquet as pq
        frame = pq.read_table(path).to_pandas()
    else:
        import pandas
        frame = pandas.read_csv(path)
    stats = tfdv.generate_statistics_from_dataframe(frame, n_jobs=workers)
else:  # TFDV's Beam engine (DirectRunner), as TFX runs it
    options = None
    if workers > 1:
        from apache_beam.options.pipeline_options import PipelineOptions
        options = PipelineOptions([f"--direct_num_workers={workers}",
                                   "--direct_running_mode=multi_processing"])
    if parquet:
        import apache_beam as beam
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        from tfx_bsl.tfxio.parquet_tfxio import ParquetTFXIO

        def as_lists(batch):  # TFDV wants a list per value; a missing value is a null list
            columns = []
            for column in batch.columns:
                valid = column.is_valid().to_numpy(zero_copy_only=False)
                offsets = pa.array(np.concatenate([[0], np.cumsum(valid)]).astype(np.int32))
                columns.append(pa.ListArray.from_arrays(
                    offsets, pc.drop_null(column), mask=pa.array(~valid)))
            return pa.RecordBatch.from_arrays(columns, batch.schema.names)

        output = os.path.join(scratch.name, "FeatureStats.pb")
        with beam.Pipeline(options=options) as pipeline:
            _ = (pipeline
                 | ParquetTFXIO(file_pattern=path).BeamSource()
                 | beam.Map(as_lists)
                 | tfdv.GenerateStatistics(tfdv.StatsOptions())
                 | tfdv.WriteStatisticsToBinaryFile(output))
        stats = tfdv.load_stats_binary(output)
    else:
        stats = tfdv.generate_statistics_from_csv(
            path, output_path=os.path.join(scratch.name, "data_stats.tfrecord"),
            pipeline_options=options)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "rows": stats.datasets[0].num_examples,
                  "features": len(stats.datasets[0].features),
                  "cpu_seconds": cpu() - before,
                  "peak_rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
                                 / 1024,
                  "version": tfdv.__version__}))
scratch.cleanup()
"""


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants (every 50 ms, from /proc)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_bytes = max(self.peak_bytes, self._tree_rss())

    def _tree_rss(self) -> int:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        # "pid (name) state ppid ...": the name may hold spaces, so split after ')'
                        parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        tree, grew = {self.root}, True
        while grew:
            grown = tree | {pid for pid, parent in parents.items() if parent in tree}
            grew, tree = len(grown) > len(tree), grown
        total = 0
        for pid in tree:
            try:
                with open(f"/proc/{pid}/statm") as statm:
                    total += int(statm.read().split()[1]) * self._page
            except (OSError, IndexError, ValueError):
                continue
        return total


# How each TFDV engine reads each format (the labels of the rows).
TFDV_READERS = {
    ("beam", "csv"): "generate_statistics_from_csv (Beam)",
    ("beam", "parquet"): "ParquetTFXIO + GenerateStatistics (Beam)",  # values as lists
    ("dataframe", "csv"): "pandas.read_csv + from_dataframe",
    ("dataframe", "parquet"): "pq.read_table + from_dataframe",
}


def measure(
    kind: str,
    path: Path,
    python: str = sys.executable,
    *,
    tfdv_engine: str = "beam",
    tfdv_workers: int = 1,
) -> dict[str, Any]:
    """Run one measurement in a child process and return its figures, with its peak RSS."""
    if kind == "tfdv":
        command = [python, "-c", TFDV_SCRIPT, str(path), tfdv_engine, str(tfdv_workers)]
    else:
        command = [python, str(Path(__file__).resolve()), "--child", kind, str(path)]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        with TreeMemory(process.pid) as tree:
            output = process.stdout.read().decode()
            process.wait()
        process.stdout.close()
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(
                f"{kind} on {path.name} failed:\n{errors.read().decode(errors='replace')[-3000:]}"
            )
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    figures["peak_rss_mb"] = max(figures["peak_rss_mb"], tree.peak_bytes / 2**20)
    return figures


def child(kind: str, path: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    figures = run_ours(path) if kind == "ours" else run_floor(path)
    after = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of the work (all threads): steadier than wall time on a shared machine.
    figures["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    figures["peak_rss_mb"] = high_water_mark_mb()
    print(json.dumps(figures))


def high_water_mark_mb() -> float:
    """This process's peak RSS since exec (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


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


def best_of(repeat: int, kinds: tuple[str, ...], path: Path) -> dict[str, dict[str, Any]]:
    """The fastest of `repeat` runs of each kind, interleaved so that both see the same load."""
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for _ in range(repeat):
        for kind in kinds:
            runs[kind].append(measure(kind, path))
    best = {}
    for kind, measured in runs.items():
        fastest = min(measured, key=lambda run: run["seconds"])
        fastest["peak_rss_mb"] = max(run["peak_rss_mb"] for run in measured)
        fastest["cpu_seconds"] = min(run["cpu_seconds"] for run in measured)
        fastest["runs"] = len(measured)
        best[kind] = fastest
    return best


def row(name: str, figures: dict[str, Any], ours_seconds: float) -> str:
    return (
        f"  {name:52s} {figures['seconds']:8.2f} {figures['cpu_seconds']:8.2f}"
        f" {figures['peak_rss_mb']:8.0f} {figures['seconds'] / ours_seconds:9.2f}x"
    )


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
    parser.add_argument(
        "--tfdv-engines",
        default="beam,dataframe",
        help="TFDV's engines to time: beam (DirectRunner, as TFX runs it), dataframe (in memory)",
    )
    parser.add_argument(
        "--tfdv-repeat", type=int, default=1, help="runs per TFDV measurement (best time)"
    )
    parser.add_argument(
        "--tfdv-workers",
        type=int,
        default=1,
        help="above 1: also run each TFDV engine with this many workers (processes)",
    )
    parser.add_argument(
        "--skip-compat", action="store_true", help="with --tfdv-python: skip the compat checks"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    print(
        f"{datetime.date.today()} on {platform.node()}: {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, load average"
        f" {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the start"
    )
    failed_checks: list[str] = []
    if args.tfdv_python and not args.skip_compat:
        sys.path.insert(0, str(BENCHMARKS / "peers"))
        run_checks = importlib.import_module("tfdv_compat_check").run_checks

        print("\n== compatibility with TFDV (peers/tfdv_compat_check.py)")
        with tempfile.TemporaryDirectory(prefix="tfdv-compat-") as work:
            failed_checks = run_checks(Path(work), 20_000, args.tfdv_python)

    formats = tuple(args.formats.split(","))
    paths = dataset(args.out, args.rows, formats)
    print(
        f"\n== {args.rows:,} rows x 21 columns; sluice and pyarrow: best of {args.repeat}"
        f" interleaved runs, each in a fresh process; TFDV: best of {args.tfdv_repeat}"
    )
    print(f"  {'':52s} {'wall s':>8s} {'CPU s':>8s} {'peak MB':>8s} {'/ sluice':>10s}")
    speedups: dict[str, float] = {}
    floor_ratios: dict[str, float] = {}
    for fmt, path in paths.items():
        print(f"{fmt} ({path.stat().st_size / 1e6:.0f} MB)")
        best = best_of(args.repeat, ("ours", "floor"), path)
        ours, floor = best["ours"], best["floor"]
        assert ours["rows"] == floor["rows"] == args.rows, (ours, floor)
        floor_ratios[fmt] = ours["seconds"] / floor["seconds"]
        print(row("sluice", ours, ours["seconds"]))
        print(row("pyarrow pass", floor, ours["seconds"]), flush=True)
        if not args.tfdv_python:
            speedups[fmt] = TFDV_REFERENCE_SECONDS * args.rows / 1_000_000 / ours["seconds"]
            continue
        runs = [1] + ([args.tfdv_workers] if args.tfdv_workers > 1 else [])
        for engine in args.tfdv_engines.split(","):
            for workers in runs:
                measured = [
                    measure(
                        "tfdv", path, args.tfdv_python, tfdv_engine=engine, tfdv_workers=workers
                    )
                    for _ in range(args.tfdv_repeat)
                ]
                tfdv = min(measured, key=lambda run: run["seconds"])
                tfdv["peak_rss_mb"] = max(run["peak_rss_mb"] for run in measured)
                tfdv["cpu_seconds"] = min(run["cpu_seconds"] for run in measured)
                assert tfdv["rows"] == args.rows, tfdv
                label = f"TFDV {TFDV_READERS[engine, fmt]}" + (
                    f" x{workers}" if workers > 1 else ""
                )
                print(row(label, tfdv, ours["seconds"]), flush=True)
                speedups[f"{fmt}, {label}"] = tfdv["seconds"] / ours["seconds"]
    if not args.tfdv_python:
        print(f"(no --tfdv-python: TFDV is taken as {TFDV_REFERENCE_SECONDS:.0f} s per 1M rows)")

    peak_at_memory_rows = None
    if args.memory_rows:
        big = dataset(args.out, args.memory_rows, ("csv",))["csv"]
        ours = measure("ours", big)
        assert ours["rows"] == args.memory_rows, ours
        peak_at_memory_rows = ours["peak_rss_mb"]
        print(
            f"\n== flat memory: {args.memory_rows:,} rows ({big.stat().st_size / 1e9:.1f} GB CSV):"
            f" sluice {ours['seconds']:.1f} s, {ours['cpu_seconds']:.1f} CPU s,"
            f" peak RSS {ours['peak_rss_mb']:.0f} MB"
        )

    print("\n== goals")
    for name, speedup in speedups.items():
        verdict = "PASS" if speedup >= GOAL_TFDV_SPEEDUP else "FAIL"
        print(f"{verdict}  {name}: TFDV / sluice = {speedup:.1f}x (goal >= {GOAL_TFDV_SPEEDUP:g}x)")
    for fmt, ratio in floor_ratios.items():
        verdict = "PASS" if ratio <= GOAL_FLOOR_RATIO else "FAIL"
        print(f"{verdict}  {fmt}: sluice / pyarrow = {ratio:.2f} (goal <= {GOAL_FLOOR_RATIO:g})")
    if peak_at_memory_rows is not None:
        verdict = "PASS" if peak_at_memory_rows < GOAL_PEAK_MB_AT_10M else "FAIL"
        print(
            f"{verdict}  peak RSS at {args.memory_rows:,} rows = {peak_at_memory_rows:.0f} MB"
            f" (goal < {GOAL_PEAK_MB_AT_10M:.0f} MB at 10,000,000)"
        )
    if failed_checks:
        print(f"FAIL  compatibility with TFDV: {', '.join(failed_checks)}")
    elif args.tfdv_python and not args.skip_compat:
        print("PASS  compatibility with TFDV: every check")


if __name__ == "__main__":
    main()
