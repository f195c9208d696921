"""Metric suites: per-example statistics whose weighted sums give the metrics of a task.

Every metric here is a function of weighted sums of per-example statistics (counts, squared
errors, log losses), so the metrics of a slice - and of each bootstrap resample of it - come from
one matrix product ``resample_weights.T @ statistics`` over the slice's examples. The ranking
metrics (AUC-ROC, AUC-PR) are the exception; `sluice_evaluation.ranking` computes those.

Conventions (those of TensorFlow Model Analysis and scikit-learn):

- binary classification: the prediction is the probability of the positive class; an example is
  predicted positive at decision threshold ``t`` when its prediction is above ``t``
  (``prediction > t``). ``accuracy`` is accuracy at 0.5; ``calibration`` is the weighted mean
  prediction over the weighted mean label.
- multi-class: the prediction is a row of class probabilities, the label a class index; a class is
  in the top k when fewer than k classes have a strictly higher probability.
- regression: ``r2`` is 1 - residual sum of squares / total sum of squares around the weighted mean
  label.
- log loss clips probabilities to [eps, 1 - eps] with eps the float64 machine epsilon.
- a metric whose denominator is zero (precision with no predicted positives, AUC of a slice with
  one class) is NaN: undefined, and never passes a threshold.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)
DEFAULT_DECISION_THRESHOLDS: tuple[float, ...] = (0.5,)
DEFAULT_TOP_K: tuple[int, ...] = (2, 3, 5)
# The threshold of the plain "accuracy" metric of binary classifiers.
ACCURACY_THRESHOLD = 0.5


class Task(enum.Enum):
    """What the model predicts; the values are the names used in EvaluationSpec.task."""

    BINARY = "binary_classification"
    MULTICLASS = "multiclass_classification"
    REGRESSION = "regression"

    @classmethod
    def parse(cls, name: str) -> Task:
        """A task from its name, or the training service's short one ("binary", ...)."""
        for task in cls:
            if name in (task.value, task.value.removesuffix("_classification")):
                return task
        choices = ", ".join(task.value for task in cls)
        raise ValueError(f"unknown task {name!r}; expected one of {choices}")


class Direction(enum.Enum):
    """Whether a larger value of a metric is better."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


# Directions by base name (the part before '@' or '['); metrics not listed have none by default.
_HIGHER_IS_BETTER = frozenset(
    {"auc", "auc_pr", "accuracy", "precision", "recall", "f1", "r2"}
    | {"true_positives", "true_negatives"}
)
_LOWER_IS_BETTER = frozenset(
    {"log_loss", "rmse", "mse", "mae", "false_positives", "false_negatives"}
)


def base_name(metric: str) -> str:
    """``precision@0.5`` -> ``precision``, ``recall[3]`` -> ``recall``."""
    for mark in ("@", "["):
        metric = metric.split(mark, 1)[0]
    return metric


def default_direction(metric: str) -> Direction | None:
    """The direction a change threshold uses when none is given; None when it has no natural one
    (calibration, means: neither larger nor smaller is better)."""
    name = base_name(metric)
    if name in _HIGHER_IS_BETTER or (name.startswith("top_") and name.endswith("_accuracy")):
        return Direction.HIGHER_IS_BETTER
    if name in _LOWER_IS_BETTER:
        return Direction.LOWER_IS_BETTER
    return None


def threshold_label(threshold: float) -> str:
    """How a decision threshold appears in metric names: 0.5 -> "0.5"."""
    return f"{threshold:g}"


def ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """numerator / denominator, NaN where the denominator is zero (the metric is undefined)."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


class MetricSuite(Protocol):
    """The metrics of one task, computed from weighted sums of per-example statistics.

    ``statistics`` gives one row per example and one column per statistic, every column already
    multiplied by the example weight; column 0 is the weight itself. ``metrics`` maps sums of those
    rows (any leading shape: slices, resamples) to metric values of the same leading shape.
    """

    @property
    def task(self) -> Task: ...

    @property
    def columns(self) -> tuple[str, ...]: ...

    @property
    def ranked(self) -> bool:
        """Whether AUC-ROC and AUC-PR are computed too (binary classification)."""
        ...

    def statistics(
        self, labels: FloatArray, predictions: FloatArray, weights: FloatArray
    ) -> FloatArray: ...

    def metrics(self, sums: FloatArray) -> dict[str, FloatArray]: ...

    def metric_names(self) -> list[str]:
        """Every metric name `metrics` returns, ranking metrics included, in display order."""
        ...


@dataclass(frozen=True)
class BinaryMetrics:
    """Binary classification: predictions are probabilities of the positive class."""

    decision_thresholds: tuple[float, ...] = DEFAULT_DECISION_THRESHOLDS

    @property
    def task(self) -> Task:
        return Task.BINARY

    @property
    def ranked(self) -> bool:
        return True

    @property
    def _cut_points(self) -> tuple[float, ...]:
        # The plain "accuracy" is at 0.5 whatever the decision thresholds are.
        points = dict.fromkeys(self.decision_thresholds)
        points[ACCURACY_THRESHOLD] = None
        return tuple(points)

    @property
    def columns(self) -> tuple[str, ...]:
        names = ["weight", "weighted_label", "weighted_prediction", "weighted_log_loss"]
        for t in self._cut_points:
            names += [f"predicted_positive@{t:g}", f"true_positive@{t:g}"]
        return tuple(names)

    def statistics(
        self, labels: FloatArray, predictions: FloatArray, weights: FloatArray
    ) -> FloatArray:
        clipped = np.clip(predictions, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        log_loss = -(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped))
        cuts = np.asarray(self._cut_points)
        above = predictions[:, None] > cuts[None, :]  # (n, thresholds)
        out = np.empty((len(labels), 4 + 2 * len(cuts)))
        out[:, 0] = weights
        out[:, 1] = weights * labels
        out[:, 2] = weights * predictions
        out[:, 3] = weights * log_loss
        out[:, 4::2] = above * weights[:, None]
        out[:, 5::2] = above * (weights * labels)[:, None]
        return out

    def metrics(self, sums: FloatArray) -> dict[str, FloatArray]:
        weight, positives, predicted, log_loss = (sums[..., i] for i in range(4))
        out: dict[str, FloatArray] = {
            "log_loss": ratio(log_loss, weight),
            "label_mean": ratio(positives, weight),
            "prediction_mean": ratio(predicted, weight),
            "calibration": ratio(predicted, positives),
        }
        for i, t in enumerate(self._cut_points):
            predicted_positive, tp = sums[..., 4 + 2 * i], sums[..., 5 + 2 * i]
            fp = predicted_positive - tp
            fn = positives - tp
            tn = weight - positives - fp
            accuracy = ratio(tp + tn, weight)
            if t == ACCURACY_THRESHOLD:
                out["accuracy"] = accuracy
            if t not in self.decision_thresholds:
                continue
            at = threshold_label(t)
            out[f"accuracy@{at}"] = accuracy
            out[f"precision@{at}"] = ratio(tp, predicted_positive)
            out[f"recall@{at}"] = ratio(tp, positives)
            out[f"f1@{at}"] = ratio(2 * tp, 2 * tp + fp + fn)
            out[f"true_positives@{at}"] = tp
            out[f"false_positives@{at}"] = fp
            out[f"true_negatives@{at}"] = tn
            out[f"false_negatives@{at}"] = fn
        return out

    def metric_names(self) -> list[str]:
        names = ["auc", "auc_pr", "log_loss", "accuracy"]
        for t in self.decision_thresholds:
            at = threshold_label(t)
            names += [f"{m}@{at}" for m in ("accuracy", "precision", "recall", "f1")]
            names += [
                f"{m}@{at}"
                for m in ("true_positives", "false_positives", "true_negatives", "false_negatives")
            ]
        return [*names, "calibration", "prediction_mean", "label_mean"]


@dataclass(frozen=True)
class MulticlassMetrics:
    """Multi-class classification: predictions are rows of class probabilities, labels class
    indices 0 .. num_classes - 1."""

    num_classes: int
    top_k: tuple[int, ...] = DEFAULT_TOP_K

    @property
    def task(self) -> Task:
        return Task.MULTICLASS

    @property
    def ranked(self) -> bool:
        return False

    @property
    def _ks(self) -> tuple[int, ...]:
        return tuple(k for k in self.top_k if 1 < k < self.num_classes)

    @property
    def columns(self) -> tuple[str, ...]:
        names = ["weight", "weighted_correct", "weighted_log_loss"]
        names += [f"weighted_top_{k}" for k in self._ks]
        for c in range(self.num_classes):
            names += [f"label[{c}]", f"predicted[{c}]", f"true_positive[{c}]"]
        return tuple(names)

    def statistics(
        self, labels: FloatArray, predictions: FloatArray, weights: FloatArray
    ) -> FloatArray:
        n = len(labels)
        classes = labels.astype(np.int64)
        rows = np.arange(n)
        true_score = predictions[rows, classes]
        predicted = np.argmax(predictions, axis=1)
        # Classes ranked above the true one; the true class is in the top k when fewer than k are.
        higher = (predictions > true_score[:, None]).sum(axis=1)
        clipped = np.clip(true_score, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        ks = self._ks
        out = np.zeros((n, 3 + len(ks) + 3 * self.num_classes))
        out[:, 0] = weights
        out[:, 1] = weights * (predicted == classes)
        out[:, 2] = -weights * np.log(clipped)
        for i, k in enumerate(ks):
            out[:, 3 + i] = weights * (higher < k)
        first = 3 + len(ks)
        out[rows, first + 3 * classes] = weights
        out[rows, first + 3 * predicted + 1] = weights
        correct = predicted == classes
        out[rows[correct], first + 3 * classes[correct] + 2] = weights[correct]
        return out

    def metrics(self, sums: FloatArray) -> dict[str, FloatArray]:
        weight = sums[..., 0]
        out: dict[str, FloatArray] = {
            "accuracy": ratio(sums[..., 1], weight),
            "log_loss": ratio(sums[..., 2], weight),
        }
        for i, k in enumerate(self._ks):
            out[f"top_{k}_accuracy"] = ratio(sums[..., 3 + i], weight)
        first = 3 + len(self._ks)
        for c in range(self.num_classes):
            support, predicted, tp = (sums[..., first + 3 * c + j] for j in range(3))
            out[f"precision[{c}]"] = ratio(tp, predicted)
            out[f"recall[{c}]"] = ratio(tp, support)
        return out

    def metric_names(self) -> list[str]:
        names = ["accuracy", *(f"top_{k}_accuracy" for k in self._ks), "log_loss"]
        for c in range(self.num_classes):
            names += [f"precision[{c}]", f"recall[{c}]"]
        return names


@dataclass(frozen=True)
class RegressionMetrics:
    """Regression. ``shift`` (typically the mean label) is subtracted from labels and predictions
    before squaring, so sums of squares of large values keep their precision; results do not
    depend on it."""

    shift: float = 0.0

    @property
    def task(self) -> Task:
        return Task.REGRESSION

    @property
    def ranked(self) -> bool:
        return False

    @property
    def columns(self) -> tuple[str, ...]:
        return (
            "weight",
            "weighted_label",
            "weighted_label_squared",
            "weighted_prediction",
            "weighted_squared_error",
            "weighted_absolute_error",
        )

    def statistics(
        self, labels: FloatArray, predictions: FloatArray, weights: FloatArray
    ) -> FloatArray:
        centred_labels = labels - self.shift
        error = predictions - labels
        return np.stack(
            [
                weights,
                weights * centred_labels,
                weights * centred_labels**2,
                weights * (predictions - self.shift),
                weights * error**2,
                weights * np.abs(error),
            ],
            axis=1,
        )

    def metrics(self, sums: FloatArray) -> dict[str, FloatArray]:
        weight, label, label_sq, prediction, squared_error, absolute_error = (
            sums[..., i] for i in range(6)
        )
        mse = ratio(squared_error, weight)
        label_mean = ratio(label, weight) + self.shift
        prediction_mean = ratio(prediction, weight) + self.shift
        total = label_sq - ratio(label * label, weight)
        return {
            "rmse": np.sqrt(np.maximum(mse, 0.0)),
            "mse": mse,
            "mae": ratio(absolute_error, weight),
            "r2": 1 - ratio(squared_error, total),
            "prediction_mean": prediction_mean,
            "label_mean": label_mean,
            "calibration": ratio(prediction_mean, label_mean),
        }

    def metric_names(self) -> list[str]:
        return ["rmse", "mse", "mae", "r2", "prediction_mean", "label_mean", "calibration"]


def make_suite(
    task: Task,
    *,
    labels: FloatArray,
    weights: FloatArray,
    num_classes: int = 0,
    decision_thresholds: Sequence[float] = DEFAULT_DECISION_THRESHOLDS,
) -> MetricSuite:
    """The suite of a task; regression centres on the weighted mean label of ``labels``."""
    if task is Task.BINARY:
        return BinaryMetrics(tuple(decision_thresholds) or DEFAULT_DECISION_THRESHOLDS)
    if task is Task.MULTICLASS:
        return MulticlassMetrics(num_classes)
    total = float(weights.sum())
    shift = float(weights @ labels) / total if total > 0 else 0.0
    return RegressionMetrics(shift if math.isfinite(shift) else 0.0)
