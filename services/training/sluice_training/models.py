"""The core models: built-in DNN and wide-and-deep derived from the feature plan, or a user module.

User modules
------------
A user module is an importable Python module (or a ``.py`` file / pure-Python wheel in the
artifact store, ``UserModule.source_uri``) with::

    def build_model(schema: sluice_training.models.ModelSchema, hparams: dict) -> keras.Model

``schema`` describes the inputs the service feeds; ``schema.inputs()`` builds them (a dict; use
any subset). All numeric features arrive together as one raw float32 matrix,
``inputs[schema.NUMERIC]`` of shape (batch, len(schema.numeric_features)), columns in that order
and NaN where a value is missing (``schema.numeric(inputs)`` fills and standardises it); each
categorical feature arrives as int32 indices in ``[0, schema.cardinality(name))`` under its name
(``schema.embedding(name, dim)`` makes an embedding whose rows are remapped by token on a warm
start). ``schema.proto`` is the tensorflow.metadata Schema; ``schema.task``, ``schema.label`` and
``schema.num_classes`` describe the target. A model returned uncompiled is compiled with the
task's default loss, the ``optimizer`` and ``learning_rate`` hyperparameters and the task's metrics.

Hyperparameters of the built-in models (defaults in brackets): learning_rate [0.001], optimizer
[adam: adam, sgd, rmsprop, adagrad], dropout [0.0], embedding_dim [min(16, 4th root of the
cardinality x 4)], hidden_units (the spec's hidden_units win) [128, 64].
"""

from __future__ import annotations

import importlib
import math
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
from sluice_runtime.artifacts import ArtifactNotFound, ArtifactStore
from tensorflow_metadata.proto.v0 import schema_pb2

from sluice_training.failures import TrainingFailure
from sluice_training.features import FeaturePlan
from sluice_training.locations import key_of
from sluice_training.plan import ModelFamily, ModelPlan, Task
from sluice_training.preprocessing import (
    CORE_MODEL_NAME,
    NUMERIC_INPUT,
    FillMissing,
    core_inputs,
    numeric_features,
)

DEFAULT_LEARNING_RATE = 1e-3
OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
}


class ModelSchema:
    """What a user's ``build_model`` gets as ``schema``: the inputs the service will feed."""

    NUMERIC = NUMERIC_INPUT

    def __init__(self, proto: schema_pb2.Schema, plan: FeaturePlan) -> None:
        self.proto = proto
        self.plan = plan

    @property
    def task(self) -> str:
        """ "binary", "multiclass" or "regression"."""
        return self.plan.label.task.value

    @property
    def label(self) -> str:
        return self.plan.label.name

    @property
    def num_classes(self) -> int:
        return self.plan.label.num_classes

    @property
    def numeric_features(self) -> list[str]:
        """The columns of ``inputs()[NUMERIC]``, in order."""
        return [f.name for f in numeric_features(self.plan)]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.plan.features if f.categorical]

    def cardinality(self, name: str) -> int:
        """Indices a categorical feature takes (vocabulary + OOV buckets, or hash bins)."""
        return self.plan.feature(name).cardinality

    def inputs(self) -> dict[str, Any]:
        """``NUMERIC`` (all numeric features) and one input per categorical feature."""
        return core_inputs(self.plan)

    def numeric(self, inputs: Mapping[str, Any]) -> Any:
        """The numeric matrix with missing values filled by the means, then standardised."""
        return _numeric_block(self.plan, inputs)

    def embedding(self, name: str, output_dim: int) -> keras.layers.Layer:
        """An embedding for a categorical feature, named so a warm start remaps it by token."""
        feature = self.plan.feature(name)
        return keras.layers.Embedding(
            feature.cardinality, output_dim, name=f"embed_{feature.layer_name}"
        )


# -- built-in models -----------------------------------------------------------------------------


def build_builtin(plan: FeaturePlan, model: ModelPlan, hparams: Mapping[str, Any]) -> keras.Model:
    """The built-in core model for ``plan``; layer names derive from feature names, so a warm
    start can match them across spans."""
    inputs = core_inputs(plan)
    dropout = _float(hparams, "dropout", 0.0, low=0.0, high=0.99)
    numeric = _numeric_block(plan, inputs)
    deep_parts = [] if numeric is None else [numeric]
    for feature in plan.features:
        if feature.categorical:
            dim = _int(hparams, "embedding_dim", _default_embedding_dim(feature.cardinality))
            deep_parts.append(
                keras.layers.Embedding(
                    feature.cardinality, dim, name=f"embed_{feature.layer_name}"
                )(inputs[feature.name])
            )
    hidden = _concat(deep_parts, "deep_inputs")
    units = list(model.hidden_units) or _hidden_units(hparams)
    for index, width in enumerate(units):
        hidden = keras.layers.Dense(width, activation="relu", name=f"hidden_{index}")(hidden)
        if dropout > 0:
            hidden = keras.layers.Dropout(dropout, name=f"dropout_{index}")(hidden)
    head_units = plan.label.num_classes if plan.label.task is Task.MULTICLASS else 1
    if model.family is ModelFamily.WIDE_AND_DEEP:
        deep_logits = keras.layers.Dense(head_units, name="deep_logits")(hidden)
        wide_parts = [
            keras.layers.Embedding(f.cardinality, head_units, name=f"wide_{f.layer_name}")(
                inputs[f.name]
            )
            for f in plan.features
            if f.categorical
        ]
        if numeric is not None:
            wide_parts.append(keras.layers.Dense(head_units, name="wide_numeric")(numeric))
        logits = keras.layers.Add(name="logits")([deep_logits, *wide_parts])
        outputs = keras.layers.Activation(_activation(plan.label.task), name="predictions")(logits)
    else:
        outputs = keras.layers.Dense(
            head_units, activation=_activation(plan.label.task), name="predictions"
        )(hidden)
    return keras.Model(inputs=inputs, outputs=outputs, name=CORE_MODEL_NAME)


def compile_for_task(model: keras.Model, task: Task, hparams: Mapping[str, Any]) -> None:
    """Compile with the task's loss and metrics and the chosen optimizer."""
    name = str(hparams.get("optimizer", "adam")).lower()
    if name not in OPTIMIZERS:
        raise TrainingFailure(
            "INVALID_HYPERPARAMETER",
            f"hyperparameter optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}",
            field="spec.hyperparameters.optimizer",
        )
    rate = _float(hparams, "learning_rate", DEFAULT_LEARNING_RATE, low=0.0, high=math.inf)
    optimizer = OPTIMIZERS[name](learning_rate=rate)
    model.compile(optimizer=optimizer, loss=task_loss(task), metrics=task_metrics(task))


def task_loss(task: Task) -> str:
    return {
        Task.BINARY: "binary_crossentropy",
        Task.MULTICLASS: "sparse_categorical_crossentropy",
        Task.REGRESSION: "mean_squared_error",
    }[task]


def task_metrics(task: Task) -> list[keras.metrics.Metric]:
    if task is Task.BINARY:
        return [keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="accuracy")]
    if task is Task.MULTICLASS:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return [
        keras.metrics.RootMeanSquaredError(name="rmse"),
        keras.metrics.MeanAbsoluteError(name="mae"),
    ]


# -- user modules --------------------------------------------------------------------------------


def build_user_model(
    model: ModelPlan,
    schema: ModelSchema,
    hparams: Mapping[str, Any],
    store: ArtifactStore,
    work_dir: Path,
) -> keras.Model:
    """Import the user module and call its function.

    Raises:
        TrainingFailure: USER_MODULE_IMPORT_FAILED, or USER_MODEL_INVALID when the function raises
            or returns something that is not a keras.Model with inputs named after features.
    """
    function = _load_function(model, store, work_dir)
    try:
        built = function(schema, dict(hparams))
    except Exception as error:
        raise TrainingFailure(
            "USER_MODEL_INVALID",
            f"{model.module}.{model.function}(schema, hparams) raised "
            f"{type(error).__name__}: {error}",
            field="spec.user_module",
        ) from error
    if not isinstance(built, keras.Model):
        raise TrainingFailure(
            "USER_MODEL_INVALID",
            f"{model.module}.{model.function} returned {type(built).__name__}, not a keras.Model",
            field="spec.user_module.function",
        )
    known = set(core_inputs(schema.plan))
    names = [str(t.name) for t in keras.tree.flatten(built.inputs)]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise TrainingFailure(
            "USER_MODEL_INVALID",
            f"the model's inputs {unknown} are not among those the service feeds "
            f"({sorted(known)}); build them with schema.inputs()",
            field="spec.user_module",
        )
    return built


def _load_function(model: ModelPlan, store: ArtifactStore, work_dir: Path) -> Any:
    if model.source_uri:
        key = key_of(model.source_uri, store, "spec.user_module.source_uri")
        folder = Path(tempfile.mkdtemp(prefix="user-module-", dir=work_dir))
        try:
            if key.endswith(".whl"):
                target = folder / key.rsplit("/", 1)[-1]
                store.get_file(key, target)
                sys.path.insert(0, str(target))  # pure-Python wheels import as zip archives
            else:
                store.get_file(key, folder / (model.module.rsplit(".", 1)[-1] + ".py"))
                sys.path.insert(0, str(folder))
        except ArtifactNotFound:
            raise TrainingFailure(
                "USER_MODULE_IMPORT_FAILED",
                f"no user module source at {model.source_uri}",
                field="spec.user_module.source_uri",
            ) from None
    try:
        module = importlib.import_module(model.module)
    except Exception as error:
        raise TrainingFailure(
            "USER_MODULE_IMPORT_FAILED",
            f"cannot import user module {model.module!r}: {type(error).__name__}: {error}",
            field="spec.user_module.module",
        ) from error
    function = getattr(module, model.function, None)
    if not callable(function):
        raise TrainingFailure(
            "USER_MODULE_IMPORT_FAILED",
            f"user module {model.module!r} has no function {model.function!r}",
            field="spec.user_module.function",
        )
    return function


# -- helpers --------------------------------------------------------------------------------------


def _numeric_block(plan: FeaturePlan, inputs: Mapping[str, Any]) -> Any:
    """The numeric features' (batch, n) input with missing values filled by the means, then
    standardised; None when there are none."""
    numeric = numeric_features(plan)
    if not numeric or NUMERIC_INPUT not in inputs:
        return None
    filled = FillMissing([f.mean for f in numeric], name="fill_numeric")(inputs[NUMERIC_INPUT])
    return keras.layers.Normalization(
        mean=[f.mean for f in numeric],
        variance=[f.variance for f in numeric],
        name="normalize_numeric",
    )(filled)


def _concat(parts: list[Any], name: str) -> Any:
    if len(parts) == 1:
        return parts[0]
    return keras.layers.Concatenate(name=name)(parts)


def _activation(task: Task) -> str:
    return {Task.BINARY: "sigmoid", Task.MULTICLASS: "softmax", Task.REGRESSION: "linear"}[task]


def _default_embedding_dim(cardinality: int) -> int:
    dim = round(4 * math.pow(cardinality, 0.25))
    return max(2, min(16, dim))


def _hidden_units(hparams: Mapping[str, Any]) -> list[int]:
    raw = hparams.get("hidden_units", [128, 64])
    if not isinstance(raw, list | tuple) or not all(
        isinstance(u, int | float) and u >= 1 and u == int(u) for u in raw
    ):
        raise TrainingFailure(
            "INVALID_HYPERPARAMETER",
            f"hyperparameter hidden_units must be a list of positive whole numbers, got {raw!r}",
            field="spec.hyperparameters.hidden_units",
        )
    return [int(u) for u in raw]


def _float(
    hparams: Mapping[str, Any], name: str, default: float, *, low: float, high: float
) -> float:
    value = hparams.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise TrainingFailure(
            "INVALID_HYPERPARAMETER",
            f"hyperparameter {name} must be a number in [{low}, {high}], got {value!r}",
            field=f"spec.hyperparameters.{name}",
        )
    return float(value)


def _int(hparams: Mapping[str, Any], name: str, default: int) -> int:
    value = hparams.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 1
        or value != int(value)
    ):
        raise TrainingFailure(
            "INVALID_HYPERPARAMETER",
            f"hyperparameter {name} must be a whole number of at least 1, got {value!r}",
            field=f"spec.hyperparameters.{name}",
        )
    return int(value)
