"""Running a model over the evaluation data: its serving signature, on raw features, in batches.

The model is a TensorFlow SavedModel folder whose ``serving_default`` signature takes the raw
feature columns by name (preprocessing is baked in by the training service). The SavedModel may
sit at the folder's root or in one subfolder (``<model>/saved_model/``). TensorFlow is imported
by `SavedModelPredictor` alone, so the rest of the service is testable with plain fakes.

Which output is the prediction: the only output, else the first present of ``probabilities``,
``probability``, ``predictions``, ``prediction``, ``scores``, ``score``, ``output_0``, ``outputs``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

DEFAULT_SIGNATURE = "serving_default"
OUTPUT_PREFERENCE = (
    "probabilities",
    "probability",
    "predictions",
    "prediction",
    "scores",
    "score",
    "output_0",
    "outputs",
)


MANIFEST_NAME = "sluice_manifest.json"


@dataclass(frozen=True)
class ModelManifest:
    """What the training service's ``sluice_manifest.json`` says about the model, when present.

    Attributes:
        task: "binary", "multiclass" or "regression" ("" when unknown).
        label_vocabulary: text (or numeric) label values in class order; empty when the labels are
            class indices already.
    """

    task: str = ""
    label_vocabulary: tuple[str | int | float, ...] = ()


def read_manifest(folder: Path) -> ModelManifest:
    """The manifest of a model folder; an empty one when there is none or it cannot be read."""
    try:
        document = json.loads((folder / MANIFEST_NAME).read_text())
        label = document.get("feature_plan", {}).get("label", {})
        task = document.get("task") or label.get("task") or ""
        vocabulary = tuple(label.get("vocabulary") or ())
    except (OSError, ValueError, AttributeError):
        return ModelManifest()
    return ModelManifest(str(task), vocabulary)


class ModelUnloadable(Exception):
    """The folder is not a loadable SavedModel with a serving signature."""


class SignatureMismatch(Exception):
    """The data does not fit the model's serving signature, or the model rejected it."""


@dataclass(frozen=True)
class InputSpec:
    """One input of the serving signature: its kind and its shape (-1 for any size)."""

    name: str
    kind: str  # "float", "int", "string" or "bool"
    shape: tuple[int, ...] | None
    # The numpy dtype the model takes, e.g. "int32"; "" for the kind's default.
    dtype: str = ""


@dataclass(frozen=True)
class Inference:
    """Predictions, one row per example, and the seconds spent in the model's own calls."""

    predictions: np.ndarray
    seconds: float


class Predictor(Protocol):
    """A loaded model."""

    @property
    def inputs(self) -> Mapping[str, InputSpec]: ...

    def predict_batch(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """The prediction output for a batch of converted inputs."""
        ...


ModelLoader = Callable[[Path], Predictor]


def predict(
    predictor: Predictor,
    frame: pd.DataFrame,
    batch_size: int,
    checkpoint: Callable[[float], None] | None = None,
) -> Inference:
    """Run ``predictor`` over every row of ``frame``, ``batch_size`` rows per call.

    Raises:
        SignatureMismatch: a signature input has no column, a column cannot be converted, or the
            model rejected a batch.
    """
    features = {name: feature_array(frame, spec) for name, spec in predictor.inputs.items()}
    n = len(frame)
    parts: list[np.ndarray] = []
    seconds = 0.0
    for start in range(0, n, batch_size):
        if checkpoint is not None:
            checkpoint(start / n)
        batch = {name: values[start : start + batch_size] for name, values in features.items()}
        began = time.perf_counter()
        try:
            output = predictor.predict_batch(batch)
        except SignatureMismatch:
            raise
        except Exception as error:  # TensorFlow raises many kinds; all mean "rejected the data"
            raise SignatureMismatch(
                f"the model failed on rows {start:,} to {min(start + batch_size, n) - 1:,}: "
                f"{_first_line(error)}"
            ) from None
        seconds += time.perf_counter() - began
        rows = min(batch_size, n - start)
        output = np.asarray(output)
        if output.ndim == 0 or output.shape[0] != rows:
            raise SignatureMismatch(
                f"the model returned {output.shape} for a batch of {rows} rows; expected one "
                "prediction per row"
            )
        parts.append(output.reshape(rows, -1))
    predictions = np.concatenate(parts) if parts else np.zeros((0, 1))
    if predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    return Inference(predictions.astype(np.float64), seconds)


def feature_array(frame: pd.DataFrame, spec: InputSpec) -> np.ndarray:
    """The column of ``frame`` an input takes, converted to its dtype and shape."""
    if spec.name not in frame.columns:
        raise SignatureMismatch(
            f"the model's serving signature takes feature {spec.name!r}, which the evaluation "
            f"data lacks (columns: {', '.join(map(str, frame.columns))})"
        )
    column = frame[spec.name]
    try:
        if spec.kind == "string":
            values = column.astype(object).where(column.notna(), "").astype(str).to_numpy(object)
        elif spec.kind == "int":
            if column.isna().any():
                raise ValueError("it has missing values, and the model takes integers")
            values = pd.to_numeric(column).to_numpy(spec.dtype or np.int64)
        elif spec.kind == "bool":
            values = column.astype(bool).to_numpy()
        else:
            values = pd.to_numeric(column).to_numpy(spec.dtype or np.float32, na_value=np.nan)
    except (ValueError, TypeError) as error:
        raise SignatureMismatch(
            f"feature {spec.name!r} cannot be given to the model as {spec.kind}: {error}"
        ) from None
    values = np.asarray(values)
    if spec.shape is not None and len(spec.shape) == 2 and spec.shape[1] == 1:
        return values.reshape(-1, 1)
    if spec.shape is not None and len(spec.shape) != 1:
        raise SignatureMismatch(
            f"the model takes feature {spec.name!r} with shape {list(spec.shape)}; one column of "
            "the evaluation data can only fill [batch] or [batch, 1]"
        )
    return values


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:500]


def find_saved_model(folder: Path) -> Path:
    """The SavedModel folder: ``folder`` itself or its one subfolder holding saved_model.pb."""
    if (folder / "saved_model.pb").is_file():
        return folder
    found = sorted(p.parent for p in folder.glob("*/saved_model.pb"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelUnloadable("no saved_model.pb in the model folder or its subfolders")
    raise ModelUnloadable(
        f"several SavedModels in the model folder ({', '.join(p.name for p in found)}); "
        "point at one"
    )


class SavedModelPredictor:
    """A SavedModel's serving signature, called with tensors made from numpy arrays."""

    def __init__(self, folder: Path, signature: str = DEFAULT_SIGNATURE) -> None:
        import tensorflow as tf

        root = find_saved_model(folder)
        try:
            loaded = tf.saved_model.load(str(root))
        except Exception as error:
            raise ModelUnloadable(f"TensorFlow cannot load it: {_first_line(error)}") from None
        signatures = getattr(loaded, "signatures", {})
        if signature not in signatures:
            raise ModelUnloadable(
                f"it has no {signature!r} signature (it has: {', '.join(signatures) or 'none'})"
            )
        self._tf = tf
        self._loaded = loaded
        self._function = signatures[signature]
        _, keyword_specs = self._function.structured_input_signature
        self._inputs = {
            name: InputSpec(
                name,
                _kind(tf, spec.dtype),
                _shape(spec.shape),
                "" if spec.dtype == tf.string else np.dtype(spec.dtype.as_numpy_dtype).name,
            )
            for name, spec in keyword_specs.items()
        }
        self._output = _output_key(list(self._function.structured_outputs))

    @property
    def inputs(self) -> Mapping[str, InputSpec]:
        return self._inputs

    def predict_batch(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        tensors = {name: self._tf.constant(values) for name, values in features.items()}
        outputs: Any = self._function(**tensors)
        return np.asarray(outputs[self._output].numpy())


def _kind(tf: Any, dtype: Any) -> str:
    if dtype == tf.string:
        return "string"
    if dtype == tf.bool:
        return "bool"
    if dtype.is_integer:
        return "int"
    if dtype.is_floating:
        return "float"
    raise ModelUnloadable(
        f"its serving signature takes a {dtype.name} input, which data cannot fill"
    )


def _shape(shape: Any) -> tuple[int, ...] | None:
    if shape.rank is None:
        return None
    return tuple(-1 if dim is None else int(dim) for dim in shape.as_list())


def _output_key(keys: list[str]) -> str:
    if len(keys) == 1:
        return keys[0]
    for key in OUTPUT_PREFERENCE:
        if key in keys:
            return key
    raise ModelUnloadable(
        f"its serving signature has outputs {', '.join(sorted(keys))}; none is named like a "
        f"prediction ({', '.join(OUTPUT_PREFERENCE)})"
    )
