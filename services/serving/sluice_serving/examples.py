"""Classify and Regress: tf.Example inputs to signature inputs, and outputs to scores or values.

A signature can take the examples in two ways:

- serialized: one string input named ``inputs`` or ``examples`` (the TF Serving and Estimator
  convention) receives the serialized ``tf.Example`` protos;
- by feature: every input is read from the feature of the same name in each example (float_list,
  int64_list or bytes_list, with as many values as the input's inner shape holds).

A signature can classify when its method is ``tensorflow/serving/classify`` or it has a ``scores``
and/or ``classes`` output; it can regress when its method is ``tensorflow/serving/regress`` or it
has an ``outputs`` output, or a single float output of one value per example.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sluice_runtime.errors import InvalidArgument
from tensorflow.core.example import example_pb2

from sluice_serving.signature import CLASSIFY_METHOD, REGRESS_METHOD, Signature
from sluice_serving.tensors import STRING, dtype_name

SERIALIZED_INPUT_NAMES = ("inputs", "examples")


@dataclass(frozen=True)
class Classes:
    """Per example: scores [N, C] and/or class labels [N, C] (bytes)."""

    scores: np.ndarray | None
    classes: np.ndarray | None


def serialized_examples(input_proto: Any) -> list[bytes]:
    """The examples of a ``tensorflow.serving.Input``, serialized; context merged into each."""
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return [example.SerializeToString() for example in input_proto.example_list.examples]
    if kind == "example_list_with_context":
        listed = input_proto.example_list_with_context
        merged: list[bytes] = []
        for example in listed.examples:
            combined = example_pb2.Example()
            combined.CopyFrom(listed.context)
            for name, feature in example.features.feature.items():
                combined.features.feature[name].CopyFrom(feature)  # the example wins
            merged.append(combined.SerializeToString())
        return merged
    raise InvalidArgument(
        "input must hold example_list or example_list_with_context", field="input"
    )


def takes_serialized(signature: Signature) -> bool:
    if len(signature.inputs) != 1:
        return False
    (name, spec) = next(iter(signature.inputs.items()))
    return name in SERIALIZED_INPUT_NAMES and spec.dtype == STRING


def examples_to_inputs(examples: Sequence[bytes], signature: Signature) -> dict[str, np.ndarray]:
    """Signature inputs for serialized examples (see the module docstring for the two ways)."""
    if not examples:
        raise InvalidArgument("input holds no examples", field="input")
    if takes_serialized(signature):
        name = next(iter(signature.inputs))
        return {name: np.array(list(examples), dtype=STRING)}
    parsed = [example_pb2.Example.FromString(data) for data in examples]
    inputs: dict[str, np.ndarray] = {}
    for name, spec in signature.inputs.items():
        if spec.shape is None or any(d < 0 for d in spec.shape[1:]) or not spec.batched:
            raise InvalidArgument(
                f"signature '{signature.name}' input '{name}' has shape {spec.describe()}; "
                "examples can only fill a batched input of known inner shape",
                field="model_spec.signature_name",
            )
        inner = spec.shape[1:]
        count = math.prod(inner)
        rows: list[Any] = []
        for index, example in enumerate(parsed):
            if name not in example.features.feature:
                raise InvalidArgument(
                    f"example {index} has no feature '{name}'", field=f"input.examples[{index}]"
                )
            rows.append(_values(example.features.feature[name], spec.dtype, name, index, count))
        array = np.array(rows, dtype=spec.dtype) if spec.dtype != STRING else _strings(rows)
        inputs[name] = array.reshape((len(parsed), *inner))
    return inputs


def _values(feature: Any, dtype: np.dtype[Any], name: str, index: int, count: int) -> list[Any]:
    kind = feature.WhichOneof("kind")
    field = f"input.examples[{index}].features['{name}']"
    values: list[Any] = list(getattr(feature, kind).value) if kind else []
    if dtype == STRING and kind != "bytes_list":
        raise InvalidArgument(f"feature '{name}' must be a bytes_list", field=field)
    if dtype != STRING:
        if kind == "bytes_list":
            raise InvalidArgument(
                f"feature '{name}' must be numeric ({dtype_name(dtype)}), not a bytes_list",
                field=field,
            )
        if kind == "float_list" and dtype.kind in "iub":
            raise InvalidArgument(
                f"feature '{name}' is a float_list; the input is {dtype_name(dtype)}", field=field
            )
    if len(values) != count:
        raise InvalidArgument(
            f"feature '{name}' of example {index} has {len(values)} values; the input needs "
            f"{count}",
            field=field,
        )
    return values


def _strings(rows: list[list[Any]]) -> np.ndarray:
    array = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=STRING)
    for i, row in enumerate(rows):
        array[i, :] = row
    return array


def classify_outputs(signature: Signature) -> tuple[str | None, str | None]:
    """The (scores, classes) output keys of a classifying signature; InvalidArgument if none."""
    scores = "scores" if "scores" in signature.outputs else None
    classes = "classes" if "classes" in signature.outputs else None
    if (
        scores is None
        and classes is None
        and signature.method_name == CLASSIFY_METHOD
        and len(signature.outputs) == 1
    ):
        only = next(iter(signature.outputs))
        if signature.outputs[only].dtype == STRING:
            classes = only
        else:
            scores = only
    if scores is None and classes is None:
        raise InvalidArgument(
            f"signature '{signature.name}' cannot classify: it needs a 'scores' or 'classes' "
            f"output or method {CLASSIFY_METHOD} (it has outputs "
            f"{', '.join(signature.outputs)})",
            field="model_spec.signature_name",
        )
    return scores, classes


def regress_output(signature: Signature) -> str:
    """The output key holding one value per example; InvalidArgument if the signature has none."""
    if "outputs" in signature.outputs:
        return "outputs"
    if len(signature.outputs) == 1:
        (key, spec) = next(iter(signature.outputs.items()))
        one_value = spec.shape is not None and (
            len(spec.shape) == 1 or (len(spec.shape) == 2 and spec.shape[1] == 1)
        )
        if spec.dtype.kind == "f" and (one_value or signature.method_name == REGRESS_METHOD):
            return key
    raise InvalidArgument(
        f"signature '{signature.name}' cannot regress: it needs an 'outputs' output or a single "
        f"float output of one value per example (it has "
        f"{', '.join(f'{k} {s.describe()}' for k, s in signature.outputs.items())})",
        field="model_spec.signature_name",
    )


def to_classes(
    outputs: Mapping[str, np.ndarray], scores: str | None, classes: str | None
) -> Classes:
    score_array = None if scores is None else _matrix(outputs[scores])
    class_array = None if classes is None else _matrix(outputs[classes])
    return Classes(score_array, class_array)


def to_values(outputs: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    value = outputs[key]
    return value.reshape(value.shape[0]) if value.ndim == 2 else value.reshape(-1)


def _matrix(value: np.ndarray) -> np.ndarray:
    return value.reshape(value.shape[0], -1) if value.ndim != 2 else value
