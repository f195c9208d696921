"""Hot swap under load, and versions that must never become current."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from open_inference.grpc import protocol as oip
from open_inference.grpc import service as oip_service
from sluice.serving.v1 import model_pb2, serving_service_pb2, serving_service_pb2_grpc
from sluice_runtime.artifacts import ArtifactStore
from sluice_serving.core import ServingCore
from sluice_serving.server import ServingServer
from sluice_serving.testing import upload
from sluice_serving.warmup import WARMUP_FILE
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

WEIGHTS = {"linear2": 2.0, "linear3": 3.0}


@pytest.fixture
def channel(server: ServingServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


def _load(
    control: serving_service_pb2_grpc.ServingServiceStub,
    name: str,
    version: int,
    uri: str,
    digest: str = "",
) -> model_pb2.ModelVersion:
    request = serving_service_pb2.LoadModelVersionRequest(
        model_name=name, version=version, uri=uri, digest=digest, wait=True
    )
    version_proto: model_pb2.ModelVersion = control.LoadModelVersion(request, timeout=60).version
    return version_proto


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# Twenty swaps with models loaded in the serving process; three with each version in a model
# process of its own (the default), each of which starts a process and imports TensorFlow.
@pytest.mark.parametrize(
    ("settings", "swaps"),
    [({"model_processes": False}, 20), ({"model_processes": True}, 3)],
    indirect=["settings"],
    ids=["in-process", "model-processes"],
)
def test_swaps_under_load_fail_no_request(
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    channel: grpc.Channel,
    core: ServingCore,
    swaps: int,
) -> None:
    control = serving_service_pb2_grpc.ServingServiceStub(channel)
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    infer = oip_service.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
    last = swaps + 1
    kinds = {}
    for version in range(1, last + 1):
        kinds[version] = "linear2" if version % 2 else "linear3"
        upload(store, model_dirs[kinds[version]], f"models/swap/{version}")
    assert _load(control, "swap", 1, "models/swap/1").state == model_pb2.VERSION_STATE_AVAILABLE

    stop = threading.Event()
    failures: list[BaseException] = []
    seen: list[list[tuple[int, float]]] = []

    def tf_serving_client() -> None:
        answers: list[tuple[int, float]] = []
        seen.append(answers)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "swap"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((1, 2), np.float32)))
        while not stop.is_set():
            try:
                response = predict.Predict(request, timeout=10)
            except grpc.RpcError as error:
                failures.append(error)
                continue
            y = tf.make_ndarray(response.outputs["y"])[0]
            answers.append((response.model_spec.version.value, float(y)))

    def oip_client() -> None:
        answers: list[tuple[int, float]] = []
        seen.append(answers)
        request = oip.ModelInferRequest(model_name="swap")
        request.inputs.add(name="x", datatype="FP32", shape=[1, 2])
        request.raw_input_contents.append(np.ones((1, 2), np.float32).tobytes())
        while not stop.is_set():
            try:
                response = infer.ModelInfer(request, timeout=10)
            except grpc.RpcError as error:
                failures.append(error)
                continue
            y = np.frombuffer(response.raw_output_contents[0], np.float32)[0]
            answers.append((int(response.model_version), float(y)))

    clients = [
        threading.Thread(target=f) for f in (tf_serving_client, tf_serving_client, oip_client)
    ]
    for client in clients:
        client.start()
    try:
        for version in range(2, last + 1):
            loaded = _load(control, "swap", version, f"models/swap/{version}")
            assert loaded.state == model_pb2.VERSION_STATE_AVAILABLE, loaded.error.message
    finally:
        stop.set()
        for client in clients:
            client.join()

    assert failures == []
    for answers in seen:
        assert answers, "every client got answers"
        versions = [version for version, _ in answers]
        assert versions == sorted(versions), "a client never goes back to an older version"
        for version, y in answers:
            assert y == pytest.approx(2 * WEIGHTS[kinds[version]]), f"version {version} answered"
    assert sum(len(answers) for answers in seen) > swaps

    def old_versions_ended() -> bool:
        model = control.GetModel(serving_service_pb2.GetModelRequest(model_name="swap")).model
        states = {v.version: v.state for v in model.versions}
        return model.current_version == last and all(
            state == model_pb2.VERSION_STATE_END
            for version, state in states.items()
            if version < last
        )

    _wait_until(old_versions_ended)
    # Unloaded versions released their model and their local copy.
    assert sorted(p.name for p in (core.settings.cache_dir / "swap").iterdir()) == [str(last)]


def _predict_one(
    channel: grpc.Channel, model: str, version: int = 0
) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version:
        request.model_spec.version.value = version
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((1, 2), np.float32)))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response: predict_pb2.PredictResponse = stub.Predict(request, timeout=10)
    return response


def test_broken_versions_never_become_current(
    store: ArtifactStore, model_dirs: dict[str, Path], channel: grpc.Channel, tmp_path: Path
) -> None:
    control = serving_service_pb2_grpc.ServingServiceStub(channel)
    upload(store, model_dirs["linear2"], "models/m/1")
    assert _load(control, "m", 1, "models/m/1").state == model_pb2.VERSION_STATE_AVAILABLE

    # 2: a SavedModel whose graph cannot be parsed (the store's own checksums are fine).
    broken = tmp_path / "broken"
    shutil.copytree(model_dirs["linear3"], broken)
    (broken / "saved_model.pb").write_bytes(b"\x08garbage" * 10)
    upload(store, broken, "models/m/2")
    # 3: files that do not match the digest the caller expects.
    upload(store, model_dirs["linear3"], "models/m/3")
    # 4: bytes changed in storage after they were written (bit rot, tampering).
    digest = upload(store, model_dirs["linear3"], "models/m/4")
    stored = store.root_uri.removeprefix("file://") + "/models/m/4/saved_model.pb"
    with open(stored, "r+b") as tampered:
        tampered.seek(10)
        tampered.write(b"XX")
    # 5: loads, but fails its warm-up (the model rejects the synthetic all-zero request).
    upload(store, model_dirs["fails_warmup"], "models/m/5")
    # 6: nothing there at all.

    outcomes = {
        2: _load(control, "m", 2, "models/m/2"),
        3: _load(control, "m", 3, "models/m/3", digest="sha256:" + "0" * 64),
        4: _load(control, "m", 4, "models/m/4", digest=digest),
        5: _load(control, "m", 5, "models/m/5"),
        6: _load(control, "m", 6, "models/m/6"),
    }

    for version, outcome in outcomes.items():
        assert outcome.state == model_pb2.VERSION_STATE_FAILED, version
        assert _predict_one(channel, "m").model_spec.version.value == 1
    assert outcomes[3].error.reason == "DIGEST_MISMATCH"
    assert outcomes[4].error.code == grpc.StatusCode.DATA_LOSS.value[0]
    assert outcomes[5].error.reason == "WARMUP_FAILED"
    assert "all-zero input" in outcomes[5].error.message
    assert outcomes[6].error.code == grpc.StatusCode.NOT_FOUND.value[0]
    model = control.GetModel(serving_service_pb2.GetModelRequest(model_name="m")).model
    assert model.current_version == 1
    with pytest.raises(grpc.RpcError) as raised:
        _predict_one(channel, "m", version=5)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def _warmup_file(path: Path, inputs: list[dict[str, np.ndarray]]) -> None:
    from tensorflow_serving.apis import prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request_inputs in inputs:
            log = prediction_log_pb2.PredictionLog()
            request = log.predict_log.request
            request.model_spec.name = "m"
            for name, value in request_inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            writer.write(log.SerializeToString())


def test_recorded_warmup_requests_replace_synthetic_ones(
    store: ArtifactStore, model_dirs: dict[str, Path], channel: grpc.Channel, tmp_path: Path
) -> None:
    control = serving_service_pb2_grpc.ServingServiceStub(channel)
    # The synthetic all-zero request would fail this model; recorded real requests pass.
    good = tmp_path / "good"
    shutil.copytree(model_dirs["fails_warmup"], good)
    _warmup_file(good / WARMUP_FILE, [{"x": np.ones((3, 2), np.float32)}] * 2)
    upload(store, good, "models/w/1")
    # A recorded request that does not fit the signature fails the warm-up.
    bad = tmp_path / "bad"
    shutil.copytree(model_dirs["fails_warmup"], bad)
    _warmup_file(bad / WARMUP_FILE, [{"wrong": np.ones((3, 2), np.float32)}])
    upload(store, bad, "models/w/2")

    assert _load(control, "w", 1, "models/w/1").state == model_pb2.VERSION_STATE_AVAILABLE
    failed = _load(control, "w", 2, "models/w/2")
    assert failed.state == model_pb2.VERSION_STATE_FAILED
    assert "warm-up request 0" in failed.error.message
    assert "missing input 'x'" in failed.error.message
    assert _predict_one(channel, "w").model_spec.version.value == 1
