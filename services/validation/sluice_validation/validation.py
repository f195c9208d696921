"""Statistics checked against a schema (and against previous or serving statistics) -> TFDV's
Anomalies, each with a severity, a sentence a person can act on, and the schema change that would
accept the data (the anomaly's `diff_regions`, and the whole `proposed_schema`).

    result = validate_statistics(statistics, schema, environment="SERVING")
    result.anomalies        # tensorflow_metadata Anomalies
    result.proposed_schema  # the schema with every fix applied: it accepts this data
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, path_pb2, schema_pb2, statistics_pb2

from .comparison import ComparisonKind, FeatureDistance, Measure, compare
from .schema import (
    add_inferred_feature,
    common_stats,
    feature_name,
    features_in,
    find_feature,
    has_values,
    main_dataset,
    physical_type,
    string_domain_of,
    string_values,
)

# Anomalies that do not stop a pipeline: an extra column breaks nothing that reads the schema.
WARNING_TYPES = frozenset({anomalies_pb2.AnomalyInfo.SCHEMA_NEW_COLUMN})
MAX_EXAMPLE_VALUES = 10  # unexpected values quoted in a description


@dataclass(frozen=True)
class Finding:
    """One reason of one anomaly."""

    feature: str  # "" for the dataset
    type: int
    short_description: str
    description: str

    @property
    def severity(self) -> int:
        severity: int = (
            anomalies_pb2.AnomalyInfo.WARNING
            if self.type in WARNING_TYPES
            else anomalies_pb2.AnomalyInfo.ERROR
        )
        return severity

    @property
    def kind(self) -> str:
        return str(anomalies_pb2.AnomalyInfo.Type.Name(self.type))


@dataclass
class ValidationResult:
    anomalies: anomalies_pb2.Anomalies
    proposed_schema: schema_pb2.Schema
    findings: list[Finding] = field(default_factory=list)

    @property
    def max_severity(self) -> int:
        return max((f.severity for f in self.findings), default=anomalies_pb2.AnomalyInfo.UNKNOWN)


def validate_statistics(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    *,
    environment: str = "",
    previous_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    serving_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
) -> ValidationResult:
    """Check `statistics` against `schema` in `environment` (TFDV's validate_statistics).

    With `previous_statistics`, features with a drift_comparator are checked for drift; with
    `serving_statistics`, features with a skew_comparator for training/serving skew.
    """
    checker = _Checker(schema, environment)
    dataset = main_dataset(statistics)
    checker.check_dataset(dataset, previous_statistics)
    if previous_statistics is not None:
        distances = compare(previous_statistics, statistics, schema, ComparisonKind.DRIFT)
        checker.check_distances(distances, ComparisonKind.DRIFT)
    if serving_statistics is not None:
        distances = compare(statistics, serving_statistics, schema, ComparisonKind.SKEW)
        checker.check_distances(distances, ComparisonKind.SKEW)
    return checker.result(dataset.num_examples)


def comparison_anomalies(
    distances: Iterable[FeatureDistance], schema: schema_pb2.Schema | None, kind: ComparisonKind
) -> ValidationResult:
    """Anomalies for the distances over threshold (CompareStatistics without a full validation)."""
    checker = _Checker(schema or schema_pb2.Schema(), "")
    checker.check_distances(distances, kind)
    return checker.result(None)


class _Checker:
    def __init__(self, schema: schema_pb2.Schema, environment: str) -> None:
        self.schema = schema
        self.environment = environment
        self.fixed = schema_pb2.Schema()
        self.fixed.CopyFrom(schema)
        self.findings: list[Finding] = []

    def add(self, feature: str, kind: int, short: str, description: str) -> None:
        self.findings.append(Finding(feature, kind, short, description))

    def _reported(self, feature: str, kind: int) -> bool:
        return any(f.feature == feature and f.type == kind for f in self.findings)

    def fixed_feature(self, name: str) -> schema_pb2.Feature:
        feature = find_feature(self.fixed, name)
        assert feature is not None
        return feature

    # -- dataset -----------------------------------------------------------------------------------

    def check_dataset(
        self,
        dataset: statistics_pb2.DatasetFeatureStatistics,
        previous: statistics_pb2.DatasetFeatureStatisticsList | None,
    ) -> None:
        self._check_num_examples(dataset.num_examples, previous)
        stats = {feature_name(f): f for f in dataset.features}
        known = {f.name for f in self.schema.feature}
        if dataset.num_examples == 0:
            return  # the dataset-level anomaly says it all; every feature would repeat it
        for feature in features_in(self.schema, self.environment):
            found = stats.get(feature.name)
            if found is None:
                self._missing_column(feature, dataset.num_examples)
            else:
                self._check_feature(feature, found, dataset.num_examples)
        for name, found in stats.items():
            if name not in known:
                self._new_column(name, found, dataset.num_examples)

    def _check_num_examples(
        self, num_examples: int, previous: statistics_pb2.DatasetFeatureStatisticsList | None
    ) -> None:
        constraints = self.schema.dataset_constraints
        # Without a constraint an empty dataset is still an anomaly; an explicit 0 allows it.
        minimum = (
            constraints.min_examples_count if constraints.HasField("min_examples_count") else 1
        )
        if num_examples < minimum:
            self.fixed.dataset_constraints.min_examples_count = num_examples
            self.add(
                "",
                anomalies_pb2.AnomalyInfo.DATASET_LOW_NUM_EXAMPLES,
                "Low num examples in dataset",
                f"The dataset has {num_examples} examples, fewer than the {minimum} required"
                + (
                    "; it is empty: check that the input path and span are right."
                    if num_examples == 0
                    else "; check for a partial export or lower dataset_constraints."
                    "min_examples_count."
                ),
            )
        if constraints.HasField("max_examples_count") and num_examples > (
            constraints.max_examples_count
        ):
            self.fixed.dataset_constraints.max_examples_count = num_examples
            self.add(
                "",
                anomalies_pb2.AnomalyInfo.DATASET_HIGH_NUM_EXAMPLES,
                "High num examples in dataset",
                f"The dataset has {num_examples} examples, more than the maximum of"
                f" {constraints.max_examples_count}; check for duplicated input or raise"
                " dataset_constraints.max_examples_count.",
            )
        comparator = constraints.num_examples_drift_comparator
        if previous is not None and constraints.HasField("num_examples_drift_comparator"):
            before = main_dataset(previous, "previous_statistics").num_examples
            if before > 0:
                ratio = num_examples / before
                if comparator.HasField("min_fraction_threshold") and ratio < (
                    comparator.min_fraction_threshold
                ):
                    self.fixed.dataset_constraints.num_examples_drift_comparator.min_fraction_threshold = ratio  # noqa: E501
                    self.add(
                        "",
                        anomalies_pb2.AnomalyInfo.COMPARATOR_LOW_NUM_EXAMPLES,
                        "Low num examples in dataset compared to the previous span",
                        f"The dataset has {ratio:.3g} times the examples of the previous span,"
                        f" below the minimum ratio {comparator.min_fraction_threshold:g}.",
                    )
                if comparator.HasField("max_fraction_threshold") and ratio > (
                    comparator.max_fraction_threshold
                ):
                    self.fixed.dataset_constraints.num_examples_drift_comparator.max_fraction_threshold = ratio  # noqa: E501
                    self.add(
                        "",
                        anomalies_pb2.AnomalyInfo.COMPARATOR_HIGH_NUM_EXAMPLES,
                        "High num examples in dataset compared to the previous span",
                        f"The dataset has {ratio:.3g} times the examples of the previous span,"
                        f" above the maximum ratio {comparator.max_fraction_threshold:g}.",
                    )

    def _missing_column(self, feature: schema_pb2.Feature, num_examples: int) -> None:
        if num_examples == 0:
            return  # the dataset-level anomaly says it all
        presence = feature.presence
        if feature.HasField("presence") and presence.min_count == 0 and presence.min_fraction == 0:
            return  # the schema allows the feature to be absent altogether
        self.fixed_feature(feature.name).lifecycle_stage = schema_pb2.LifecycleStage.DEPRECATED
        self.add(
            feature.name,
            anomalies_pb2.AnomalyInfo.SCHEMA_MISSING_COLUMN,
            "Column dropped",
            f"The feature {feature.name!r} is in the schema but not in the data. If it was"
            " removed on purpose, deprecate it in the schema (as proposed) or exclude it from"
            " this environment; otherwise fix the data producer.",
        )

    def _new_column(
        self, name: str, stats: statistics_pb2.FeatureNameStatistics, num_examples: int
    ) -> None:
        added = add_inferred_feature(self.fixed, stats, num_examples)
        type_name = schema_pb2.FeatureType.Name(added.type)
        self.add(
            name,
            anomalies_pb2.AnomalyInfo.SCHEMA_NEW_COLUMN,
            "New column",
            f"New column {name!r} ({type_name}) is in the data but not in the schema: add it to"
            " the schema (as proposed) if it is meant to be there, or drop it from the data.",
        )

    # -- one feature -------------------------------------------------------------------------------

    def _check_feature(
        self,
        feature: schema_pb2.Feature,
        stats: statistics_pb2.FeatureNameStatistics,
        num_examples: int,
    ) -> None:
        self._check_presence(feature, stats, num_examples)
        self._check_valency(feature, stats)
        if not has_values(stats):
            return
        actual = physical_type(stats)
        # Whole numbers are valid floats (a CSV span whose floats all print as integers).
        widening = feature.type == schema_pb2.FLOAT and actual == schema_pb2.INT
        if feature.type not in (schema_pb2.TYPE_UNKNOWN, actual) and not widening:
            self._type_mismatch(feature, stats, actual)
            return
        domain = string_domain_of(self.schema, feature)
        if domain is not None and stats.WhichOneof("stats") == "string_stats":
            self._check_string_domain(feature, domain, stats)
        if feature.HasField("int_domain") and stats.WhichOneof("stats") == "num_stats":
            self._check_int_domain(feature, stats)
        if feature.HasField("float_domain") and stats.WhichOneof("stats") == "num_stats":
            self._check_float_domain(feature, stats)
        if feature.HasField("bool_domain"):
            self._check_bool_domain(feature, stats, actual)

    def _check_presence(
        self,
        feature: schema_pb2.Feature,
        stats: statistics_pb2.FeatureNameStatistics,
        num_examples: int,
    ) -> None:
        common = common_stats(stats)
        present = common.num_non_missing
        fixed = self.fixed_feature(feature.name)
        if feature.HasField("presence"):
            wanted = feature.presence
            if num_examples and present / num_examples < wanted.min_fraction:
                fraction = present / num_examples
                fixed.presence.min_fraction = fraction
                self.add(
                    feature.name,
                    anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_FRACTION_PRESENT,
                    "Feature present too rarely",
                    f"The feature {feature.name!r} is present in {_percent(fraction)} of the"
                    f" examples ({present} of {num_examples}), below the schema's minimum"
                    f" fraction {wanted.min_fraction:g}: find why it went missing, or lower"
                    " presence.min_fraction.",
                )
            if present < wanted.min_count:
                fixed.presence.min_count = present
                self.add(
                    feature.name,
                    anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_NUMBER_PRESENT,
                    "Feature present in too few examples",
                    f"The feature {feature.name!r} is present in {present} examples, fewer than"
                    f" the schema's minimum count {wanted.min_count}.",
                )
        if feature.HasField("shape") and common.num_missing > 0:
            self._shape_to_value_count(fixed)
            fixed.presence.min_fraction = present / num_examples if num_examples else 0.0
            if self._reported(
                feature.name, anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_FRACTION_PRESENT
            ):
                return
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_FRACTION_PRESENT,
                "Feature with a fixed shape is missing",
                f"The feature {feature.name!r} has a fixed shape, so every example needs it, but"
                f" {common.num_missing} examples lack it: fill the missing values upstream, or"
                " replace the shape by a value_count (as proposed).",
            )

    def _check_valency(
        self, feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics
    ) -> None:
        common = common_stats(stats)
        if common.num_non_missing == 0:
            return
        fixed = self.fixed_feature(feature.name)
        low: int | None = None
        high: int | None = None
        if feature.HasField("value_count"):
            low = feature.value_count.min if feature.value_count.HasField("min") else None
            high = feature.value_count.max if feature.value_count.HasField("max") else None
        elif feature.HasField("shape"):
            low = high = math.prod(d.size for d in feature.shape.dim)
        if low is not None and common.min_num_values < low:
            if fixed.HasField("shape"):
                self._shape_to_value_count(fixed)
            fixed.value_count.min = common.min_num_values
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.FEATURE_TYPE_LOW_NUMBER_VALUES,
                "Missing values",
                f"Some examples have {common.min_num_values} values of {feature.name!r}, fewer"
                f" than the {low} the schema requires.",
            )
        if high is not None and common.max_num_values > high:
            if fixed.HasField("shape"):
                self._shape_to_value_count(fixed)
            fixed.value_count.max = common.max_num_values
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.FEATURE_TYPE_HIGH_NUMBER_VALUES,
                "Superfluous values",
                f"Some examples have {common.max_num_values} values of {feature.name!r}, more"
                f" than the {high} the schema allows"
                + (" (it is single-valued)" if high == 1 else "")
                + ": check the list separator or the producer.",
            )

    @staticmethod
    def _shape_to_value_count(fixed: schema_pb2.Feature) -> None:
        size = math.prod(d.size for d in fixed.shape.dim)
        fixed.ClearField("shape")
        fixed.value_count.min = size
        fixed.value_count.max = size

    def _type_mismatch(
        self, feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics, actual: int
    ) -> None:
        expected_name = schema_pb2.FeatureType.Name(feature.type)
        actual_name = schema_pb2.FeatureType.Name(actual)  # type: ignore[arg-type]
        fixed = self.fixed_feature(feature.name)
        fixed.type = actual  # type: ignore[assignment]
        # A domain of the old type would not fit the new one.
        if fixed.WhichOneof("domain_info") is not None:
            fixed.ClearField(fixed.WhichOneof("domain_info"))  # type: ignore[arg-type]
        hint = (
            " (text among the numbers: check for placeholders like 'n/a' or a shifted column)"
            if actual == schema_pb2.BYTES
            else ""
        )
        self.add(
            feature.name,
            anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE,
            "Unexpected data type",
            f"Expected data of type {expected_name} for {feature.name!r} but got"
            f" {actual_name}{hint}; fix the data, or change the schema's type (as proposed).",
        )

    def _check_string_domain(
        self,
        feature: schema_pb2.Feature,
        domain: schema_pb2.StringDomain,
        stats: statistics_pb2.FeatureNameStatistics,
    ) -> None:
        allowed = set(domain.value)
        pairs = string_values(stats)
        unexpected = [(value, count) for value, count in pairs if value not in allowed]
        if not unexpected:
            return
        total = float(common_stats(stats).tot_num_values) or sum(c for _v, c in pairs) or 1.0
        outside = sum(count for _value, count in unexpected)
        in_domain = 1.0 - outside / total
        min_mass = (
            feature.distribution_constraints.min_domain_mass
            if feature.HasField("distribution_constraints")
            else 1.0
        )
        if in_domain >= min_mass:
            return
        unexpected.sort(key=lambda pair: (-pair[1], pair[0]))
        quoted = ", ".join(
            f"{value!r} ({_percent(count / total)})"
            for value, count in unexpected[:MAX_EXAMPLE_VALUES]
        )
        more = len(unexpected) - MAX_EXAMPLE_VALUES
        if more > 0:
            quoted += f" and {more} more"
        fixed = self._fixed_string_domain(feature)
        fixed.value.extend(sorted(value for value, _count in unexpected))
        self.add(
            feature.name,
            anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES,
            "Unexpected string values",
            f"Examples contain values missing from the schema's domain of {feature.name!r}:"
            f" {quoted}; {_percent(outside / total)} of its values in all. Add them to the"
            " domain if they are valid (as proposed), or fix the data.",
        )

    def _fixed_string_domain(self, feature: schema_pb2.Feature) -> schema_pb2.StringDomain:
        fixed = self.fixed_feature(feature.name)
        if fixed.HasField("string_domain"):
            return fixed.string_domain
        domain = next(d for d in self.fixed.string_domain if d.name == fixed.domain)
        return domain

    def _check_int_domain(
        self, feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics
    ) -> None:
        wanted = feature.int_domain
        numbers = stats.num_stats
        fixed = self.fixed_feature(feature.name).int_domain
        if wanted.HasField("min") and numbers.min < wanted.min:
            fixed.min = math.floor(numbers.min)
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.INT_TYPE_SMALL_INT,
                "Out-of-range values",
                f"Unexpectedly small value {numbers.min:g} of {feature.name!r}: the schema's"
                f" minimum is {wanted.min}; fix the data or lower int_domain.min.",
            )
        if wanted.HasField("max") and numbers.max > wanted.max:
            fixed.max = math.ceil(numbers.max)
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.INT_TYPE_BIG_INT,
                "Out-of-range values",
                f"Unexpectedly large value {numbers.max:g} of {feature.name!r}: the schema's"
                f" maximum is {wanted.max}; fix the data or raise int_domain.max.",
            )

    def _check_float_domain(
        self, feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics
    ) -> None:
        wanted = feature.float_domain
        numbers = stats.num_stats
        fixed = self.fixed_feature(feature.name).float_domain
        num_nan = max((h.num_nan for h in numbers.histograms), default=0)
        has_inf = math.isinf(numbers.min) or math.isinf(numbers.max)
        if wanted.disallow_nan and num_nan > 0:
            fixed.disallow_nan = False
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.FLOAT_TYPE_HAS_NAN,
                "Invalid values",
                f"The feature {feature.name!r} has {num_nan} NaN values, which the schema"
                " disallows: fix the producer (a division by zero?) or allow NaN.",
            )
        if wanted.disallow_inf and has_inf:
            fixed.disallow_inf = False
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.FLOAT_TYPE_HAS_INF,
                "Invalid values",
                f"The feature {feature.name!r} has infinite values, which the schema disallows.",
            )
        low = numbers.min
        high = numbers.max
        if wanted.HasField("min") and low < wanted.min:
            fixed.min = low
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.FLOAT_TYPE_SMALL_FLOAT,
                "Out-of-range values",
                f"Unexpectedly low value {low:g} of {feature.name!r}: the schema's minimum is"
                f" {wanted.min:g}; fix the data or lower float_domain.min.",
            )
        if wanted.HasField("max") and high > wanted.max:
            fixed.max = high
            self.add(
                feature.name,
                anomalies_pb2.AnomalyInfo.FLOAT_TYPE_BIG_FLOAT,
                "Out-of-range values",
                f"Unexpectedly high value {high:g} of {feature.name!r}: the schema's maximum is"
                f" {wanted.max:g}; fix the data or raise float_domain.max.",
            )

    def _check_bool_domain(
        self, feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics, actual: int
    ) -> None:
        """TFDV's boolean rules: INT values in {0, 1}, FLOAT values exactly 0 or 1, strings
        only the domain's true_value / false_value. The fix replaces bool_domain by the range."""
        name = feature.name
        fixed = self.fixed_feature(name)
        if actual == schema_pb2.INT and stats.WhichOneof("stats") == "num_stats":
            numbers = stats.num_stats
            if numbers.min >= 0 and numbers.max <= 1:
                return
            small = numbers.min < 0
            fixed.int_domain.min = math.floor(numbers.min)  # clears bool_domain (a oneof)
            fixed.int_domain.max = math.ceil(numbers.max)
            self.add(
                name,
                anomalies_pb2.AnomalyInfo.BOOL_TYPE_SMALL_INT
                if small
                else anomalies_pb2.AnomalyInfo.BOOL_TYPE_BIG_INT,
                "Non-boolean values",
                f"The schema says {name!r} is boolean (0 or 1), but it has the value"
                f" {numbers.min if small else numbers.max:g}: fix the data, or replace"
                " bool_domain by an int_domain (as proposed).",
            )
            return
        if actual == schema_pb2.FLOAT and stats.WhichOneof("stats") == "num_stats":
            stray = _non_boolean_float(stats.num_stats)
            if stray is None:
                return
            fixed.float_domain.min = stats.num_stats.min  # clears bool_domain (a oneof)
            fixed.float_domain.max = stats.num_stats.max
            self.add(
                name,
                anomalies_pb2.AnomalyInfo.BOOL_TYPE_UNEXPECTED_FLOAT,
                "Non-boolean values",
                f"The schema says {name!r} is boolean, but it has {stray}: fix the data, or"
                " replace bool_domain by a float_domain (as proposed).",
            )
            return
        if stats.WhichOneof("stats") != "string_stats":
            return
        domain = feature.bool_domain
        allowed = {
            value
            for value, present in (
                (domain.true_value, domain.HasField("true_value")),
                (domain.false_value, domain.HasField("false_value")),
            )
            if present
        }
        unexpected = sorted(value for value, _count in string_values(stats) if value not in allowed)
        if not unexpected:
            return
        fixed.ClearField("bool_domain")
        quoted = ", ".join(repr(value) for value in unexpected[:MAX_EXAMPLE_VALUES])
        spelled = ", ".join(repr(value) for value in sorted(allowed)) or "no value at all"
        self.add(
            name,
            anomalies_pb2.AnomalyInfo.BOOL_TYPE_UNEXPECTED_STRING,
            "Non-boolean values",
            f"The schema says {name!r} is boolean, spelled {spelled}, but it has {quoted}: fix"
            " the data, set the bool_domain's true_value / false_value, or drop the bool_domain"
            " (as proposed).",
        )

    # -- drift and skew ----------------------------------------------------------------------------

    def check_distances(self, distances: Iterable[FeatureDistance], kind: ComparisonKind) -> None:
        pair = (
            "the previous span and this one"
            if kind is ComparisonKind.DRIFT
            else ("training and serving data")
        )
        comparator_field = "drift_comparator" if kind is ComparisonKind.DRIFT else "skew_comparator"
        for distance in distances:
            if not distance.over_threshold:
                continue
            fixed = find_feature(self.fixed, distance.feature)
            if fixed is not None:
                comparator = getattr(fixed, comparator_field)
                raised = _round_up(distance.distance)
                if distance.measure is Measure.L_INFINITY:
                    comparator.infinity_norm.threshold = raised
                else:
                    comparator.jensen_shannon_divergence.threshold = raised
            if distance.measure is Measure.L_INFINITY:
                self.add(
                    distance.feature,
                    anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
                    f"High Linfty distance between {pair}",
                    f"The L-infinity distance between {pair} is {distance.distance:.6g}, above"
                    f" the threshold {distance.threshold:g}; the value with the largest change"
                    f" is {distance.worst_value!r}. Find what changed the value mix, or raise"
                    f" {comparator_field}.infinity_norm.threshold.",
                )
            else:
                self.add(
                    distance.feature,
                    anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
                    f"High approximate Jensen-Shannon divergence between {pair}",
                    f"The approximate Jensen-Shannon divergence between {pair} is"
                    f" {distance.distance:.6g}, above the threshold {distance.threshold:g}:"
                    " the distribution of the feature moved. Find why, or raise"
                    f" {comparator_field}.jensen_shannon_divergence.threshold.",
                )

    # -- the result --------------------------------------------------------------------------------

    def result(self, num_examples: int | None) -> ValidationResult:
        anomalies = anomalies_pb2.Anomalies()
        anomalies.baseline.CopyFrom(self.schema)
        anomalies.anomaly_name_format = anomalies_pb2.Anomalies.UNKNOWN
        if num_examples is not None:
            anomalies.data_missing = num_examples == 0
        by_feature: dict[str, list[Finding]] = {}
        for finding in self.findings:
            by_feature.setdefault(finding.feature, []).append(finding)
        for name, findings in by_feature.items():
            if name:
                info = anomalies.anomaly_info[name]
                info.path.CopyFrom(path_pb2.Path(step=[name]))
                before = _feature_text(self.schema, name)
                after = _feature_text(self.fixed, name)
            else:
                info = anomalies.dataset_anomaly_info
                before = _constraints_text(self.schema)
                after = _constraints_text(self.fixed)
            _fill_info(info, findings)
            info.diff_regions.extend(diff_regions(before, after))
        return ValidationResult(anomalies, self.fixed, list(self.findings))


def _fill_info(info: anomalies_pb2.AnomalyInfo, findings: list[Finding]) -> None:
    info.severity = max(f.severity for f in findings)
    for finding in findings:
        info.reason.add(
            type=finding.type,
            short_description=finding.short_description,
            description=finding.description,
        )
    info.description = " ".join(f.description for f in findings)
    info.short_description = (
        findings[0].short_description if len(findings) == 1 else "Multiple errors"
    )


def _feature_text(schema: schema_pb2.Schema, name: str) -> list[str]:
    feature = find_feature(schema, name)
    if feature is None:
        return []
    lines = ["feature {", *_indented(feature), "}"]
    domain = string_domain_of(schema, feature)
    if domain is not None and not feature.HasField("string_domain"):
        lines += ["string_domain {", *_indented(domain), "}"]
    return lines


def _constraints_text(schema: schema_pb2.Schema) -> list[str]:
    if not schema.HasField("dataset_constraints"):
        return []
    return ["dataset_constraints {", *_indented(schema.dataset_constraints), "}"]


def _indented(message: object) -> list[str]:
    text = text_format.MessageToString(message)  # type: ignore[arg-type]
    return ["  " + line for line in text.splitlines()]


def diff_regions(before: list[str], after: list[str]) -> list[anomalies_pb2.DiffRegion]:
    """TFDV-style diff regions (1-based line numbers) turning `before` into `after`."""
    regions: list[anomalies_pb2.DiffRegion] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        region = anomalies_pb2.DiffRegion()
        if tag == "equal":
            region.unchanged.left_start = i1 + 1
            region.unchanged.right_start = j1 + 1
            region.unchanged.contents.extend(before[i1:i2])
        elif tag == "delete":
            region.removed.start = i1 + 1
            region.removed.contents.extend(before[i1:i2])
        elif tag == "insert":
            region.added.start = j1 + 1
            region.added.contents.extend(after[j1:j2])
        else:
            region.changed.left_start = i1 + 1
            region.changed.left_contents.extend(before[i1:i2])
            region.changed.right_start = j1 + 1
            region.changed.right_contents.extend(after[j1:j2])
        regions.append(region)
    return regions


def _non_boolean_float(numbers: statistics_pb2.NumericStatistics) -> str | None:
    """What shows float values other than 0 and 1 (NaN, the extremes, a histogram bucket strictly
    between 0 and 1 or outside [0, 1] holding values), or None when they may all be 0 or 1."""
    for extreme in (numbers.min, numbers.max):
        if extreme not in (0.0, 1.0):
            return f"the value {extreme:g}"
    for histogram in numbers.histograms:
        if histogram.num_nan > 0:
            return f"{histogram.num_nan:g} NaN values"
        for bucket in histogram.buckets:
            if bucket.sample_count > 0 and bucket.low_value > 0 and bucket.high_value < 1:
                return f"values between {bucket.low_value:g} and {bucket.high_value:g}"
    return None


def _percent(fraction: float) -> str:
    """TFDV's way: '<1%' for small shares, '~12%' otherwise."""
    if fraction < 0.01:
        return "<1%"
    return f"~{round(fraction * 100)}%"


def _round_up(value: float) -> float:
    """A threshold just above `value`, rounded up to 3 significant digits."""
    if value <= 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(value)) - 2)
    return float(math.ceil(value / scale + 1e-9) * scale)
