"""Tabular inputs (CSV, Parquet, the serving request log) read as a stream of Arrow record batches.

A data URI names one file or, ending in '/', every file under a prefix:

* ``file:///abs/path`` (or a bare absolute path): read straight from the local file system, which is
  the fast path (pyarrow reads the file itself, no copy).
* ``s3://bucket/key``: read through the artifact store (`sluice_runtime.artifacts`), so every byte
  is checked against the sha256 digest recorded when it was written. CSV streams; Parquet needs
  random access, so it is first copied to a local temporary file (verified) and read from there.

Every batch comes out *normalized*: each column is null, int64, float64 or string, or a list of one
of those, so the statistics code handles four value kinds only. Rows are counted, and checked
against the Parquet footer, so a file is either read whole or the read fails with an error naming
the file (and the column, when one is at fault).
"""

from __future__ import annotations

import abc
import contextlib
import enum
import os
import queue
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sluice_runtime.artifacts import ArtifactStore, ArtifactStoreError, open_artifact_store
from sluice_runtime.errors import DataLoss, InvalidArgument, NotFound

DEFAULT_CSV_BLOCK_SIZE = 4 * 1024 * 1024  # bytes parsed per batch; type inference sees the first
DEFAULT_PARQUET_BATCH_ROWS = 64 * 1024
SOURCE_FIELD = "source.data.uri"

# Columns of the serving service's request log that are not request features: the model's outputs
# and the log's own bookkeeping (time, model version, signature, protocol, request id, flags).
REQUEST_LOG_NON_FEATURE_PREFIXES = ("output.", "sluice.")


class DataFormat(enum.Enum):
    """How a file is parsed."""

    CSV = "csv"
    PARQUET = "parquet"
    # The serving service's sampled request log: Parquet with one column per request feature,
    # plus `output.<name>` and `sluice.<field>` columns, which are left out.
    REQUEST_LOG = "request_log"


class ValueKind(enum.Enum):
    """The kind of the values of a normalized column; the order is the widening order."""

    NULL = 0
    INT = 1
    FLOAT = 2
    STRING = 3

    def widen(self, other: ValueKind) -> ValueKind:
        """The narrowest kind holding both: null < int < float < string."""
        return self if self.value >= other.value else other


class ColumnTypeChange(Exception):
    """A column needs a wider value kind than the one it was read with (e.g. an int column that
    turns out to hold text further down); the reader restarts with `kind` forced for `column`."""

    def __init__(self, column: str, kind: ValueKind, why: str) -> None:
        super().__init__(f"column {column!r} is read as {kind.name.lower()}: {why}")
        self.column = column
        self.kind = kind
        self.why = why


# -- files -----------------------------------------------------------------------------------------


class FileAccess(abc.ABC):
    """How the bytes of one file are reached."""

    @abc.abstractmethod
    def open_stream(self) -> Any:
        """A readable binary stream (a pyarrow NativeFile or a Python file object)."""

    @abc.abstractmethod
    def local_path(self) -> contextlib.AbstractContextManager[str]:
        """A local file path holding the bytes, for formats that need random access."""


class LocalFileAccess(FileAccess):
    def __init__(self, path: str) -> None:
        self.path = path

    def open_stream(self) -> Any:
        # 'detect' decompresses .gz, .bz2, .zst ... by extension; plain files are read as is.
        return pa.input_stream(self.path, compression="detect")

    @contextlib.contextmanager
    def local_path(self) -> Iterator[str]:
        yield self.path


class StoreFileAccess(FileAccess):
    def __init__(self, store: ArtifactStore, key: str) -> None:
        self.store = store
        self.key = key

    def open_stream(self) -> BinaryIO:
        return self.store.open(self.key)

    @contextlib.contextmanager
    def local_path(self) -> Iterator[str]:
        with tempfile.TemporaryDirectory(prefix="sluice-validation-") as folder:
            path = os.path.join(folder, "data")
            self.store.get_file(self.key, path)
            yield path


@dataclass(frozen=True)
class DataFile:
    """One input file; `uri` is what errors and lineage name it by."""

    uri: str
    size: int
    format: DataFormat
    access: FileAccess = field(compare=False, repr=False)


_EXTENSIONS = {
    ".csv": DataFormat.CSV,
    ".tsv": DataFormat.CSV,
    ".parquet": DataFormat.PARQUET,
    ".pq": DataFormat.PARQUET,
}
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4")


def guess_format(name: str) -> DataFormat | None:
    """The format a file name suggests (`.csv`, `.csv.gz`, `.parquet`), or None."""
    lowered = name.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        lowered = lowered.removesuffix(suffix)
    return _EXTENSIONS.get(os.path.splitext(lowered)[1])


def _is_hidden(relative: str) -> bool:
    # Hadoop/Spark markers (_SUCCESS, _metadata), dot files (.crc, the store's .sluice folder).
    return any(part.startswith(("_", ".")) for part in relative.split("/") if part)


class DataResolver:
    """Turns a data URI into the list of files it names.

    Args:
        store: the service's artifact store; `s3://` URIs under its root are read through it.
        open_store: opens the store for any other `s3://bucket` (default: open_artifact_store).
    """

    def __init__(
        self,
        store: ArtifactStore | None = None,
        open_store: Callable[[str], ArtifactStore] = open_artifact_store,
    ) -> None:
        self._store = store
        self._open_store = open_store
        self._stores: dict[str, ArtifactStore] = {}

    def list_files(self, uri: str, data_format: DataFormat | None = None) -> list[DataFile]:
        """The files `uri` names, in key order; raises NotFound when there are none."""
        if not uri:
            raise InvalidArgument("the data URI is empty", field=SOURCE_FIELD)
        parts = urlsplit(uri)
        if parts.scheme in ("", "file"):
            files = self._local_files(uri, unquote(parts.path), data_format)
        elif parts.scheme == "s3":
            files = self._store_files(uri, data_format)
        else:
            raise InvalidArgument(
                f"unsupported data URI {uri!r}: use file:///absolute/path or s3://bucket/key",
                field=SOURCE_FIELD,
                reason="UNSUPPORTED_URI",
            )
        if not files:
            raise NotFound(f"no data files under {uri!r}", field=SOURCE_FIELD, reason="NO_INPUT")
        return files

    def _local_files(self, uri: str, path: str, data_format: DataFormat | None) -> list[DataFile]:
        if not path.startswith("/"):
            raise InvalidArgument(f"data URI {uri!r} needs an absolute path", field=SOURCE_FIELD)
        root = Path(path)
        if uri.endswith("/") or root.is_dir():
            if not root.is_dir():
                raise NotFound(f"data folder {uri!r} does not exist", field=SOURCE_FIELD)
            names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
            chosen = [name for name in names if not _is_hidden(name)]
            return [self._local_file(str(root / name), data_format, uri) for name in chosen]
        if not root.is_file():
            raise NotFound(f"data file {uri!r} does not exist", field=SOURCE_FIELD)
        return [self._local_file(path, data_format, uri)]

    def _local_file(self, path: str, data_format: DataFormat | None, uri: str) -> DataFile:
        file_uri = "file://" + path
        return DataFile(
            file_uri,
            os.path.getsize(path),
            _format_of(file_uri, data_format),
            LocalFileAccess(path),
        )

    def _store_files(self, uri: str, data_format: DataFormat | None) -> list[DataFile]:
        store, key = self._store_and_key(uri)
        try:
            if not key or key.endswith("/"):
                infos = [info for info in store.list(key) if not _is_hidden(info.key[len(key) :])]
            else:
                infos = [store.stat(key)]
        except ArtifactStoreError as error:
            raise _store_error(uri, error) from error
        return [
            DataFile(
                info.uri,
                info.size,
                _format_of(info.key, data_format),
                StoreFileAccess(store, info.key),
            )
            for info in infos
        ]

    def _store_and_key(self, uri: str) -> tuple[ArtifactStore, str]:
        if self._store is not None:
            root = self._store.root_uri.rstrip("/") + "/"
            if uri.startswith(root):
                return self._store, unquote(uri[len(root) :])
        parts = urlsplit(uri)
        bucket_uri = f"s3://{parts.netloc}"
        if bucket_uri not in self._stores:
            try:
                self._stores[bucket_uri] = self._open_store(bucket_uri)
            except (ValueError, ArtifactStoreError) as error:
                raise InvalidArgument(
                    f"cannot open the storage of {uri!r}: {error}", field=SOURCE_FIELD
                ) from error
        return self._stores[bucket_uri], unquote(parts.path.lstrip("/"))


def _format_of(name: str, data_format: DataFormat | None) -> DataFormat:
    if data_format is not None:
        return data_format
    guessed = guess_format(name)
    if guessed is None:
        raise InvalidArgument(
            f"cannot tell the format of {name!r} from its name: set source.format"
            " (CSV, PARQUET or REQUEST_LOG) or use a .csv / .parquet extension",
            field="source.format",
            reason="UNKNOWN_FORMAT",
        )
    return guessed


def _store_error(uri: str, error: ArtifactStoreError) -> Exception:
    code = getattr(error, "grpc_code_name", "INTERNAL")
    if code == "NOT_FOUND":
        return NotFound(f"{uri}: {error}", field=SOURCE_FIELD)
    if code == "DATA_LOSS":
        return DataLoss(f"{uri}: {error}", field=SOURCE_FIELD, reason="CORRUPTED_INPUT")
    if code == "INVALID_ARGUMENT":
        return InvalidArgument(f"{uri}: {error}", field=SOURCE_FIELD)
    return error


# -- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadSettings:
    """How files are parsed and normalized.

    Attributes:
        csv_block_size: bytes of CSV parsed per batch; column types are inferred from the first
            block and widened (with a restart) when a later block disagrees.
        parquet_batch_rows: rows per Parquet batch.
        list_separators: feature -> separator of the values packed in one string ("a|b|c").
        forced_kinds: feature -> value kind to read it as (set by restarts after a type change).
    """

    csv_block_size: int = DEFAULT_CSV_BLOCK_SIZE
    parquet_batch_rows: int = DEFAULT_PARQUET_BATCH_ROWS
    list_separators: Mapping[str, str] = field(default_factory=dict)
    forced_kinds: Mapping[str, ValueKind] = field(default_factory=dict)


@dataclass(frozen=True)
class FileBatch:
    """A normalized batch and where it came from."""

    file: DataFile
    batch: pa.RecordBatch
    first_row: int  # 0-based row number, within the file, of the batch's first row
    bytes_read: int  # of the file so far, when known (0 otherwise)


def read_batches(files: Iterable[DataFile], settings: ReadSettings) -> Iterator[FileBatch]:
    """Every row of every file, as normalized batches; all files must have the same columns
    (except request logs, whose features may come and go: a feature a file lacks is missing)."""
    expected: list[str] | None = None
    first_uri = ""
    for data_file in files:
        for index, file_batch in enumerate(_read_file(data_file, settings)):
            if index == 0 and data_file.format is not DataFormat.REQUEST_LOG:
                names = file_batch.batch.schema.names
                if expected is None:
                    expected, first_uri = names, data_file.uri
                elif names != expected:
                    raise _header_mismatch(data_file.uri, names, first_uri, expected)
            yield file_batch


def _header_mismatch(uri: str, names: list[str], first_uri: str, expected: list[str]) -> Exception:
    missing = [name for name in expected if name not in names]
    extra = [name for name in names if name not in expected]
    if missing or extra:
        detail = ", ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"unexpected {extra}" if extra else "",
            )
            if part
        )
    else:
        detail = f"the same columns in another order ({names} vs {expected})"
    return InvalidArgument(
        f"{uri}: its columns do not match those of {first_uri}: {detail}",
        field=SOURCE_FIELD,
        reason="HEADER_MISMATCH",
    )


def _read_file(data_file: DataFile, settings: ReadSettings) -> Iterator[FileBatch]:
    if data_file.format is DataFormat.CSV:
        yield from _read_csv(data_file, settings)
    else:
        yield from _read_parquet(data_file, settings)


def _read_csv(data_file: DataFile, settings: ReadSettings) -> Iterator[FileBatch]:
    if data_file.size == 0:
        raise InvalidArgument(
            f"{data_file.uri}: the file is empty; a CSV file needs at least a header row",
            field=SOURCE_FIELD,
            reason="EMPTY_FILE",
        )
    delimiter = "\t" if ".tsv" in data_file.uri.lower() else ","
    column_types: dict[str, pa.DataType] = {}
    for name, kind in settings.forced_kinds.items():
        column_types[name] = _ARROW_TYPES[kind]
    for name in settings.list_separators:
        column_types[name] = pa.string()
    skip_empty_lines = True
    # At most two opens. The second forces text for columns pyarrow typed as dates, times or
    # booleans, which TFDV (and so we) treat as strings - read from the text, not re-formatted;
    # and for a one-column file it keeps empty lines, which are rows whose value is missing.
    for _ in range(2):
        stream = data_file.access.open_stream()
        try:
            reader = _open_csv_reader(
                data_file, stream, delimiter, column_types, settings, skip_empty_lines
            )
            retype = {
                f.name: pa.string()
                for f in reader.schema
                if not _is_csv_native(f.type) and f.name not in column_types
            }
            one_column = len(reader.schema) == 1 and skip_empty_lines
            if retype or one_column:
                column_types.update(retype)
                skip_empty_lines = not one_column and skip_empty_lines
                continue
            _check_unique_names(data_file.uri, reader.schema.names)
            yield from _csv_batches(data_file, reader, stream, settings)
            return
        finally:
            stream.close()
    raise AssertionError(f"{data_file.uri}: the CSV reader options did not settle")  # unreachable


def _open_csv_reader(
    data_file: DataFile,
    stream: Any,
    delimiter: str,
    column_types: Mapping[str, pa.DataType],
    settings: ReadSettings,
    skip_empty_lines: bool,
) -> pa_csv.CSVStreamingReader:
    try:
        return pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(block_size=settings.csv_block_size, use_threads=True),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, ignore_empty_lines=skip_empty_lines
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict(column_types),
                # Only an empty field is missing, as in TFDV: "nan" and "inf" are float values.
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                # TFDV reads true/false as text; no value is a boolean.
                true_values=[],
                false_values=[],
            ),
        )
    except ArtifactStoreError as error:
        raise _store_error(data_file.uri, error) from error
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as error:
        message = str(error)
        if "Empty CSV file" in message:
            raise InvalidArgument(
                f"{data_file.uri}: the file is empty; a CSV file needs at least a header row",
                field=SOURCE_FIELD,
                reason="EMPTY_FILE",
            ) from None
        raise InvalidArgument(
            f"{data_file.uri}: cannot parse the start of the CSV (the header and the first"
            f" {settings.csv_block_size} bytes): {message}",
            field=SOURCE_FIELD,
            reason="UNREADABLE_INPUT",
        ) from None


def _is_csv_native(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_null(kind)
        or pa.types.is_binary(kind)  # invalid UTF-8: reported by the normalizer, naming the column
    )


_CSV_COLUMN = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+)")
_INVALID_VALUE = re.compile(r"invalid value '(.*)'$", re.DOTALL)


def _csv_batches(
    data_file: DataFile,
    reader: pa_csv.CSVStreamingReader,
    stream: Any,
    settings: ReadSettings,
) -> Iterator[FileBatch]:
    names = reader.schema.names
    rows = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            if rows == 0:  # a header-only file still names its columns
                empty = reader.schema.empty_table().to_batches()
                batch = empty[0] if empty else _empty_batch(reader.schema)
                yield FileBatch(data_file, normalize_batch(batch, data_file, settings), 0, 0)
            return
        except ArtifactStoreError as error:
            raise _store_error(data_file.uri, error) from error
        except (pa.ArrowInvalid, OSError) as error:
            raise _csv_error(data_file, names, rows, str(error)) from None
        normalized = normalize_batch(batch, data_file, settings, first_row=rows)
        yield FileBatch(data_file, normalized, rows, _tell(stream))
        rows += batch.num_rows


def _tell(stream: Any) -> int:
    try:
        return int(stream.tell())
    except Exception:  # a stream that cannot tell only costs progress precision
        return 0


def _csv_error(data_file: DataFile, names: list[str], rows: int, message: str) -> Exception:
    match = _CSV_COLUMN.search(message)
    if match:
        index, target = int(match.group(1)), match.group(2)
        column = names[index] if index < len(names) else f"#{index}"
        if "invalid UTF8" in message:
            return _invalid_utf8(data_file.uri, column)
        value_match = _INVALID_VALUE.search(message)
        value = value_match.group(1) if value_match else ""
        kind = (
            _kind_for_text(value)
            if target == "null"
            else (
                ValueKind.FLOAT
                if target.startswith("int") and _parses(float, value)
                else ValueKind.STRING
            )
        )
        return ColumnTypeChange(
            column, kind, f"{data_file.uri} has the value {value!r} after row {rows}"
        )
    return InvalidArgument(
        f"{data_file.uri}: cannot parse the CSV after row {rows}: {message}",
        field=SOURCE_FIELD,
        reason="UNREADABLE_INPUT",
    )


def _parses(convert: Callable[[str], object], text: str) -> bool:
    try:
        convert(text)
    except ValueError:
        return False
    return True


def _kind_for_text(text: str) -> ValueKind:
    if _parses(int, text):
        return ValueKind.INT
    if _parses(float, text):
        return ValueKind.FLOAT
    return ValueKind.STRING


def _invalid_utf8(uri: str, column: str) -> InvalidArgument:
    return InvalidArgument(
        f"{uri}: column {column!r} holds bytes that are not valid UTF-8 text; re-encode the file"
        " as UTF-8",
        field=SOURCE_FIELD,
        reason="INVALID_UTF8",
    )


def _check_unique_names(uri: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidArgument(
                f"{uri}: the column {name!r} appears twice in the header",
                field=SOURCE_FIELD,
                reason="DUPLICATE_COLUMN",
            )
        seen.add(name)
        if not name:
            raise InvalidArgument(
                f"{uri}: a column has an empty name in the header",
                field=SOURCE_FIELD,
                reason="EMPTY_COLUMN_NAME",
            )


def _read_parquet(data_file: DataFile, settings: ReadSettings) -> Iterator[FileBatch]:
    try:
        with data_file.access.local_path() as path:
            yield from _parquet_batches(data_file, path, settings)
    except ArtifactStoreError as error:
        raise _store_error(data_file.uri, error) from error


def _parquet_batches(data_file: DataFile, path: str, settings: ReadSettings) -> Iterator[FileBatch]:
    try:
        # Text columns come back dictionary-encoded as stored: no string is built, and value
        # counts become a bincount of the indices.
        schema = pq.read_schema(path, memory_map=True)
        text = [
            f.name for f in schema if _is_text(f.type) and f.name not in settings.list_separators
        ]
        parquet = pq.ParquetFile(path, memory_map=True, read_dictionary=text)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as error:
        raise InvalidArgument(
            f"{data_file.uri}: not a readable Parquet file (truncated or corrupt?): {error}",
            field=SOURCE_FIELD,
            reason="UNREADABLE_INPUT",
        ) from None
    expected_rows = parquet.metadata.num_rows
    rows = 0
    with parquet:
        batches = parquet.iter_batches(batch_size=settings.parquet_batch_rows)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (pa.ArrowInvalid, pa.ArrowException, OSError) as error:
                raise InvalidArgument(
                    f"{data_file.uri}: cannot read the Parquet data after row {rows}"
                    f" (truncated or corrupt?): {error}",
                    field=SOURCE_FIELD,
                    reason="UNREADABLE_INPUT",
                ) from None
            if data_file.format is DataFormat.REQUEST_LOG:
                batch = request_log_features(batch)
            else:
                batch = _flatten_structs(batch)
            if rows == 0:
                _check_unique_names(data_file.uri, batch.schema.names)
            normalized = normalize_batch(batch, data_file, settings, first_row=rows)
            rows += batch.num_rows
            fraction = rows / expected_rows if expected_rows else 1.0
            yield FileBatch(
                data_file, normalized, rows - batch.num_rows, int(data_file.size * fraction)
            )
    if rows == 0:
        batch = _empty_batch(parquet.schema_arrow)
        if data_file.format is DataFormat.REQUEST_LOG:
            batch = request_log_features(batch)
        else:
            batch = _flatten_structs(batch)
        yield FileBatch(data_file, normalize_batch(batch, data_file, settings), 0, data_file.size)
    if rows != expected_rows:
        raise DataLoss(
            f"{data_file.uri}: read {rows} rows but the Parquet footer records {expected_rows}",
            field=SOURCE_FIELD,
            reason="ROW_COUNT_MISMATCH",
        )


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)


def request_log_features(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The request-feature columns of a request-log batch (outputs and bookkeeping left out)."""
    keep = [
        i
        for i, name in enumerate(batch.schema.names)
        if not name.startswith(REQUEST_LOG_NON_FEATURE_PREFIXES)
    ]
    return _flatten_structs(batch.select(keep))


def _flatten_structs(batch: pa.RecordBatch) -> pa.RecordBatch:
    if not any(pa.types.is_struct(f.type) for f in batch.schema):
        return batch
    arrays: list[pa.Array] = []
    names: list[str] = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        _append_flat(name, column, arrays, names)
    return pa.RecordBatch.from_arrays(arrays, names)


def _append_flat(name: str, column: pa.Array, arrays: list[pa.Array], names: list[str]) -> None:
    if pa.types.is_struct(column.type):
        for child_field, child in zip(column.type, column.flatten(), strict=True):
            _append_flat(f"{name}.{child_field.name}", child, arrays, names)
    else:
        arrays.append(column)
        names.append(name)


# -- normalization ---------------------------------------------------------------------------------

_ARROW_TYPES = {
    ValueKind.NULL: pa.null(),
    ValueKind.INT: pa.int64(),
    ValueKind.FLOAT: pa.float64(),
    ValueKind.STRING: pa.string(),
}


def _is_text(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def kind_of(arrow_type: pa.DataType) -> ValueKind:
    """The value kind of a normalized column (of its list items for a list column)."""
    if is_list_type(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_null(arrow_type):
        return ValueKind.NULL
    if pa.types.is_integer(arrow_type):
        return ValueKind.INT
    if pa.types.is_floating(arrow_type):
        return ValueKind.FLOAT
    return ValueKind.STRING


def is_list_type(arrow_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    )


def normalize_batch(
    batch: pa.RecordBatch, data_file: DataFile, settings: ReadSettings, *, first_row: int = 0
) -> pa.RecordBatch:
    """Each column as null, int64, float64 or string, or a list of those (see module doc)."""
    arrays = [
        _normalize_column(name, column, data_file, settings)
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, batch.schema.names)


def _normalize_column(
    name: str, column: pa.Array, data_file: DataFile, settings: ReadSettings
) -> pa.Array:
    separator = settings.list_separators.get(name)
    forced = settings.forced_kinds.get(name)
    if pa.types.is_dictionary(column.type):
        if (
            separator is None
            and forced in (None, ValueKind.STRING)
            and _is_text(column.type.value_type)
        ):
            return _text_dictionary(name, column, data_file)
        column = column.dictionary_decode()
    if separator is not None and not is_list_type(column.type):
        text = _scalar_values(name, column, data_file, ValueKind.STRING)
        column = pc.split_pattern(text, separator)
    if is_list_type(column.type):
        if pa.types.is_fixed_size_list(column.type):
            column = column.cast(pa.list_(column.type.value_type))
        values = pc.list_flatten(column)
        if is_list_type(values.type) or pa.types.is_struct(values.type):
            raise InvalidArgument(
                f"{data_file.uri}: column {name!r} holds nested lists or structs inside lists,"
                " which statistics do not support; flatten it first",
                field=SOURCE_FIELD,
                reason="NESTED_COLUMN",
            )
        target = (
            forced
            if forced is not None
            else (_infer_text_kind(values) if separator is not None else None)
        )
        normalized_values = _scalar_values(name, values, data_file, target)
        return _rebuild_list(column, normalized_values)
    return _scalar_values(name, column, data_file, forced)


def _text_dictionary(name: str, column: pa.Array, data_file: DataFile) -> pa.Array:
    """A dictionary<string> column; only the (few) dictionary values are checked for UTF-8."""
    dictionary = column.dictionary
    if dictionary.type != pa.string():
        try:
            dictionary = dictionary.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _invalid_utf8(data_file.uri, name) from None
        return pa.DictionaryArray.from_arrays(column.indices, dictionary)
    return column


def _rebuild_list(column: pa.Array, values: pa.Array) -> pa.Array:
    """A plain list<values> array with `column`'s row lengths and null rows."""
    lengths = pc.fill_null(pc.list_value_length(column), 0)
    lengths = lengths.to_numpy(zero_copy_only=lengths.null_count == 0 and lengths.offset >= 0)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeListArray.from_arrays(pa.array(offsets), values, mask=column.is_null())


def _infer_text_kind(values: pa.Array) -> ValueKind:
    """int if every item parses as one, else float, else string (as TFDV infers CSV types)."""
    present = values.drop_null()
    if len(present) == 0:
        return ValueKind.NULL
    for kind in (ValueKind.INT, ValueKind.FLOAT):
        try:
            pc.cast(present, _ARROW_TYPES[kind])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return kind
    return ValueKind.STRING


def _scalar_values(
    name: str, column: pa.Array, data_file: DataFile, target: ValueKind | None
) -> pa.Array:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), column.type.value_type
    if (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    ):
        try:
            column = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _invalid_utf8(data_file.uri, name) from None
    elif pa.types.is_boolean(kind):
        column = column.cast(pa.int64())
    elif pa.types.is_integer(kind) and kind != pa.int64():
        try:
            column = column.cast(pa.int64())
        except pa.ArrowInvalid:  # uint64 past 2**63
            column = column.cast(pa.float64())
    elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        if kind != pa.float64():
            column = column.cast(pa.float64())
    elif pa.types.is_large_string(kind):
        column = column.cast(pa.string())
    elif not (pa.types.is_string(kind) or pa.types.is_null(kind) or pa.types.is_integer(kind)):
        try:  # dates, times, timestamps, durations: as text, like TFDV
            column = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidArgument(
                f"{data_file.uri}: column {name!r} has the type {kind}, which statistics do not"
                " support",
                field=SOURCE_FIELD,
                reason="UNSUPPORTED_TYPE",
            ) from None
    if target is None or target is ValueKind.NULL:
        return column
    current = kind_of(column.type)
    if current is target:
        return column
    try:
        return column.cast(_ARROW_TYPES[target])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Floats forced to int, or text forced to a number: the caller restarts reading wider.
        wider = current.widen(target)
        if wider is target:
            wider = ValueKind.STRING
        raise ColumnTypeChange(
            name, wider, f"{data_file.uri} has {current.name.lower()} values"
        ) from None


# -- prefetching -----------------------------------------------------------------------------------

_T = TypeVar("_T")
_DONE = object()


def prefetched(items: Iterator[_T], depth: int = 2) -> Iterator[_T]:
    """Produce `items` on a background thread, `depth` ahead, so parsing overlaps computing.

    Exceptions from the producer are raised in the consumer; closing the returned generator
    (or abandoning it) stops the producer at its next item.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: Any, error: BaseException | None) -> bool:
        while not stop.is_set():
            try:
                slots.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over(item, None):
                    return
            hand_over(_DONE, None)
        except BaseException as error:  # raised in the consumer
            hand_over(_DONE, error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    worker = threading.Thread(target=produce, name="sluice-validation-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue, then let it finish its current item.
        with contextlib.suppress(queue.Empty):
            while True:
                slots.get_nowait()
        worker.join(timeout=30)
