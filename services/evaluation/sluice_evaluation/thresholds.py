"""Judging a candidate: value and change thresholds per metric and slice, and the verdict.

Rules (TFMA's, with TFX's Evaluator blessing):

- A value threshold bounds the candidate's metric: ``lower_bound <= value <= upper_bound``.
- A change threshold bounds how much worse than the baseline the candidate may be on the same
  slice of the same data. "Worse" follows the direction: given, or the metric's own (higher is
  better for AUC, lower for log loss and errors); metrics with no natural direction (calibration,
  means) need one given. ``max_absolute_degradation`` bounds ``worse_by``,
  ``max_relative_degradation`` bounds ``worse_by / |baseline|``.
- Cold start: with no baseline (the first model, or ``no_baseline``), change thresholds are not
  applied - each is reported as a passed check saying so - and value thresholds alone decide.
- A threshold on slice "" judges the overall slice, on "*" every slice that is not too small, on
  "feature=value[,...]" that slice (features in any order), too small or not.
- An undefined metric (NaN) fails every threshold on it: what cannot be judged is not blessed.
- The verdict is BLESSED when every check passed (so, as in TFX, a spec with no thresholds
  blesses), else NOT_BLESSED, each failed check stating why in a sentence.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sluice_runtime.errors import InvalidArgument

from sluice_evaluation.metrics import Direction, default_direction
from sluice_evaluation.sliced import OVERALL_SLICE, SliceMetrics

ALL_SLICES = "*"


class Verdict(enum.Enum):
    BLESSED = "blessed"
    NOT_BLESSED = "not_blessed"


@dataclass(frozen=True)
class MetricThreshold:
    """A rule a candidate must meet; unset bounds are not checked (see the module docstring)."""

    metric: str
    slice: str = OVERALL_SLICE
    lower_bound: float | None = None
    upper_bound: float | None = None
    max_absolute_degradation: float | None = None
    max_relative_degradation: float | None = None
    direction: Direction | None = None

    @property
    def has_change_bound(self) -> bool:
        return (
            self.max_absolute_degradation is not None or self.max_relative_degradation is not None
        )

    @property
    def effective_direction(self) -> Direction | None:
        return self.direction or default_direction(self.metric)


@dataclass(frozen=True)
class ThresholdCheck:
    """One threshold checked on one slice, with a sentence saying what was found."""

    metric: str
    slice: str
    passed: bool
    message: str


def parse_slice(key: str) -> dict[str, str]:
    """``"country=BR,device=phone"`` -> {"country": "BR", "device": "phone"}; "" -> {}."""
    if key == OVERALL_SLICE:
        return {}
    pairs: dict[str, str] = {}
    for part in key.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or name.strip() in pairs:
            raise ValueError(f"{key!r} is not a slice: expected feature=value[,feature=value]")
        pairs[name.strip()] = value
    return pairs


def check_threshold_specs(
    thresholds: Sequence[MetricThreshold],
    sliced_features: Sequence[Sequence[str]],
    field: str = "spec.thresholds",
) -> None:
    """Rejects thresholds that could never be judged, before any work is done.

    Args:
        sliced_features: the feature names of each slicing spec; a threshold's slice must name
            exactly the features of one of them.
    """
    feature_sets = {frozenset(features) for features in sliced_features}
    for i, threshold in enumerate(thresholds):
        where = f"{field}[{i}]"
        if not threshold.metric:
            raise InvalidArgument(f"{where}.metric: name the metric", field=f"{where}.metric")
        bounds = {
            "lower_bound": threshold.lower_bound,
            "upper_bound": threshold.upper_bound,
            "max_absolute_degradation": threshold.max_absolute_degradation,
            "max_relative_degradation": threshold.max_relative_degradation,
        }
        if all(value is None for value in bounds.values()):
            raise InvalidArgument(
                f"{where}: sets no bound; set lower_bound, upper_bound, max_absolute_degradation "
                "or max_relative_degradation",
                field=where,
            )
        for name, value in bounds.items():
            if value is not None and not math.isfinite(value):
                raise InvalidArgument(
                    f"{where}.{name}: must be a finite number, got {value}", field=f"{where}.{name}"
                )
            if name.startswith("max_") and value is not None and value < 0:
                raise InvalidArgument(
                    f"{where}.{name}: must be 0 or more (the worsening allowed), got {value}",
                    field=f"{where}.{name}",
                )
        low, high = threshold.lower_bound, threshold.upper_bound
        if low is not None and high is not None and low > high:
            raise InvalidArgument(
                f"{where}: lower_bound {low} is above upper_bound {high}",
                field=f"{where}.lower_bound",
            )
        if threshold.has_change_bound and threshold.effective_direction is None:
            raise InvalidArgument(
                f"{where}.direction: {threshold.metric!r} has no natural direction; say whether "
                "higher or lower is better for its change thresholds",
                field=f"{where}.direction",
            )
        if threshold.slice in (OVERALL_SLICE, ALL_SLICES):
            continue
        try:
            features = frozenset(parse_slice(threshold.slice))
        except ValueError as error:
            raise InvalidArgument(f"{where}.slice: {error}", field=f"{where}.slice") from None
        if features not in feature_sets:
            raise InvalidArgument(
                f"{where}.slice: {threshold.slice!r} slices by {', '.join(sorted(features))}, "
                "which no slicing spec does; add it to spec.slicing",
                field=f"{where}.slice",
            )


def judge(
    thresholds: Sequence[MetricThreshold],
    candidate: Sequence[SliceMetrics],
    baseline: Sequence[SliceMetrics] | None,
    metric_names: Sequence[str],
    field: str = "spec.thresholds",
) -> list[ThresholdCheck]:
    """Every check of every threshold on the slices it applies to.

    Raises:
        InvalidArgument: a threshold names a metric the task does not have (UNKNOWN_METRIC), or a
            slice with no examples in the data (SLICE_EMPTY): the evaluation cannot be judged.
    """
    by_key = {_normal_key(s.slice): s for s in candidate}
    baseline_by_key = None if baseline is None else {_normal_key(s.slice): s for s in baseline}
    known = set(metric_names)
    checks: list[ThresholdCheck] = []
    for i, threshold in enumerate(thresholds):
        where = f"{field}[{i}]"
        if threshold.metric not in known:
            raise InvalidArgument(
                f"{where}.metric: {threshold.metric!r} is not computed for this model; the metrics "
                f"are {', '.join(metric_names)}",
                field=f"{where}.metric",
                reason="UNKNOWN_METRIC",
            )
        if threshold.slice == ALL_SLICES:
            targets = [s for s in candidate if not s.too_small]
            if not targets:
                checks.append(
                    ThresholdCheck(
                        threshold.metric,
                        ALL_SLICES,
                        False,
                        f"{threshold.metric} cannot be judged: no slice has enough examples",
                    )
                )
        else:
            found = by_key.get(_normal_key(threshold.slice))
            if found is None:
                raise InvalidArgument(
                    f"{where}.slice: slice {threshold.slice!r} has no examples in the evaluation "
                    "data, so its threshold cannot be judged",
                    field=f"{where}.slice",
                    reason="SLICE_EMPTY",
                )
            targets = [found]
        for target in targets:
            base = None
            if baseline_by_key is not None:
                base = baseline_by_key.get(_normal_key(target.slice))
            checks.extend(_check(threshold, target, base, baseline_by_key is not None))
    return checks


def verdict_of(checks: Sequence[ThresholdCheck]) -> Verdict:
    return Verdict.BLESSED if all(check.passed for check in checks) else Verdict.NOT_BLESSED


def _normal_key(key: str) -> frozenset[tuple[str, str]]:
    try:
        return frozenset(parse_slice(key).items())
    except ValueError:
        return frozenset({("", key)})


def _where(key: str) -> str:
    return "the overall slice" if key == OVERALL_SLICE else key


def _slack(*values: float) -> float:
    """Rounding room: 0.75 - 0.7 is 0.05000000000000004, which must meet a bound of 0.05."""
    return 1e-12 * max(1.0, *(abs(v) for v in values))


def _num(value: float) -> str:
    return f"{value:.6g}"


def _check(
    threshold: MetricThreshold,
    target: SliceMetrics,
    base: SliceMetrics | None,
    has_baseline: bool,
) -> list[ThresholdCheck]:
    metric, key = threshold.metric, target.slice
    value = target.values[metric]
    where = _where(key)
    checks: list[ThresholdCheck] = []

    def add(passed: bool, message: str) -> None:
        checks.append(ThresholdCheck(metric, key, passed, message))

    if math.isnan(value):
        add(
            False, f"{metric} is undefined on {where} (for example no positives), so it cannot pass"
        )
        return checks
    if threshold.lower_bound is not None:
        low = threshold.lower_bound
        if value < low - _slack(value, low):
            add(False, f"{metric} {_num(value)} on {where} is below the lower bound {_num(low)}")
        else:
            add(True, f"{metric} {_num(value)} on {where} meets the lower bound {_num(low)}")
    if threshold.upper_bound is not None:
        high = threshold.upper_bound
        if value > high + _slack(value, high):
            add(False, f"{metric} {_num(value)} on {where} is above the upper bound {_num(high)}")
        else:
            add(True, f"{metric} {_num(value)} on {where} meets the upper bound {_num(high)}")
    if not threshold.has_change_bound:
        return checks
    if not has_baseline:
        add(
            True,
            f"{metric} on {where}: change threshold not applied, there is no baseline (a first "
            "model is judged by value thresholds alone)",
        )
        return checks
    base_value = math.nan if base is None else base.values.get(metric, math.nan)
    if math.isnan(base_value):
        add(False, f"{metric} of the baseline is undefined on {where}, so no change can be judged")
        return checks
    direction = threshold.effective_direction
    worse_by = base_value - value if direction is Direction.HIGHER_IS_BETTER else value - base_value
    change = (
        f"{metric} {_num(value)} on {where} is {_num(abs(worse_by))} "
        f"{_change_word(worse_by, direction)} the baseline's {_num(base_value)}"
    )
    if threshold.max_absolute_degradation is not None:
        allowed = threshold.max_absolute_degradation
        passed = worse_by <= allowed + _slack(value, base_value)
        add(passed, f"{change} (allowed worsening {_num(allowed)})")
    if threshold.max_relative_degradation is not None:
        allowed = threshold.max_relative_degradation
        if base_value == 0:
            add(
                worse_by <= _slack(value),
                f"{change}; a relative change from a baseline of 0 is only allowed when it is no "
                "worse",
            )
        else:
            relative = worse_by / abs(base_value)
            add(
                relative <= allowed + _slack(value, base_value) / abs(base_value),
                f"{change}, {abs(relative):.2%} {'worse' if relative > 0 else 'better'} "
                f"(allowed worsening {allowed:.2%})",
            )
    return checks


def _change_word(worse_by: float, direction: Direction | None) -> str:
    if worse_by == 0:
        return "away from"
    below = (worse_by > 0) == (direction is Direction.HIGHER_IS_BETTER)
    return "below" if below else "above"
