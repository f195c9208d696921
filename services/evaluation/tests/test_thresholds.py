"""The threshold logic, as tables: value, change, direction, cold start, slices."""

from __future__ import annotations

import math

import pytest
from sluice_evaluation.metrics import Direction
from sluice_evaluation.sliced import SliceMetrics
from sluice_evaluation.thresholds import (
    MetricThreshold,
    Verdict,
    check_threshold_specs,
    judge,
    verdict_of,
)
from sluice_runtime.errors import InvalidArgument

NAMES = ["auc", "log_loss", "calibration", "accuracy"]


def slices(values: dict[str, dict[str, float]], small: tuple[str, ...] = ()) -> list[SliceMetrics]:
    return [
        SliceMetrics(key, 50 if key in small else 1000, 1000.0, key in small, metrics)
        for key, metrics in values.items()
    ]


CANDIDATE = slices(
    {
        "": {"auc": 0.80, "log_loss": 0.40, "calibration": 1.02, "accuracy": math.nan},
        "country=BR": {"auc": 0.70, "log_loss": 0.50, "calibration": 0.90, "accuracy": 0.7},
        "country=US": {"auc": 0.85, "log_loss": 0.35, "calibration": 1.00, "accuracy": 0.8},
        "country=XX": {"auc": 0.20, "log_loss": 2.00, "calibration": 3.00, "accuracy": 0.1},
    },
    small=("country=XX",),
)
BASELINE = slices(
    {
        "": {"auc": 0.79, "log_loss": 0.41, "calibration": 1.00, "accuracy": 0.75},
        "country=BR": {"auc": 0.75, "log_loss": 0.45, "calibration": 1.00, "accuracy": 0.7},
        "country=US": {"auc": 0.84, "log_loss": 0.36, "calibration": 1.00, "accuracy": 0.8},
        "country=XX": {"auc": 0.90, "log_loss": 0.10, "calibration": 1.00, "accuracy": 0.9},
    },
    small=("country=XX",),
)


@pytest.mark.parametrize(
    ("threshold", "with_baseline", "passed"),
    [
        # value thresholds
        (MetricThreshold("auc", lower_bound=0.75), True, [True]),
        (MetricThreshold("auc", lower_bound=0.81), True, [False]),
        (MetricThreshold("log_loss", upper_bound=0.40), True, [True]),
        (MetricThreshold("log_loss", upper_bound=0.39), True, [False]),
        (MetricThreshold("calibration", lower_bound=0.95, upper_bound=1.05), True, [True, True]),
        (MetricThreshold("calibration", "country=BR", lower_bound=0.95), True, [False]),
        # change thresholds: higher is better for AUC, lower for log loss
        (MetricThreshold("auc", max_absolute_degradation=0.0), True, [True]),
        (MetricThreshold("auc", "country=BR", max_absolute_degradation=0.04), True, [False]),
        (MetricThreshold("auc", "country=BR", max_absolute_degradation=0.05), True, [True]),
        (MetricThreshold("auc", "country=BR", max_relative_degradation=0.06), True, [False]),
        (MetricThreshold("auc", "country=BR", max_relative_degradation=0.07), True, [True]),
        (MetricThreshold("log_loss", "country=BR", max_absolute_degradation=0.04), True, [False]),
        (MetricThreshold("log_loss", max_absolute_degradation=0.0), True, [True]),
        # an explicit direction overrides the metric's own
        (
            MetricThreshold(
                "auc", max_absolute_degradation=0.0, direction=Direction.LOWER_IS_BETTER
            ),
            True,
            [False],
        ),
        (
            MetricThreshold(
                "calibration", max_absolute_degradation=0.01, direction=Direction.LOWER_IS_BETTER
            ),
            True,
            [False],
        ),
        # cold start: change thresholds are reported as not applied, value thresholds decide
        (MetricThreshold("auc", "country=BR", max_absolute_degradation=0.0), False, [True]),
        (
            MetricThreshold("auc", "country=BR", lower_bound=0.75, max_absolute_degradation=0.0),
            False,
            [False, True],
        ),
        # every large-enough slice: the small one is reported but not judged
        (MetricThreshold("auc", "*", lower_bound=0.65), True, [True, True, True]),
        (MetricThreshold("auc", "*", lower_bound=0.75), True, [True, False, True]),
        # a slice named explicitly is judged even when small
        (MetricThreshold("auc", "country=XX", lower_bound=0.5), True, [False]),
        # undefined values fail
        (MetricThreshold("accuracy", lower_bound=0.0), True, [False]),
    ],
)
def test_threshold_table(
    threshold: MetricThreshold, with_baseline: bool, passed: list[bool]
) -> None:
    check_threshold_specs([threshold], [("country",)])
    checks = judge([threshold], CANDIDATE, BASELINE if with_baseline else None, NAMES)
    assert [c.passed for c in checks] == passed
    assert all(c.message for c in checks)
    assert verdict_of(checks) is (Verdict.BLESSED if all(passed) else Verdict.NOT_BLESSED)


def test_worse_on_one_slice_only_is_not_blessed_and_says_where() -> None:
    thresholds = [MetricThreshold("auc", "*", max_absolute_degradation=0.01)]
    checks = judge(thresholds, CANDIDATE, BASELINE, NAMES)
    assert verdict_of(checks) is Verdict.NOT_BLESSED
    failed = [c for c in checks if not c.passed]
    assert [c.slice for c in failed] == ["country=BR"]
    assert failed[0].message == (
        "auc 0.7 on country=BR is 0.05 below the baseline's 0.75 (allowed worsening 0.01)"
    )


def test_messages_are_sentences_with_the_numbers() -> None:
    checks = judge(
        [MetricThreshold("auc", "country=BR", lower_bound=0.72, max_relative_degradation=0.01)],
        CANDIDATE,
        BASELINE,
        NAMES,
    )
    assert checks[0].message == "auc 0.7 on country=BR is below the lower bound 0.72"
    assert checks[1].message == (
        "auc 0.7 on country=BR is 0.05 below the baseline's 0.75, 6.67% worse (allowed worsening "
        "1.00%)"
    )
    cold = judge([MetricThreshold("auc", max_absolute_degradation=0.0)], CANDIDATE, None, NAMES)
    assert "no baseline" in cold[0].message


def test_no_thresholds_bless_as_in_tfx() -> None:
    assert verdict_of(judge([], CANDIDATE, None, NAMES)) is Verdict.BLESSED


def test_crossed_slices_match_in_any_feature_order() -> None:
    crossed = slices({"": {"auc": 0.8}, "country=BR,device=phone": {"auc": 0.6}})
    checks = judge(
        [MetricThreshold("auc", "device=phone,country=BR", lower_bound=0.7)], crossed, None, ["auc"]
    )
    assert [c.passed for c in checks] == [False]


def test_thresholds_that_cannot_be_judged_fail_the_evaluation() -> None:
    with pytest.raises(InvalidArgument) as unknown:
        judge([MetricThreshold("rmse", lower_bound=0)], CANDIDATE, None, NAMES)
    assert unknown.value.reason == "UNKNOWN_METRIC"
    assert unknown.value.field == "spec.thresholds[0].metric"
    with pytest.raises(InvalidArgument) as empty:
        judge([MetricThreshold("auc", "country=FR", lower_bound=0)], CANDIDATE, None, NAMES)
    assert empty.value.reason == "SLICE_EMPTY"
    # every slice too small: "*" judges nothing, which is a failed check, not a pass
    tiny = slices({"": {"auc": 0.9}}, small=("",))
    checks = judge([MetricThreshold("auc", "*", lower_bound=0.5)], tiny, None, ["auc"])
    assert [c.passed for c in checks] == [False]


@pytest.mark.parametrize(
    ("threshold", "field"),
    [
        (MetricThreshold("", lower_bound=1), "spec.thresholds[0].metric"),
        (MetricThreshold("auc"), "spec.thresholds[0]"),
        (
            MetricThreshold("auc", lower_bound=0.9, upper_bound=0.1),
            "spec.thresholds[0].lower_bound",
        ),
        (
            MetricThreshold("auc", max_absolute_degradation=-1),
            "spec.thresholds[0].max_absolute_degradation",
        ),
        (MetricThreshold("auc", upper_bound=math.inf), "spec.thresholds[0].upper_bound"),
        (
            MetricThreshold("calibration", max_absolute_degradation=0.1),
            "spec.thresholds[0].direction",
        ),
        (MetricThreshold("auc", "device=phone", lower_bound=0.5), "spec.thresholds[0].slice"),
        (MetricThreshold("auc", "country", lower_bound=0.5), "spec.thresholds[0].slice"),
    ],
)
def test_malformed_thresholds_are_refused_up_front(threshold: MetricThreshold, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_threshold_specs([threshold], [("country",)])
    assert error.value.field == field
