"""Schemas in TFDV's format (tensorflow_metadata Schema): inference from statistics, schema.pbtxt
reading and writing, and environments.

Inference follows TFDV's `infer_schema`: the type from the statistics (STRING -> BYTES), presence
(`min_fraction: 1` when never missing, `min_count: 1` always), the shape `[1]` for features present
once in every example or `value_count` otherwise, and a string domain (by name, at the schema's top
level) for string features with at most `max_string_domain_size` distinct values. A `bool_domain`
comes first, as in TFDV: for INT features whose values are 0 and 1 (min >= 0, max == 1) and for
string features with one or two values spelled as TFDV's true/false words ("true"/"false",
"TRUE"/"FALSE", "set"/"clear", ...). Numeric ranges (int_domain / float_domain min and max) are
inferred only when asked, as in TFDV.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from google.protobuf import text_format
from sluice_runtime.errors import InvalidArgument
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

DEFAULT_MAX_STRING_DOMAIN_SIZE = 100
# TFDV's spellings of a boolean in text (bool_domain_util.cc); "" counts as true there, but an
# empty CSV field is a missing value here, so it never shows up as a value.
BOOL_TRUE_WORDS = frozenset({"TRUE", "true", "SET", "set", "1", ""})
BOOL_FALSE_WORDS = frozenset({"FALSE", "false", "CLEAR", "clear", "0"})

INACTIVE_STAGES = frozenset(
    {
        schema_pb2.LifecycleStage.DEPRECATED,
        schema_pb2.LifecycleStage.PLANNED,
        schema_pb2.LifecycleStage.ALPHA,
        schema_pb2.LifecycleStage.DEBUG_ONLY,
        schema_pb2.LifecycleStage.DISABLED,
    }
)


# -- statistics helpers (shared with validation and comparison) ------------------------------------


def feature_name(feature: statistics_pb2.FeatureNameStatistics) -> str:
    """The feature's name, whether the statistics identify it by `name` or by `path`."""
    if feature.HasField("path"):
        return ".".join(feature.path.step)
    return str(feature.name)


def common_stats(feature: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.CommonStatistics:
    which = feature.WhichOneof("stats")
    if which == "num_stats":
        return feature.num_stats.common_stats
    if which == "string_stats":
        return feature.string_stats.common_stats
    if which == "bytes_stats":
        return feature.bytes_stats.common_stats
    if which == "struct_stats":
        return feature.struct_stats.common_stats
    return statistics_pb2.CommonStatistics()


def main_dataset(
    statistics: statistics_pb2.DatasetFeatureStatisticsList, what: str = "statistics"
) -> statistics_pb2.DatasetFeatureStatistics:
    """The unsliced dataset: the one named '' or 'All Examples', else the only one."""
    if not statistics.datasets:
        raise InvalidArgument(f"the {what} hold no dataset", field=what, reason="EMPTY_STATISTICS")
    for dataset in statistics.datasets:
        if dataset.name in ("", "All Examples"):
            return dataset
    return statistics.datasets[0]


def has_values(feature: statistics_pb2.FeatureNameStatistics) -> bool:
    return common_stats(feature).tot_num_values > 0 or _value_count(feature) > 0


def _value_count(feature: statistics_pb2.FeatureNameStatistics) -> int:
    if feature.WhichOneof("stats") == "string_stats":
        return int(sum(b.sample_count for b in feature.string_stats.rank_histogram.buckets))
    return 0


def physical_type(feature: statistics_pb2.FeatureNameStatistics) -> schema_pb2.Featureint:
    if feature.type == statistics_pb2.FeatureNameStatistics.INT:
        return schema_pb2.INT
    if feature.type == statistics_pb2.FeatureNameStatistics.FLOAT:
        return schema_pb2.FLOAT
    if feature.type == statistics_pb2.FeatureNameStatistics.STRUCT:
        return schema_pb2.STRUCT
    return schema_pb2.BYTES


def string_values(feature: statistics_pb2.FeatureNameStatistics) -> list[tuple[str, float]]:
    """(value, count) pairs the statistics know: the rank histogram, else the top values."""
    stats = feature.string_stats
    if stats.rank_histogram.buckets:
        return [(b.label, b.sample_count) for b in stats.rank_histogram.buckets]
    return [(v.value, v.frequency) for v in stats.top_values]


# -- inference -------------------------------------------------------------------------------------


def infer_schema(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    *,
    max_string_domain_size: int = DEFAULT_MAX_STRING_DOMAIN_SIZE,
    infer_feature_shape: bool = True,
    infer_numeric_ranges: bool = False,
) -> schema_pb2.Schema:
    """A schema every feature of `statistics` satisfies (TFDV's infer_schema)."""
    if max_string_domain_size < 0:
        raise InvalidArgument(
            f"max_domain_size must be 0 or more, got {max_string_domain_size}",
            field="max_domain_size",
        )
    dataset = main_dataset(statistics)
    schema = schema_pb2.Schema()
    for stats in dataset.features:
        add_inferred_feature(
            schema,
            stats,
            dataset.num_examples,
            max_string_domain_size=max_string_domain_size,
            infer_feature_shape=infer_feature_shape,
            infer_numeric_ranges=infer_numeric_ranges,
        )
    return schema


def add_inferred_feature(
    schema: schema_pb2.Schema,
    stats: statistics_pb2.FeatureNameStatistics,
    num_examples: int,
    *,
    max_string_domain_size: int = DEFAULT_MAX_STRING_DOMAIN_SIZE,
    infer_feature_shape: bool = True,
    infer_numeric_ranges: bool = False,
) -> schema_pb2.Feature:
    """Append the feature TFDV would infer from `stats` to `schema` (with its string domain)."""
    name = feature_name(stats)
    feature = schema.feature.add(name=name, type=physical_type(stats))
    common = common_stats(stats)
    always_present = common.num_missing == 0 and common.num_non_missing > 0
    feature.presence.min_count = 1
    if always_present:
        feature.presence.min_fraction = 1.0
    if common.num_non_missing and common.min_num_values == common.max_num_values == 1:
        if infer_feature_shape and always_present:
            feature.shape.dim.add(size=1)
        else:
            feature.value_count.min = 1
            feature.value_count.max = 1
    elif common.num_non_missing and common.min_num_values >= 1:
        feature.value_count.min = 1
    boolean = bool_domain_from(stats)
    if boolean is not None:
        feature.bool_domain.CopyFrom(boolean)
    elif feature.type == schema_pb2.BYTES and stats.WhichOneof("stats") == "string_stats":
        unique = stats.string_stats.unique
        values = sorted(value for value, _count in string_values(stats))
        if 0 < unique <= max_string_domain_size and len(values) == unique:
            domain = schema.string_domain.add(name=name, value=values)
            feature.domain = domain.name
    elif infer_numeric_ranges and stats.WhichOneof("stats") == "num_stats":
        numbers = stats.num_stats
        if common.tot_num_values:
            if feature.type == schema_pb2.INT:
                feature.int_domain.min = int(numbers.min)
                feature.int_domain.max = int(numbers.max)
            else:
                feature.float_domain.min = numbers.min
                feature.float_domain.max = numbers.max
    return feature


def bool_domain_from(stats: statistics_pb2.FeatureNameStatistics) -> schema_pb2.BoolDomain | None:
    """The bool_domain TFDV infers for these statistics, or None when they do not look boolean."""
    which = stats.WhichOneof("stats")
    if stats.type == statistics_pb2.FeatureNameStatistics.INT and which == "num_stats":
        numbers = stats.num_stats
        return schema_pb2.BoolDomain() if numbers.min >= 0 and numbers.max == 1 else None
    if stats.type != statistics_pb2.FeatureNameStatistics.STRING or which != "string_stats":
        return None
    values = [value for value, _count in string_values(stats)]
    if not 1 <= len(values) <= 2 or len(values) != stats.string_stats.unique:
        return None
    domain = schema_pb2.BoolDomain()
    for value in values:  # at most one spelling of each
        if not domain.HasField("true_value") and value in BOOL_TRUE_WORDS:
            domain.true_value = value
        elif not domain.HasField("false_value") and value in BOOL_FALSE_WORDS:
            domain.false_value = value
        else:
            return None
    return domain


# -- reading and writing ---------------------------------------------------------------------------


def schema_to_text(schema: schema_pb2.Schema) -> str:
    """schema.pbtxt text, as TFDV's write_schema_text writes it."""
    return str(text_format.MessageToString(schema))


def schema_from_text(text: str | bytes, *, what: str = "schema") -> schema_pb2.Schema:
    """Parse schema.pbtxt (or a binary serialized Schema); errors name the line and column."""
    if isinstance(text, bytes):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return _schema_from_binary(text, what)
    else:
        decoded = text
    schema = schema_pb2.Schema()
    try:
        text_format.Parse(decoded, schema)
    except text_format.ParseError as error:
        if isinstance(text, bytes):
            try:
                return _schema_from_binary(text, what)
            except InvalidArgument:
                pass
        raise InvalidArgument(
            f"the {what} is not a valid schema.pbtxt: {error}", field=what, reason="BAD_SCHEMA"
        ) from None
    return schema


def _schema_from_binary(data: bytes, what: str) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    try:
        schema.ParseFromString(data)
    except Exception:
        raise InvalidArgument(
            f"the {what} is neither schema.pbtxt text nor a serialized Schema",
            field=what,
            reason="BAD_SCHEMA",
        ) from None
    return schema


# -- environments and lookups ----------------------------------------------------------------------


def is_active(feature: schema_pb2.Feature) -> bool:
    """False for deprecated (or not yet / no longer live) features, which are not validated."""
    return not feature.deprecated and feature.lifecycle_stage not in INACTIVE_STAGES


def in_environment(
    schema: schema_pb2.Schema, feature: schema_pb2.Feature, environment: str
) -> bool:
    """Whether `feature` is expected in `environment` (TFDV's rules).

    A feature with `in_environment` is only in those; otherwise one listed in
    `not_in_environment` is out; otherwise it is in the schema's `default_environment` (every
    environment when there is none). No environment (``""``) means all features.
    """
    if not environment:
        return True
    if feature.in_environment:
        return environment in feature.in_environment
    if environment in feature.not_in_environment:
        return False
    if schema.default_environment:
        return environment in schema.default_environment
    return True


def exclude_from_environment(schema: schema_pb2.Schema, feature: str, environment: str) -> None:
    """Mark `feature` as absent in `environment` (e.g. the label in SERVING)."""
    target = find_feature(schema, feature)
    if target is None:
        raise InvalidArgument(f"the schema has no feature {feature!r}", field="feature")
    if environment not in target.not_in_environment:
        target.not_in_environment.append(environment)


_T = TypeVar("_T")


def must(value: _T | None) -> _T:
    """`value`, asserted present (for lookups the caller knows succeed)."""
    assert value is not None
    return value


def find_feature(schema: schema_pb2.Schema, name: str) -> schema_pb2.Feature | None:
    return next((f for f in schema.feature if f.name == name), None)


def string_domain_of(
    schema: schema_pb2.Schema, feature: schema_pb2.Feature
) -> schema_pb2.StringDomain | None:
    """The feature's string domain: inline, or the top-level one its `domain` names."""
    if feature.HasField("string_domain"):
        return feature.string_domain
    if feature.WhichOneof("domain_info") == "domain":
        return next((d for d in schema.string_domain if d.name == feature.domain), None)
    return None


def features_in(schema: schema_pb2.Schema, environment: str) -> Iterator[schema_pb2.Feature]:
    """The active features expected in `environment`."""
    for feature in schema.feature:
        if is_active(feature) and in_environment(schema, feature, environment):
            yield feature


def names(features: Iterable[schema_pb2.Feature]) -> list[str]:
    return [f.name for f in features]
