"""Cutting the evaluation data into slices: per feature value, crosses, and quantile buckets.

A slice key is ``feature=value`` or, for a cross, ``feature=value,feature=value`` in the order the
slicing spec names the features. Values print as they are (integral floats without ".0"); a
missing value (null or NaN) is the value ``<missing>``, so no example silently leaves a slicing.
Numeric features with ``numeric_buckets`` set are cut at the quantiles of the evaluation data and
print as ``[low..high)`` (the last bucket ``[low..high]``); equal quantiles merge buckets, so
there may be fewer than asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sluice_runtime.errors import InvalidArgument

from sluice_evaluation.sliced import Partition

MISSING = "<missing>"
# A slicing with more slices than this is almost surely an id column; refuse it with a hint.
MAX_SLICES_PER_SPEC = 10_000
MAX_NUMERIC_BUCKETS = 1_000


@dataclass(frozen=True)
class SlicingSpec:
    """One way to cut the data: per value of one feature, or per value combination of several.

    Attributes:
        feature_names: the features; several make a cross.
        numeric_buckets: cut numeric features into this many quantile buckets; 0: per value.
    """

    feature_names: tuple[str, ...]
    numeric_buckets: int = 0


def check_slicing(specs: Sequence[SlicingSpec], field: str = "spec.slicing") -> None:
    """Rejects malformed specs before any data is read."""
    for i, spec in enumerate(specs):
        where = f"{field}[{i}]"
        if not spec.feature_names:
            raise InvalidArgument(f"{where}.feature_names: name at least one feature", field=where)
        if len(set(spec.feature_names)) != len(spec.feature_names):
            raise InvalidArgument(
                f"{where}.feature_names: a feature is named twice", field=f"{where}.feature_names"
            )
        for j, name in enumerate(spec.feature_names):
            if not name or "=" in name or "," in name:
                raise InvalidArgument(
                    f"{where}.feature_names[{j}]: {name!r} is not a feature name (it must be "
                    "non-empty, without '=' or ',')",
                    field=f"{where}.feature_names[{j}]",
                )
        if not 0 <= spec.numeric_buckets <= MAX_NUMERIC_BUCKETS:
            raise InvalidArgument(
                f"{where}.numeric_buckets: must be 0 to {MAX_NUMERIC_BUCKETS}, got "
                f"{spec.numeric_buckets}",
                field=f"{where}.numeric_buckets",
            )


def build_partitions(
    data: pd.DataFrame, specs: Sequence[SlicingSpec], field: str = "spec.slicing"
) -> list[Partition]:
    """The overall slice, then one partition per spec; within one, slices in value order."""
    partitions = [Partition.overall(len(data))]
    for i, spec in enumerate(specs):
        codes: list[np.ndarray] = []
        labels: list[list[str]] = []
        for j, name in enumerate(spec.feature_names):
            if name not in data.columns:
                raise InvalidArgument(
                    f"{field}[{i}].feature_names[{j}]: the evaluation data has no column {name!r}",
                    field=f"{field}[{i}].feature_names[{j}]",
                    reason="FEATURE_MISSING",
                )
            column_codes, column_labels = _codes(data[name], spec.numeric_buckets)
            codes.append(column_codes)
            labels.append([f"{name}={label}" for label in column_labels])
        partitions.append(_cross(codes, labels, f"{field}[{i}]"))
    return partitions


def _codes(column: pd.Series, numeric_buckets: int) -> tuple[np.ndarray, list[str]]:
    """Per-example codes 0..k-1 of one feature and the printed value of each code."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and numeric_buckets > 0:
        return _buckets(column.to_numpy(dtype=np.float64, na_value=np.nan), numeric_buckets)
    codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=True)
    labels = [_format(value) for value in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(MISSING)
    return codes.astype(np.int64), labels


def _buckets(values: np.ndarray, buckets: int) -> tuple[np.ndarray, list[str]]:
    present = ~np.isnan(values)
    if not present.any():
        return np.zeros(len(values), dtype=np.int64), [MISSING]
    edges = np.unique(np.quantile(values[present], np.linspace(0.0, 1.0, buckets + 1)))
    inner = edges[1:-1]
    codes = np.searchsorted(inner, values, side="right").astype(np.int64)
    labels: list[str] = []
    for digits in (6, 17):  # short labels, unless two edges only differ further down
        labels = []
        for b in range(max(len(edges) - 1, 1)):
            low, high = edges[b], edges[min(b + 1, len(edges) - 1)]
            closing = "]" if b == len(edges) - 2 or len(edges) == 1 else ")"
            labels.append(f"[{_number(low, digits)}..{_number(high, digits)}{closing}")
        if len(set(labels)) == len(labels):
            break
    if not present.all():
        codes[~present] = len(labels)
        labels.append(MISSING)
    return codes, labels


def _cross(codes: list[np.ndarray], labels: list[list[str]], field: str) -> Partition:
    combined = codes[0]
    for column_codes, column_labels in zip(codes[1:], labels[1:], strict=True):
        combined = combined * len(column_labels) + column_codes
    # Only combinations that occur become slices, in the order of their codes (value order).
    present, groups = np.unique(combined, return_inverse=True)
    if len(present) > MAX_SLICES_PER_SPEC:
        raise InvalidArgument(
            f"{field}: {len(present):,} slices, more than the limit of {MAX_SLICES_PER_SPEC:,}; "
            "slice on a feature with fewer values, or bucket a numeric one (numeric_buckets)",
            field=field,
            reason="TOO_MANY_SLICES",
        )
    keys = []
    for code in present:
        parts = []
        for column_labels in reversed(labels):
            code, index = divmod(int(code), len(column_labels))
            parts.append(column_labels[index])
        keys.append(",".join(reversed(parts)))
    return Partition(groups.astype(np.int64), tuple(keys))


def _format(value: object) -> str:
    if isinstance(value, float | np.floating):
        return _number(float(value), digits=None)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _number(value: float, digits: int | None) -> str:
    """Integral values without ".0"; others to ``digits`` significant digits, or (None) the
    shortest text that reads back as the same float."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value)) if digits is None else f"{value:.{digits}g}"
