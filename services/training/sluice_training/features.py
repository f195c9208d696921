"""From a TFDV schema, optional statistics and the data to a `FeaturePlan`: how each feature is fed.

Plain Python over pyarrow and numpy (no Keras). The plan is JSON, stored with checkpoints and in
the exported model's manifest, so the export step and a later warm start rebuild exactly the same
preprocessing (vocabularies, out-of-vocabulary buckets, hash bins, normalisation constants).

Feature kinds, from the schema:

* FLOAT, and INT without ``int_domain.is_categorical``: numeric. Missing values (nulls, NaN) are
  filled with the mean inside the model, then normalised with the mean and variance from the
  statistics (or the data when no statistics are given).
* BYTES: categorical text; ``int_domain.is_categorical`` INT: categorical integers. Each gets a
  vocabulary (the schema's string domain, else the statistics' top values, else the data's most
  frequent values) plus ``oov_buckets`` out-of-vocabulary indices; when there are more than
  ``max_vocabulary_size`` distinct values it is hashed into ``hash_buckets`` bins instead.
  Missing text is ``""`` and a missing integer is -1: both land in an out-of-vocabulary bucket.

Hyperparameters read here (defaults in brackets): max_vocabulary_size [10000], hash_buckets
[1024], oov_buckets [1].
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import text_format
from google.protobuf.message import DecodeError
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from sluice_training.failures import TrainingFailure
from sluice_training.plan import Task

DEFAULT_MAX_VOCABULARY_SIZE = 10_000
DEFAULT_HASH_BUCKETS = 1024
DEFAULT_OOV_BUCKETS = 1
MISSING_INTEGER = -1
_SKIPPED_STAGES = {
    schema_pb2.LifecycleStage.DEPRECATED,
    schema_pb2.LifecycleStage.DISABLED,
    schema_pb2.LifecycleStage.PLANNED,
}


class FeatureKind(enum.Enum):
    NUMERIC = "numeric"
    STRING = "string"  # categorical text
    INTEGER = "integer"  # categorical integers


@dataclass(frozen=True)
class Feature:
    """How one input feature is fed to the model.

    Attributes:
        name: the column and the serving signature's input name.
        layer_name: a name safe for Keras layers, unique in the plan (``name`` sanitised).
        vocabulary: categorical values in index order (after the OOV indices).
        hash_bins: > 0 means hashed into that many bins instead of a vocabulary.
    """

    name: str
    kind: FeatureKind
    layer_name: str
    mean: float = 0.0
    variance: float = 1.0
    vocabulary: tuple[str | int, ...] = ()
    num_oov_buckets: int = DEFAULT_OOV_BUCKETS
    hash_bins: int = 0

    @property
    def categorical(self) -> bool:
        return self.kind is not FeatureKind.NUMERIC

    @property
    def cardinality(self) -> int:
        """Distinct indices the encoder produces (0 for numeric features)."""
        if not self.categorical:
            return 0
        return self.hash_bins or len(self.vocabulary) + self.num_oov_buckets

    def index_of(self, token: str | int) -> int | None:
        """The index of a vocabulary token (after the OOV indices), or None when absent."""
        try:
            return self.num_oov_buckets + self.vocabulary.index(token)
        except ValueError:
            return None


@dataclass(frozen=True)
class LabelPlan:
    """The label column and how its values become targets.

    Attributes:
        vocabulary: for text labels, the values in class order (binary: negative, positive).
    """

    name: str
    task: Task
    num_classes: int = 0
    vocabulary: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class FeaturePlan:
    features: tuple[Feature, ...]
    label: LabelPlan

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for entry in data["features"]:
            entry["kind"] = entry["kind"].value
            entry["vocabulary"] = list(entry["vocabulary"])
        data["label"]["task"] = self.label.task.value
        data["label"]["vocabulary"] = list(self.label.vocabulary)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeaturePlan:
        features = tuple(
            Feature(
                **{
                    **entry,
                    "kind": FeatureKind(entry["kind"]),
                    "vocabulary": tuple(entry["vocabulary"]),
                }
            )
            for entry in data["features"]
        )
        label = dict(data["label"])
        return cls(
            features=features,
            label=LabelPlan(
                **{**label, "task": Task(label["task"]), "vocabulary": tuple(label["vocabulary"])}
            ),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


@dataclass(frozen=True)
class EncodingOptions:
    """Hyperparameters that shape the feature plan."""

    max_vocabulary_size: int = DEFAULT_MAX_VOCABULARY_SIZE
    hash_buckets: int = DEFAULT_HASH_BUCKETS
    oov_buckets: int = DEFAULT_OOV_BUCKETS

    @classmethod
    def from_hyperparameters(cls, hparams: Mapping[str, Any]) -> EncodingOptions:
        return cls(
            max_vocabulary_size=_positive_int(
                hparams, "max_vocabulary_size", DEFAULT_MAX_VOCABULARY_SIZE
            ),
            hash_buckets=_positive_int(hparams, "hash_buckets", DEFAULT_HASH_BUCKETS),
            oov_buckets=_positive_int(hparams, "oov_buckets", DEFAULT_OOV_BUCKETS),
        )


# -- schema and statistics files ------------------------------------------------------------------


def parse_schema(content: bytes) -> schema_pb2.Schema:
    """A ``schema.pbtxt`` (text format, as TFDV writes it) or a binary Schema."""
    schema = schema_pb2.Schema()
    try:
        text_format.Parse(content.decode("utf-8"), schema)
        return schema
    except (text_format.ParseError, UnicodeDecodeError) as text_error:
        try:
            schema.ParseFromString(content)
        except DecodeError:
            raise TrainingFailure(
                "SCHEMA_INVALID",
                f"spec.schema is not a tensorflow.metadata.v0.Schema: {text_error}",
                field="spec.schema",
            ) from None
    if not schema.feature:
        raise TrainingFailure(
            "SCHEMA_INVALID", "spec.schema declares no features", field="spec.schema"
        )
    return schema


def parse_statistics(content: bytes) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Binary (as TFDV writes it) or text-format DatasetFeatureStatisticsList."""
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    try:
        statistics.ParseFromString(content)
        if statistics.datasets:
            return statistics
    except DecodeError:
        pass
    try:
        text_format.Parse(content.decode("utf-8"), statistics)
    except (text_format.ParseError, UnicodeDecodeError) as error:
        raise TrainingFailure(
            "STATISTICS_INVALID",
            f"spec.statistics is not a DatasetFeatureStatisticsList: {error}",
            field="spec.statistics",
        ) from None
    return statistics


# -- the plan -------------------------------------------------------------------------------------


def string_columns(schema: schema_pb2.Schema) -> dict[str, bool]:
    """Columns to read as text: the schema's BYTES features."""
    return {f.name: True for f in schema.feature if f.type == schema_pb2.FeatureType.BYTES}


def build_feature_plan(
    schema: schema_pb2.Schema,
    table: pa.Table,
    *,
    label: str,
    task: Task,
    num_classes: int = 0,
    statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    options: EncodingOptions | None = None,
) -> FeaturePlan:
    """The plan for ``schema`` checked against the columns of ``table``.

    Raises:
        TrainingFailure: LABEL_MISSING, LABEL_INVALID, SCHEMA_DATA_MISMATCH.
    """
    options = options or EncodingOptions()
    columns = set(table.column_names)
    if label not in columns:
        raise TrainingFailure(
            "LABEL_MISSING",
            f"the label column {label!r} is not in the training data; its columns are "
            f"{_listing(table.column_names)}",
            field="spec.label",
        )
    stats = _statistics_by_name(statistics)
    domains = {d.name: d for d in schema.string_domain}
    features: list[Feature] = []
    layer_names: set[str] = set()
    for entry in schema.feature:
        if entry.name == label or entry.lifecycle_stage in _SKIPPED_STAGES:
            continue
        if entry.type not in (
            schema_pb2.FeatureType.FLOAT,
            schema_pb2.FeatureType.INT,
            schema_pb2.FeatureType.BYTES,
        ):
            continue  # STRUCT and unset types have no tabular column
        if entry.name not in columns:
            raise TrainingFailure(
                "SCHEMA_DATA_MISMATCH",
                f"feature {entry.name!r} of the schema is not a column of the training data "
                f"(columns: {_listing(table.column_names)}); deprecate it in the schema or fix "
                "the data",
                field=entry.name,
            )
        layer_name = _layer_name(entry.name, layer_names)
        column = table.column(entry.name)
        if entry.type == schema_pb2.FeatureType.BYTES:
            features.append(
                _categorical(entry, FeatureKind.STRING, layer_name, column, stats, domains, options)
            )
        elif entry.type == schema_pb2.FeatureType.INT and entry.int_domain.is_categorical:
            _check_numeric(entry.name, "INT", column, integral=True)
            features.append(
                _categorical(
                    entry, FeatureKind.INTEGER, layer_name, column, stats, domains, options
                )
            )
        else:
            type_name = "FLOAT" if entry.type == schema_pb2.FeatureType.FLOAT else "INT"
            _check_numeric(entry.name, type_name, column, integral=False)
            features.append(_numeric(entry.name, layer_name, column, stats))
    if not features:
        raise TrainingFailure(
            "SCHEMA_DATA_MISMATCH",
            "the schema leaves no input feature besides the label",
            field="spec.schema",
        )
    label_plan = _label_plan(schema, table.column(label), label, task, num_classes, domains)
    return FeaturePlan(features=tuple(features), label=label_plan)


def _numeric(
    name: str,
    layer_name: str,
    column: pa.ChunkedArray,
    stats: Mapping[str, statistics_pb2.FeatureNameStatistics],
) -> Feature:
    entry = stats.get(name)
    if entry is not None and entry.HasField("num_stats"):
        mean, variance = entry.num_stats.mean, entry.num_stats.std_dev**2
    else:
        values = _float_values(column)
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if finite.size else 0.0
        variance = float(finite.var()) if finite.size else 1.0
    if not math.isfinite(mean):
        mean = 0.0
    if not math.isfinite(variance) or variance <= 0.0:
        variance = 1.0  # a constant feature: leave it centred, unscaled
    return Feature(
        name=name, kind=FeatureKind.NUMERIC, layer_name=layer_name, mean=mean, variance=variance
    )


def _categorical(
    entry: schema_pb2.Feature,
    kind: FeatureKind,
    layer_name: str,
    column: pa.ChunkedArray,
    stats: Mapping[str, statistics_pb2.FeatureNameStatistics],
    domains: Mapping[str, schema_pb2.StringDomain],
    options: EncodingOptions,
) -> Feature:
    vocabulary: list[str | int] | None = None
    distinct: int | None = None
    if kind is FeatureKind.STRING:
        domain = _string_domain(entry, domains)
        if domain:
            vocabulary = list(dict.fromkeys(domain))
        elif entry.name in stats and stats[entry.name].HasField("string_stats"):
            string_stats = stats[entry.name].string_stats
            distinct = string_stats.unique or None
            top = [value.value for value in string_stats.top_values] or [
                bucket.label for bucket in string_stats.rank_histogram.buckets
            ]
            if top and (distinct is None or distinct <= len(top)):
                vocabulary = list(dict.fromkeys(top))
    if vocabulary is None:
        values = pc.cast(column, pa.string()) if kind is FeatureKind.STRING else column
        counts = pc.value_counts(pc.drop_null(values).combine_chunks()).to_pylist()
        distinct = len(counts) if distinct is None else max(distinct, len(counts))
        ranked = sorted(counts, key=lambda c: (-c["counts"], str(c["values"])))
        vocabulary = [
            c["values"] if kind is FeatureKind.STRING else int(c["values"]) for c in ranked
        ]
    if kind is FeatureKind.STRING:
        vocabulary = [v for v in vocabulary if v != ""]  # "" means missing: an OOV bucket
    if len(vocabulary) > options.max_vocabulary_size or (
        distinct is not None and distinct > options.max_vocabulary_size
    ):
        return Feature(
            name=entry.name,
            kind=kind,
            layer_name=layer_name,
            hash_bins=options.hash_buckets,
            num_oov_buckets=0,
        )
    return Feature(
        name=entry.name,
        kind=kind,
        layer_name=layer_name,
        vocabulary=tuple(vocabulary),
        num_oov_buckets=options.oov_buckets,
    )


def _label_plan(
    schema: schema_pb2.Schema,
    column: pa.ChunkedArray,
    name: str,
    task: Task,
    num_classes: int,
    domains: Mapping[str, schema_pb2.StringDomain],
) -> LabelPlan:
    if column.null_count:
        raise TrainingFailure(
            "LABEL_INVALID",
            f"the label {name!r} is missing in {column.null_count} of {len(column)} rows; drop "
            "those rows or fill them",
            field="spec.label",
        )
    is_text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    if task is Task.REGRESSION:
        if is_text or not _is_number(column.type):
            raise TrainingFailure(
                "LABEL_INVALID",
                f"regression needs a numeric label, but {name!r} is {column.type}",
                field="spec.label",
            )
        return LabelPlan(name=name, task=task)
    if is_text:
        entry = next((f for f in schema.feature if f.name == name), None)
        domain = _string_domain(entry, domains) if entry is not None else []
        found = sorted(set(pc.unique(column.combine_chunks()).to_pylist()))
        vocabulary = list(dict.fromkeys(domain)) if domain else found
        unknown = [v for v in found if v not in vocabulary]
        if unknown:
            raise TrainingFailure(
                "LABEL_INVALID",
                f"label values {_listing(unknown)} are not in the schema's domain of {name!r}",
                field="spec.label",
            )
        return _classes(name, task, num_classes, tuple(vocabulary))
    if not _is_number(column.type) and not pa.types.is_boolean(column.type):
        raise TrainingFailure(
            "LABEL_INVALID", f"the label {name!r} has type {column.type}", field="spec.label"
        )
    values = _float_values(column)
    if not np.all(values == np.round(values)):
        raise TrainingFailure(
            "LABEL_INVALID",
            f"classification needs whole-number or text labels, but {name!r} holds fractions "
            "(use TASK_REGRESSION for a continuous target)",
            field="spec.label",
        )
    low, high = int(values.min()), int(values.max())
    if task is Task.BINARY:
        if low < 0 or high > 1:
            raise TrainingFailure(
                "LABEL_INVALID",
                f"binary classification needs labels 0 and 1, but {name!r} ranges from {low} "
                f"to {high}",
                field="spec.label",
            )
        return LabelPlan(name=name, task=task, num_classes=2)
    classes = num_classes or high + 1
    if low < 0 or high >= classes:
        raise TrainingFailure(
            "LABEL_INVALID",
            f"multi-class labels must lie in [0, {classes}), but {name!r} ranges from {low} to "
            f"{high}",
            field="spec.builtin.num_classes",
        )
    return LabelPlan(name=name, task=task, num_classes=classes)


def _classes(name: str, task: Task, num_classes: int, vocabulary: tuple[str, ...]) -> LabelPlan:
    if task is Task.BINARY and len(vocabulary) != 2:
        raise TrainingFailure(
            "LABEL_INVALID",
            f"binary classification needs exactly two label values, {name!r} has "
            f"{len(vocabulary)}: {_listing(vocabulary)}",
            field="spec.label",
        )
    if task is Task.MULTICLASS and num_classes and len(vocabulary) > num_classes:
        raise TrainingFailure(
            "LABEL_INVALID",
            f"{name!r} has {len(vocabulary)} classes, more than num_classes={num_classes}",
            field="spec.builtin.num_classes",
        )
    classes = 2 if task is Task.BINARY else max(num_classes, len(vocabulary))
    return LabelPlan(name=name, task=task, num_classes=classes, vocabulary=vocabulary)


# -- columns to arrays ----------------------------------------------------------------------------


def feature_arrays(table: pa.Table, plan: FeaturePlan) -> dict[str, np.ndarray]:
    """Raw model inputs by feature name: float32 (NaN = missing), text (``""`` = missing) or
    int64 (-1 = missing), each one value per row.

    Raises:
        TrainingFailure: SCHEMA_DATA_MISMATCH when a column is absent or of another type (an eval
            file that does not match the training data).
    """
    arrays: dict[str, np.ndarray] = {}
    for feature in plan.features:
        if feature.name not in table.column_names:
            raise TrainingFailure(
                "SCHEMA_DATA_MISMATCH",
                f"feature {feature.name!r} is not a column of the data",
                field=feature.name,
            )
        column = table.column(feature.name)
        if feature.kind is FeatureKind.NUMERIC:
            _check_numeric(feature.name, "numeric", column, integral=False)
            arrays[feature.name] = _float_values(column).astype(np.float32)
        elif feature.kind is FeatureKind.STRING:
            text = pc.fill_null(pc.cast(column, pa.string()), "")
            arrays[feature.name] = np.asarray(text.to_pylist(), dtype=object)
        else:
            _check_numeric(feature.name, "INT", column, integral=True)
            values = pc.fill_null(pc.cast(column, pa.int64()), MISSING_INTEGER)
            arrays[feature.name] = values.to_numpy().astype(np.int64)
    return arrays


def label_array(table: pa.Table, label: LabelPlan) -> np.ndarray:
    """Targets: float32 0/1 (binary), int32 class indices (multi-class) or float32 (regression).

    Raises:
        TrainingFailure: LABEL_MISSING / LABEL_INVALID (an eval file whose labels do not fit).
    """
    if label.name not in table.column_names:
        raise TrainingFailure(
            "LABEL_MISSING",
            f"the label column {label.name!r} is not in the data",
            field="spec.label",
        )
    column = table.column(label.name)
    if column.null_count:
        raise TrainingFailure(
            "LABEL_INVALID",
            f"the label {label.name!r} is missing in {column.null_count} rows",
            field="spec.label",
        )
    if label.vocabulary:
        values = pc.cast(column, pa.string()).to_pylist()
        index = {str(v): i for i, v in enumerate(label.vocabulary)}
        unknown = sorted({v for v in values if v not in index})
        if unknown:
            raise TrainingFailure(
                "LABEL_INVALID",
                f"label values {_listing(unknown)} were not seen in the training data",
                field="spec.label",
            )
        codes = np.asarray([index[v] for v in values], dtype=np.int32)
    else:
        codes_float = _float_values(column)
        if label.task is Task.REGRESSION:
            return codes_float.astype(np.float32)
        codes = codes_float.astype(np.int32)
        if codes.size and (codes.min() < 0 or codes.max() >= max(label.num_classes, 2)):
            raise TrainingFailure(
                "LABEL_INVALID",
                f"label values of {label.name!r} fall outside [0, {label.num_classes})",
                field="spec.label",
            )
    if label.task is Task.BINARY:
        return codes.astype(np.float32)
    return codes


# -- helpers --------------------------------------------------------------------------------------


def _check_numeric(name: str, type_name: str, column: pa.ChunkedArray, *, integral: bool) -> None:
    kind = column.type
    if _is_number(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind):
        if integral and pa.types.is_floating(kind):
            values = _float_values(column)
            finite = values[np.isfinite(values)]
            if np.any(finite != np.round(finite)):
                raise TrainingFailure(
                    "SCHEMA_DATA_MISMATCH",
                    f"feature {name!r} is a categorical INT in the schema, but the data holds "
                    "fractions",
                    field=name,
                )
        return
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            pc.cast(column, pa.float64())
            return
        except pa.ArrowInvalid:
            sample = next((v for v in column.to_pylist() if v is not None and not _parses(v)), "")
            raise TrainingFailure(
                "SCHEMA_DATA_MISMATCH",
                f"feature {name!r} is {type_name} in the schema, but the data holds text such "
                f"as {sample!r}",
                field=name,
            ) from None
    raise TrainingFailure(
        "SCHEMA_DATA_MISMATCH",
        f"feature {name!r} is {type_name} in the schema, but its column is {kind}",
        field=name,
    )


def _parses(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_number(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _float_values(column: pa.ChunkedArray) -> np.ndarray:
    values = pc.cast(column, pa.float64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _string_domain(
    entry: schema_pb2.Feature, domains: Mapping[str, schema_pb2.StringDomain]
) -> list[str]:
    if entry.HasField("string_domain"):
        return list(entry.string_domain.value)
    if entry.domain and entry.domain in domains:
        return list(domains[entry.domain].value)
    return []


def _statistics_by_name(
    statistics: statistics_pb2.DatasetFeatureStatisticsList | None,
) -> dict[str, statistics_pb2.FeatureNameStatistics]:
    if statistics is None or not statistics.datasets:
        return {}
    found: dict[str, statistics_pb2.FeatureNameStatistics] = {}
    for entry in statistics.datasets[0].features:
        name = entry.name or ".".join(entry.path.step)
        found[name] = entry
    return found


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _layer_name(name: str, taken: set[str]) -> str:
    base = _UNSAFE.sub("_", name) or "feature"
    if base[0].isdigit():
        base = "f_" + base
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    taken.add(candidate)
    return candidate


def _listing(values: Any, limit: int = 10) -> str:
    items = [repr(v) for v in list(values)[:limit]]
    more = len(list(values)) - limit
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def _positive_int(hparams: Mapping[str, Any], name: str, default: int) -> int:
    value = hparams.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != int(value)
        or value < 1
    ):
        raise TrainingFailure(
            "INVALID_HYPERPARAMETER",
            f"hyperparameter {name} must be a whole number of at least 1, got {value!r}",
            field=f"spec.hyperparameters.{name}",
        )
    return int(value)


__all__ = [
    "EncodingOptions",
    "Feature",
    "FeatureKind",
    "FeaturePlan",
    "LabelPlan",
    "build_feature_plan",
    "feature_arrays",
    "label_array",
    "parse_schema",
    "parse_statistics",
    "string_columns",
]
