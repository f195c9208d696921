"""Slices and their metrics against a pandas group-by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sluice_evaluation.metrics import BinaryMetrics, Task, make_suite
from sluice_evaluation.sliced import compute_sliced_metrics
from sluice_evaluation.slicing import MAX_SLICES_PER_SPEC, MISSING, SlicingSpec, build_partitions
from sluice_evaluation.testing import tabular
from sluice_runtime.errors import InvalidArgument


def by_key(frame: pd.DataFrame, specs: list[SlicingSpec], **kw: object) -> dict[str, object]:
    labels = frame["label"].to_numpy(float)
    scores = 1 / (1 + np.exp(-(1.5 * frame["x1"] - frame["x2"]).to_numpy()))
    weights = frame["weight"].to_numpy()
    results = compute_sliced_metrics(
        BinaryMetrics(),
        labels,
        scores,
        weights,
        build_partitions(frame, specs),
        bootstrap_samples=0,
        **kw,  # type: ignore[arg-type]
    )
    return {r.slice: r for r in results}


def test_slices_per_value_and_crosses_match_pandas_groupby() -> None:
    frame = tabular(3000)
    frame["score"] = 1 / (1 + np.exp(-(1.5 * frame["x1"] - frame["x2"])))
    got = by_key(frame, [SlicingSpec(("country",)), SlicingSpec(("country", "age"))])

    expected_keys = {""} | {f"country={c}" for c in frame["country"].unique()}
    for (country, age), group in frame.groupby(["country", "age"]):
        expected_keys.add(f"country={country},age={age}")
        result = got[f"country={country},age={age}"]
        assert result.example_count == len(group)  # type: ignore[attr-defined]
        assert result.weighted_example_count == pytest.approx(group["weight"].sum())  # type: ignore[attr-defined]
    assert set(got) == expected_keys

    for country, group in frame.groupby("country"):
        result = got[f"country={country}"]
        values = result.values  # type: ignore[attr-defined]
        assert values["auc"] == pytest.approx(
            skm.roc_auc_score(group["label"], group["score"], sample_weight=group["weight"]),
            abs=1e-6,
        )
        assert values["log_loss"] == pytest.approx(
            skm.log_loss(group["label"], group["score"], sample_weight=group["weight"]), abs=1e-6
        )
        assert values["label_mean"] == pytest.approx(
            np.average(group["label"], weights=group["weight"]), abs=1e-9
        )


def test_regression_slices_match_pandas_groupby() -> None:
    frame = tabular(1500)
    frame["target"] = 3 * frame["x1"] + frame["age"] / 10
    frame["prediction"] = frame["target"] + np.random.default_rng(1).normal(0, 0.5, len(frame))
    labels, predictions = frame["target"].to_numpy(), frame["prediction"].to_numpy()
    suite = make_suite(Task.REGRESSION, labels=labels, weights=np.ones(len(frame)))
    results = compute_sliced_metrics(
        suite,
        labels,
        predictions,
        np.ones(len(frame)),
        build_partitions(frame, [SlicingSpec(("country",))]),
        bootstrap_samples=0,
    )
    got = {r.slice: r.values for r in results}
    for country, group in frame.groupby("country"):
        error = group["prediction"] - group["target"]
        assert got[f"country={country}"]["rmse"] == pytest.approx(np.sqrt((error**2).mean()))
        assert got[f"country={country}"]["mae"] == pytest.approx(error.abs().mean())


def test_numeric_buckets_are_quantiles_and_cover_every_example() -> None:
    frame = tabular(2000)
    partitions = build_partitions(frame, [SlicingSpec(("x1",), numeric_buckets=4)])
    buckets = partitions[1]
    assert len(buckets.keys) == 4
    counts = np.bincount(buckets.groups)
    assert counts.sum() == 2000
    assert counts.min() >= 490 and counts.max() <= 510  # quartiles: about 500 each
    assert buckets.keys[0].startswith("x1=[") and buckets.keys[0].endswith(")")
    assert buckets.keys[-1].endswith("]")
    low, high = buckets.keys[1].removeprefix("x1=[").removesuffix(")").split("..")
    inside = frame["x1"][buckets.groups == 1]
    assert inside.min() >= float(low) - 1e-5 and inside.max() < float(high) + 1e-5


def test_missing_values_are_a_slice_of_their_own() -> None:
    frame = pd.DataFrame(
        {"device": ["phone", None, "tablet", None, "phone"], "size": [1.0, np.nan, 2.0, 3.0, 4.0]}
    )
    partitions = build_partitions(frame, [SlicingSpec(("device",)), SlicingSpec(("size",), 2)])
    devices = partitions[1]
    assert devices.keys == ("device=phone", "device=tablet", f"device={MISSING}")
    assert devices.groups.tolist() == [0, 2, 1, 2, 0]
    sizes = partitions[2]
    assert sizes.keys[-1] == f"size={MISSING}"
    assert sizes.groups[1] == len(sizes.keys) - 1
    expected = frame.groupby("device", dropna=False).size()
    assert sorted(np.bincount(devices.groups).tolist()) == sorted(expected.tolist())


def test_integral_floats_print_without_a_fraction() -> None:
    frame = pd.DataFrame({"floor": [1.0, 2.0, 2.5]})
    assert build_partitions(frame, [SlicingSpec(("floor",))])[1].keys == (
        "floor=1",
        "floor=2",
        "floor=2.5",
    )


def test_small_slices_are_flagged_not_hidden() -> None:
    frame = tabular(1000)
    got = by_key(frame, [SlicingSpec(("country", "age"))], min_slice_size=20)
    small = [r for r in got.values() if r.too_small]  # type: ignore[attr-defined]
    assert small and all(r.example_count < 20 for r in small)  # type: ignore[attr-defined]
    assert not got[""].too_small  # type: ignore[attr-defined]


def test_missing_feature_and_id_like_features_are_refused() -> None:
    frame = pd.DataFrame({"id": np.arange(MAX_SLICES_PER_SPEC + 1), "label": 0})
    with pytest.raises(InvalidArgument) as missing:
        build_partitions(frame, [SlicingSpec(("country",))])
    assert missing.value.reason == "FEATURE_MISSING"
    assert missing.value.field == "spec.slicing[0].feature_names[0]"
    with pytest.raises(InvalidArgument) as too_many:
        build_partitions(frame, [SlicingSpec(("id",))])
    assert too_many.value.reason == "TOO_MANY_SLICES"
    assert len(build_partitions(frame, [SlicingSpec(("id",), numeric_buckets=10)])[1].keys) == 10
