"""Request-level enforcement: the model's signature first, then the data schema it was trained on.

The signature is law (the model cannot run otherwise): a missing or unknown input, a wrong dtype or
shape, or inputs that disagree on the batch size are always rejected. The data schema (a
tensorflow_metadata ``Schema``, usually the ``schema.pbtxt`` curated in validation) adds types and
domains per feature; each violation is rejected or only flagged, per feature (`SchemaPolicy`).
Rejections raise `InvalidArgument` naming the feature and the problem.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf import text_format
from sluice_runtime.errors import InvalidArgument
from tensorflow_metadata.proto.v0 import schema_pb2

from sluice_serving.signature import Signature
from sluice_serving.tensors import STRING, dtype_name


class SchemaAction(enum.Enum):
    """What a data-schema violation does to the request."""

    REJECT = "reject"  # INVALID_ARGUMENT, the model is not called
    FLAG = "flag"  # served, counted in metrics, marked in the request log and response metadata


@dataclass(frozen=True)
class SchemaPolicy:
    """The action for each feature's violations; features not listed get ``default_action``."""

    default_action: SchemaAction = SchemaAction.REJECT
    feature_actions: Mapping[str, SchemaAction] = field(default_factory=dict)

    def action_for(self, feature: str) -> SchemaAction:
        return self.feature_actions.get(feature, self.default_action)


@dataclass(frozen=True)
class Violation:
    """One broken expectation of the data schema."""

    feature: str
    problem: str  # type, int_domain, float_domain, nan, inf, string_domain, bool_domain
    message: str
    action: SchemaAction


def check_signature(signature: Signature, inputs: Mapping[str, np.ndarray]) -> int:
    """Reject inputs that do not fit ``signature``; return the batch size (rows) of the request.

    The batch size is the common first dimension of batched inputs (1 when no input is batched).
    """
    missing = [name for name in signature.inputs if name not in inputs]
    if missing:
        expected = ", ".join(f"'{name}'" for name in signature.inputs)
        raise InvalidArgument(
            f"missing input '{missing[0]}' (signature '{signature.name}' takes {expected})",
            field=f"inputs[{missing[0]}]",
            reason="MISSING_INPUT",
        )
    for name in inputs:
        if name not in signature.inputs:
            expected = ", ".join(f"'{known}'" for known in signature.inputs)
            raise InvalidArgument(
                f"unknown input '{name}' (signature '{signature.name}' takes {expected})",
                field=f"inputs[{name}]",
                reason="UNKNOWN_INPUT",
            )
    rows: int | None = None
    first_batched = ""
    for name, spec in signature.inputs.items():
        array = inputs[name]
        if array.dtype != spec.dtype:
            raise InvalidArgument(
                f"input '{name}' has dtype {dtype_name(array.dtype)}; the signature expects "
                f"{dtype_name(spec.dtype)}",
                field=f"inputs[{name}]",
                reason="WRONG_DTYPE",
            )
        if spec.shape is not None and not _fits(array.shape, spec.shape):
            raise InvalidArgument(
                f"input '{name}' has shape {list(array.shape)}; the signature expects "
                f"{spec.describe()}",
                field=f"inputs[{name}]",
                reason="WRONG_SHAPE",
            )
        if spec.batched:
            if rows is None:
                rows, first_batched = array.shape[0], name
            elif array.shape[0] != rows:
                raise InvalidArgument(
                    f"input '{name}' has {array.shape[0]} rows but '{first_batched}' has {rows}; "
                    "all inputs need the same batch size",
                    field=f"inputs[{name}]",
                    reason="WRONG_SHAPE",
                )
    return 1 if rows is None else rows


def _fits(shape: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return len(shape) == len(expected) and all(
        want < 0 or got == want for got, want in zip(shape, expected, strict=True)
    )


class DataSchema:
    """The checks of a tensorflow_metadata Schema that apply to request features, by name."""

    def __init__(self, schema: schema_pb2.Schema, source: str = "schema") -> None:
        self.source = source
        self.proto = schema
        self._checks: dict[str, _FeatureCheck] = {}
        named_domains: dict[str, Any] = {}
        for domains in (schema.string_domain, schema.int_domain, schema.float_domain):
            for named in domains:
                named_domains[named.name] = named
        for feature in schema.feature:
            if feature.deprecated or feature.lifecycle_stage in (
                schema_pb2.DEPRECATED,
                schema_pb2.DISABLED,
                schema_pb2.PLANNED,
                schema_pb2.ALPHA,
                schema_pb2.DEBUG_ONLY,
            ):
                continue  # not part of the serving contract
            domain_kind = feature.WhichOneof("domain_info")
            domain: Any = None
            if domain_kind == "domain":
                domain = named_domains.get(feature.domain)
                if domain is None:
                    raise ValueError(
                        f"{source}: feature '{feature.name}' names domain '{feature.domain}', "
                        "which the schema does not define"
                    )
            elif domain_kind in ("int_domain", "float_domain", "string_domain", "bool_domain"):
                domain = getattr(feature, domain_kind)
            self._checks[feature.name] = _FeatureCheck(feature.name, feature.type, domain)

    @classmethod
    def from_text(cls, text: str, source: str = "schema.pbtxt") -> DataSchema:
        """Parse a ``schema.pbtxt``; ValueError naming ``source`` when it is not a Schema."""
        try:
            schema = text_format.Parse(text, schema_pb2.Schema())
        except text_format.ParseError as error:
            raise ValueError(f"{source} is not a tensorflow_metadata Schema: {error}") from None
        return cls(schema, source)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self._checks)

    def check(self, inputs: Mapping[str, np.ndarray], policy: SchemaPolicy) -> list[Violation]:
        """The flagged violations; raises InvalidArgument on the first rejected one."""
        flagged: list[Violation] = []
        for name, array in inputs.items():
            check = self._checks.get(name)
            if check is None:
                continue
            for problem, message in check.problems(array):
                action = policy.action_for(name)
                if action is SchemaAction.REJECT:
                    raise InvalidArgument(
                        f"feature '{name}' breaks the data schema ({self.source}): {message}",
                        field=f"inputs[{name}]",
                        reason="SCHEMA_VIOLATION",
                        metadata={"feature": name, "problem": problem},
                    )
                flagged.append(Violation(name, problem, message, action))
        return flagged


class _FeatureCheck:
    def __init__(self, name: str, feature_type: int, domain: Any) -> None:
        self.name = name
        self.type = feature_type
        self.domain = domain

    def problems(self, array: np.ndarray) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if array.size == 0:
            return found
        is_string = array.dtype == STRING or array.dtype.kind in "SU"
        if self.type == schema_pb2.BYTES and not is_string:
            found.append(("type", f"{dtype_name(array.dtype)} values; the schema says BYTES"))
            return found
        if self.type in (schema_pb2.INT, schema_pb2.FLOAT) and is_string:
            kind = schema_pb2.FeatureType.Name(self.type)
            found.append(("type", f"string values; the schema says {kind}"))
            return found
        if self.type == schema_pb2.INT and array.dtype.kind == "f":
            finite = array[np.isfinite(array)]
            if finite.size != array.size or np.any(np.floor(finite) != finite):
                sample = _first(array[~np.isfinite(array) | (np.floor(array) != array)])
                found.append(("type", f"non-integer value {sample}; the schema says INT"))
                return found
        if isinstance(self.domain, schema_pb2.IntDomain) and not is_string:
            found.extend(self._range("int_domain", array, self.domain))
        elif isinstance(self.domain, schema_pb2.FloatDomain) and not is_string:
            found.extend(self._float(array, self.domain))
        elif isinstance(self.domain, schema_pb2.StringDomain) and is_string:
            allowed = {value.encode() for value in self.domain.value}
            outside = [value for value in array.reshape(-1) if _bytes(value) not in allowed]
            if outside:
                found.append(
                    (
                        "string_domain",
                        f"{len(outside)} values outside string_domain"
                        f"{' ' + self.domain.name if self.domain.name else ''}"
                        f" ({len(allowed)} allowed), e.g. {_bytes(outside[0])!r}",
                    )
                )
        elif isinstance(self.domain, schema_pb2.BoolDomain) and not is_string:
            not_bool = (array != 0) & (array != 1)
            if np.any(not_bool):
                found.append(("bool_domain", f"value {_first(array[not_bool])} is not 0 or 1"))
        return found

    def _range(self, problem: str, array: np.ndarray, domain: Any) -> list[tuple[str, str]]:
        has_min, has_max = domain.HasField("min"), domain.HasField("max")
        if not (has_min or has_max):
            return []
        values = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        low = values < domain.min if has_min else np.zeros(values.shape, dtype=bool)
        high = values > domain.max if has_max else np.zeros(values.shape, dtype=bool)
        bad = low | high
        if not np.any(bad):
            return []
        bounds = f"[{domain.min if has_min else '-inf'}, {domain.max if has_max else 'inf'}]"
        return [
            (
                problem,
                f"{int(np.count_nonzero(bad))} values outside {problem} {bounds}, "
                f"e.g. {_first(values[bad])}",
            )
        ]

    def _float(self, array: np.ndarray, domain: Any) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        if array.dtype.kind == "f":
            if domain.disallow_nan and np.any(np.isnan(array)):
                found.append(("nan", "NaN values, which float_domain disallows"))
            if domain.disallow_inf and np.any(np.isinf(array)):
                found.append(("inf", "infinite values, which float_domain disallows"))
        found.extend(self._range("float_domain", array, domain))
        return found


def _first(values: np.ndarray) -> object:
    return values.reshape(-1)[0].item()


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()
