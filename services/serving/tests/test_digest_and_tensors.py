"""The model digest, and tensors between the wire forms and numpy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from open_inference.grpc import protocol as oip
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.artifacts.digest import digest_of_entries, model_digest
from sluice_runtime.errors import InvalidArgument
from sluice_serving.tensors import (
    ndarray_to_raw,
    ndarray_to_tensor_proto,
    oip_input_to_ndarray,
    tensor_proto_to_ndarray,
)
from sluice_serving.testing import upload


def test_digest_is_defined_over_sorted_paths_and_file_digests(tmp_path: Path) -> None:
    (tmp_path / "variables").mkdir()
    (tmp_path / "saved_model.pb").write_bytes(b"graph")
    (tmp_path / "variables" / "v.index").write_bytes(b"index")
    lines = "".join(
        f"{path}\0{hashlib.sha256(data).hexdigest()}\n"
        for path, data in sorted(
            {"saved_model.pb": b"graph", "variables/v.index": b"index"}.items()
        )
    )
    assert model_digest(tmp_path) == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()
    (tmp_path / "variables" / "v.index").write_bytes(b"changed")
    assert model_digest(tmp_path) != "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


def test_digest_from_a_store_listing_matches_the_local_folder(
    store: ArtifactStore, model_dirs: dict[str, Path]
) -> None:
    digest = upload(store, model_dirs["linear2"], "models/l/1")
    listing = [
        (info.key.removeprefix("models/l/1/"), info.sha256) for info in store.list("models/l/1/")
    ]
    assert digest_of_entries(listing) == digest == model_digest(model_dirs["linear2"])
    with pytest.raises(ValueError, match=r"'\.\.'"):
        digest_of_entries([("../x", "0" * 64)])


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([[1, -2]], dtype=np.int64),
        np.array([True, False]),
        np.array([0.5, 1.5], dtype=np.float16),
        np.array([[b"a", b"bc"]], dtype=object),
        np.zeros((0, 4), dtype=np.float32),
    ],
)
def test_tensor_protos_round_trip_with_tensorflow(array: np.ndarray) -> None:
    ours = ndarray_to_tensor_proto(array)
    np.testing.assert_array_equal(tf.make_ndarray(ours), array)
    np.testing.assert_array_equal(tensor_proto_to_ndarray(tf.make_tensor_proto(array), "x"), array)


def test_typed_tensor_proto_values_fill_like_tensorflow() -> None:
    proto = tf.make_tensor_proto(7, dtype=tf.int32, shape=[2, 2])
    assert tensor_proto_to_ndarray(proto, "x").tolist() == [[7, 7], [7, 7]]
    half = tf.make_tensor_proto(np.array([1.5, 2.0], np.float16))
    half.ClearField("tensor_content")
    half.half_val.extend(np.array([1.5, 2.0], np.float16).view(np.uint16).tolist())
    assert tensor_proto_to_ndarray(half, "x").tolist() == [1.5, 2.0]
    too_many = tf.make_tensor_proto([1.0, 2.0, 3.0], dtype=tf.float32)
    too_many.tensor_shape.dim[0].size = 2
    too_many.ClearField("tensor_content")
    too_many.float_val.extend([1.0, 2.0, 3.0])
    with pytest.raises(InvalidArgument, match="3 values do not fit shape"):
        tensor_proto_to_ndarray(too_many, "inputs['x']")


def test_oip_raw_and_typed_inputs() -> None:
    strings = np.array([b"x", b"", b"yz"], dtype=object)
    tensor = oip.ModelInferRequest.InferInputTensor(name="s", datatype="BYTES", shape=[3])
    assert oip_input_to_ndarray(tensor, ndarray_to_raw(strings), "s").tolist() == strings.tolist()
    numbers = oip.ModelInferRequest.InferInputTensor(name="n", datatype="UINT8", shape=[2])
    numbers.contents.uint_contents.extend([1, 255])
    assert oip_input_to_ndarray(numbers, None, "n").dtype == np.uint8
    with pytest.raises(InvalidArgument, match="truncated"):
        oip_input_to_ndarray(tensor, b"\x05\x00\x00\x00ab", "s")
    half = oip.ModelInferRequest.InferInputTensor(name="h", datatype="FP16", shape=[1])
    with pytest.raises(InvalidArgument, match="only in raw_input_contents"):
        oip_input_to_ndarray(half, None, "h")
