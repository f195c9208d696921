"""The list filter language: a lexer and a recursive-descent parser into a small, allow-listed AST.

    type = "Model" AND state = LIVE AND properties.span >= 3 AND custom_properties.tag = "x"
    AND create_time >= "2026-01-01T00:00:00Z" AND context.name = "run-7" AND name != "m"
    AND uri LIKE "s3://bucket/%" AND id IN (1, 2, 3)

Grammar (keywords are case-insensitive):

    expr       := and_expr ("OR" and_expr)*
    and_expr   := unary ("AND" unary)*
    unary      := "NOT" unary | "(" expr ")" | comparison
    comparison := field op literal | field ["NOT"] "IN" "(" literal ("," literal)* ")"
    op         := "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE"
    field      := name ("." (name | string))*
    literal    := string | number | TRUE | FALSE | NAME   (bare names are enum values: LIVE)

The parser checks every field against the fields its node kind allows and every literal against
the field's type, so the AST that comes out can only express allowed queries; the SQL side turns
it into expressions with bound parameters. Nothing here builds SQL text or evaluates code.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sluice_runtime.errors import InvalidArgument

from sluice_metadata.model import PROPERTY_NAME_RE, ArtifactState, ExecutionState, NodeKind

MAX_FILTER_LENGTH = 10_000
MAX_DEPTH = 32
MAX_COMPARISONS = 200
MAX_IN_VALUES = 1_000


class FieldType(enum.Enum):
    INT = "integer"
    STRING = "string"
    TIMESTAMP = "timestamp"
    STATE = "state"
    # A property: its literal decides which stored kinds can match.
    PROPERTY = "property"


@dataclass(frozen=True, slots=True)
class ColumnField:
    """A column of the node itself: id, type_id, name, external_id, uri, digest, state, times."""

    name: str


@dataclass(frozen=True, slots=True)
class TypeNameField:
    """The name of the node's type (`type = "Model"`)."""


@dataclass(frozen=True, slots=True)
class PropertyField:
    name: str
    custom: bool


@dataclass(frozen=True, slots=True)
class MembershipField:
    """An attribute of a related context: `context.<attr>` for artifacts and executions (the
    contexts they are in), `parent.<attr>` for contexts (their parent contexts)."""

    relation: str  # "context" or "parent"
    attribute: str  # "id", "name" or "type"


FieldRef = ColumnField | TypeNameField | PropertyField | MembershipField
Literal = int | float | str | bool


@dataclass(frozen=True, slots=True)
class Comparison:
    """`field op value`; for IN, `values` holds every candidate. Timestamps arrive as microseconds
    and states as their numbers."""

    field: FieldRef
    op: str  # = != < <= > >= LIKE IN
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Expr


Expr = Comparison | And | Or | Not

_COMMON_COLUMNS: dict[str, FieldType] = {
    "id": FieldType.INT,
    "type_id": FieldType.INT,
    "name": FieldType.STRING,
    "external_id": FieldType.STRING,
    "create_time": FieldType.TIMESTAMP,
    "update_time": FieldType.TIMESTAMP,
}
ALLOWED_COLUMNS: dict[NodeKind, dict[str, FieldType]] = {
    NodeKind.ARTIFACT: {
        **_COMMON_COLUMNS,
        "uri": FieldType.STRING,
        "digest": FieldType.STRING,
        "state": FieldType.STATE,
    },
    NodeKind.EXECUTION: {**_COMMON_COLUMNS, "state": FieldType.STATE},
    NodeKind.CONTEXT: dict(_COMMON_COLUMNS),
}
MEMBERSHIP_RELATION = {
    NodeKind.ARTIFACT: "context",
    NodeKind.EXECUTION: "context",
    NodeKind.CONTEXT: "parent",
}
MEMBERSHIP_ATTRIBUTES = {"id": FieldType.INT, "name": FieldType.STRING, "type": FieldType.STRING}
STATE_ENUMS: dict[NodeKind, type[ArtifactState] | type[ExecutionState]] = {
    NodeKind.ARTIFACT: ArtifactState,
    NodeKind.EXECUTION: ExecutionState,
}

_OPS_BY_TYPE: dict[FieldType, frozenset[str]] = {
    FieldType.INT: frozenset({"=", "!=", "<", "<=", ">", ">=", "IN"}),
    FieldType.TIMESTAMP: frozenset({"=", "!=", "<", "<=", ">", ">=", "IN"}),
    FieldType.STRING: frozenset({"=", "!=", "<", "<=", ">", ">=", "LIKE", "IN"}),
    FieldType.STATE: frozenset({"=", "!=", "IN"}),
}


# ---------------------------------------------------------------------------------------------
# Lexer


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # STRING NUMBER NAME OP LPAREN RPAREN COMMA DOT END
    text: str
    position: int
    value: Literal = ""


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<dot>\.)
    """,
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t"}


def _error(message: str) -> InvalidArgument:
    return InvalidArgument(message, field="filter", reason="INVALID_FILTER")


def _unquote(text: str, position: int) -> str:
    out: list[str] = []
    body = text[1:-1]
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            escaped = body[index + 1]
            if escaped not in _ESCAPES:
                raise _error(f"unknown escape \\{escaped} in the string at position {position}")
            out.append(_ESCAPES[escaped])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise _error(f"unexpected character {text[position]!r} at position {position}")
        kind = match.lastgroup
        assert kind is not None
        lexeme = match.group()
        if kind == "string":
            tokens.append(Token("STRING", lexeme, position, _unquote(lexeme, position)))
        elif kind == "number":
            is_float = any(c in lexeme for c in ".eE")
            number: Literal = float(lexeme) if is_float else int(lexeme)
            tokens.append(Token("NUMBER", lexeme, position, number))
        elif kind != "space":
            tokens.append(Token(kind.upper(), lexeme, position))
        position = match.end()
    tokens.append(Token("END", "", len(text)))
    return tokens


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    def __init__(self, text: str, kind: NodeKind) -> None:
        self._tokens = tokenize(text)
        self._index = 0
        self._kind = kind
        self._comparisons = 0

    # token helpers

    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _next(self) -> Token:
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _at_keyword(self, word: str) -> bool:
        token = self._peek()
        return token.kind == "NAME" and token.text.upper() == word

    def _expect(self, kind: str, what: str) -> Token:
        token = self._next()
        if token.kind != kind:
            found = "the end of the filter" if token.kind == "END" else repr(token.text)
            raise _error(f"expected {what} at position {token.position}, found {found}")
        return token

    # grammar

    def parse(self) -> Expr:
        expr = self._or(0)
        token = self._peek()
        if token.kind != "END":
            raise _error(
                f"unexpected {token.text!r} at position {token.position}; "
                "combine conditions with AND or OR"
            )
        return expr

    def _or(self, depth: int) -> Expr:
        parts = [self._and(depth)]
        while self._at_keyword("OR"):
            self._next()
            parts.append(self._and(depth))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _and(self, depth: int) -> Expr:
        parts = [self._unary(depth)]
        while self._at_keyword("AND"):
            self._next()
            parts.append(self._unary(depth))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _unary(self, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise _error(f"the filter nests deeper than {MAX_DEPTH} levels")
        if self._at_keyword("NOT"):
            self._next()
            return Not(self._unary(depth + 1))
        if self._peek().kind == "LPAREN":
            self._next()
            expr = self._or(depth + 1)
            self._expect("RPAREN", "')'")
            return expr
        return self._comparison()

    def _comparison(self) -> Expr:
        self._comparisons += 1
        if self._comparisons > MAX_COMPARISONS:
            raise _error(f"the filter has more than {MAX_COMPARISONS} comparisons")
        field, field_type, label = self._field()
        negate = False
        if self._at_keyword("NOT"):
            self._next()
            negate = True
            if not self._at_keyword("IN"):
                raise _error(f"expected IN after NOT at position {self._peek().position}")
        if self._at_keyword("IN"):
            self._next()
            self._expect("LPAREN", "'(' after IN")
            raw = [self._literal()]
            while self._peek().kind == "COMMA":
                self._next()
                raw.append(self._literal())
            self._expect("RPAREN", "')' to close the IN list")
            if len(raw) > MAX_IN_VALUES:
                raise _error(f"an IN list holds at most {MAX_IN_VALUES} values")
            op = "IN"
        else:
            token = self._next()
            if token.kind == "OP":
                op = token.text
            elif token.kind == "NAME" and token.text.upper() == "LIKE":
                op = "LIKE"
            else:
                found = "the end of the filter" if token.kind == "END" else repr(token.text)
                raise _error(
                    f"expected an operator (= != < <= > >= LIKE IN) after {label} at position "
                    f"{token.position}, found {found}"
                )
            raw = [self._literal()]
        values = tuple(self._check_literal(field_type, label, op, lit) for lit in raw)
        comparison = Comparison(field, op, values)
        return Not(comparison) if negate else comparison

    def _field(self) -> tuple[FieldRef, FieldType, str]:
        first = self._expect("NAME", "a field name")
        parts = [first.text]
        while self._peek().kind == "DOT":
            self._next()
            token = self._next()
            if token.kind == "NAME":
                parts.append(token.text)
            elif token.kind == "STRING":
                assert isinstance(token.value, str)
                parts.append(token.value)
            else:
                raise _error(f"expected a name after '.' at position {token.position}")
        label = ".".join(parts)
        head = parts[0]
        if head in ("properties", "custom_properties") and len(parts) >= 2:
            name = ".".join(parts[1:])
            if not PROPERTY_NAME_RE.fullmatch(name):
                raise _error(f"{label!r} at position {first.position} is not a property name")
            return (
                PropertyField(name, custom=head == "custom_properties"),
                FieldType.PROPERTY,
                label,
            )
        relation = MEMBERSHIP_RELATION[self._kind]
        if head == relation and len(parts) == 2 and parts[1] in MEMBERSHIP_ATTRIBUTES:
            return MembershipField(relation, parts[1]), MEMBERSHIP_ATTRIBUTES[parts[1]], label
        if len(parts) == 1:
            if head == "type":
                return TypeNameField(), FieldType.STRING, label
            column_type = ALLOWED_COLUMNS[self._kind].get(head)
            if column_type is not None:
                return ColumnField(head), column_type, label
        allowed = sorted(
            [
                *ALLOWED_COLUMNS[self._kind],
                "type",
                "properties.<name>",
                "custom_properties.<name>",
                *(f"{relation}.{attr}" for attr in MEMBERSHIP_ATTRIBUTES),
            ]
        )
        raise _error(
            f"unknown field {label!r} at position {first.position} for {self._kind.label}s; "
            f"allowed: {', '.join(allowed)}"
        )

    def _literal(self) -> Token:
        token = self._next()
        if token.kind in ("STRING", "NUMBER", "NAME"):
            return token
        found = "the end of the filter" if token.kind == "END" else repr(token.text)
        raise _error(f"expected a value at position {token.position}, found {found}")

    def _check_literal(self, field_type: FieldType, label: str, op: str, token: Token) -> Literal:
        where = f"at position {token.position}"
        if field_type is FieldType.PROPERTY:
            value = _property_literal(token, label, where)
            if op == "LIKE" and not isinstance(value, str):
                raise _error(f"LIKE needs a string pattern for {label} {where}")
            if isinstance(value, bool) and op not in ("=", "!=", "IN"):
                raise _error(f"{label}: booleans compare only with = != IN {where}")
            return value
        if op not in _OPS_BY_TYPE[field_type]:
            allowed = " ".join(sorted(_OPS_BY_TYPE[field_type]))
            raise _error(f"operator {op} does not apply to {label}; use one of: {allowed}")
        if field_type is FieldType.INT:
            if token.kind != "NUMBER" or not isinstance(token.value, int):
                raise _error(f"{label} compares with integers, got {token.text} {where}")
            return token.value
        if field_type is FieldType.STRING:
            if token.kind != "STRING":
                raise _error(f"{label} compares with quoted strings, got {token.text} {where}")
            return token.value
        if field_type is FieldType.TIMESTAMP:
            if token.kind != "STRING":
                raise _error(
                    f"{label} compares with quoted RFC 3339 times such as "
                    f'"2026-01-01T00:00:00Z", got {token.text} {where}'
                )
            assert isinstance(token.value, str)
            return parse_timestamp_us(token.value, label, where)
        # FieldType.STATE
        enum_type = STATE_ENUMS[self._kind]
        text = str(token.value) if token.kind == "STRING" else token.text
        name = text.upper().removeprefix("STATE_")
        if token.kind == "NUMBER" or name not in enum_type.__members__:
            names = ", ".join(m.name for m in enum_type)
            raise _error(f"{label}: unknown state {token.text} {where}; use one of: {names}")
        return int(enum_type[name])


def _property_literal(token: Token, label: str, where: str) -> Literal:
    if token.kind == "NAME":
        word = token.text.upper()
        if word in ("TRUE", "FALSE"):
            return word == "TRUE"
        raise _error(
            f'{label}: {token.text} is not a value {where}; quote strings, e.g. "{token.text}"'
        )
    return token.value


def parse_timestamp_us(text: str, label: str = "time", where: str = "") -> int:
    """RFC 3339 (or ISO 8601 date) text to microseconds since the epoch; no zone means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _error(
            f'{label}: {text!r} is not an RFC 3339 time such as "2026-01-01T00:00:00Z" {where}'
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_filter(text: str, kind: NodeKind) -> Expr | None:
    """Parses and checks a filter for listing nodes of `kind`; None for an empty filter.

    Raises InvalidArgument (field "filter") with the position of the problem.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise _error(f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    if not text.strip():
        return None
    return _Parser(text, kind).parse()


def walk(expr: Expr) -> Sequence[Comparison]:
    """Every comparison in the expression (for tests and diagnostics)."""
    if isinstance(expr, Comparison):
        return [expr]
    if isinstance(expr, Not):
        return walk(expr.part)
    return [c for part in expr.parts for c in walk(part)]
