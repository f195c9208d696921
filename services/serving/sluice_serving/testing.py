"""Tiny SavedModels and helpers for tests of serving and of the services around it.

Each builder exports a model in well under a second; `upload` puts a folder into an artifact store
and returns its digest, ready for `ServingCore.load_version`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.artifacts.digest import model_digest

from sluice_serving.core import ServingCore, VersionInfo, VersionState


def export_numeric_keras(path: Path) -> Path:
    """Keras: 4 numeric features in one input 'features' -> one output 'output_0'."""
    import keras

    inputs = keras.Input(shape=(4,), name="features", dtype="float32")
    hidden = keras.layers.Dense(3, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="score")(hidden)
    model = keras.Model(inputs, outputs)
    model.get_layer("hidden").set_weights(
        [
            np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5,
            np.array([0.1, 0.0, -0.1], np.float32),
        ]
    )
    model.get_layer("score").set_weights(
        [np.array([[1.0], [-2.0], [0.5]], np.float32), np.array([0.3], np.float32)]
    )
    model.export(str(path), verbose=False)
    return path


class _DictModel(tf.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.age_weight = tf.Variable(0.1)
        self.income_weight = tf.Variable(0.001)

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[
            {
                "age": tf.TensorSpec([None], tf.int64, name="age"),
                "income": tf.TensorSpec([None], tf.float32, name="income"),
                "country": tf.TensorSpec([None], tf.string, name="country"),
            }
        ]
    )
    def serve(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        domestic = tf.cast(tf.equal(features["country"], "NL"), tf.float32)
        score = (
            tf.cast(features["age"], tf.float32) * self.age_weight
            + features["income"] * self.income_weight
            + domestic
        )
        return {"score": score, "domestic": domestic > 0}


def export_dict_model(path: Path) -> Path:
    """tf.Module: features age (int64), income (float32), country (string) -> score, domestic."""
    module = _DictModel()
    serve = module.serve.get_concrete_function()

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[
            tf.TensorSpec([None], tf.int64, name="age"),
            tf.TensorSpec([None], tf.float32, name="income"),
            tf.TensorSpec([None], tf.string, name="country"),
        ]
    )
    def serving_default(
        age: tf.Tensor, income: tf.Tensor, country: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        outputs: dict[str, tf.Tensor] = serve({"age": age, "income": income, "country": country})
        return outputs

    tf.saved_model.save(module, str(path), signatures={"serving_default": serving_default})
    return path


class _Classifier(tf.Module):  # type: ignore[misc]
    labels = tf.constant([b"low", b"high"])

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")]
    )
    def classify(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        scores = tf.nn.softmax(x, axis=1)
        classes = tf.tile(self.labels[tf.newaxis, :], [tf.shape(x)[0], 1])
        return {"scores": scores, "classes": classes}

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")]
    )
    def regress(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"outputs": x[:, 1] - x[:, 0]}


def export_classifier(path: Path) -> Path:
    """x [N, 2] -> 'serving_default': scores = softmax(x), classes [b'low', b'high'];
    'regress': outputs = x1 - x0."""
    module = _Classifier()
    tf.saved_model.save(
        module,
        str(path),
        signatures={"serving_default": module.classify, "regress": module.regress},
    )
    return path


class _Linear(tf.Module):  # type: ignore[misc]
    def __init__(self, weight: float, fail_on_zero: bool = False) -> None:
        super().__init__()
        self.weight = tf.Variable(weight)
        self.fail_on_zero = fail_on_zero

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")]
    )
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        if self.fail_on_zero:
            tf.debugging.assert_greater(tf.reduce_sum(tf.abs(x)), 0.0, message="all-zero input")
        return {"y": tf.reduce_sum(x, axis=1) * self.weight}


def export_linear(path: Path, weight: float, *, fail_on_zero: bool = False) -> Path:
    """y = weight * (x0 + x1); with fail_on_zero the model raises on an all-zero batch."""
    module = _Linear(weight, fail_on_zero)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def upload(store: ArtifactStore, folder: Path, prefix: str) -> str:
    """Put every file of ``folder`` under ``prefix/``; return the folder's digest."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            store.put_file(f"{prefix}/{path.relative_to(folder).as_posix()}", path)
    return model_digest(folder)


def in_process(folder: Path, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    """What the SavedModel answers when called directly."""
    loaded = tf.saved_model.load(str(folder))
    outputs = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    return {key: value.numpy() for key, value in outputs.items()}


def serve_folder(
    core: ServingCore, store: ArtifactStore, folder: Path, model: str, version: int = 1
) -> VersionInfo:
    """Upload ``folder`` as ``models/<model>/<version>`` and load it; AssertionError unless it
    becomes available."""
    prefix = f"models/{model}/{version}"
    digest = upload(store, folder, prefix)
    info = core.load_version(model, version, prefix, digest=digest, wait=True)
    if info.state is not VersionState.AVAILABLE:
        raise AssertionError(f"{model} version {version} is {info.state.value}: {info.error}")
    return info
