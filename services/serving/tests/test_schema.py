"""Request-level schema enforcement: the signature, then the data schema with its policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.errors import InvalidArgument
from sluice_serving.core import ServingCore
from sluice_serving.schema import DataSchema, SchemaAction, SchemaPolicy, check_signature
from sluice_serving.server import ServingServer
from sluice_serving.signature import Signature, TensorSpec
from sluice_serving.testing import upload
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

SCHEMA = """
feature { name: "age" type: INT int_domain { min: 0 max: 120 } }
feature { name: "income" type: FLOAT float_domain { min: 0 disallow_nan: true } }
feature { name: "country" type: BYTES domain: "countries" }
feature { name: "label" type: INT }
string_domain { name: "countries" value: "NL" value: "DE" value: "US" }
"""

SIGNATURE = Signature(
    "serving_default",
    inputs={
        "age": TensorSpec("age", np.dtype(np.int64), (-1,)),
        "pixels": TensorSpec("pixels", np.dtype(np.float32), (-1, 2, 2)),
    },
    outputs={"y": TensorSpec("y", np.dtype(np.float32), (-1,))},
)


def test_the_signature_decides_dtype_shape_and_batch_size() -> None:
    good = {"age": np.array([1, 2, 3]), "pixels": np.zeros((3, 2, 2), np.float32)}
    assert check_signature(SIGNATURE, good) == 3
    cases = [
        ({"age": good["age"]}, "missing input 'pixels'"),
        ({**good, "x": good["age"]}, "unknown input 'x'"),
        ({**good, "age": good["age"].astype(np.int32)}, "dtype int32; the signature expects int64"),
        ({**good, "pixels": np.zeros((3, 2, 3), np.float32)}, "expects float32[None, 2, 2]"),
        ({**good, "pixels": np.zeros((2, 2, 2), np.float32)}, "has 2 rows but 'age' has 3"),
    ]
    for inputs, message in cases:
        with pytest.raises(InvalidArgument, match=message.replace("[", r"\[")):
            check_signature(SIGNATURE, inputs)


def test_data_schema_checks_types_and_domains_per_feature() -> None:
    schema = DataSchema.from_text(SCHEMA)
    reject = SchemaPolicy()
    assert (
        schema.check({"age": np.array([0, 120]), "country": np.array([b"NL"], object)}, reject)
        == []
    )

    with pytest.raises(InvalidArgument) as raised:
        schema.check({"age": np.array([3, 121, 200])}, reject)
    assert "feature 'age'" in raised.value.message and "int_domain [0, 120]" in raised.value.message
    assert raised.value.field == "inputs[age]"
    assert raised.value.metadata == {"feature": "age", "problem": "int_domain"}

    problems = {
        "income": (np.array([1.0, np.nan], np.float32), "nan"),
        "country": (np.array([b"FR"], object), "string_domain"),
        "age": (np.array([1.5]), "type"),
    }
    flag_all = SchemaPolicy(default_action=SchemaAction.FLAG)
    for feature, (values, problem) in problems.items():
        flagged = schema.check({feature: values}, flag_all)
        assert [(v.feature, v.problem) for v in flagged] == [(feature, problem)]


def test_a_schema_naming_an_unknown_domain_is_refused() -> None:
    with pytest.raises(ValueError, match="domain 'nowhere'"):
        DataSchema.from_text('feature { name: "c" type: BYTES domain: "nowhere" }')


def _request(
    age: list[int], income: list[float], country: list[bytes]
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "dict"
    request.inputs["age"].CopyFrom(tf.make_tensor_proto(np.array(age, np.int64)))
    request.inputs["income"].CopyFrom(tf.make_tensor_proto(np.array(income, np.float32)))
    request.inputs["country"].CopyFrom(tf.make_tensor_proto(np.array(country, object)))
    return request


def test_schema_in_the_model_folder_is_enforced_with_the_policy(
    core: ServingCore,
    store: ArtifactStore,
    model_dirs: dict[str, Path],
    server: ServingServer,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "dict_with_schema"
    shutil.copytree(model_dirs["dict"], folder)
    (folder / "schema.pbtxt").write_text(SCHEMA)
    upload(store, folder, "models/dict/1")
    assert core.load_version("dict", 1, "models/dict/1", wait=True).state.value == "AVAILABLE"
    core.update_model_config(
        "dict", schema_policy=SchemaPolicy(feature_actions={"country": SchemaAction.FLAG})
    )
    with grpc.insecure_channel(server.address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(_request([30, 130], [1.0, 2.0], [b"NL", b"DE"]), timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "feature 'age' breaks the data schema" in str(raised.value.details())

        response, call = stub.Predict.with_call(
            _request([30, 40], [1.0, 2.0], [b"NL", b"FR"]), timeout=10
        )
        assert response.model_spec.version.value == 1
        assert dict(call.trailing_metadata())["x-sluice-schema-flags"] == "country:string_domain"

    counts = {
        (s.labels["feature"], s.labels["action"]): s.value
        for metric in server.running.registry.collect()
        if metric.name == "sluice_serving_schema_violations"
        for s in metric.samples
        if s.name.endswith("_total")
    }
    assert counts == {("age", "reject"): 1.0, ("country", "flag"): 1.0}


def test_schema_uri_overrides_the_folder_schema(
    core: ServingCore, store: ArtifactStore, model_dirs: dict[str, Path]
) -> None:
    upload(store, model_dirs["dict"], "models/dict/1")
    store.put(
        "schemas/strict.pbtxt", b'feature { name: "income" type: FLOAT float_domain { max: 10 } }'
    )
    core.update_model_config("dict", schema_uri="schemas/strict.pbtxt")
    core.load_version("dict", 1, "models/dict/1", wait=True)
    inputs: dict[str, np.ndarray] = {
        "age": np.array([1], np.int64),
        "income": np.array([11.0], np.float32),
        "country": np.array([b"NL"], object),
    }
    with pytest.raises(InvalidArgument, match="float_domain"):
        core.predict("dict", inputs)
    with pytest.raises(InvalidArgument, match="schema_uri"):
        store.put("schemas/broken.pbtxt", b"feature { nonsense: 1 }")
        core.update_model_config("dict", schema_uri="schemas/broken.pbtxt")

    # Cleared, the model's own schema (none for this folder) applies again: the row is served.
    with pytest.raises(InvalidArgument, match="clear_schema"):
        core.update_model_config("dict", schema_uri="schemas/strict.pbtxt", clear_schema=True)
    info = core.update_model_config("dict", clear_schema=True)
    assert info.config.schema_uri == ""
    assert core.predict("dict", inputs).version == 1
