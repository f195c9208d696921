"""What a model accepts and returns: its signatures, as plain data (no TensorFlow types)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sluice_serving.tensors import dtype_name

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature.

    Attributes:
        name: its key in the signature (what requests use).
        dtype: numpy dtype; ``object`` for strings.
        shape: dimensions with -1 for "any size", or None when even the rank is unknown.
    """

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...] | None

    @property
    def batched(self) -> bool:
        """Whether the first dimension is the batch: present and of any size."""
        return self.shape is not None and len(self.shape) >= 1 and self.shape[0] == -1

    def describe(self) -> str:
        shape = "?" if self.shape is None else "[" + ", ".join(_dim(d) for d in self.shape) + "]"
        return f"{dtype_name(self.dtype)}{shape}"


@dataclass(frozen=True)
class Signature:
    """A named function of the model: inputs and outputs by key."""

    name: str
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    method_name: str = PREDICT_METHOD

    @property
    def batchable(self) -> bool:
        """Whether requests can be stacked along the first dimension and split afterwards."""
        return bool(self.inputs) and all(
            spec.batched for spec in (*self.inputs.values(), *self.outputs.values())
        )


def _dim(size: int) -> str:
    return "None" if size < 0 else str(size)
