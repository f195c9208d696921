"""Evaluation benchmark: sliced metrics with bootstrap intervals over 1,000,000 predictions.

    .venv/bin/python benchmarks/evaluation_bench.py                      # 1M rows, 50 slices, 200
    .venv/bin/python benchmarks/evaluation_bench.py --rows 200000 --no-model

The data: 8 numeric features, ``country`` (40 values) and ``device`` (10 values), so two slicing
specs give 50 slices besides the overall one; a binary label drawn from the model's own
probabilities. The model: a Keras MLP (8 -> 64 -> 64 -> 1) exported as a SavedModel and called
through its serving signature in batches, as an evaluation does; its inference time is reported
apart from the metrics. Predictions are float32, so they hold many ties, as real ones do.

Printed: inference time, slicing time, metrics time (point estimates and bootstrap resamples for
every metric on every slice), and a check of the overall AUC against scikit-learn.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sluice_evaluation.metrics import BinaryMetrics
from sluice_evaluation.model import SavedModelPredictor, predict
from sluice_evaluation.sliced import compute_sliced_metrics
from sluice_evaluation.slicing import SlicingSpec, build_partitions

FEATURES = [f"f{i}" for i in range(8)]


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows).astype(np.float32) for name in FEATURES})
    frame["country"] = rng.choice([f"c{i:02d}" for i in range(40)], size=rows)
    frame["device"] = rng.choice([f"d{i}" for i in range(10)], size=rows)
    return frame


def export_model(folder: Path) -> Path:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    inputs = {name: keras.Input(shape=(), name=name, dtype="float32") for name in FEATURES}
    stacked = keras.layers.Concatenate()([keras.layers.Reshape((1,))(t) for t in inputs.values()])
    hidden = keras.layers.Dense(64, activation="relu")(stacked)
    hidden = keras.layers.Dense(64, activation="relu")(hidden)
    output = keras.layers.Dense(1, activation="sigmoid", name="probabilities")(hidden)
    model = keras.Model(inputs, output)
    path = folder / "saved_model"
    model.export(str(path), verbose=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8192, help="rows per model call")
    parser.add_argument(
        "--no-model", action="store_true", help="skip the model: synthetic predictions"
    )
    args = parser.parse_args()

    began = time.perf_counter()
    frame = make_frame(args.rows, seed=0)
    print(f"data: {args.rows:,} rows generated in {time.perf_counter() - began:.2f} s")

    rng = np.random.default_rng(1)
    if args.no_model:
        logits = frame[FEATURES].to_numpy(np.float64) @ rng.normal(size=len(FEATURES))
        predictions = (1 / (1 + np.exp(-logits))).astype(np.float32).astype(np.float64)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            predictor = SavedModelPredictor(export_model(Path(tmp)))
            print(f"model: Keras MLP exported and loaded in {time.perf_counter() - began:.2f} s")
            inference = predict(predictor, frame, args.batch)
            predictions = inference.predictions
            rate = args.rows / inference.seconds
            print(
                f"inference (the model's own calls, batches of {args.batch:,}): "
                f"{inference.seconds:.2f} s, {rate:,.0f} examples/s"
            )
    labels = (rng.random(args.rows) < predictions).astype(np.float64)
    weights = np.ones(args.rows)
    print(f"distinct predictions: {len(np.unique(predictions)):,} of {args.rows:,}")

    began = time.perf_counter()
    partitions = build_partitions(frame, [SlicingSpec(("country",)), SlicingSpec(("device",))])
    slicing = time.perf_counter() - began
    slices = sum(len(p.keys) for p in partitions[1:])
    print(f"slicing: {slices} slices + overall in {slicing:.2f} s")

    suite = BinaryMetrics((0.3, 0.5, 0.7))
    began = time.perf_counter()
    point = compute_sliced_metrics(
        suite, labels, predictions, weights, partitions, bootstrap_samples=0
    )
    point_seconds = time.perf_counter() - began
    began = time.perf_counter()
    results = compute_sliced_metrics(
        suite, labels, predictions, weights, partitions, bootstrap_samples=args.resamples
    )
    metrics_seconds = time.perf_counter() - began
    metrics = len(results[0].values)
    print(
        f"metrics: {metrics} metrics x {len(results)} slices, {args.resamples} bootstrap "
        f"resamples: {metrics_seconds:.2f} s (point estimates alone: {point_seconds:.2f} s)"
    )

    from sklearn.metrics import roc_auc_score

    overall = results[0]
    low, high = overall.intervals["auc"]
    expected = roc_auc_score(labels, predictions)
    print(
        f"overall AUC {overall.values['auc']:.6f} [{low:.6f}, {high:.6f}]; scikit-learn "
        f"{expected:.6f} (difference {abs(overall.values['auc'] - expected):.1e})"
    )
    assert point[0].values["auc"] == overall.values["auc"]
    widest = max(results[1:], key=lambda s: s.intervals["auc"][1] - s.intervals["auc"][0])
    print(
        f"widest AUC interval: {widest.slice} ({widest.example_count:,} examples) "
        f"[{widest.intervals['auc'][0]:.4f}, {widest.intervals['auc'][1]:.4f}]"
    )


if __name__ == "__main__":
    main()
