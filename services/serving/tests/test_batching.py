"""Dynamic batching: merged model calls, each request its own rows."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client import CollectorRegistry
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.errors import ResourceExhausted
from sluice_serving.batching import Batcher, BatchingSettings
from sluice_serving.core import ServingCore
from sluice_serving.server import ServingServer
from sluice_serving.testing import upload
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


class _Recorder:
    """A model that doubles its input, remembers its batch sizes and can be held."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append(len(inputs["x"]))
        self.entered.set()
        self.release.wait(10)
        if np.any(inputs["x"] < 0):
            raise ValueError("negative input")
        return {"y": inputs["x"] * 2}


def _batcher(
    model: _Recorder,
    settings: BatchingSettings,
    batch_sizes: list[int],
    max_queued_rows: int = 100,
) -> Batcher:
    return Batcher(
        model.run,
        lambda: settings,
        max_queued_rows=max_queued_rows,
        on_batch=batch_sizes.append,
        name="test",
    )


def test_requests_queued_while_the_model_is_busy_form_one_batch() -> None:
    model, sizes = _Recorder(), list[int]()
    batcher = _batcher(model, BatchingSettings(max_batch_size=16, max_wait=0), sizes)
    model.release.clear()
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher.submit, {"x": np.array([[1.0]])}, 1)
        assert model.entered.wait(5)
        rest = [
            pool.submit(batcher.submit, {"x": np.array([[float(i)]] * i)}, i) for i in (2, 3, 4)
        ]
        while batcher.queued_rows < 9:
            threading.Event().wait(0.005)
        model.release.set()
        results = [first.result(5)] + [future.result(5) for future in rest]
    batcher.close()

    assert sizes == [1, 9]  # 2 + 3 + 4 rows that queued during the first call: one batch
    assert [r["y"].tolist() for r in results] == [[[2.0]], [[4.0]] * 2, [[6.0]] * 3, [[8.0]] * 4]


def test_event_loop_callers_share_a_batch_and_each_gets_its_rows_or_its_error() -> None:
    model, sizes = _Recorder(), list[int]()
    batcher = _batcher(model, BatchingSettings(max_batch_size=16, max_wait=0), sizes)
    model.release.clear()

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(batcher.submit_async({"x": np.array([[1.0]])}, 1))
        await asyncio.to_thread(model.entered.wait, 5)
        values = (2.0, -1.0, 3.0, 4.0)  # -1 poisons the merged call
        rest = [
            asyncio.ensure_future(batcher.submit_async({"x": np.array([[v]] * 2)}, 2))
            for v in values
        ]
        abandoned = asyncio.ensure_future(batcher.submit_async({"x": np.array([[5.0]])}, 1))
        while batcher.queued_rows < 9:
            await asyncio.sleep(0.005)
        abandoned.cancel()  # its caller went away: the others still get their answers
        model.release.set()
        return list(await asyncio.gather(first, *rest, return_exceptions=True))

    results = asyncio.run(scenario())
    batcher.close()

    assert results[0]["y"].tolist() == [[2.0]]  # type: ignore[index]
    assert results[1]["y"].tolist() == [[4.0]] * 2  # type: ignore[index]
    assert isinstance(results[2], ValueError) and "negative" in str(results[2])
    assert results[3]["y"].tolist() == [[6.0]] * 2  # type: ignore[index]
    assert results[4]["y"].tolist() == [[8.0]] * 2  # type: ignore[index]
    # One merged call of the 9 queued rows, which failed, then each request alone.
    assert model.calls == [1, 9, 2, 2, 2, 2, 1]
    assert sizes == [1, 2, 2, 2, 1]  # only the calls that answered count as batches


def test_a_batch_fills_up_to_max_batch_size_before_max_wait() -> None:
    model, sizes = _Recorder(), list[int]()
    batcher = _batcher(model, BatchingSettings(max_batch_size=4, max_wait=5.0), sizes)
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(batcher.submit, {"x": np.array([[float(i)]])}, 1) for i in range(4)]
        results = [future.result(10)["y"][0, 0] for future in futures]
    batcher.close()
    assert sizes == [4]
    assert results == [0.0, 2.0, 4.0, 6.0]


def test_one_bad_request_does_not_fail_its_batch_neighbours() -> None:
    model, sizes = _Recorder(), list[int]()
    batcher = _batcher(model, BatchingSettings(max_batch_size=3, max_wait=5.0), sizes)
    with ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(batcher.submit, {"x": np.array([[value]])}, 1) for value in (1.0, -1.0, 2.0)
        ]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(10)["y"][0, 0])
            except ValueError as error:
                outcomes.append(str(error))
    batcher.close()
    assert outcomes == [2.0, "negative input", 4.0]


def test_a_full_queue_is_refused_with_its_limit() -> None:
    model, sizes = _Recorder(), list[int]()
    batcher = _batcher(
        model, BatchingSettings(max_batch_size=8, max_wait=0), sizes, max_queued_rows=2
    )
    model.release.clear()
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(batcher.submit, {"x": np.array([[1.0]])}, 1)
        assert model.entered.wait(5)
        queued = pool.submit(batcher.submit, {"x": np.array([[1.0], [1.0]])}, 2)
        while batcher.queued_rows < 2:
            threading.Event().wait(0.005)
        with pytest.raises(ResourceExhausted, match="max_queued_rows=2"):
            batcher.submit({"x": np.array([[1.0]])}, 1)
        model.release.set()
        first.result(5), queued.result(5)
    batcher.close()


def _batch_size_samples(registry: CollectorRegistry, model: str) -> dict[str, float]:
    samples = {}
    for metric in registry.collect():
        if metric.name == "sluice_serving_batch_size":
            for sample in metric.samples:
                if sample.labels.get("model") == model:
                    samples[sample.name + sample.labels.get("le", "")] = sample.value
    return samples


def test_concurrent_grpc_requests_are_batched(
    core: ServingCore, store: ArtifactStore, model_dirs: dict[str, Path], server: ServingServer
) -> None:
    upload(store, model_dirs["linear3"], "models/b/1")
    core.update_model_config("b", batching=BatchingSettings(max_batch_size=4, max_wait=5.0))
    assert core.load_version("b", 1, "models/b/1", wait=True).state.value == "AVAILABLE"

    def ask(row: int) -> float:
        with grpc.insecure_channel(server.address) as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "b"
            x = np.array([[row, row + 1]], np.float32)
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            return float(tf.make_ndarray(stub.Predict(request, timeout=30).outputs["y"])[0])

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(4)))

    assert answers == [3.0 * (2 * row + 1) for row in range(4)]
    samples = _batch_size_samples(server.running.registry, "b")
    assert samples["sluice_serving_batch_size_count"] == 1  # one model call ...
    assert samples["sluice_serving_batch_size_sum"] == 4  # ... for all four rows
