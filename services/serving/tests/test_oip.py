"""Open Inference Protocol v2: the unmodified tritonclient.grpc, and the published OIP stubs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from open_inference.grpc import protocol as oip
from open_inference.grpc import service as oip_service
from sluice_runtime.artifacts import ArtifactStore
from sluice_serving.core import ServingCore
from sluice_serving.server import ServingServer
from sluice_serving.testing import in_process, serve_folder

CALLS = Path(__file__).with_name("tritonclient_calls.py")


def _tritonclient(server: ServingServer, tmp_path: Path, calls: list[dict[str, Any]]) -> Any:
    calls_file = tmp_path / "calls.json"
    calls_file.write_text(json.dumps(calls))
    finished = subprocess.run(
        [sys.executable, str(CALLS), server.address, str(calls_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_tritonclient_gets_the_in_process_predictions(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    server: ServingServer,
    tmp_path: Path,
) -> None:
    serve_folder(core, store, model_dirs["numeric"], "numeric")
    serve_folder(core, store, model_dirs["dict"], "dict")
    features = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    dict_inputs = {
        "age": {"data": [20, 35], "dtype": "int64"},
        "income": {"data": [10.0, 2500.0], "dtype": "float32"},
        "country": {"data": ["NL", "US"], "dtype": "bytes"},
    }

    results = _tritonclient(
        server,
        tmp_path,
        [
            {"op": "live"},
            {"op": "ready"},
            {"op": "model_ready", "model": "numeric"},
            {"op": "model_ready", "model": "numeric", "version": "2"},
            {"op": "server_metadata"},
            {"op": "model_metadata", "model": "numeric"},
            {
                "op": "infer",
                "model": "numeric",
                "inputs": {"features": {"data": features.tolist(), "dtype": "float32"}},
                "id": "req-1",
            },
            {
                "op": "infer",
                "model": "dict",
                "version": "1",
                "inputs": dict_inputs,
                "outputs": ["score"],
            },
            {"op": "infer", "model": "nope", "inputs": dict_inputs},
            {"op": "infer", "model": "dict", "version": "9", "inputs": dict_inputs},
            {
                "op": "infer",
                "model": "numeric",
                "inputs": {"features": {"data": [[1, 2, 3, 4]], "dtype": "float64"}},
            },
        ],
    )

    live, ready, model_ready, missing_version_ready, server_meta, model_meta = (
        r.get("ok") for r in results[:6]
    )
    assert (live, ready, model_ready, missing_version_ready) == (True, True, True, False)
    assert server_meta["name"] == "sluice-serving"
    assert model_meta == {
        "versions": ["1"],
        "inputs": [["features", "FP32", [-1, 4]]],
        "outputs": [["output_0", "FP32", [-1, 1]]],
    }
    numeric = results[6]["ok"]
    assert (numeric["version"], numeric["id"]) == ("1", "req-1")
    expected = in_process(model_dirs["numeric"], features=features)["output_0"]
    np.testing.assert_allclose(numeric["outputs"]["output_0"], expected, rtol=1e-6)
    scored = results[7]["ok"]
    expected_score = in_process(
        model_dirs["dict"],
        age=np.array([20, 35], np.int64),
        income=np.array([10.0, 2500.0], np.float32),
        country=np.array([b"NL", b"US"]),
    )["score"]
    assert list(scored["outputs"]) == ["score"]
    np.testing.assert_allclose(scored["outputs"]["score"], expected_score, rtol=1e-6)
    assert results[8]["error"] == "StatusCode.NOT_FOUND"
    assert results[9]["error"] == "StatusCode.NOT_FOUND" and "version 9" in results[9]["message"]
    assert results[10]["error"] == "StatusCode.INVALID_ARGUMENT"
    assert "dtype float64" in results[10]["message"]


@pytest.fixture
def oip_stub(server: ServingServer) -> Iterator[oip_service.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield oip_service.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


def test_typed_contents_are_answered_typed(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    oip_stub: oip_service.GRPCInferenceServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["dict"], "dict")
    request = oip.ModelInferRequest(model_name="dict", id="typed")
    age = request.inputs.add(name="age", datatype="INT64", shape=[2])
    age.contents.int64_contents.extend([20, 35])
    income = request.inputs.add(name="income", datatype="FP32", shape=[2])
    income.contents.fp32_contents.extend([10.0, 2500.0])
    country = request.inputs.add(name="country", datatype="BYTES", shape=[2])
    country.contents.bytes_contents.extend([b"NL", b"US"])

    response = oip_stub.ModelInfer(request, timeout=10)

    assert response.model_version == "1"
    assert not response.raw_output_contents
    outputs = {tensor.name: tensor for tensor in response.outputs}
    assert outputs["domestic"].datatype == "BOOL"
    assert list(outputs["domestic"].contents.bool_contents) == [True, False]
    assert list(outputs["score"].shape) == [2]


def test_contents_that_do_not_fit_the_shape_are_invalid(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    oip_stub: oip_service.GRPCInferenceServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["numeric"], "numeric")
    request = oip.ModelInferRequest(model_name="numeric")
    tensor = request.inputs.add(name="features", datatype="FP32", shape=[2, 4])
    tensor.contents.fp32_contents.extend([1.0] * 7)

    with pytest.raises(grpc.RpcError) as raised:
        oip_stub.ModelInfer(request, timeout=10)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "has 7 values; shape [2, 4] needs 8" in str(raised.value.details())
