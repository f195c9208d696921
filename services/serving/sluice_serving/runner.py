"""Calling a model: the small interface the data plane needs, and its TensorFlow SavedModel form.

The data plane only sees `ModelRunner`, so it can be tested with plain-Python fakes; TensorFlow is
imported by `SavedModelRunner` alone. The hot path is one call of the signature's graph function
on tensors made straight from numpy arrays (see `_flat_call` for why not the public call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sluice_serving.signature import Signature, TensorSpec
from sluice_serving.tensors import numpy_dtype_of_tf

SERVE_TAG = "serve"


class ModelRunner(Protocol):
    """A loaded model version."""

    @property
    def signatures(self) -> Mapping[str, Signature]: ...

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by key for inputs already checked against the signature."""
        ...

    def signature_defs(self) -> Mapping[str, bytes]:
        """Serialized ``tensorflow.SignatureDef`` per signature name; empty when not known."""
        ...

    def close(self) -> None:
        """Release the model's memory; the runner is not used afterwards."""
        ...


RunnerFactory = Callable[[Path], ModelRunner]
"""Loads the model in a local folder (raises when the folder is not a loadable model)."""

_Call = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


class SavedModelRunner:
    """A TensorFlow SavedModel loaded with ``tf.saved_model.load``.

    ``flat_calls=False`` always goes through the signatures' public call (tests compare the two).
    """

    def __init__(self, folder: Path, *, flat_calls: bool = True) -> None:
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        # A training service Model artifact holds `saved_model/` beside `model.keras` and its
        # manifest; the digest covers that whole folder, so descend only to load the graph.
        if not (folder / "saved_model.pb").is_file() and (folder / "saved_model").is_dir():
            folder = folder / "saved_model"
        proto_path = folder / "saved_model.pb"
        if not proto_path.is_file():
            raise ValueError(f"{folder.name} has no saved_model.pb: not a SavedModel folder")
        saved_model = saved_model_pb2.SavedModel.FromString(proto_path.read_bytes())
        meta_graphs = [
            graph for graph in saved_model.meta_graphs if SERVE_TAG in graph.meta_info_def.tags
        ]
        if not meta_graphs:
            raise ValueError("the SavedModel has no meta graph tagged 'serve'")
        signature_defs = meta_graphs[0].signature_def
        self._tf = tf
        self._loaded: Any = tf.saved_model.load(str(folder), tags=[SERVE_TAG])
        self._functions: dict[str, Any] = {}
        self._calls: dict[str, _Call] = {}
        self._flat: list[str] = []
        self._signatures: dict[str, Signature] = {}
        self._signature_defs: dict[str, bytes] = {}
        for name, signature_def in signature_defs.items():
            if name.startswith("__"):  # e.g. __saved_model_init_op
                continue
            if name not in self._loaded.signatures:
                continue
            function = self._loaded.signatures[name]
            self._functions[name] = function
            flat = _flat_call(tf, function) if flat_calls else None
            if flat is not None:
                self._flat.append(name)
            self._calls[name] = flat or _public_call(tf, function)
            self._signatures[name] = Signature(
                name=name,
                inputs=_specs(signature_def.inputs),
                outputs=_specs(signature_def.outputs),
                method_name=signature_def.method_name,
            )
            self._signature_defs[name] = signature_def.SerializeToString()
        if not self._signatures:
            raise ValueError("the SavedModel has no servable signature")

    @property
    def signatures(self) -> Mapping[str, Signature]:
        return self._signatures

    def signature_defs(self) -> Mapping[str, bytes]:
        return self._signature_defs

    @property
    def flat_signatures(self) -> Sequence[str]:
        """The signatures called through their graph function directly (see `_flat_call`)."""
        return list(self._flat)

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._calls[signature](inputs)

    def close(self) -> None:
        self._calls.clear()
        self._functions.clear()
        self._loaded = None


def _public_call(tf: Any, function: Any) -> _Call:
    convert = tf.convert_to_tensor

    def call(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = function(**{key: convert(value) for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    return call


def _flat_call(tf: Any, function: Any) -> _Call | None:
    """Call a loaded signature's graph function with flat tensors, or None where that is not safe.

    The public call binds keyword arguments to the function type, casts and checks every input
    and flattens and packs the structures: about half of the Python time of a call of a small
    model, paid under the GIL by every batch. The serving checks have already matched names,
    dtypes and shapes to the signature, so the graph function can take the tensors directly:
    inputs in the order of the function type's parameters (which must be the graph's first
    arguments), then the captured variable handles; outputs come back in the order of the sorted
    output keys. These are TensorFlow internals (checked here, and against the public call by the
    tests); when they are not as expected the public call is used.
    """
    try:
        atomic = function._inference_function
        names = [parameter.name for parameter in function.function_type.parameters.values()]
        captured = list(function.captured_inputs)
        expected_args = [arg.name for arg in atomic.cached_definition.signature.input_arg]
        keys = sorted(function.structured_outputs)
        output_names = [spec.name for spec in function.function_type.flat_outputs]
        call_flat = atomic.call_flat
    except Exception:  # TensorFlow internals changed
        return None
    if (
        expected_args[: len(names)] != names
        or len(expected_args) != len(names) + len(captured)
        or not all(isinstance(handle, tf.Tensor) for handle in captured)
        or output_names != keys
    ):
        return None
    convert = tf.convert_to_tensor

    def call(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = call_flat(*[convert(inputs[name]) for name in names], *captured)
        return {key: value.numpy() for key, value in zip(keys, outputs, strict=True)}

    return call


def _specs(tensor_infos: Mapping[str, Any]) -> dict[str, TensorSpec]:
    specs: dict[str, TensorSpec] = {}
    for key, info in tensor_infos.items():
        dtype = numpy_dtype_of_tf(info.dtype)
        if dtype is None:
            raise ValueError(f"signature tensor '{key}' has a dtype serving cannot carry")
        shape = (
            None
            if info.tensor_shape.unknown_rank
            else tuple(int(dim.size) for dim in info.tensor_shape.dim)
        )
        specs[key] = TensorSpec(key, dtype, shape)
    return specs
