"""The sluice.serving.v1 control plane, through the SDK's ServingClient."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import duration_pb2
from open_inference.grpc import protocol as oip
from open_inference.grpc import service as oip_service
from sluice.client.errors import SluiceRpcError
from sluice.client.serving import ServingClient
from sluice.serving.v1 import model_pb2
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.artifacts.digest import model_digest
from sluice_serving.server import ServingServer
from sluice_serving.testing import upload
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


@pytest.fixture
def client(server: ServingServer) -> Iterator[ServingClient]:
    with ServingClient(server.address) as client:
        yield client


@pytest.fixture
def linear_versions(store: ArtifactStore, model_dirs: dict[str, Path]) -> None:
    for version, kind in ((1, "linear2"), (2, "linear3"), (3, "linear2")):
        upload(store, model_dirs[kind], f"models/lin/{version}")


def _wait_for_state(
    client: ServingClient, name: str, version: int, state: int, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        versions = {v.version: v.state for v in client.get_model(model_name=name).model.versions}
        if versions.get(version) == state:
            return
        assert time.monotonic() < deadline, f"version {version} stayed {versions.get(version)}"
        time.sleep(0.02)


def test_load_reports_the_verified_digest_and_state(
    client: ServingClient, store: ArtifactStore, model_dirs: dict[str, Path], linear_versions: None
) -> None:
    response = client.load_model_version(model_name="lin", version=1, uri="models/lin/1", wait=True)
    version = response.version
    assert version.state == model_pb2.VERSION_STATE_AVAILABLE
    assert version.digest == model_digest(model_dirs["linear2"])
    assert version.load_seconds > 0 and version.load_time.seconds > 0
    # Loading the same version again is a no-op; other files under its number are refused.
    again = client.load_model_version(model_name="lin", version=1, uri="models/lin/1")
    assert again.version.state == model_pb2.VERSION_STATE_AVAILABLE
    with pytest.raises(SluiceRpcError) as raised:
        client.load_model_version(model_name="lin", version=1, uri="models/lin/2")
    assert raised.value.code == grpc.StatusCode.ALREADY_EXISTS


def test_version_policy_labels_and_unload_rules(
    client: ServingClient, server: ServingServer, linear_versions: None
) -> None:
    client.update_model_config(
        model_name="lin",
        version_policy=model_pb2.VersionPolicy(
            latest=model_pb2.VersionPolicy.Latest(num_versions=2)
        ),
    )
    for version in (1, 2, 3):
        client.load_model_version(
            model_name="lin", version=version, uri=f"models/lin/{version}", wait=True
        )
    _wait_for_state(client, "lin", 1, model_pb2.VERSION_STATE_END)
    model = client.get_model(model_name="lin").model
    assert model.current_version == 3
    assert {v.version: v.state for v in model.versions} == {
        1: model_pb2.VERSION_STATE_END,
        2: model_pb2.VERSION_STATE_AVAILABLE,
        3: model_pb2.VERSION_STATE_AVAILABLE,
    }

    labelled = client.set_model_label(model_name="lin", label="stable", version=2).model
    assert dict(labelled.labels) == {"stable": 2}
    with grpc.insecure_channel(server.address) as channel:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "lin"
        request.model_spec.version_label = "stable"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones((1, 2), np.float32)))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request)
        assert response.model_spec.version.value == 2
        assert tf.make_ndarray(response.outputs["y"])[0] == 6.0
        infer = oip.ModelInferRequest(model_name="lin", model_version="stable")
        infer.inputs.add(name="x", datatype="FP32", shape=[1, 2]).contents.fp32_contents.extend(
            [1, 1]
        )
        stub = oip_service.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        answer = stub.ModelInfer(infer)
        assert answer.model_version == "2"

    failures: dict[str, Callable[[], object]] = {
        "labelled": lambda: client.unload_model_version(model_name="lin", version=2),
        "label on missing version": lambda: client.set_model_label(
            model_name="lin", label="canary", version=9
        ),
        "bad label": lambda: client.set_model_label(model_name="lin", label="9", version=3),
    }
    codes = {}
    for name, call in failures.items():
        with pytest.raises(SluiceRpcError) as raised:
            call()
        codes[name] = raised.value.code
    assert codes == {
        "labelled": grpc.StatusCode.FAILED_PRECONDITION,
        "label on missing version": grpc.StatusCode.FAILED_PRECONDITION,
        "bad label": grpc.StatusCode.INVALID_ARGUMENT,
    }

    client.set_model_label(model_name="lin", label="stable", version=0)
    assert client.unload_model_version(model_name="lin", version=2).version.state in (
        model_pb2.VERSION_STATE_UNLOADING,
        model_pb2.VERSION_STATE_END,
    )
    _wait_for_state(client, "lin", 2, model_pb2.VERSION_STATE_END)
    with pytest.raises(SluiceRpcError) as raised:
        client.unload_model_version(model_name="lin", version=3)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "last available version" in raised.value.message


def test_specific_policy_refuses_other_versions(
    client: ServingClient, linear_versions: None
) -> None:
    client.update_model_config(
        model_name="lin",
        version_policy=model_pb2.VersionPolicy(
            specific=model_pb2.VersionPolicy.Specific(versions=[1])
        ),
    )
    client.load_model_version(model_name="lin", version=1, uri="models/lin/1", wait=True)
    with pytest.raises(SluiceRpcError) as raised:
        client.load_model_version(model_name="lin", version=2, uri="models/lin/2")
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.field == "version"


def test_config_round_trips_and_lists_page_by_page(
    client: ServingClient, store: ArtifactStore
) -> None:
    updated = client.update_model_config(
        model_name="a",
        batching=model_pb2.BatchingConfig(
            max_batch_size=8, max_wait=duration_pb2.Duration(nanos=0)
        ),
        request_log=model_pb2.RequestLogConfig(sample_rate=0.5),
        schema_policy=model_pb2.SchemaPolicy(
            feature_actions={"age": model_pb2.SCHEMA_VIOLATION_ACTION_FLAG}
        ),
    ).model
    assert updated.batching.max_batch_size == 8 and updated.batching.max_wait.ToNanoseconds() == 0
    assert updated.request_log.rows_per_file == 1000
    assert updated.schema_policy.default_action == model_pb2.SCHEMA_VIOLATION_ACTION_REJECT
    assert updated.version_policy.latest.num_versions == 1
    for name in ("c", "b"):
        client.update_model_config(model_name=name)
    assert [m.name for m in client.iter_models(page_size=2)] == ["a", "b", "c"]
    first = client.list_models(page_size=2)
    assert [m.name for m in first.models] == ["a", "b"] and first.next_page_token
    location = client.get_request_log_location(model_name="a")
    assert location.uri_prefix == f"{store.root_uri}/request-logs/a/"
    assert location.sample_rate == 0.5

    store.put("schemas/a.pbtxt", b'feature { name: "age" type: INT }')
    assert client.update_model_config(model_name="a", schema_uri="schemas/a.pbtxt").model.schema_uri
    assert client.update_model_config(model_name="a", clear_schema=True).model.schema_uri == ""
    with pytest.raises(SluiceRpcError) as both:
        client.update_model_config(model_name="a", schema_uri="schemas/a.pbtxt", clear_schema=True)
    assert (both.value.code, both.value.field) == (grpc.StatusCode.INVALID_ARGUMENT, "clear_schema")


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"model_name": "x", "version": 1, "uri": "file:///elsewhere/m"}, "uri"),
        ({"model_name": "x", "version": 0, "uri": "models/x/1"}, "version"),
        ({"model_name": "bad name", "version": 1, "uri": "m/1"}, "model_name"),
        ({"model_name": "x", "version": 1, "uri": "m/1", "digest": "md5:1"}, "digest"),
        ({"model_name": "x", "version": 1, "uri": "../m"}, "uri"),
    ],
)
def test_malformed_loads_are_refused_naming_the_field(
    client: ServingClient, request_fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(SluiceRpcError) as raised:
        client.load_model_version(**request_fields)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.field == field


def test_unknown_models_are_not_found(client: ServingClient) -> None:
    for call in (
        lambda: client.get_model(model_name="ghost"),
        lambda: client.unload_model_version(model_name="ghost", version=1),
        lambda: client.get_request_log_location(model_name="ghost"),
    ):
        with pytest.raises(SluiceRpcError) as raised:
            call()
        assert raised.value.code == grpc.StatusCode.NOT_FOUND
