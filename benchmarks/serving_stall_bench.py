"""What stalls the serving service's requests: a model load, and work of other kinds for comparison.

The sluice server (the MLP of serving_bench.py, batching as there) takes an open loop from h2load
(``--rate`` requests/s on 64 connections, as serving_bench.py's step 3). Every ``--gap`` seconds
one disturbance starts, ``--count`` times per kind; the requests sent in the ``--window`` seconds
after each start are compared with the others of the run (p50/p90/p99, and the p99 ratio):

- ``none``: nothing (the window vs the rest of the same steady load: the noise floor);
- ``load``: LoadModelVersion of a new version (latest-1 policy: the old one unloads), as a hot swap;
- ``python-thread``: a thread in the server running pure Python for ``--busy`` seconds;
- ``numpy-thread``: a thread in the server multiplying matrices (the GIL released, BLAS threads);
- ``process``, ``process-nice19``, ``process-idle``: a separate Python process spinning for
  ``--busy`` seconds at nice 0, nice 19 or SCHED_IDLE.

The in-server threads start on a signal: this file, run with ``--serve``, installs the handlers and
then runs the sluice server (``python -m sluice_serving``'s main). What it showed (RESULTS.md,
Serving): Python holding the GIL in the server stalls the requests; one busy core beside it does
not - which is why loads give way (sluice_serving/gil.py).

    .venv/bin/python benchmarks/serving_stall_bench.py none load python-thread process
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
import serving_bench as bench  # noqa: E402  (a sibling script, not a package)

IN_SERVER = {"python-thread": signal.SIGUSR1, "numpy-thread": signal.SIGUSR2}
PROCESS_PREFIX = {
    "process": [],
    "process-nice19": ["nice", "-n", "19"],
    "process-idle": ["chrt", "-i", "0"],
}
KINDS = ["none", "load", *IN_SERVER, *PROCESS_PREFIX]


def spin_python(seconds: float) -> None:
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1


def spin_numpy(seconds: float) -> None:
    matrix = np.random.default_rng(0).random((300, 300))
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        matrix @ matrix


def serve(busy: float) -> None:
    """The sluice server, plus: SIGUSR1 starts a Python spinner thread, SIGUSR2 a numpy one."""

    def on(spin: Callable[[float], None]) -> Callable[[int, object], None]:
        return lambda signum, frame: threading.Thread(target=spin, args=(busy,)).start()

    signal.signal(signal.SIGUSR1, on(spin_python))
    signal.signal(signal.SIGUSR2, on(spin_numpy))
    from sluice_serving.__main__ import main

    main()


def percentiles(latencies: np.ndarray) -> str:
    p50, p90, p99 = np.percentile(latencies * 1000, [50, 90, 99])
    return f"n={latencies.size:5d} p50={p50:6.2f} p90={p90:6.2f} p99={p99:6.2f} ms"


def measure(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="serving-stall-"))
    folder = bench.export_mlp(work / "mlp")
    settings = argparse.Namespace(max_batch_size=64, max_wait_ms=0.0)
    serve_here = [sys.executable, __file__, "--serve", "--busy", str(args.busy)]
    server = bench.start_sluice(folder, work, settings, command=serve_here)
    x = np.random.default_rng(0).normal(size=(1, bench.INPUTS)).astype(np.float32)
    body = work / "request.body"
    body.write_bytes(bench.grpc_body(bench.oip_request(bench.MODEL_NAME, bench.INPUT_NAME, x)))
    spinner = work / "spin.py"
    spinner.write_text(
        f"import time\nend = time.perf_counter() + {args.busy}\n"
        "while time.perf_counter() < end:\n    pass\n"
    )
    with bench.running(server):
        bench.wait_ready(server)
        bench.load_version(server, work)  # the first load pays one-off costs
        print(f"open loop {args.rate:.0f} requests/s; {args.count} disturbances per kind, "
              f"{args.gap} s apart; window {args.window} s")  # fmt: skip

        def disturb(kind: str) -> None:
            if kind == "load":
                bench.load_version(server, work)
            elif kind in IN_SERVER:
                os.kill(server.process.pid, IN_SERVER[kind])
            elif kind in PROCESS_PREFIX:
                subprocess.Popen([*PROCESS_PREFIX[kind], sys.executable, "-S", str(spinner)])

        for kind in args.kinds:
            lead = 1.5
            command = bench.h2load_command(
                server.address, bench.MODEL_INFER, body, work / "h2load.log",
                clients=64, seconds=lead + args.count * args.gap + 1.0, rate=args.rate,
            )  # fmt: skip
            process = bench.start_h2load(command)
            time.sleep(lead + 0.5)
            starts = []
            for _ in range(args.count):
                started = time.time()
                disturb(kind)
                starts.append(started)
                time.sleep(max(0.0, started + args.gap - time.time()))
            run = bench.finish_h2load(process, command)
            ok = run.statuses == 200
            inside = np.zeros(run.starts.shape, dtype=bool)
            for started in starts:
                inside |= (run.starts >= started) & (run.starts < started + args.window)
            measured = (run.starts >= run.first + lead) & (run.starts < starts[-1] + args.gap - 0.5)
            window, rest = run.latencies[inside & ok], run.latencies[measured & ~inside & ok]
            ratio = np.percentile(window, 99) / np.percentile(rest, 99)
            failed = int(np.count_nonzero(~ok))
            print(
                f"{kind:15s} window {percentiles(window)} | rest {percentiles(rest)} | "
                f"p99 ratio {ratio:.2f} | failed {failed}",
                flush=True,
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kinds", nargs="*", help=f"of {', '.join(KINDS)} (default: none load)")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--count", type=int, default=4, help="disturbances per kind")
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between disturbances")
    parser.add_argument("--window", type=float, default=1.0, help="seconds counted after each")
    parser.add_argument("--busy", type=float, default=0.3, help="seconds each spinner runs")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.kinds = args.kinds or ["none", "load"]
    unknown = [kind for kind in args.kinds if kind not in KINDS]
    if unknown:
        parser.error(f"unknown kinds {unknown}; expected some of {KINDS}")
    if args.serve:
        serve(args.busy)
    else:
        bench.find_h2load()
        measure(args)


if __name__ == "__main__":
    main()
