"""Every metric against scikit-learn on the same predictions, and the bootstrap's coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sluice_evaluation.bootstrap import PoissonWeights, percentile_interval
from sluice_evaluation.metrics import (
    BinaryMetrics,
    Direction,
    MulticlassMetrics,
    RegressionMetrics,
    Task,
    default_direction,
    make_suite,
)
from sluice_evaluation.ranking import cumsum_rows
from sluice_evaluation.sliced import Partition, SliceMetrics, compute_sliced_metrics

EXACT = 1e-6


def binary_data(n: int, seed: int, *, decimals: int | None = None) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.35).astype(float)
    scores = np.clip(0.35 + 0.25 * (labels - 0.35) + rng.normal(0, 0.2, n), 0.001, 0.999)
    if decimals is not None:
        scores = np.round(scores, decimals)  # many ties
    weights = rng.uniform(0.2, 3.0, n)
    return labels, scores, weights


def overall(
    suite: object, labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray, **kw: object
) -> SliceMetrics:
    return compute_sliced_metrics(
        suite,  # type: ignore[arg-type]
        labels,
        predictions,
        weights,
        [Partition.overall(len(labels))],
        bootstrap_samples=0,
        **kw,  # type: ignore[arg-type]
    )[0]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_binary_metrics_match_scikit_learn(weighted: bool, decimals: int | None) -> None:
    labels, scores, w = binary_data(3000, seed=1, decimals=decimals)
    weights = w if weighted else np.ones_like(w)
    sw = weights if weighted else None
    suite = BinaryMetrics((0.3, 0.5))
    got = overall(suite, labels, scores, weights).values

    assert got["auc"] == pytest.approx(
        skm.roc_auc_score(labels, scores, sample_weight=sw), abs=EXACT
    )
    assert got["auc_pr"] == pytest.approx(
        skm.average_precision_score(labels, scores, sample_weight=sw), abs=EXACT
    )
    assert got["log_loss"] == pytest.approx(
        skm.log_loss(labels, scores, sample_weight=sw), abs=EXACT
    )
    assert got["accuracy"] == pytest.approx(
        skm.accuracy_score(labels, scores > 0.5, sample_weight=sw), abs=EXACT
    )
    for t in (0.3, 0.5):
        predicted = scores > t
        assert got[f"accuracy@{t:g}"] == pytest.approx(
            skm.accuracy_score(labels, predicted, sample_weight=sw), abs=EXACT
        )
        assert got[f"precision@{t:g}"] == pytest.approx(
            skm.precision_score(labels, predicted, sample_weight=sw), abs=EXACT
        )
        assert got[f"recall@{t:g}"] == pytest.approx(
            skm.recall_score(labels, predicted, sample_weight=sw), abs=EXACT
        )
        assert got[f"f1@{t:g}"] == pytest.approx(
            skm.f1_score(labels, predicted, sample_weight=sw), abs=EXACT
        )
        tn, fp, fn, tp = skm.confusion_matrix(labels, predicted, sample_weight=sw).ravel()
        assert (
            got[f"true_negatives@{t:g}"],
            got[f"false_positives@{t:g}"],
            got[f"false_negatives@{t:g}"],
            got[f"true_positives@{t:g}"],
        ) == pytest.approx((tn, fp, fn, tp), abs=1e-6)
    mean_label = np.average(labels, weights=weights)
    mean_prediction = np.average(scores, weights=weights)
    assert got["label_mean"] == pytest.approx(mean_label, abs=EXACT)
    assert got["prediction_mean"] == pytest.approx(mean_prediction, abs=EXACT)
    assert got["calibration"] == pytest.approx(mean_prediction / mean_label, abs=EXACT)
    assert set(got) == set(suite.metric_names())


@pytest.mark.parametrize("block_elements", [7, 64, 5000])
def test_blocks_and_long_tie_runs_do_not_change_the_ranking_metrics(block_elements: int) -> None:
    # Two distinct scores only: every block boundary falls inside a run of ties.
    rng = np.random.default_rng(3)
    labels = (rng.random(1500) < 0.4).astype(float)
    scores = np.where(rng.random(1500) < 0.5 + 0.3 * (labels - 0.4), 0.8, 0.3)
    weights = rng.uniform(0.5, 1.5, 1500)
    groups = rng.integers(0, 3, 1500)
    partitions = [Partition.overall(1500), Partition(groups, ("g=0", "g=1", "g=2"))]
    got = compute_sliced_metrics(
        BinaryMetrics(),
        labels,
        scores,
        weights,
        partitions,
        bootstrap_samples=0,
        block_elements=block_elements,
    )
    for result, mask in [
        (got[0], np.ones(1500, bool)),
        *((got[1 + g], groups == g) for g in range(3)),
    ]:
        assert result.values["auc"] == pytest.approx(
            skm.roc_auc_score(labels[mask], scores[mask], sample_weight=weights[mask]), abs=EXACT
        )
        assert result.values["auc_pr"] == pytest.approx(
            skm.average_precision_score(labels[mask], scores[mask], sample_weight=weights[mask]),
            abs=EXACT,
        )


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_metrics_match_scikit_learn(weighted: bool) -> None:
    rng = np.random.default_rng(4)
    n, classes = 2500, 5
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    weights = rng.uniform(0.5, 2.0, n) if weighted else np.ones(n)
    sw = weights if weighted else None
    suite = MulticlassMetrics(classes)
    got = overall(suite, labels.astype(float), probabilities, weights).values

    predicted = probabilities.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(
        skm.accuracy_score(labels, predicted, sample_weight=sw), abs=EXACT
    )
    for k in (2, 3):
        assert got[f"top_{k}_accuracy"] == pytest.approx(
            skm.top_k_accuracy_score(labels, probabilities, k=k, sample_weight=sw), abs=EXACT
        )
    assert "top_5_accuracy" not in got  # k must be below the number of classes
    assert got["log_loss"] == pytest.approx(
        skm.log_loss(labels, probabilities, sample_weight=sw), abs=EXACT
    )
    precision = skm.precision_score(labels, predicted, average=None, sample_weight=sw)
    recall = skm.recall_score(labels, predicted, average=None, sample_weight=sw)
    for c in range(classes):
        assert got[f"precision[{c}]"] == pytest.approx(precision[c], abs=EXACT)
        assert got[f"recall[{c}]"] == pytest.approx(recall[c], abs=EXACT)
    assert set(got) == set(suite.metric_names())


@pytest.mark.parametrize("weighted", [False, True])
def test_regression_metrics_match_scikit_learn(weighted: bool) -> None:
    rng = np.random.default_rng(5)
    n = 2000
    labels = 1e6 + rng.normal(0, 10, n)  # far from 0: sums of squares need the shift
    predictions = labels + rng.normal(0.5, 3, n)
    weights = rng.uniform(0.5, 2.0, n) if weighted else np.ones(n)
    sw = weights if weighted else None
    suite = make_suite(Task.REGRESSION, labels=labels, weights=weights)
    got = overall(suite, labels, predictions, weights).values

    mse = skm.mean_squared_error(labels, predictions, sample_weight=sw)
    assert got["mse"] == pytest.approx(mse, abs=EXACT)
    assert got["rmse"] == pytest.approx(math.sqrt(mse), abs=EXACT)
    assert got["mae"] == pytest.approx(
        skm.mean_absolute_error(labels, predictions, sample_weight=sw), abs=EXACT
    )
    assert got["r2"] == pytest.approx(
        skm.r2_score(labels, predictions, sample_weight=sw), abs=EXACT
    )
    assert got["prediction_mean"] == pytest.approx(
        np.average(predictions, weights=weights), rel=1e-12
    )
    assert got["label_mean"] == pytest.approx(np.average(labels, weights=weights), rel=1e-12)
    assert set(got) == set(suite.metric_names())


def test_undefined_metrics_are_nan_not_zero() -> None:
    labels = np.zeros(50)  # no positives: AUC, recall and calibration are undefined
    scores = np.linspace(0.01, 0.4, 50)  # nothing above 0.5: precision is undefined
    got = overall(BinaryMetrics(), labels, scores, np.ones(50)).values
    for name in ("auc", "auc_pr", "recall@0.5", "precision@0.5", "calibration"):
        assert math.isnan(got[name]), name
    assert got["accuracy"] == 1.0
    assert math.isnan(RegressionMetrics().metrics(np.zeros(6))["r2"])


def test_example_counts_and_weights_per_slice() -> None:
    labels, scores, weights = binary_data(600, seed=6)
    groups = np.repeat([0, 1, 2], 200)
    results = compute_sliced_metrics(
        BinaryMetrics(),
        labels,
        scores,
        weights,
        [Partition.overall(600), Partition(groups, ("g=a", "g=b", "g=c"))],
        bootstrap_samples=0,
        min_slice_size=201,
    )
    assert [r.example_count for r in results] == [600, 200, 200, 200]
    assert results[0].weighted_example_count == pytest.approx(weights.sum())
    assert results[2].weighted_example_count == pytest.approx(weights[200:400].sum())
    assert [r.too_small for r in results] == [False, True, True, True]


def test_bootstrap_intervals_cover_the_true_value_at_the_stated_rate() -> None:
    """Simulated data with a known AUC and mean: 95% intervals hold it about 95% of the time."""
    rng = np.random.default_rng(7)
    n, runs = 400, 120
    # Scores: negatives N(0, 1), positives N(1, 1), so the true AUC is Phi(1 / sqrt(2)).
    true_auc = 0.5 * (1 + math.erf(1 / 2))
    true_label_mean = 0.3
    covered_auc = covered_mean = 0
    for seed in range(runs):
        labels = (rng.random(n) < true_label_mean).astype(float)
        raw = rng.normal(size=n) + labels
        scores = 1 / (1 + np.exp(-raw))  # monotone: same AUC, values in (0, 1)
        result = compute_sliced_metrics(
            BinaryMetrics(),
            labels,
            scores,
            np.ones(n),
            [Partition.overall(n)],
            bootstrap_samples=200,
            seed=seed,
        )[0]
        low, high = result.intervals["auc"]
        covered_auc += low <= true_auc <= high
        low, high = result.intervals["label_mean"]
        covered_mean += low <= true_label_mean <= high
    # Binomial(120, 0.95) has a standard deviation of 0.02: allow about 3 either way (an
    # interval too wide to be useful would cover every time).
    assert 0.88 <= covered_auc / runs <= 0.99
    assert 0.88 <= covered_mean / runs <= 0.99


def test_intervals_bracket_the_point_estimate_and_narrow_with_more_data() -> None:
    widths = []
    for n in (500, 8000):
        labels, scores, weights = binary_data(n, seed=8)
        result = compute_sliced_metrics(
            BinaryMetrics(), labels, scores, weights, [Partition.overall(n)], bootstrap_samples=100
        )[0]
        for name in ("auc", "log_loss", "precision@0.5"):
            low, high = result.intervals[name]
            assert low <= result.values[name] <= high
        widths.append(result.intervals["auc"][1] - result.intervals["auc"][0])
    assert widths[1] < widths[0] / 2


def test_poisson_weights_have_mean_and_variance_one() -> None:
    draws = PoissonWeights(100, seed=1).draw(5000)
    assert draws.dtype == np.float32
    assert draws.mean() == pytest.approx(1.0, abs=0.01)
    assert draws.var() == pytest.approx(1.0, abs=0.02)
    assert np.array_equal(draws, PoissonWeights(100, seed=1).draw(5000))


def test_percentile_interval_ignores_undefined_replicates() -> None:
    replicates = np.array([[np.nan] * 4, [1.0, 2.0, 3.0, np.nan]])
    low, high = percentile_interval(replicates, 0.5)
    assert math.isnan(low[0]) and math.isnan(high[0])
    assert (low[1], high[1]) == pytest.approx((1.5, 2.5))


def test_fast_cumsum_matches_numpy() -> None:
    values = np.random.default_rng(9).random((1000, 40)).astype(np.float32)
    assert np.allclose(cumsum_rows(values), np.cumsum(values, axis=0), rtol=1e-5)


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("auc", Direction.HIGHER_IS_BETTER),
        ("precision@0.3", Direction.HIGHER_IS_BETTER),
        ("recall[2]", Direction.HIGHER_IS_BETTER),
        ("top_3_accuracy", Direction.HIGHER_IS_BETTER),
        ("log_loss", Direction.LOWER_IS_BETTER),
        ("rmse", Direction.LOWER_IS_BETTER),
        ("false_positives@0.5", Direction.LOWER_IS_BETTER),
        ("calibration", None),
        ("prediction_mean", None),
    ],
)
def test_default_directions(metric: str, direction: Direction | None) -> None:
    assert default_direction(metric) is direction
