"""Load on the serving service, side by side with KServe, MLServer and the model called in-process.

The model is the MLP of shared/design/facts.md (32 float inputs, 256-256-128-1, random weights),
exported as a SavedModel; every server serves the same folder. Each request carries one row. One
load-generator process (grpc.aio, pre-serialized requests: no protobuf work per request on the
client side) shares the machine's cores with the server under test, which runs in its own process.

What it measures, in rounds (``--rounds``); within a round every target takes each load in turn,
so a busy spell of a shared machine hits them alike:

1. Closed loop at 1/8/64 clients (each sends its next request as soon as its last one is
   answered): requests/s, p50, p99 for
   - sluice serving over Open Inference Protocol v2 (``ModelInfer``, raw contents) and over the
     TF Serving protocol (``Predict``, tensor_content), with the mean batch size it formed (from
     its ``sluice_serving_batch_size`` histogram),
   - the gRPC floor of our server: grpc.health.v1 ``Check`` on the same server process (same
     interceptors, same threads, no model): what no model-serving RPC on this stack can beat,
   - KServe 0.21's Python model server and MLServer 1.7.1 over OIP v2 gRPC (``--peers``), each
     with its default settings and a small custom model calling the same signature
     (benchmarks/peers/), loaded by the same client.
   Columns ``server`` and ``others`` give the CPU (in cores) of the server's processes and of
   everything else on the machine but the load generator during the measurement (Linux).
2. The in-process limit, measured in this process while the servers idle: the model called back
   to back through the server's own call (``SavedModelRunner.run``) at batch 1, 8, 64 and at the
   mean batch size sluice formed at each load - same batches, same call, no RPC. Our share of it:
   sluice's requests/s divided by the in-process rows/s at the batch size sluice formed.
3. Open loop at half of sluice's peak (the best OIP requests/s of the round): requests sent on a
   fixed schedule whatever the answers do, latency counted from the scheduled send time (so a
   stall is not hidden by a client that waits); p50/p99 over ``--open-seconds``.
4. Hot swap under that same open-loop load: ``--swaps`` new versions loaded one after another
   through the control plane (latest-1 policy: each makes the new version current and unloads
   the old one), p99 of the requests sent while swapping vs the steady-state p99 of step 3;
   failed requests are counted (there should be none).

Goals (issue 6), printed at the end per round: >= 2x the better peer's requests/s at 64 clients;
p99 < 20 ms at half of our peak; >= 50% of the in-process limit at the batch size formed; hot-swap
p99 within 2x of steady state.

    .venv/bin/python benchmarks/serving_bench.py                          # sluice alone
    bash benchmarks/peers/make_peer_venvs.sh /tmp/peers                   # once: the peers
    .venv/bin/python benchmarks/serving_bench.py --peers /tmp/peers --rounds 3

The peers live in their own virtual environments outside the repository (their pins fight our
lock): benchmarks/peers/make_peer_venvs.sh builds ``FOLDER/kserve-venv`` (kserve 0.21 +
tensorflow-cpu 2.21) and ``FOLDER/mlserver-venv`` (mlserver 1.7.1 + tensorflow-cpu 2.21 +
uvloop < 0.22); ``--kserve-python``/``--mlserver-python`` point at other interpreters. The model
wrappers are benchmarks/peers/kserve_model.py (a ``kserve.Model``) and
benchmarks/peers/mlserver_runtime.py (an ``mlserver.MLModel``).

Sluice keeps its Python threads on one CPU (``SLUICE_SERVING_PYTHON_CPU``, default ``auto``;
sluice_serving/affinity.py says why); ``--pin-peers`` gives the peers the nearest thing a user of
theirs can do, ``taskset`` on one CPU for the whole server, to see what that alone is worth.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
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
from typing import Any

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
    other_cores: float | None = None  # CPU of everything else on the machine but this client

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
        extra = f" errors={self.errors}" if self.errors else ""
        return (
            f"{self.round:>2} {self.target:<18} {self.protocol:<13} {self.clients:>7} "
            f"{self.per_second:>9.0f} {rows:>9.0f} {self.percentile(50):>8.2f} "
            f"{self.percentile(99):>8.2f} {batch:>6} {server:>6} {others:>6} {self.note}{extra}"
        )


HEADER = (
    f"{'r':>2} {'target':<18} {'protocol':<13} {'clients':>7} {'calls/s':>9} {'rows/s':>9} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'batch':>6} {'server':>6} {'others':>6}"
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


# --- the load generators --------------------------------------------------------------------------


async def _closed_loop(
    address: str, method: str, payload: bytes, clients: int, duration: float, warmup: float
) -> tuple[int, float, list[float]]:
    import grpc

    async with grpc.aio.insecure_channel(address) as channel:
        # No serializers: bytes in, bytes out, so the client does no protobuf work per request.
        call = channel.unary_unary(method, None, None)
        latencies: list[float] = []
        recording = False
        stop_at = 0.0

        async def client() -> None:
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at and recording:
                    return
                await call(payload, timeout=30)
                if recording:
                    latencies.append(time.perf_counter() - t0)

        stop_at = time.perf_counter() + warmup
        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        await asyncio.sleep(warmup)
        recording = True
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        return len(latencies), elapsed, latencies


@dataclass
class OpenLoopRecord:
    """Per request of an open-loop run: scheduled send time, latency (None: failed)."""

    scheduled: list[float] = field(default_factory=list)
    latencies: list[float | None] = field(default_factory=list)

    def window(self, start: float, end: float) -> tuple[list[float], int]:
        """Latencies of the answered requests scheduled in [start, end), and the failures."""
        answered: list[float] = []
        failed = 0
        for sent, latency in zip(self.scheduled, self.latencies, strict=True):
            if start <= sent < end:
                if latency is None:
                    failed += 1
                else:
                    answered.append(latency)
        return answered, failed


async def _open_loop(
    address: str,
    method: str,
    payload: bytes,
    rate: float,
    duration: float,
    warmup: float,
    during: Any = None,
) -> tuple[OpenLoopRecord, float]:
    """Send at ``rate`` requests/s for warmup + duration seconds whatever the answers do.

    Latency runs from each request's scheduled time, so a slow server (or a stalled client) shows
    in the figures instead of lowering the offered load. ``during``, when given, is a coroutine
    function started when the measured part begins (the hot swaps); the load lasts at least until
    it finishes. Returns the record and the time the measured part began.
    """
    import grpc

    record = OpenLoopRecord()
    interval = 1.0 / rate
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(method, None, None)
        pending: set[asyncio.Task[None]] = set()

        async def one(index: int, scheduled: float) -> None:
            try:
                await call(payload, timeout=30)
                record.latencies[index] = time.perf_counter() - scheduled
            except grpc.aio.AioRpcError:
                record.latencies[index] = None

        loop_start = time.perf_counter()
        measured_from = loop_start + warmup
        end = measured_from + duration
        side: asyncio.Task[Any] | None = None
        sent = 0
        while True:
            now = time.perf_counter()
            if side is None and during is not None and now >= measured_from:
                side = asyncio.create_task(during())
            if now >= end and (side is None or side.done()):
                break
            # Send everything due by now: asyncio's timer is coarser than the interval.
            while loop_start + sent * interval <= now:
                scheduled = loop_start + sent * interval
                record.scheduled.append(scheduled)
                record.latencies.append(None)
                task = asyncio.create_task(one(sent, scheduled))
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.sleep(max(0.0, loop_start + sent * interval - time.perf_counter()))
        if pending:
            await asyncio.gather(*pending)
        if side is not None:
            await side
    return record, measured_from


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

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_sluice(folder: Path, work: Path, args: argparse.Namespace) -> Server:
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
    process = _spawn([sys.executable, "-m", "sluice_serving"], log, env=env)
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


class CpuMeter:
    """CPU seconds of the server's processes (MLServer has children), of this load-generating
    process and of the whole machine, over one measurement (Linux /proc; None elsewhere). The
    machine is shared: "others" says how much of it other work took meanwhile."""

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
        return (busy / tick, server / tick, time.process_time(), time.perf_counter())

    def cores(self) -> tuple[float | None, float | None]:
        """(server, others) in cores since the meter started."""
        if not self.available:
            return None, None
        end = self._read()
        busy, server, client, wall = (b - a for a, b in zip(self.start, end, strict=True))
        return server / wall, max(0.0, busy - server - client) / wall


# --- the measurements -----------------------------------------------------------------------------


def closed_loop(
    server: Server, protocol: str, clients: int, args: argparse.Namespace, rnd: int
) -> Result:
    method, payload = server.payloads[protocol]
    before = batch_totals(server.metrics_port) if server.metrics_port else None
    meter = CpuMeter(server.process.pid)
    requests, elapsed, latencies = asyncio.run(
        _closed_loop(server.address, method, payload, clients, args.duration, args.warmup)
    )
    result = Result(server.target, protocol, clients, requests, elapsed, latencies, round=rnd)
    # Includes the warm-up second: same load, so the same batch sizes and CPU shares.
    result.server_cores, result.other_cores = meter.cores()
    if before is not None and server.metrics_port and protocol != "grpc-floor":
        after = batch_totals(server.metrics_port)
        calls = after[1] - before[1]
        result.mean_batch = (after[0] - before[0]) / calls if calls else None
    print(result.line(), flush=True)
    return result


def open_loop_and_swaps(
    server: Server, payload: bytes, rate: float, args: argparse.Namespace, rnd: int, work: Path
) -> list[Result]:
    """Open loop at ``rate``: a steady part, then (with swaps) a part with hot swaps."""
    import grpc
    from sluice.serving.v1 import model_pb2, serving_service_pb2, serving_service_pb2_grpc
    from sluice_runtime.artifacts import LocalArtifactStore
    from sluice_serving.testing import upload

    results = []
    meter = CpuMeter(server.process.pid)
    record, measured_from = asyncio.run(
        _open_loop(server.address, MODEL_INFER, payload, rate, args.open_seconds, args.warmup)
    )
    steady, failed = record.window(measured_from, measured_from + args.open_seconds)
    result = Result(
        server.target, "oip open", round(rate), len(steady), args.open_seconds, steady,
        errors=failed, round=rnd, note="half of peak",
    )  # fmt: skip
    result.server_cores, result.other_cores = meter.cores()
    print(result.line(), flush=True)
    results.append(result)
    if args.swaps <= 0:
        return results

    store = LocalArtifactStore(work / "store")
    versions = list(range(server.next_version, server.next_version + args.swaps))
    server.next_version += args.swaps
    folder = work / "mlp"
    digests = {v: upload(store, folder, f"models/{MODEL_NAME}/{v}") for v in versions}
    swap_window: list[float] = []

    def swap_all() -> None:
        with grpc.insecure_channel(server.address) as channel:
            stub = serving_service_pb2_grpc.ServingServiceStub(channel)
            swap_window.append(time.perf_counter())
            for version in versions:
                response = stub.LoadModelVersion(
                    serving_service_pb2.LoadModelVersionRequest(
                        model_name=MODEL_NAME,
                        version=version,
                        uri=f"models/{MODEL_NAME}/{version}",
                        digest=digests[version],
                        wait=True,
                    ),
                    timeout=120,
                )
                if response.version.state != model_pb2.VERSION_STATE_AVAILABLE:
                    state = model_pb2.VersionState.Name(response.version.state)
                    raise SystemExit(f"version {version} ended {state}")
                time.sleep(args.swap_pause)
            swap_window.append(time.perf_counter())

    async def during() -> None:
        await asyncio.to_thread(swap_all)

    meter = CpuMeter(server.process.pid)
    record, _ = asyncio.run(
        _open_loop(server.address, MODEL_INFER, payload, rate, 0.0, args.warmup, during)
    )
    start, end = swap_window
    swapping, failed = record.window(start, end)
    result = Result(
        server.target, "oip swaps", round(rate), len(swapping), end - start, swapping,
        errors=failed, round=rnd, note=f"{args.swaps} hot swaps",
    )  # fmt: skip
    result.server_cores, result.other_cores = meter.cores()
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


def summarize(results: list[Result], rounds: int, clients: Sequence[int]) -> None:
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
            rows = [
                r for r in results if (r.target, r.protocol, r.clients) == (target, protocol, count)
            ]
            if rows:
                print(
                    f"  {target:<10} {protocol:<11} {count:>3} clients: "
                    f"{_range([r.per_second for r in rows])} req/s, "
                    f"p99 {_range([r.percentile(99) for r in rows], '{:.1f}')} ms"
                )

    print("\nGoals (per round, then min-max over rounds)")
    peer_ratio, limit_ratio, floor_ratio, half_p99, swap_ratio, swap_errors = [], [], [], [], [], []
    for rnd in range(1, rounds + 1):
        ours = pick(SLUICE, "oip", top, rnd)
        peers = [p for p in (pick(n, "oip", top, rnd) for n in ("kserve", "mlserver")) if p]
        if ours and peers:
            peer_ratio.append(ours.per_second / max(p.per_second for p in peers))
        if ours and ours.mean_batch:
            batch = max(1, round(ours.mean_batch))
            limit = pick("in-process", f"batch {batch}", batch, rnd)
            if limit:
                limit_ratio.append(ours.per_second / (limit.per_second * limit.rows_per_call))
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
    goals = [
        (f"sluice / better peer, req/s at {top} clients (goal >= 2)", peer_ratio, "{:.2f}"),
        ("p99 ms at half of our peak, open loop (goal < 20)", half_p99, "{:.1f}"),
        ("sluice req/s / in-process rows/s, batch formed (goal >= 0.5)", limit_ratio, "{:.2f}"),
        (f"sluice OIP req/s / grpc floor at {top} clients", floor_ratio, "{:.2f}"),
        ("hot-swap p99 / steady p99 (goal <= 2)", swap_ratio, "{:.2f}"),
        ("failed requests, open loop + swaps (goal 0)", swap_errors, "{:.0f}"),
    ]
    for label, values, fmt in goals:
        print(f"  {label:<62} {_range(values, fmt)}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="1,8,64", help="concurrent clients, comma-separated")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each")
    parser.add_argument("--rounds", type=int, default=1, help="times every target is measured")
    parser.add_argument("--max-batch-size", type=int, default=64, help="sluice batching limit")
    parser.add_argument(
        "--max-wait-ms", type=float, default=0.0, help="sluice batch wait; 0: batch what queued"
    )
    parser.add_argument("--open-seconds", type=float, default=10.0, help="open-loop seconds")
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
        help="run the peers under taskset on one CPU (sluice pins its Python threads itself)",
    )
    parser.add_argument("--skip-sluice", action="store_true", help="only in-process and peers")
    parser.add_argument("--skip-tfserving", action="store_true", help="sluice over OIP only")
    args = parser.parse_args(argv)
    args.client_counts = [int(c) for c in args.clients.split(",")]
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
        x = np.random.default_rng(0).normal(size=(1, INPUTS)).astype(np.float32)
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

        # This process imported TensorFlow (some 440,000 objects): unfrozen, each full collection
        # stops the load generator for ~0.4 s and shows up as server latency.
        gc.collect()
        gc.freeze()
        print(HEADER, flush=True)
        results: list[Result] = []
        for rnd in range(1, args.rounds + 1):
            # Targets side by side at each load, so a busy spell of the machine hits them alike.
            for count in args.client_counts:
                for server in started:
                    for protocol in server.payloads:
                        results.append(closed_loop(server, protocol, count, args, rnd))
            sizes = list(args.client_counts)
            formed = [
                r.mean_batch
                for r in results
                if r.round == rnd and r.target == SLUICE and r.mean_batch and r.protocol == "oip"
            ]
            sizes += [max(1, round(b)) for b in formed if max(1, round(b)) not in sizes]
            for result in in_process(folder, sizes, args.duration, rnd):
                print(result.line(), flush=True)
                results.append(result)
            if not args.skip_sluice:
                ours = [
                    r for r in results if (r.round, r.target, r.protocol) == (rnd, SLUICE, "oip")
                ]
                peak = max(r.per_second for r in ours)
                results += open_loop_and_swaps(started[0], oip_payload, peak / 2, args, rnd, work)
        summarize(results, args.rounds, args.client_counts)


if __name__ == "__main__":
    main()
