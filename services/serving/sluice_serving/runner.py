"""Calling a model: the small interface the data plane needs, and its TensorFlow SavedModel form.

The data plane only sees `ModelRunner`, so it can be tested with plain-Python fakes; TensorFlow is
imported by `SavedModelRunner` alone. The hot path is one call of the signature's concrete
function on tensors made straight from numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


class SavedModelRunner:
    """A TensorFlow SavedModel loaded with ``tf.saved_model.load``."""

    def __init__(self, folder: Path) -> None:
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

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
        self._signatures: dict[str, Signature] = {}
        self._signature_defs: dict[str, bytes] = {}
        for name, signature_def in signature_defs.items():
            if name.startswith("__"):  # e.g. __saved_model_init_op
                continue
            if name not in self._loaded.signatures:
                continue
            self._functions[name] = self._loaded.signatures[name]
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

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        convert = self._tf.convert_to_tensor
        outputs = self._functions[signature](**{k: convert(v) for k, v in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def close(self) -> None:
        self._functions.clear()
        self._loaded = None


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
