"""Load on the serving service, side by side with KServe, MLServer and the model called in-process.

The model is the MLP of shared/design/facts.md (32 float inputs, 256-256-128-1, random weights),
exported as a SavedModel; every server serves the same folder. Each request carries ``--rows``
rows (default 1). The load comes from h2load (nghttp2's C HTTP/2 load generator, one thread),
replaying one recorded gRPC request body (the serialized request behind gRPC's 5-byte frame
prefix) on every stream: no protobuf or Python work per request on the client side, so most of
the machine's cores are left to the server under test, which runs in its own process.
``bash benchmarks/install_bench_tools.sh`` installs h2load (Debian package nghttp2-client).

How h2load's figures are read: every run writes h2load's per-request log (start time, HTTP
status, microseconds to the end of the answer). h2load runs for warm-up + measured seconds, and
the warm-up is cut out of the log by time rather than with h2load's ``--warm-up-time``, because
h2load 1.52 keeps counting the warm-up's response bytes while it drops its requests, and the
correctness check below needs the two to agree. h2load sees HTTP 200 even when a call fails (the
gRPC status is in the trailers), so before each run one real call (grpc client) gives the framed
size of a good answer, and after it the response bytes h2load received must be that size times
the answered requests: a failed call is answered trailers-only, with no body, and each shortfall
of one answer's size counts as one failed request (column ``errors=``). Every target's answer is
also checked against the model's value before it is measured.

What it measures, in rounds (``--rounds``); within a round every target takes each load in turn,
so a busy spell of a shared machine hits them alike:

1. Closed loop at 1/8/64 clients (h2load ``-c N -m 1``: N connections, each sends its next
   request as soon as its last one is answered): requests/s (answers completed in the measured
   window) and p50/p99 for
   - sluice serving over Open Inference Protocol v2 (``ModelInfer``, raw contents) and over the
     TF Serving protocol (``Predict``, tensor_content), with the mean batch size it formed (from
     its ``sluice_serving_batch_size`` histogram),
   - the gRPC floor of our server: grpc.health.v1 ``Check`` on the same server process (same
     interceptors, same threads, no model): what no model-serving RPC on this stack can beat,
   - KServe 0.21's Python model server and MLServer 1.7.1 over OIP v2 gRPC (``--peers``), each
     with its default settings and a small custom model calling the same signature
     (benchmarks/peers/), loaded by the same h2load command with the same request body.
   Columns ``server``, ``others`` and ``h2load`` give the CPU (in cores) of the server's
   processes, of everything else on the machine, and of the load generator (h2load and this
   process) during the measurement (Linux).
2. The in-process limit, measured in this process while the servers idle: the model called back
   to back through the server's own call (``SavedModelRunner.run``) at batch 1, 8, 64, at the
   request's own rows and at the mean batch size sluice formed at each load - same call, no RPC.
   Two ratios: (a) sluice's requests/s at the top load over the model's calls/s when called
   directly at the request's own batch size (what one request asks of the model), and (b)
   sluice's rows/s over the in-process rows/s at the mean batch size sluice formed (what the
   batches it formed could give at most).
3. Open loop at half of sluice's peak (the best OIP requests/s of the round): h2load ``--rps``
   on ``--open-clients`` connections (total rate = connections x rate each), p50/p99 over the
   requests sent in ``--open-seconds``. The connections open one after another over one period
   of their schedule (``-r 1 --rate-period``): opened together, their timers fire in step and
   the "open loop" sends bursts of 64. h2load sends a connection's next request only once the
   last one is answered (``-m 1``), so latency runs from the actual send, and a connection that
   falls behind its schedule sends late: the many connections keep that rare, and the column
   ``calls/s`` is the rate achieved (the ``clients`` column is the rate asked for).
4. Hot swap under that same open-loop load: ``--swaps`` new versions loaded one after another
   through the control plane (``LoadModelVersion`` from this process, latest-1 policy: each makes
   the new version current and unloads the old one) while h2load runs in the background; p99 of
   the requests sent while swapping (their start time in h2load's log between two clock stamps
   taken around the swaps) vs the steady-state p99 of step 3; failed requests are counted (there
   should be none).

Goals (issue 6), printed at the end per round: >= 2x the better peer's requests/s at 64 clients;
p99 < 20 ms at half of our peak; >= 50% of the model called directly at the same batch sizes
(ratios (a) and (b) above); hot-swap p99 within 2x of steady state; no failed requests.

    bash benchmarks/install_bench_tools.sh                                # once: h2load
    .venv/bin/python benchmarks/serving_bench.py                          # sluice alone
    bash benchmarks/peers/make_peer_venvs.sh /tmp/peers                   # once: the peers
    .venv/bin/python benchmarks/serving_bench.py --peers /tmp/peers --rounds 3

The peers live in their own virtual environments outside the repository (their pins fight our
lock): benchmarks/peers/make_peer_venvs.sh builds ``FOLDER/kserve-venv`` (kserve 0.21 +
tensorflow-cpu 2.21) and ``FOLDER/mlserver-venv`` (mlserver 1.7.1 + tensorflow-cpu 2.21 +
uvloop < 0.22); ``--kserve-python``/``--mlserver-python`` point at other interpreters. The model
wrappers are benchmarks/peers/kserve_model.py (a ``kserve.Model``) and
benchmarks/peers/mlserver_runtime.py (an ``mlserver.MLModel``).

``--pin-peers`` runs the peers under ``taskset`` on one CPU, to see whether that helps them.
The sluice server takes its settings from this process's environment (for example
``SLUICE_SERVING_MODEL_PROCESSES=true`` to measure versions in model processes).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

INPUTS = 32
MODEL_NAME = "mlp"
INPUT_NAME = "features"
PEERS_DIR = Path(__file__).resolve().parent / "peers"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
TF_PREDICT = "/tensorflow.serving.PredictionService/Predict"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SLUICE = "sluice"
INSTALL_TOOLS = "bash benchmarks/install_bench_tools.sh"
# h2load runs this long past a closed-loop window: its clock starts before it connects.
CLOSED_TAIL = 0.2
# ... and past an open-loop window, so that the requests sent late in it get their answers logged.
OPEN_TAIL = 1.0
# First guess of one LoadModelVersion's seconds, to size the h2load run around the swaps; each
# round's swaps refine it.
SWAP_GUESS = 2.0


@dataclass
class Result:
    target: str
    protocol: str
    clients: int  # concurrent clients; for open loop the offered rate in requests/s
    requests: int
    seconds: float
    latencies: Sequence[float]
    rows_per_call: int = 1
    errors: int = 0
    mean_batch: float | None = None  # rows per model call the server formed
    round: int = 0
    note: str = ""
    server_cores: float | None = None  # CPU of the server's processes, in cores
    other_cores: float | None = None  # CPU of everything else on the machine but the client
    client_cores: float | None = None  # CPU of the load generator: h2load and this process

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.latencies), q)) * 1000 if self.latencies else 0.0

    def line(self) -> str:
        rows = self.per_second * self.rows_per_call
        batch = "" if self.mean_batch is None else f"{self.mean_batch:.1f}"
        server = "" if self.server_cores is None else f"{self.server_cores:.2f}"
        others = "" if self.other_cores is None else f"{self.other_cores:.2f}"
        client = "" if self.client_cores is None else f"{self.client_cores:.2f}"
        extra = f" errors={self.errors}" if self.errors else ""
        return (
            f"{self.round:>2} {self.target:<18} {self.protocol:<13} {self.clients:>7} "
            f"{self.per_second:>9.0f} {rows:>9.0f} {self.percentile(50):>8.2f} "
            f"{self.percentile(99):>8.2f} {batch:>6} {server:>6} {others:>6} {client:>6} "
            f"{self.note}{extra}"
        )


HEADER = (
    f"{'r':>2} {'target':<18} {'protocol':<13} {'clients':>7} {'calls/s':>9} {'rows/s':>9} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'batch':>6} {'server':>6} {'others':>6} {'h2load':>6}"
)


def export_mlp(folder: Path) -> Path:
    import keras

    keras.utils.set_random_seed(7)
    inputs = keras.Input(shape=(INPUTS,), name=INPUT_NAME, dtype="float32")
    hidden = inputs
    for width in (256, 256, 128):
        hidden = keras.layers.Dense(width, activation="relu")(hidden)
    outputs = keras.layers.Dense(1, name="score")(hidden)
    keras.Model(inputs, outputs).export(str(folder), verbose=False)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the in-process limit ---------------------------------------------------------------------


def in_process(folder: Path, batch_sizes: Sequence[int], duration: float, rnd: int) -> list[Result]:
    """The model called back to back in this process, one result per batch size.

    Through sluice's own `SavedModelRunner` (the call the server makes), so that the ratio to the
    server leaves out nothing but the RPCs, decoding, checks and batching.
    """
    from sluice_serving.runner import SavedModelRunner

    runner = SavedModelRunner(folder)
    results = []
    for batch in batch_sizes:
        x = np.random.default_rng(batch).normal(size=(batch, INPUTS)).astype(np.float32)
        for _ in range(20):
            runner.run("serving_default", {INPUT_NAME: x})
        latencies: list[float] = []
        started = time.perf_counter()
        while time.perf_counter() - started < duration:
            t0 = time.perf_counter()
            runner.run("serving_default", {INPUT_NAME: x})
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        results.append(
            Result("in-process", f"batch {batch}", batch, len(latencies), elapsed, latencies,
                   rows_per_call=batch, round=rnd)
        )  # fmt: skip
    runner.close()
    return results


# --- the load generator: h2load -----------------------------------------------------------------


def find_h2load() -> str:
    path = shutil.which("h2load")
    if path is None:
        raise SystemExit(
            "h2load, the load generator of this benchmark, is not installed (Debian/Ubuntu "
            f"package nghttp2-client): run `{INSTALL_TOOLS}` and try again"
        )
    return path


def grpc_body(payload: bytes) -> bytes:
    """A request as it travels in a gRPC DATA frame: uncompressed flag, 4-byte length, message."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def stagger(clients: int, rate: float) -> tuple[int, float]:
    """How an open loop opens its connections: one every so many ms, so that their request
    timers spread over one period of each connection's schedule; and the seconds until all are
    open. (h2load opens them all at once otherwise, and their ``--rps`` timers then fire in step:
    measured with 64, some 90% of the requests left in the same tenth of the period.)"""
    period_ms = 1000 * clients / rate
    every_ms = max(1, round(period_ms / clients))
    return every_ms, (clients - 1) * every_ms / 1000


def h2load_command(
    address: str,
    method: str,
    body: Path,
    log: Path,
    *,
    clients: int,
    seconds: float,
    rate: float | None = None,
) -> list[str]:
    """Closed loop for ``seconds``; or (``rate``: requests/s in all) an open loop in which each
    connection sends for ``seconds`` from when it opens."""
    # One thread: the load generator is to take as little of the machine as it can.
    command = [find_h2load(), "-t", "1", "-c", str(clients), "-m", "1"]
    if rate is None:
        command += ["-D", f"{max(1, round(seconds * 1000))}ms"]
    else:
        # Staggered opening (-r) rules out -D: the run's length is set by its requests (-n).
        every_ms, _ = stagger(clients, rate)
        each = math.ceil(rate / clients * seconds)
        command += ["-r", "1", "--rate-period", f"{every_ms}ms", "-n", str(each * clients)]
        command += ["--rps", f"{rate / clients:.4f}"]
    command += ["-d", str(body), "--log-file", str(log)]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    return [*command, f"http://{address}{method}"]


_TRAFFIC = re.compile(r"^traffic: .*\((\d+)\) data", re.MULTILINE)


@dataclass
class LoadRun:
    """One h2load run: per request in its log, the start (s since the epoch), HTTP status (-1: the
    stream failed) and latency (s); and the response body bytes h2load received in all."""

    starts: np.ndarray
    statuses: np.ndarray
    latencies: np.ndarray
    data_bytes: int

    @property
    def first(self) -> float:
        """When the first request was sent: the run's time zero."""
        return float(self.starts.min()) if self.starts.size else time.time()

    def _split(self, mask: np.ndarray) -> tuple[list[float], int]:
        ok = mask & (self.statuses == 200)
        return self.latencies[ok].tolist(), int(np.count_nonzero(mask & ~ok))

    def ended_in(self, start: float, end: float) -> tuple[list[float], int]:
        """Latencies of the requests answered (HTTP 200) in [start, end), and the others."""
        ends = self.starts + self.latencies
        return self._split((ends >= start) & (ends < end))

    def sent_in(self, start: float, end: float) -> tuple[list[float], int]:
        """Latencies of the requests sent in [start, end) and answered, and the others."""
        return self._split((self.starts >= start) & (self.starts < end))

    def short_answers(self, smallest: int, largest: int) -> int:
        """Requests that got HTTP 200 without a good answer's body (gRPC errors), in the whole
        run: good answers are ``smallest`` to ``largest`` framed bytes long, an error none."""
        answered = int(np.count_nonzero(self.statuses == 200))
        missing = answered * smallest - self.data_bytes
        return 0 if missing <= 0 else -(-missing // largest)


def start_h2load(command: list[str]) -> subprocess.Popen[str]:
    log = Path(command[command.index("--log-file") + 1])
    log.unlink(missing_ok=True)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_h2load(process: subprocess.Popen[str], command: list[str]) -> LoadRun:
    output, _ = process.communicate()
    traffic = _TRAFFIC.search(output)
    if process.returncode != 0 or traffic is None:
        raise SystemExit(f"h2load failed ({process.returncode}): {' '.join(command)}\n{output}")
    log = Path(command[command.index("--log-file") + 1])
    # Tab-separated: start (us since the epoch), status, us to the end of the answer; h2load
    # may add columns later.
    rows = [line.split("\t")[:3] for line in log.read_text().splitlines() if line]
    table = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return LoadRun(
        starts=table[:, 0] / 1e6,
        statuses=table[:, 1],
        latencies=table[:, 2] / 1e6,
        data_bytes=int(traffic.group(1)),
    )


def run_h2load(command: list[str]) -> LoadRun:
    return finish_h2load(start_h2load(command), command)


def answer_sizes(address: str, method: str, payload: bytes, calls: int = 3) -> tuple[int, int]:
    """Smallest and largest framed size of a good answer over a few real calls (grpc client):
    a call that fails raises here, before any load."""
    import grpc

    sizes = []
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, None, None)
        for _ in range(calls):
            try:
                sizes.append(len(grpc_body(call(payload, timeout=30))))
            except grpc.RpcError as error:
                raise SystemExit(f"{address}{method} failed: {error}") from error
    return min(sizes), max(sizes)


def oip_request(name: str, input_name: str, x: np.ndarray) -> bytes:
    from open_inference.grpc import protocol as oip

    request = oip.ModelInferRequest(model_name=name)
    request.inputs.add(name=input_name, datatype="FP32", shape=list(x.shape))
    request.raw_input_contents.append(x.tobytes())
    return bytes(request.SerializeToString())


def tfserving_request(name: str, input_name: str, x: np.ndarray) -> bytes:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(x))
    return bytes(request.SerializeToString())


def health_request() -> bytes:
    from grpc_health.v1 import health_pb2

    return bytes(health_pb2.HealthCheckRequest(service="").SerializeToString())


def oip_answer(address: str, payload: bytes) -> tuple[float, str]:
    """The first output value of one OIP call, and the version that answered."""
    import grpc
    from open_inference.grpc import protocol as oip

    with grpc.insecure_channel(address) as channel:
        raw = channel.unary_unary(MODEL_INFER, None, None)(payload, timeout=30)
    response = oip.ModelInferResponse.FromString(raw)
    if response.raw_output_contents:
        value = float(np.frombuffer(response.raw_output_contents[0], np.float32)[0])
    else:
        value = float(response.outputs[0].contents.fp32_contents[0])
    return value, response.model_version


def check_oip_answer(address: str, payload: bytes, expected: float) -> None:
    value, _ = oip_answer(address, payload)
    if abs(value - expected) > 1e-4 * max(1.0, abs(expected)):
        raise SystemExit(f"{address} answered {value}, the model says {expected}")


def wait_ready(server: Server, timeout: float = 180.0) -> None:
    address, process = server.address, server.process
    import grpc
    from open_inference.grpc import protocol as oip

    deadline = time.monotonic() + timeout
    request = oip.ModelReadyRequest(name=MODEL_NAME).SerializeToString()
    with grpc.insecure_channel(address) as channel:
        ready = channel.unary_unary("/inference.GRPCInferenceService/ModelReady", None, None)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                code = process.returncode
                raise SystemExit(f"{address} exited with {code}:\n{server.log_tail()}")
            try:
                if oip.ModelReadyResponse.FromString(ready(request, timeout=2)).ready:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.3)
    raise SystemExit(
        f"the server at {address} did not get ready in {timeout:.0f} s:\n{server.log_tail()}"
    )


# --- the servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    target: str
    process: subprocess.Popen[bytes]
    address: str
    payloads: dict[str, tuple[str, bytes]]  # protocol -> (method, request)
    log: Path
    metrics_port: int | None = None
    next_version: int = 2  # the next version number a hot swap loads
    bodies: dict[str, Path] = field(default_factory=dict)  # protocol -> h2load's request body
    swap_seconds: float = SWAP_GUESS  # one LoadModelVersion, as last seen

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_sluice(
    folder: Path, work: Path, args: argparse.Namespace, command: list[str] | None = None
) -> Server:
    """The sluice server on ``folder`` as version 1 (``command``: another way to start it)."""
    from sluice_runtime.artifacts import LocalArtifactStore
    from sluice_serving.testing import upload

    store = LocalArtifactStore(work / "store")
    digest = upload(store, folder, f"models/{MODEL_NAME}/1")
    config = {
        "models": [
            {
                "name": MODEL_NAME,
                "batching": {
                    "max_batch_size": args.max_batch_size,
                    "max_wait": f"{args.max_wait_ms / 1000}s",
                },
                "versions": [{"version": 1, "uri": f"models/{MODEL_NAME}/1", "digest": digest}],
            }
        ]
    }
    (work / "models.json").write_text(json.dumps(config))
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "SLUICE_SERVING_PORT": str(port),
        "SLUICE_SERVING_METRICS_PORT": str(metrics_port),
        "SLUICE_ARTIFACT_STORE_URI": store.root_uri,
        "SLUICE_SERVING_CACHE_DIR": str(work / "cache"),
        "SLUICE_SERVING_MODEL_CONFIG": str(work / "models.json"),
        "SLUICE_LOG_LEVEL": "WARNING",
    }
    log = work / "sluice.log"
    process = _spawn(command or [sys.executable, "-m", "sluice_serving"], log, env=env)
    return Server(SLUICE, process, f"127.0.0.1:{port}", {}, log, metrics_port)


def start_kserve(python: str, folder: Path, work: Path, pin: list[str]) -> Server:
    port = free_port()
    command = [*pin, python, str(PEERS_DIR / "kserve_model.py"), "--model_name", MODEL_NAME]
    command += ["--folder", str(folder), "--grpc_port", str(port), "--http_port", str(free_port())]
    log = work / "kserve.log"
    process = _spawn(command, log, cwd=work)
    return Server("kserve", process, f"127.0.0.1:{port}", {}, log)


def start_mlserver(python: str, folder: Path, work: Path, pin: list[str]) -> Server:
    models = work / "mlserver"
    models.mkdir()
    shutil.copy(PEERS_DIR / "mlserver_runtime.py", models / "mlserver_runtime.py")
    port = free_port()
    settings = {"grpc_port": port, "http_port": free_port(), "metrics_port": free_port()}
    (models / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_runtime.SavedModelRuntime",
        "parameters": {"uri": str(folder)},
    }
    (models / "model-settings.json").write_text(json.dumps(model_settings))
    mlserver = Path(python).with_name("mlserver")
    log = work / "mlserver.log"
    process = _spawn([*pin, str(mlserver), "start", str(models)], log, cwd=models)
    return Server("mlserver", process, f"127.0.0.1:{port}", {}, log)


def _spawn(
    command: list[str], log: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    # Servers write to a log file (shown when they fail), not over the table. Each runs in a
    # process group of its own, so `stop` also ends the workers a server starts (MLServer's).
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left after 20 s."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; give its workers their own moment, then end any left.
        time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        break


@contextmanager
def running(server: Server) -> Iterator[Server]:
    """Stop the server on the way out, whatever happens once it has started."""
    try:
        yield server
    finally:
        stop(server.process)


def batch_totals(metrics_port: int) -> tuple[float, float]:
    """(rows, model calls) so far, from sluice's batch size histogram."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    rows = calls = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "sluice_serving_batch_size":
            for sample in family.samples:
                if sample.name.endswith("_sum"):
                    rows += sample.value
                elif sample.name.endswith("_count"):
                    calls += sample.value
    return rows, calls


def _ticks_of(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def _client_seconds() -> float:
    """CPU seconds of the load generator: this process and its finished children (h2load)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class CpuMeter:
    """CPU seconds of the server's processes (MLServer has children), of the load generator (this
    process and the h2load runs that finished meanwhile) and of the whole machine, over one
    measurement (Linux /proc; None elsewhere). The machine is shared: "others" says how much of it
    other work took meanwhile."""

    def __init__(self, server_pid: int) -> None:
        self.available = Path("/proc/stat").exists()
        self.pids = _process_tree(server_pid) if self.available else []
        self.start = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        if not self.available:
            return (0.0, 0.0, 0.0, time.perf_counter())
        tick = os.sysconf("SC_CLK_TCK")
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        server = sum(_ticks_of(pid) for pid in self.pids)
        return (busy / tick, server / tick, _client_seconds(), time.perf_counter())

    def cores(self) -> tuple[float | None, float | None, float | None]:
        """(server, others, load generator) in cores since the meter started; call it once the
        h2load run has been waited for."""
        if not self.available:
            return None, None, None
        end = self._read()
        busy, server, client, wall = (b - a for a, b in zip(self.start, end, strict=True))
        return server / wall, max(0.0, busy - server - client) / wall, client / wall


# --- the measurements -----------------------------------------------------------------------------


def closed_loop(
    server: Server, protocol: str, clients: int, args: argparse.Namespace, rnd: int, work: Path
) -> Result:
    method, payload = server.payloads[protocol]
    smallest, largest = answer_sizes(server.address, method, payload)
    command = h2load_command(
        server.address, method, server.bodies[protocol], work / "h2load.log",
        clients=clients, seconds=args.warmup + args.duration + CLOSED_TAIL,
    )  # fmt: skip
    before = batch_totals(server.metrics_port) if server.metrics_port else None
    meter = CpuMeter(server.process.pid)
    run = run_h2load(command)
    begin = run.first + args.warmup
    latencies, failed = run.ended_in(begin, begin + args.duration)
    rows = 1 if protocol == "grpc-floor" else args.rows
    result = Result(
        server.target, protocol, clients, len(latencies), args.duration, latencies,
        rows_per_call=rows, errors=failed + run.short_answers(smallest, largest), round=rnd,
    )  # fmt: skip
    # Includes the warm-up: same load, so the same batch sizes and CPU shares.
    result.server_cores, result.other_cores, result.client_cores = meter.cores()
    if before is not None and server.metrics_port and protocol != "grpc-floor":
        after = batch_totals(server.metrics_port)
        calls = after[1] - before[1]
        result.mean_batch = (after[0] - before[0]) / calls if calls else None
    print(result.line(), flush=True)
    return result


def _rate_note(result: Result, rate: float, clients: int) -> str:
    sent = (result.requests + result.errors) / result.seconds if result.seconds else 0.0
    note = f"{clients} x {rate / clients:.1f}/s"
    # h2load -m 1 sends late when a connection's last answer is late: say when that cost rate.
    return note if sent >= 0.95 * rate else f"{note}, only {sent:.0f}/s sent"


def upload_version(work: Path, version: int) -> str:
    """The benchmark's model folder (``work/mlp``) stored as ``version``; its digest."""
    from sluice_runtime.artifacts import LocalArtifactStore
    from sluice_serving.testing import upload

    store = LocalArtifactStore(work / "store")
    return upload(store, work / "mlp", f"models/{MODEL_NAME}/{version}")


def load_model_version(address: str, version: int, digest: str) -> None:
    """LoadModelVersion through the control plane, waiting until the version is AVAILABLE."""
    import grpc
    from sluice.serving.v1 import model_pb2, serving_service_pb2, serving_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        response = serving_service_pb2_grpc.ServingServiceStub(channel).LoadModelVersion(
            serving_service_pb2.LoadModelVersionRequest(
                model_name=MODEL_NAME,
                version=version,
                uri=f"models/{MODEL_NAME}/{version}",
                digest=digest,
                wait=True,
            ),
            timeout=120,
        )
    if response.version.state != model_pb2.VERSION_STATE_AVAILABLE:
        state = model_pb2.VersionState.Name(response.version.state)
        raise SystemExit(f"version {version} ended {state}")


def load_version(server: Server, work: Path) -> None:
    """Store and load the server's next version (a hot swap under the latest-1 policy)."""
    version = server.next_version
    server.next_version += 1
    load_model_version(server.address, version, upload_version(work, version))


def open_loop_and_swaps(
    server: Server, rate: float, args: argparse.Namespace, rnd: int, work: Path
) -> list[Result]:
    """Open loop at ``rate``: a steady part, then (with swaps) a part with hot swaps."""
    method, payload = server.payloads["oip"]
    clients = args.open_clients
    # Measure once every connection is open, and keep every one sending to the window's end.
    lead = max(args.warmup, stagger(clients, rate)[1])

    def command(seconds: float) -> list[str]:
        return h2load_command(
            server.address, method, server.bodies["oip"], work / "h2load.log",
            clients=clients, seconds=seconds, rate=rate,
        )  # fmt: skip

    results = []
    smallest, largest = answer_sizes(server.address, method, payload)
    meter = CpuMeter(server.process.pid)
    run = run_h2load(command(lead + args.open_seconds + OPEN_TAIL))
    begin = run.first + lead
    steady, failed = run.sent_in(begin, begin + args.open_seconds)
    result = Result(
        server.target, "oip open", round(rate), len(steady), args.open_seconds, steady,
        rows_per_call=args.rows, errors=failed + run.short_answers(smallest, largest), round=rnd,
    )  # fmt: skip
    result.note = f"half of peak, {_rate_note(result, rate, clients)}"
    result.server_cores, result.other_cores, result.client_cores = meter.cores()
    print(result.line(), flush=True)
    results.append(result)
    if args.swaps <= 0:
        return results

    versions = list(range(server.next_version, server.next_version + args.swaps))
    server.next_version += args.swaps
    digests = {v: upload_version(work, v) for v in versions}

    def swap_all() -> tuple[float, float]:
        started = time.time()  # the clock of h2load's log
        for version in versions:
            load_model_version(server.address, version, digests[version])
            time.sleep(args.swap_pause)
        return started, time.time()

    # h2load cannot be stopped early and still report, so it runs as long as the swaps should
    # take (from the last round's swaps), with a margin.
    expected = args.swaps * (server.swap_seconds + args.swap_pause)
    load_seconds = lead + 1.5 * expected + 1.0
    swap_command = command(load_seconds + OPEN_TAIL)
    meter = CpuMeter(server.process.pid)
    launched = time.time()
    process = start_h2load(swap_command)
    try:
        time.sleep(lead)
        start, end = swap_all()
    finally:
        run = finish_h2load(process, swap_command)
    result = Result(
        server.target, "oip swaps", round(rate), 0, end - start, [],
        rows_per_call=args.rows, round=rnd, note=f"{args.swaps} hot swaps in {end - start:.1f} s",
    )  # fmt: skip
    load_end = launched + load_seconds
    if end > load_end:
        result.note += f", the load ended {end - load_end:.1f} s before the swaps did"
        end = load_end
        result.seconds = end - start
    result.latencies, failed = run.sent_in(start, end)
    result.requests = len(result.latencies)
    after = answer_sizes(server.address, method, payload)
    result.errors = failed + run.short_answers(min(smallest, after[0]), max(largest, after[1]))
    result.note += f", {_rate_note(result, rate, clients)}"
    result.server_cores, result.other_cores, result.client_cores = meter.cores()
    server.swap_seconds = max(0.1, (end - start) / args.swaps - args.swap_pause)
    print(result.line(), flush=True)
    _, version = oip_answer(server.address, payload)
    if version != str(versions[-1]):
        raise SystemExit(f"after the swaps version {version} answered, not {versions[-1]}")
    results.append(result)
    return results


# --- the summary ----------------------------------------------------------------------------------


def _range(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    low, high, median = (
        fmt.format(v) for v in (min(values), max(values), statistics.median(values))
    )
    return f"{low}-{high} (median {median})"


def summarize(results: list[Result], rounds: int, clients: Sequence[int], rows: int) -> None:
    def pick(target: str, protocol: str, count: int, rnd: int) -> Result | None:
        for r in results:
            if (r.target, r.protocol, r.clients, r.round) == (target, protocol, count, rnd):
                return r
        return None

    top = max(clients)
    print("\nPer target, over rounds (min-max, median): requests/s and p99 at each load")
    keys = sorted({(r.target, r.protocol) for r in results if r.target != "in-process"})
    for target, protocol in keys:
        for count in clients:
            found = [
                r for r in results if (r.target, r.protocol, r.clients) == (target, protocol, count)
            ]
            if found:
                print(
                    f"  {target:<10} {protocol:<11} {count:>3} clients: "
                    f"{_range([r.per_second for r in found])} req/s, "
                    f"p99 {_range([r.percentile(99) for r in found], '{:.1f}')} ms"
                )

    print("\nGoals (per round, then min-max over rounds)")
    peer_ratio, direct_ratio, formed_ratio, floor_ratio = [], [], [], []
    half_p99, swap_ratio, swap_errors, closed_errors = [], [], [], []
    for rnd in range(1, rounds + 1):
        ours = pick(SLUICE, "oip", top, rnd)
        peers = [p for p in (pick(n, "oip", top, rnd) for n in ("kserve", "mlserver")) if p]
        if ours and peers:
            peer_ratio.append(ours.per_second / max(p.per_second for p in peers))
        direct = pick("in-process", f"batch {rows}", rows, rnd)
        if ours and direct:
            direct_ratio.append(ours.per_second / direct.per_second)
        if ours and ours.mean_batch:
            batch = max(1, round(ours.mean_batch))
            limit = pick("in-process", f"batch {batch}", batch, rnd)
            if limit:
                formed_ratio.append(
                    ours.per_second * ours.rows_per_call / (limit.per_second * limit.rows_per_call)
                )
        floor = pick(SLUICE, "grpc-floor", top, rnd)
        if ours and floor:
            floor_ratio.append(ours.per_second / floor.per_second)
        steady = next((r for r in results if r.round == rnd and r.protocol == "oip open"), None)
        swaps = next((r for r in results if r.round == rnd and r.protocol == "oip swaps"), None)
        if steady:
            half_p99.append(steady.percentile(99))
        if steady and swaps:
            swap_ratio.append(swaps.percentile(99) / steady.percentile(99))
            swap_errors.append(float(swaps.errors + steady.errors))
        loaded = [r for r in results if r.round == rnd and r.target != "in-process"]
        closed_errors.append(
            float(sum(r.errors for r in loaded if r.protocol not in ("oip open", "oip swaps")))
        )
    per = f"{rows} row{'s' if rows > 1 else ''}"
    goals = [
        (f"sluice / better peer, req/s at {top} clients (goal >= 2)", peer_ratio, "{:.2f}"),
        ("p99 ms at half of our peak, open loop (goal < 20)", half_p99, "{:.1f}"),
        (
            f"(a) sluice req/s at {top} clients / model called directly at the request's own "
            f"batch ({per}), calls/s (goal >= 0.5)",
            direct_ratio,
            "{:.2f}",
        ),
        (
            f"(b) sluice rows/s at {top} clients / in-process rows/s at the mean batch sluice "
            "formed (goal >= 0.5)",
            formed_ratio,
            "{:.2f}",
        ),
        (f"sluice OIP req/s / grpc floor at {top} clients", floor_ratio, "{:.2f}"),
        ("hot-swap p99 / steady p99 (goal <= 2)", swap_ratio, "{:.2f}"),
        ("failed requests, open loop + swaps (goal 0)", swap_errors, "{:.0f}"),
        ("failed requests, closed loops, all targets (goal 0)", closed_errors, "{:.0f}"),
    ]
    width = max(len(label) for label, _, _ in goals)
    for label, values, fmt in goals:
        print(f"  {label:<{width}} {_range(values, fmt)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="1,8,64", help="concurrent clients, comma-separated")
    parser.add_argument("--rows", type=int, default=1, help="rows in each request")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each")
    parser.add_argument("--rounds", type=int, default=1, help="times every target is measured")
    parser.add_argument("--max-batch-size", type=int, default=64, help="sluice batching limit")
    parser.add_argument(
        "--max-wait-ms", type=float, default=0.0, help="sluice batch wait; 0: batch what queued"
    )
    parser.add_argument("--open-seconds", type=float, default=10.0, help="open-loop seconds")
    parser.add_argument(
        "--open-clients", type=int, default=64, help="h2load connections sharing the open loop"
    )
    parser.add_argument("--swaps", type=int, default=5, help="hot swaps under open-loop load")
    parser.add_argument(
        "--swap-pause", type=float, default=0.5, help="seconds between one swap and the next"
    )
    parser.add_argument("--peers", type=Path, help="folder of make_peer_venvs.sh's environments")
    parser.add_argument("--kserve-python", help="python of a virtual environment with kserve")
    parser.add_argument("--mlserver-python", help="python of a virtual environment with mlserver")
    parser.add_argument(
        "--pin-peers",
        action="store_true",
        help="run the peers under taskset on one CPU",
    )
    parser.add_argument("--skip-sluice", action="store_true", help="only in-process and peers")
    parser.add_argument("--skip-tfserving", action="store_true", help="sluice over OIP only")
    args = parser.parse_args(argv)
    find_h2load()  # before minutes of setup
    args.client_counts = [int(c) for c in args.clients.split(",")]
    if args.rows < 1 or args.open_clients < 1:
        parser.error("--rows and --open-clients take a positive number")
    for name in ("kserve", "mlserver"):
        option = f"{name}_python"
        if getattr(args, option) is None and args.peers is not None:
            candidate = args.peers / f"{name}-venv" / "bin" / "python"
            if candidate.exists():
                setattr(args, option, str(candidate))
            else:
                print(f"no {candidate}: {name} skipped", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp, ExitStack() as servers:
        work = Path(tmp)
        folder = export_mlp(work / "mlp")
        x = np.random.default_rng(0).normal(size=(args.rows, INPUTS)).astype(np.float32)
        import tensorflow as tf

        signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
        expected = float(next(iter(signature(**{INPUT_NAME: tf.constant(x)}).values()))[0, 0])
        oip_payload = oip_request(MODEL_NAME, INPUT_NAME, x)

        # All servers start (and idle) together; each round loads them one after another.
        started: list[Server] = []
        if not args.skip_sluice:
            sluice = servers.enter_context(running(start_sluice(folder, work, args)))
            sluice.payloads["oip"] = (MODEL_INFER, oip_payload)
            if not args.skip_tfserving:
                sluice.payloads["tfserving"] = (
                    TF_PREDICT,
                    tfserving_request(MODEL_NAME, INPUT_NAME, x),
                )
            sluice.payloads["grpc-floor"] = (HEALTH_CHECK, health_request())
            started.append(sluice)
        pin = []
        if args.pin_peers and hasattr(os, "sched_getaffinity"):
            # The peers as they would run under `taskset`: every thread (and child) on one CPU.
            pin = ["taskset", "-c", str(max(os.sched_getaffinity(0)))]
        if args.kserve_python:
            kserve = start_kserve(args.kserve_python, folder, work, pin)
            started.append(servers.enter_context(running(kserve)))
        if args.mlserver_python:
            mlserver = start_mlserver(args.mlserver_python, folder, work, pin)
            started.append(servers.enter_context(running(mlserver)))
        for server in started:
            wait_ready(server)
            check_oip_answer(server.address, oip_payload, expected)
            server.payloads.setdefault("oip", (MODEL_INFER, oip_payload))
            for protocol, (_, payload) in server.payloads.items():
                body = work / f"{server.target}-{protocol}.body"
                body.write_bytes(grpc_body(payload))
                server.bodies[protocol] = body

        # This process imported TensorFlow (some 440,000 objects): unfrozen, each full collection
        # stops it for ~0.4 s, in the middle of an in-process measurement or of the swaps.
        gc.collect()
        gc.freeze()
        print(HEADER, flush=True)
        results: list[Result] = []
        for rnd in range(1, args.rounds + 1):
            # Targets side by side at each load, so a busy spell of the machine hits them alike.
            for count in args.client_counts:
                for server in started:
                    # The value check before each target's turn: a model that answers wrong
                    # would still fill h2load's figures.
                    check_oip_answer(server.address, oip_payload, expected)
                    for protocol in server.payloads:
                        results.append(closed_loop(server, protocol, count, args, rnd, work))
            formed = [
                r.mean_batch
                for r in results
                if r.round == rnd and r.target == SLUICE and r.mean_batch and r.protocol == "oip"
            ]
            wanted = [*args.client_counts, args.rows, *(max(1, round(b)) for b in formed)]
            sizes = list(dict.fromkeys(wanted))
            for result in in_process(folder, sizes, args.duration, rnd):
                print(result.line(), flush=True)
                results.append(result)
            if not args.skip_sluice:
                ours = [
                    r for r in results if (r.round, r.target, r.protocol) == (rnd, SLUICE, "oip")
                ]
                peak = max(r.per_second for r in ours)
                if peak > 0:
                    results += open_loop_and_swaps(started[0], peak / 2, args, rnd, work)
        summarize(results, args.rounds, args.client_counts, args.rows)


if __name__ == "__main__":
    main()
