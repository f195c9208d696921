"""Closed-loop load on the serving service, against the model called in-process (and peers).

The model is the MLP of shared/design/facts.md (32 float inputs, 256-256-128-1, random weights),
exported as a SavedModel. For 1, 8 and 64 concurrent clients (each sends its next request as soon as
its last one is answered) over loopback it prints requests/s, p50 and p99 for:

- sluice serving, Open Inference Protocol v2 (``ModelInfer``, raw contents, one row per request),
- sluice serving, TF Serving protocol (``Predict``, tensor_content, one row per request),
- the in-process limit: the SavedModel signature called directly at batch sizes 1, 8 and 64
  (what perfect batching of N one-row clients could reach, with no RPC at all),
- optionally KServe's Python model server and MLServer, each from its own virtual environment,
  serving the same SavedModel over OIP v2 gRPC, loaded by the same client.

The servers run in processes of their own; the load generator is one asyncio process sending
pre-serialized requests through grpc.aio (no per-request protobuf work on the client side).

    .venv/bin/python benchmarks/serving_bench.py                      # sluice + in-process limit
    .venv/bin/python benchmarks/serving_bench.py --duration 10 --clients 1,8,64 --max-wait-ms 2
    .venv/bin/python benchmarks/serving_bench.py --kserve-python /opt/kserve-venv/bin/python \\
        --mlserver-python /opt/mlserver-venv/bin/python

Peers live in their own virtual environments (never in the repository's .venv, whose pins they
would fight); each needs TensorFlow to load the SavedModel:

    python3.11 -m venv /opt/kserve-venv
    /opt/kserve-venv/bin/pip install "kserve==0.15.*" "tensorflow-cpu==2.21.*"
    python3.11 -m venv /opt/mlserver-venv
    /opt/mlserver-venv/bin/pip install "mlserver==1.7.*" "tensorflow-cpu==2.21.*"

The adapters (a kserve.Model subclass and an MLServer MLModel runtime, written to a temporary
folder at run time) call the same serving signature; defaults are left as each server ships them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

INPUTS = 32
MODEL_NAME = "mlp"
INPUT_NAME = "features"


@dataclass(frozen=True)
class Result:
    target: str
    protocol: str
    clients: int
    requests: int
    seconds: float
    latencies: Sequence[float]
    rows_per_call: int = 1

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.latencies), q)) * 1000 if self.latencies else 0.0

    def line(self) -> str:
        rows = self.per_second * self.rows_per_call
        return (
            f"{self.target:<22} {self.protocol:<10} {self.clients:>7} {self.per_second:>10.0f} "
            f"{rows:>10.0f} {self.percentile(50):>8.2f} {self.percentile(99):>8.2f}"
        )


HEADER = (
    f"{'target':<22} {'protocol':<10} {'clients':>7} {'calls/s':>10} {'rows/s':>10} "
    f"{'p50 ms':>8} {'p99 ms':>8}"
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


def in_process(folder: Path, batch_sizes: Sequence[int], duration: float) -> list[Result]:
    import tensorflow as tf

    function = tf.saved_model.load(str(folder)).signatures["serving_default"]
    results = []
    for batch in batch_sizes:
        x = np.random.default_rng(batch).normal(size=(batch, INPUTS)).astype(np.float32)
        for _ in range(20):
            function(**{INPUT_NAME: tf.convert_to_tensor(x)})
        latencies: list[float] = []
        started = time.perf_counter()
        while time.perf_counter() - started < duration:
            t0 = time.perf_counter()
            outputs = function(**{INPUT_NAME: tf.convert_to_tensor(x)})
            next(iter(outputs.values())).numpy()
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        results.append(
            Result(
                "in-process limit",
                f"batch {batch}",
                batch,
                len(latencies),
                elapsed,
                latencies,
                batch,
            )
        )
    return results


# --- the closed-loop gRPC client ------------------------------------------------------------------


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
        warm = [asyncio.create_task(client()) for _ in range(clients)]
        await asyncio.sleep(warmup)
        recording = True
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*warm)
        elapsed = time.perf_counter() - started
        return len(latencies), elapsed, latencies


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


def check_oip_answer(address: str, payload: bytes, expected: float) -> None:
    import grpc
    from open_inference.grpc import protocol as oip

    with grpc.insecure_channel(address) as channel:
        raw = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", None, None)(
            payload, timeout=30
        )
    response = oip.ModelInferResponse.FromString(raw)
    if response.raw_output_contents:
        value = float(np.frombuffer(response.raw_output_contents[0], np.float32)[0])
    else:
        value = float(response.outputs[0].contents.fp32_contents[0])
    if abs(value - expected) > 1e-4 * max(1.0, abs(expected)):
        raise SystemExit(f"{address} answered {value}, the model says {expected}")


def wait_ready(address: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import grpc
    from open_inference.grpc import protocol as oip

    deadline = time.monotonic() + timeout
    request = oip.ModelReadyRequest(name=MODEL_NAME).SerializeToString()
    with grpc.insecure_channel(address) as channel:
        ready = channel.unary_unary("/inference.GRPCInferenceService/ModelReady", None, None)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the server at {address} exited with {process.returncode}")
            try:
                if oip.ModelReadyResponse.FromString(ready(request, timeout=2)).ready:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.3)
    raise SystemExit(f"the server at {address} did not get ready in {timeout:.0f} s")


def run_load(
    target: str,
    address: str,
    payloads: dict[str, tuple[str, bytes]],
    clients: Sequence[int],
    duration: float,
    warmup: float,
) -> list[Result]:
    results = []
    for protocol, (method, payload) in payloads.items():
        for count in clients:
            requests, elapsed, latencies = asyncio.run(
                _closed_loop(address, method, payload, count, duration, warmup)
            )
            result = Result(target, protocol, count, requests, elapsed, latencies)
            print(result.line(), flush=True)
            results.append(result)
    return results


# --- the servers ----------------------------------------------------------------------------------


def start_sluice(
    folder: Path, work: Path, max_batch_size: int, max_wait_ms: float
) -> tuple[subprocess.Popen[bytes], str]:
    from sluice_runtime.artifacts import LocalArtifactStore
    from sluice_serving.testing import upload

    store = LocalArtifactStore(work / "store")
    digest = upload(store, folder, f"models/{MODEL_NAME}/1")
    config = {
        "models": [
            {
                "name": MODEL_NAME,
                "batching": {
                    "max_batch_size": max_batch_size,
                    "max_wait": f"{max_wait_ms / 1000}s",
                },
                "versions": [{"version": 1, "uri": f"models/{MODEL_NAME}/1", "digest": digest}],
            }
        ]
    }
    (work / "models.json").write_text(json.dumps(config))
    port = free_port()
    env = {
        **os.environ,
        "SLUICE_SERVING_PORT": str(port),
        "SLUICE_ARTIFACT_STORE_URI": store.root_uri,
        "SLUICE_SERVING_CACHE_DIR": str(work / "cache"),
        "SLUICE_SERVING_MODEL_CONFIG": str(work / "models.json"),
        "SLUICE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "sluice_serving"], env=env)
    return process, f"127.0.0.1:{port}"


KSERVE_ADAPTER = """
import argparse

import kserve
import tensorflow as tf
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class SavedModel(Model):
    def __init__(self, name, folder):
        super().__init__(name)
        self.folder = folder
        self.load()

    def load(self):
        self.function = tf.saved_model.load(self.folder).signatures["serving_default"]
        self.ready = True

    def predict(self, payload: InferRequest, headers=None) -> InferResponse:
        inputs = {tensor.name: tf.convert_to_tensor(tensor.as_numpy()) for tensor in payload.inputs}
        outputs = []
        for key, value in self.function(**inputs).items():
            array = value.numpy()
            output = InferOutput(name=key, shape=list(array.shape), datatype="FP32")
            output.set_data_from_numpy(array, binary_data=False)
            outputs.append(output)
        return InferResponse(
            response_id=payload.id, model_name=self.name, infer_outputs=outputs
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder")
    parser.add_argument("--grpc-port", type=int)
    parser.add_argument("--http-port", type=int)
    args = parser.parse_args()
    ModelServer(grpc_port=args.grpc_port, http_port=args.http_port).start(
        [SavedModel("%(name)s", args.folder)]
    )
"""

MLSERVER_RUNTIME = """
import tensorflow as tf
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class SavedModelRuntime(MLModel):
    async def load(self) -> bool:
        folder = self.settings.parameters.uri
        self.function = tf.saved_model.load(folder).signatures["serving_default"]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {
            tensor.name: tf.convert_to_tensor(NumpyCodec.decode_input(tensor))
            for tensor in payload.inputs
        }
        outputs = [
            NumpyCodec.encode_output(key, value.numpy())
            for key, value in self.function(**inputs).items()
        ]
        return InferenceResponse(model_name=self.name, id=payload.id, outputs=outputs)
"""


def start_kserve(python: str, folder: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    script = work / "kserve_adapter.py"
    script.write_text(textwrap.dedent(KSERVE_ADAPTER % {"name": MODEL_NAME}))
    port = free_port()
    process = subprocess.Popen(
        [
            python,
            str(script),
            "--folder",
            str(folder),
            "--grpc-port",
            str(port),
            "--http-port",
            str(free_port()),
        ],
    )
    return process, f"127.0.0.1:{port}"


def start_mlserver(python: str, folder: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    models = work / "mlserver"
    models.mkdir()
    (models / "runtime.py").write_text(textwrap.dedent(MLSERVER_RUNTIME))
    port = free_port()
    (models / "settings.json").write_text(
        json.dumps({"grpc_port": port, "http_port": free_port(), "metrics_port": free_port()})
    )
    (models / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL_NAME,
                "implementation": "runtime.SavedModelRuntime",
                "parameters": {"uri": str(folder)},
            }
        )
    )
    mlserver = Path(python).with_name("mlserver")
    process = subprocess.Popen([str(mlserver), "start", str(models)], cwd=models)
    return process, f"127.0.0.1:{port}"


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", default="1,8,64", help="concurrent clients, comma-separated")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per point")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of load before measuring"
    )
    parser.add_argument("--max-batch-size", type=int, default=64, help="sluice batching limit")
    parser.add_argument(
        "--max-wait-ms", type=float, default=0.0, help="sluice batch wait; 0: batch what queued"
    )
    parser.add_argument("--kserve-python", help="python of a virtual environment with kserve")
    parser.add_argument("--mlserver-python", help="python of a virtual environment with mlserver")
    parser.add_argument(
        "--skip-sluice", action="store_true", help="only the in-process limit/peers"
    )
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]

    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        work = Path(tmp)
        folder = export_mlp(work / "mlp")
        x = np.random.default_rng(0).normal(size=(1, INPUTS)).astype(np.float32)
        import tensorflow as tf

        expected = float(
            next(
                iter(
                    tf.saved_model.load(str(folder))
                    .signatures["serving_default"](**{INPUT_NAME: tf.constant(x)})
                    .values()
                )
            ).numpy()[0, 0]
        )
        print(HEADER, flush=True)
        results = in_process(folder, clients, args.duration)
        for result in results:
            print(result.line(), flush=True)

        oip_payload = oip_request(MODEL_NAME, INPUT_NAME, x)
        servers: list[tuple[str, Callable[[], tuple[subprocess.Popen[bytes], str]], bool]] = []
        if not args.skip_sluice:
            servers.append(
                (
                    f"sluice (b{args.max_batch_size}, {args.max_wait_ms:g} ms)",
                    lambda: start_sluice(folder, work, args.max_batch_size, args.max_wait_ms),
                    True,
                )
            )
        if args.kserve_python:
            servers.append(
                ("kserve", lambda: start_kserve(args.kserve_python, folder, work), False)
            )
        if args.mlserver_python:
            servers.append(
                ("mlserver", lambda: start_mlserver(args.mlserver_python, folder, work), False)
            )
        for target, start, speaks_tf_serving in servers:
            process, address = start()
            try:
                wait_ready(address, process)
                check_oip_answer(address, oip_payload, expected)
                payloads = {"oip": ("/inference.GRPCInferenceService/ModelInfer", oip_payload)}
                if speaks_tf_serving:
                    payloads["tfserving"] = (
                        "/tensorflow.serving.PredictionService/Predict",
                        tfserving_request(MODEL_NAME, INPUT_NAME, x),
                    )
                results += run_load(target, address, payloads, clients, args.duration, args.warmup)
            finally:
                stop(process)
    _ = results  # printed as they came; kept for callers that import main()


if __name__ == "__main__":
    main()
