"""The unmodified tensorflow-serving-api client against the server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sluice_runtime.artifacts import ArtifactStore
from sluice_serving.core import ServingCore
from sluice_serving.server import ServingServer
from sluice_serving.testing import in_process, serve_folder, upload
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2


@pytest.fixture
def channel(server: ServingServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


@pytest.fixture
def predict_stub(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def test_predict_matches_the_savedmodel_called_in_process(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["numeric"], "numeric")
    features = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "numeric"
    request.inputs["features"].CopyFrom(tf.make_tensor_proto(features))

    response = predict_stub.Predict(request, timeout=10)

    expected = in_process(model_dirs["numeric"], features=features)
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["output_0"]), expected["output_0"], rtol=1e-6
    )
    assert response.model_spec.name == "numeric"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_predict_accepts_typed_values_and_strings(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["dict"], "dict")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "dict"
    request.model_spec.version.value = 1
    age = request.inputs["age"]
    age.dtype = tf.int64.as_datatype_enum
    age.tensor_shape.dim.add(size=3)
    age.int64_val.extend([30, 40, 50])
    request.inputs["income"].CopyFrom(tf.make_tensor_proto([1000.0, 0.0, 500.0], dtype=tf.float32))
    request.inputs["country"].CopyFrom(tf.make_tensor_proto([b"NL", b"DE", b"NL"]))
    request.output_filter.append("score")

    response = predict_stub.Predict(request, timeout=10)

    expected = in_process(
        model_dirs["dict"],
        age=np.array([30, 40, 50], np.int64),
        income=np.array([1000.0, 0.0, 500.0], np.float32),
        country=np.array([b"NL", b"DE", b"NL"]),
    )
    assert list(response.outputs) == ["score"]
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["score"]), expected["score"], rtol=1e-6
    )


@pytest.mark.parametrize(
    ("mutate", "code", "needle"),
    [
        (lambda r: setattr(r.model_spec, "name", "nope"), grpc.StatusCode.NOT_FOUND, "nope"),
        (
            lambda r: r.model_spec.version.__setattr__("value", 7),
            grpc.StatusCode.NOT_FOUND,
            "version 7",
        ),
        (
            lambda r: r.inputs.pop("features"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "missing input 'features'",
        ),
        (
            lambda r: r.inputs["features"].CopyFrom(
                tf.make_tensor_proto(np.zeros((2, 4), np.float64))
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "dtype float64",
        ),
        (
            lambda r: r.inputs["features"].CopyFrom(
                tf.make_tensor_proto(np.zeros((2, 3), np.float32))
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "shape [2, 3]",
        ),
        (
            lambda r: r.inputs["extra"].CopyFrom(tf.make_tensor_proto(np.zeros((2,), np.float32))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown input 'extra'",
        ),
        (
            lambda r: r.inputs["features"].CopyFrom(
                tf.make_tensor_proto(np.zeros((1001, 4), np.float32))
            ),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "max_request_rows=1000",
        ),
        (
            lambda r: setattr(r.model_spec, "signature_name", "nope"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "no signature 'nope'",
        ),
    ],
)
def test_bad_requests_get_clear_errors_and_the_server_keeps_serving(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
    mutate: Callable[[predict_pb2.PredictRequest], object],
    code: grpc.StatusCode,
    needle: str,
) -> None:
    serve_folder(core, store, model_dirs["numeric"], "numeric")
    good = predict_pb2.PredictRequest()
    good.model_spec.name = "numeric"
    good.inputs["features"].CopyFrom(tf.make_tensor_proto(np.ones((2, 4), np.float32)))
    bad = predict_pb2.PredictRequest()
    bad.CopyFrom(good)
    mutate(bad)

    with pytest.raises(grpc.RpcError) as raised:
        predict_stub.Predict(bad, timeout=10)

    assert raised.value.code() == code
    assert needle in str(raised.value.details())
    assert predict_stub.Predict(good, timeout=10).model_spec.version.value == 1


def test_tensor_content_of_the_wrong_length_is_invalid(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["numeric"], "numeric")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "numeric"
    request.inputs["features"].CopyFrom(tf.make_tensor_proto(np.ones((2, 4), np.float32)))
    request.inputs["features"].tensor_content = request.inputs["features"].tensor_content[:-4]
    with pytest.raises(grpc.RpcError) as raised:
        predict_stub.Predict(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tensor_content has 28 bytes" in str(raised.value.details())


def test_get_model_metadata_returns_the_signature_defs(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["numeric"], "numeric")
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "numeric"

    response = predict_stub.GetModelMetadata(request, timeout=10)

    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    serving = signature_map.signature_def["serving_default"]
    assert serving.inputs["features"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in serving.inputs["features"].tensor_shape.dim] == [-1, 4]
    assert response.model_spec.version.value == 1


def test_model_status_lists_versions_and_states(
    core: ServingCore, store: ArtifactStore, model_dirs: dict[str, Path], channel: grpc.Channel
) -> None:
    serve_folder(core, store, model_dirs["numeric"], "numeric")
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "numeric"

    response = stub.GetModelStatus(request, timeout=10)

    assert [(s.version, s.state) for s in response.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]
    request.model_spec.name = "missing"
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetModelStatus(request, timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def _examples(**features: list[object]) -> list[tf.train.Example]:
    rows = len(next(iter(features.values())))
    examples = []
    for i in range(rows):
        example = tf.train.Example()
        for name, values in features.items():
            value = values[i]
            feature = example.features.feature[name]
            if isinstance(value, bytes):
                feature.bytes_list.value.append(value)
            elif isinstance(value, int):
                feature.int64_list.value.append(value)
            else:
                feature.float_list.value.extend(value if isinstance(value, list) else [value])
        examples.append(example)
    return examples


def test_regress_reads_features_from_examples(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["linear3"], "linear")
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "linear"
    request.input.example_list.examples.extend(_examples(x=[[1.0, 2.0], [0.5, 0.5]]))

    response = predict_stub.Regress(request, timeout=10)

    assert [r.value for r in response.result.regressions] == pytest.approx([9.0, 3.0])
    assert response.model_spec.version.value == 1


def test_classify_needs_a_classifying_signature(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["linear3"], "linear")
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "linear"
    request.input.example_list.examples.extend(_examples(x=[[1.0, 2.0]]))

    with pytest.raises(grpc.RpcError) as raised:
        predict_stub.Classify(request, timeout=10)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot classify" in str(raised.value.details())


def _softmax(row: list[float]) -> list[float]:
    exps = np.exp(np.array(row) - max(row))
    return list(exps / exps.sum())


def test_classify_answers_labels_and_scores_per_example(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["classifier"], "clf")
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "clf"
    request.input.example_list.examples.extend(_examples(x=[[1.0, 2.0], [0.5, 0.0]]))

    response = predict_stub.Classify(request, timeout=10)

    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    rows = response.result.classifications
    assert [[c.label for c in row.classes] for row in rows] == [["low", "high"]] * 2
    for row, x in zip(rows, ([1.0, 2.0], [0.5, 0.0]), strict=True):
        assert [c.score for c in row.classes] == pytest.approx(_softmax(x), rel=1e-5)


def test_multi_inference_classifies_and_regresses_the_same_examples(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    serve_folder(core, store, model_dirs["classifier"], "clf")
    request = inference_pb2.MultiInferenceRequest()
    classify = request.tasks.add(method_name="tensorflow/serving/classify")
    classify.model_spec.name = "clf"
    regress = request.tasks.add(method_name="tensorflow/serving/regress")
    regress.model_spec.name = "clf"
    regress.model_spec.signature_name = "regress"
    request.input.example_list.examples.extend(_examples(x=[[1.0, 2.0], [0.5, 0.0]]))

    response = predict_stub.MultiInference(request, timeout=10)

    first, second = response.results
    assert (first.model_spec.name, first.model_spec.signature_name) == ("clf", "serving_default")
    assert [c.label for c in first.classification_result.classifications[0].classes] == [
        "low",
        "high",
    ]
    assert second.model_spec.signature_name == "regress"
    assert second.model_spec.version.value == 1
    assert [r.value for r in second.regression_result.regressions] == pytest.approx([1.0, -0.5])


@pytest.mark.parametrize(
    ("tasks", "field"),
    [
        ([], "tasks"),
        ([("clf", "tensorflow/serving/classify", ""), ("other", "tensorflow/serving/regress", "")],
         "tasks[1].model_spec.name"),
        ([("clf", "tensorflow/serving/classify", ""), ("clf", "tensorflow/serving/classify", "")],
         "tasks[1].model_spec"),
        ([("clf", "tensorflow/serving/predict", "")], "tasks[0].method_name"),
    ],
    ids=["no-tasks", "two-models", "same-signature-twice", "unknown-method"],
)  # fmt: skip
def test_multi_inference_refuses_what_it_cannot_answer(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
    tasks: list[tuple[str, str, str]],
    field: str,
) -> None:
    serve_folder(core, store, model_dirs["classifier"], "clf")
    request = inference_pb2.MultiInferenceRequest()
    for name, method, signature in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name = name
        task.model_spec.signature_name = signature
    request.input.example_list.examples.extend(_examples(x=[[1.0, 2.0]]))

    with pytest.raises(grpc.RpcError) as raised:
        predict_stub.MultiInference(request, timeout=10)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _error_field(raised.value) == field


def _error_field(error: grpc.RpcError) -> str:
    """The field the ErrorInfo of a failed call names."""
    status = rpc_status.from_call(cast(grpc.Call, error))
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Unpack(info):
            return str(info.metadata["field"])
    raise AssertionError("no ErrorInfo")


def _reload(
    channel: grpc.Channel, *configs: model_server_config_pb2.ModelConfig
) -> model_management_pb2.ReloadConfigResponse:
    request = model_management_pb2.ReloadConfigRequest()
    request.config.model_config_list.config.extend(configs)
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    response: model_management_pb2.ReloadConfigResponse = stub.HandleReloadConfigRequest(
        request, timeout=60
    )
    return response


def _states(channel: grpc.Channel, name: str) -> dict[int, int]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    return {s.version: s.state for s in response.model_version_status}


def test_reload_config_serves_the_versions_its_policy_picks_and_sets_labels(
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    channel: grpc.Channel,
    predict_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    for version, kind in ((1, "linear2"), (2, "linear3")):
        upload(store, model_dirs[kind], f"tfs/linear/{version}")
    config = model_server_config_pb2.ModelConfig(name="linear", base_path="tfs/linear")
    config.version_labels["stable"] = 2

    assert _reload(channel, config).status.error_code == 0

    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert _states(channel, "linear") == {2: available}  # latest 1 by default
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "linear"
    request.model_spec.version_label = "stable"
    request.input.example_list.examples.extend(_examples(x=[[1.0, 2.0]]))
    assert [r.value for r in predict_stub.Regress(request, timeout=10).result.regressions] == [9.0]

    # Now only version 1: it loads, and version 2 (no longer allowed) is unloaded.
    config.ClearField("version_labels")
    config.model_version_policy.specific.versions.append(1)
    _reload(channel, config)
    request.ClearField("model_spec")
    request.model_spec.name = "linear"
    answer = predict_stub.Regress(request, timeout=10)
    assert (answer.model_spec.version.value, answer.result.regressions[0].value) == (1, 6.0)


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (lambda c: setattr(c, "model_platform", "pytorch"), grpc.StatusCode.INVALID_ARGUMENT,
         "config.model_config_list.config[0].model_platform"),
        (lambda c: setattr(c, "base_path", "tfs/nothing-here"),
         grpc.StatusCode.FAILED_PRECONDITION, "config.model_config_list.config[0].base_path"),
        (lambda c: setattr(c, "base_path", "file:///elsewhere/linear"),
         grpc.StatusCode.INVALID_ARGUMENT, "config.model_config_list.config[0].base_path"),
        (lambda c: c.model_version_policy.specific.versions.append(7),
         grpc.StatusCode.FAILED_PRECONDITION,
         "config.model_config_list.config[0].model_version_policy"),
    ],
    ids=["platform", "empty-base-path", "outside-the-store", "missing-version"],
)  # fmt: skip
def test_reload_config_refuses_what_it_cannot_serve(
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    channel: grpc.Channel,
    change: Callable[[model_server_config_pb2.ModelConfig], object],
    code: grpc.StatusCode,
    field: str,
) -> None:
    upload(store, model_dirs["linear2"], "tfs/linear/1")
    config = model_server_config_pb2.ModelConfig(name="linear", base_path="tfs/linear")
    change(config)

    with pytest.raises(grpc.RpcError) as raised:
        _reload(channel, config)

    assert raised.value.code() == code
    assert _error_field(raised.value) == field
