"""Preprocessing as Keras layers, so the exported model takes RAW features.

A job's model is split in two:

* the *core* model (what is trained): all numeric features as one raw float32 matrix
  (``NUMERIC_INPUT``, columns in plan order, NaN = missing; filled and normalised inside it by
  `FillMissing` and ``Normalization``) and each categorical feature as int32 indices. It runs on
  every Keras backend. One matrix rather than a tensor per feature: on a GPU, feeding 32 separate
  arrays a step made the reference MLP five times slower.
* the *encoders*: ``StringLookup`` / ``IntegerLookup`` (vocabulary + out-of-vocabulary buckets) or
  ``Hashing``, turning raw text or integers into those indices. Keras implements these layers with
  TensorFlow, so they cannot sit inside a JAX- or PyTorch-compiled train step.

Training applies the encoders once to the data (`encode`); the export composes encoders and core
into one model (`serving_model`), which is what ``model.keras`` and the SavedModel hold. Both use
the very same layer objects built from the `FeaturePlan`, so training and serving cannot disagree
on an index. A numeric-only model never touches the encoders and never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from sluice_training.features import MISSING_INTEGER, Feature, FeatureKind, FeaturePlan

CORE_MODEL_NAME = "core"
SERVING_MODEL_NAME = "serving_model"
NUMERIC_INPUT = "__numeric__"


@keras.saving.register_keras_serializable(package="sluice_training")
class FillMissing(keras.layers.Layer):  # type: ignore[misc]
    """Replaces NaN (a missing numeric value) with ``fill_value``, usually the feature's mean; a
    list gives one value per column of a (batch, columns) input."""

    def __init__(self, fill_value: float | list[float] = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fill_value = (
            [float(v) for v in fill_value]
            if isinstance(fill_value, list | tuple)
            else float(fill_value)
        )

    def call(self, inputs: Any) -> Any:
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        fill = keras.ops.convert_to_tensor(self.fill_value, dtype=self.compute_dtype)
        return keras.ops.where(keras.ops.isnan(inputs), fill, inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fill_value": self.fill_value}


@keras.saving.register_keras_serializable(package="sluice_training")
class StackColumns(keras.layers.Layer):  # type: ignore[misc]
    """One (batch, n) float tensor from n per-feature (batch,) inputs."""

    def call(self, inputs: Any) -> Any:
        return keras.ops.stack([keras.ops.cast(t, self.compute_dtype) for t in inputs], axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0][0], len(input_shape))


@keras.saving.register_keras_serializable(package="sluice_training")
class ToIndex(keras.layers.Layer):  # type: ignore[misc]
    """Casts encoder output (int64 under TensorFlow) to the core model's int32 indices."""

    def call(self, inputs: Any) -> Any:
        return keras.ops.cast(inputs, "int32")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def compute_output_spec(self, inputs: Any) -> Any:
        return keras.KerasTensor(inputs.shape, dtype="int32")


def raw_dtype(feature: Feature) -> str:
    """The dtype of a feature's raw input in the serving signature."""
    return {
        FeatureKind.NUMERIC: "float32",
        FeatureKind.STRING: "string",
        FeatureKind.INTEGER: "int64",
    }[feature.kind]


def numeric_features(plan: FeaturePlan) -> list[Feature]:
    """The numeric features, in the column order of ``NUMERIC_INPUT``."""
    return [f for f in plan.features if not f.categorical]


def core_inputs(plan: FeaturePlan) -> dict[str, Any]:
    """The core model's ``keras.Input``s: ``NUMERIC_INPUT`` of shape (n,) when there are numeric
    features, and one (batch,) int32 input per categorical feature, named after it."""
    inputs: dict[str, Any] = {}
    numeric = numeric_features(plan)
    if numeric:
        inputs[NUMERIC_INPUT] = keras.Input(
            shape=(len(numeric),), dtype="float32", name=NUMERIC_INPUT
        )
    for feature in plan.features:
        if feature.categorical:
            inputs[feature.name] = keras.Input(shape=(), dtype="int32", name=feature.name)
    return inputs


def encoder(feature: Feature) -> keras.layers.Layer:
    """The layer that turns a categorical feature's raw values into indices."""
    if feature.hash_bins:
        return keras.layers.Hashing(num_bins=feature.hash_bins, name=f"hash_{feature.layer_name}")
    if feature.kind is FeatureKind.STRING:
        return keras.layers.StringLookup(
            vocabulary=[str(v) for v in feature.vocabulary],
            num_oov_indices=feature.num_oov_buckets,
            mask_token=None,
            name=f"lookup_{feature.layer_name}",
        )
    return keras.layers.IntegerLookup(
        vocabulary=[int(v) for v in feature.vocabulary if int(v) != MISSING_INTEGER],
        num_oov_indices=feature.num_oov_buckets,
        mask_token=None,
        oov_token=MISSING_INTEGER,
        name=f"lookup_{feature.layer_name}",
    )


def encode(
    plan: FeaturePlan, raw: Mapping[str, np.ndarray], *, chunk_rows: int = 1 << 18
) -> dict[str, np.ndarray]:
    """Core model inputs from raw arrays: numeric columns stacked into ``NUMERIC_INPUT``,
    categorical ones through their encoder (in chunks, to bound memory)."""
    encoded: dict[str, np.ndarray] = {}
    numeric = numeric_features(plan)
    if numeric:
        encoded[NUMERIC_INPUT] = np.stack(
            [np.asarray(raw[f.name], dtype=np.float32) for f in numeric], axis=1
        )
    for feature in plan.features:
        if not feature.categorical:
            continue
        values = raw[feature.name]
        layer = encoder(feature)
        parts = [
            np.asarray(keras.ops.convert_to_numpy(layer(values[start : start + chunk_rows])))
            for start in range(0, len(values), chunk_rows)
        ]
        encoded[feature.name] = np.concatenate(parts).astype(np.int32)
    return encoded


def serving_model(core: keras.Model, plan: FeaturePlan) -> keras.Model:
    """Raw features in (one (batch,) input per feature), the core's predictions out: numeric
    inputs stacked, categorical ones through their encoders, then ``core``."""
    needed = set(input_names(core))
    numeric = numeric_features(plan) if NUMERIC_INPUT in needed else []
    used = [f for f in plan.features if f.name in needed or f in numeric]
    # Only the features the core reads: an input connected to nothing is an error in Keras.
    inputs = {f.name: keras.Input(shape=(), dtype=raw_dtype(f), name=f.name) for f in used}
    fed: dict[str, Any] = {}
    if numeric:
        fed[NUMERIC_INPUT] = StackColumns(name="stack_numeric")([inputs[f.name] for f in numeric])
    for feature in used:
        if feature.categorical:
            encoded = encoder(feature)(inputs[feature.name])
            fed[feature.name] = ToIndex(name=f"index_{feature.layer_name}")(encoded)
    outputs = core(fed)
    return keras.Model(inputs=inputs, outputs=outputs, name=SERVING_MODEL_NAME)


def input_names(model: keras.Model) -> list[str]:
    """The names of a model's inputs (its ``keras.Input`` names)."""
    return [str(tensor.name) for tensor in keras.tree.flatten(model.inputs)]


def core_of(model: keras.Model) -> keras.Model:
    """The core model inside a serving model (the model itself when it has none)."""
    if model.name == SERVING_MODEL_NAME:
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                return layer
    return model
