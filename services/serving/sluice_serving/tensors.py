"""Tensors on the wire <-> numpy arrays, with numpy only (no TensorFlow op runs per request).

Two wire forms: TensorFlow's ``TensorProto`` (TF Serving protocol: ``tensor_content`` bytes or typed
``*_val`` fields) and the Open Inference Protocol's ``InferTensorContents`` / raw bytes. Strings
travel as numpy ``object`` arrays of ``bytes``. Errors name the request field and the problem.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from open_inference.grpc import protocol as oip
from sluice_runtime.errors import InvalidArgument
from tensorflow.core.framework import tensor_pb2, types_pb2

STRING = np.dtype(object)

# TensorFlow DataType enum -> numpy dtype, for the types a serving signature can take.
_TF_TO_NUMPY: dict[int, np.dtype[Any]] = {
    types_pb2.DT_FLOAT: np.dtype(np.float32),
    types_pb2.DT_DOUBLE: np.dtype(np.float64),
    types_pb2.DT_HALF: np.dtype(np.float16),
    types_pb2.DT_INT8: np.dtype(np.int8),
    types_pb2.DT_INT16: np.dtype(np.int16),
    types_pb2.DT_INT32: np.dtype(np.int32),
    types_pb2.DT_INT64: np.dtype(np.int64),
    types_pb2.DT_UINT8: np.dtype(np.uint8),
    types_pb2.DT_UINT16: np.dtype(np.uint16),
    types_pb2.DT_UINT32: np.dtype(np.uint32),
    types_pb2.DT_UINT64: np.dtype(np.uint64),
    types_pb2.DT_BOOL: np.dtype(np.bool_),
    types_pb2.DT_STRING: STRING,
}
_NUMPY_TO_TF = {dtype: enum for enum, dtype in _TF_TO_NUMPY.items()}

# Open Inference Protocol datatype names <-> numpy dtypes.
_OIP_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": STRING,
}
_NUMPY_TO_OIP = {dtype: name for name, dtype in _OIP_TO_NUMPY.items()}

# Which InferTensorContents field carries each OIP datatype (FP16 travels only as raw bytes).
_OIP_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

# The TensorProto repeated field that carries each dtype when tensor_content is empty.
_TF_TYPED_FIELD: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}


def dtype_name(dtype: np.dtype[Any]) -> str:
    """A dtype as users of TensorFlow know it: ``float32``, ``int64``, ``string``..."""
    return "string" if dtype == STRING else dtype.name


def numpy_dtype_of_tf(enum: int) -> np.dtype[Any] | None:
    """The numpy dtype of a TensorFlow DataType enum value, or None when it is not servable."""
    return _TF_TO_NUMPY.get(enum)


def tf_dtype_of(dtype: np.dtype[Any]) -> int:
    """The TensorFlow DataType enum value of a numpy dtype (DT_INVALID when it has none)."""
    return int(_NUMPY_TO_TF.get(dtype, types_pb2.DT_INVALID))


def oip_datatype_of(dtype: np.dtype[Any]) -> str:
    """The Open Inference Protocol datatype name of a numpy dtype."""
    try:
        return _NUMPY_TO_OIP[dtype]
    except KeyError:
        raise InvalidArgument(f"dtype {dtype_name(dtype)} has no Open Inference type") from None


def has_typed_oip_contents(dtype: np.dtype[Any]) -> bool:
    """Whether OIP can carry this dtype in InferTensorContents (FP16 needs raw bytes)."""
    return _NUMPY_TO_OIP.get(dtype) in _OIP_CONTENTS_FIELD


def _tf_dtype_label(enum: int) -> str:
    return types_pb2.DataType.Name(enum) if enum in types_pb2.DataType.values() else str(enum)


def element_count(shape: Sequence[int]) -> int:
    return math.prod(shape)


# --- TensorFlow TensorProto -----------------------------------------------------------------


def tensor_proto_to_ndarray(proto: tensor_pb2.TensorProto, field: str) -> np.ndarray:
    """The array a TensorProto holds; ``field`` names it in errors (``inputs['x']``)."""
    dtype = _TF_TO_NUMPY.get(proto.dtype)
    if dtype is None:
        name = _tf_dtype_label(proto.dtype)
        raise InvalidArgument(f"{field}: dtype {name} is not supported", field=f"{field}.dtype")
    if proto.tensor_shape.unknown_rank:
        raise InvalidArgument(f"{field}: the shape must be known", field=f"{field}.tensor_shape")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise InvalidArgument(
            f"{field}: shape {list(shape)} has a negative dimension", field=f"{field}.tensor_shape"
        )
    count = element_count(shape)
    if dtype == STRING:
        return _fill(np.array(list(proto.string_val), dtype=STRING), shape, count, field)
    if proto.tensor_content:
        expected = count * dtype.itemsize
        if len(proto.tensor_content) != expected:
            raise InvalidArgument(
                f"{field}: tensor_content has {len(proto.tensor_content)} bytes; shape "
                f"{list(shape)} of {dtype_name(dtype)} needs {expected}",
                field=f"{field}.tensor_content",
            )
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    values = getattr(proto, _TF_TYPED_FIELD[proto.dtype])
    if proto.dtype == types_pb2.DT_HALF:
        # half_val holds the raw 16 bits of each value in an int32.
        array = np.array(values, dtype=np.uint16).view(np.float16)
    else:
        array = np.array(values, dtype=dtype)
    return _fill(array, shape, count, field)


def _fill(values: np.ndarray, shape: tuple[int, ...], count: int, field: str) -> np.ndarray:
    # TensorFlow's rule: fewer values than elements repeat the last one (one value fills all).
    if values.size == count:
        return values.reshape(shape)
    if 0 < values.size < count:
        padded = np.empty(count, dtype=values.dtype)
        padded[: values.size] = values
        padded[values.size :] = values[-1]
        return padded.reshape(shape)
    raise InvalidArgument(
        f"{field}: {values.size} values do not fit shape {list(shape)} ({count} elements)",
        field=field,
    )


def ndarray_to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A TensorProto of ``array``: ``tensor_content`` for numbers, ``string_val`` for strings."""
    proto = tensor_pb2.TensorProto()
    fill_tensor_proto(proto, array)
    return proto


def fill_tensor_proto(proto: tensor_pb2.TensorProto, array: np.ndarray) -> None:
    """Write ``array`` into an empty TensorProto in place (e.g. a response's map entry)."""
    dtype = array.dtype
    if dtype == STRING or dtype.kind in "SU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(_as_bytes(value) for value in array.reshape(-1))
    else:
        enum = _NUMPY_TO_TF.get(dtype)
        if enum is None:
            raise ValueError(f"dtype {dtype} cannot be sent as a TensorProto")
        proto.dtype = enum
        proto.tensor_content = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tobytes()
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add(size=size)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, np.bytes_ | bytearray):
        return bytes(value)
    return str(value).encode()


# --- Open Inference Protocol ----------------------------------------------------------------


def oip_input_to_ndarray(
    tensor: oip.ModelInferRequest.InferInputTensor, raw: bytes | None, field: str
) -> np.ndarray:
    """The array of one OIP input, from ``raw`` (raw_input_contents) or its typed contents."""
    dtype = _OIP_TO_NUMPY.get(tensor.datatype)
    if dtype is None:
        raise InvalidArgument(
            f"{field}: datatype {tensor.datatype!r} is not one of {', '.join(_OIP_TO_NUMPY)}",
            field=f"{field}.datatype",
        )
    shape = tuple(tensor.shape)
    if any(size < 0 for size in shape):
        raise InvalidArgument(
            f"{field}: shape {list(shape)} has a negative dimension", field=f"{field}.shape"
        )
    count = element_count(shape)
    if raw is not None:
        if dtype == STRING:
            values = _split_length_prefixed(raw, field)
            if len(values) != count:
                raise InvalidArgument(
                    f"{field}: raw contents hold {len(values)} strings; shape {list(shape)} "
                    f"needs {count}",
                    field="raw_input_contents",
                )
            return np.array(values, dtype=STRING).reshape(shape)
        expected = count * dtype.itemsize
        if len(raw) != expected:
            raise InvalidArgument(
                f"{field}: raw contents have {len(raw)} bytes; shape {list(shape)} of "
                f"{tensor.datatype} needs {expected}",
                field="raw_input_contents",
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    contents_field = _OIP_CONTENTS_FIELD.get(tensor.datatype)
    if contents_field is None:
        raise InvalidArgument(
            f"{field}: {tensor.datatype} values travel only in raw_input_contents",
            field=f"{field}.contents",
        )
    values = getattr(tensor.contents, contents_field)
    if len(values) != count:
        raise InvalidArgument(
            f"{field}: contents.{contents_field} has {len(values)} values; shape "
            f"{list(shape)} needs {count}",
            field=f"{field}.contents.{contents_field}",
        )
    if dtype == STRING:
        return np.array(list(values), dtype=STRING).reshape(shape)
    try:
        return np.array(values, dtype=dtype).reshape(shape)
    except OverflowError:
        raise InvalidArgument(
            f"{field}: a value does not fit {tensor.datatype}", field=f"{field}.contents"
        ) from None


def _split_length_prefixed(raw: bytes, field: str) -> list[bytes]:
    # OIP's raw BYTES form: each element is a 4-byte little-endian length, then its bytes.
    values: list[bytes] = []
    offset = 0
    view = memoryview(raw)
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidArgument(f"{field}: truncated length prefix", field="raw_input_contents")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidArgument(f"{field}: truncated string element", field="raw_input_contents")
        values.append(bytes(view[offset : offset + length]))
        offset += length
    return values


def ndarray_to_raw(array: np.ndarray) -> bytes:
    """The OIP raw form of an array (little-endian values; BYTES length-prefixed)."""
    if array.dtype == STRING or array.dtype.kind in "SU":
        parts: list[bytes] = []
        for value in array.reshape(-1):
            data = _as_bytes(value)
            parts.append(struct.pack("<I", len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def fill_oip_contents(contents: oip.InferTensorContents, array: np.ndarray) -> None:
    """Write ``array`` into the typed field of ``contents`` that its datatype uses."""
    datatype = oip_datatype_of(array.dtype)
    field = _OIP_CONTENTS_FIELD.get(datatype)
    if field is None:
        raise ValueError(f"{datatype} has no typed contents field; send it raw")
    if datatype == "BYTES":
        contents.bytes_contents.extend(_as_bytes(value) for value in array.reshape(-1))
        return
    getattr(contents, field).extend(array.reshape(-1).tolist())
