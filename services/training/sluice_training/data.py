"""Reading a job's tabular data (CSV or Parquet, one file or a folder of files) into Arrow.

Files in the artifact store are read through its verifying streams, so every byte is checked
against the digest recorded when it was written; ``file://`` paths outside the store are read
from the local disk. Columns the schema declares as strings are read as strings (a zip code
``"007"`` stays text); everything else is inferred and checked later against the schema.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sluice_runtime.artifacts import ArtifactNotFound, ArtifactStore, ArtifactStoreError

from sluice_training.failures import TrainingFailure
from sluice_training.locations import locate
from sluice_training.plan import DataRef

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(
    ref: DataRef, store: ArtifactStore, field: str, string_columns: Mapping[str, bool] | None = None
) -> pa.Table:
    """Every row of ``ref`` as one table (files of a folder in key order, concatenated).

    Args:
        field: the spec field named in errors (``spec.train_data``).
        string_columns: column names to read as text from CSV (the schema's BYTES features).

    Raises:
        TrainingFailure: DATA_NOT_FOUND, or DATA_UNREADABLE naming the file.
    """
    location = locate(ref.uri, store.root_uri, f"{field}.data.uri")
    names = list(_files(location.key or location.path, store, from_store=bool(location.key)))
    if not names:
        raise TrainingFailure(
            "DATA_NOT_FOUND", f"no data files at {ref.uri}", field=f"{field}.data.uri"
        )
    tables = []
    for name in names:
        data_format = ref.format or _format_of(name, field)
        try:
            if location.key:
                table = _read_from_store(store, name, data_format, string_columns or {})
            else:
                table = _read_local(name, data_format, string_columns or {})
        except ArtifactNotFound:
            raise TrainingFailure(
                "DATA_NOT_FOUND", f"no data file at {ref.uri}", field=f"{field}.data.uri"
            ) from None
        except (pa.ArrowException, ValueError, OSError, ArtifactStoreError) as error:
            raise TrainingFailure(
                "DATA_UNREADABLE",
                f"{name} cannot be read as {data_format}: {error}",
                field=f"{field}.data.uri",
            ) from None
        tables.append(table)
    try:
        combined = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as error:
        raise TrainingFailure(
            "DATA_UNREADABLE",
            f"the files under {ref.uri} do not share one set of columns: {error}",
            field=f"{field}.data.uri",
        ) from None
    if combined.num_rows == 0:
        raise TrainingFailure(
            "DATA_UNREADABLE", f"{ref.uri} holds no rows", field=f"{field}.data.uri"
        )
    return combined


def _files(location: str, store: ArtifactStore, *, from_store: bool) -> Iterator[str]:
    if from_store:
        if location.endswith("/"):
            yield from (info.key for info in store.list(location))
        else:
            yield location
        return
    path = Path(location)
    if location.endswith("/"):
        if path.is_dir():
            yield from sorted(str(p) for p in path.rglob("*") if p.is_file())
    elif path.is_file():
        yield str(path)


def _format_of(name: str, field: str) -> str:
    lower = name.lower()
    if lower.endswith(_CSV_SUFFIXES):
        return "csv"
    if lower.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise TrainingFailure(
        "DATA_UNREADABLE",
        f"cannot tell the format of {name} from its name: set {field}.format to CSV or PARQUET",
        field=f"{field}.format",
    )


def _csv_options(string_columns: Mapping[str, bool]) -> pa_csv.ConvertOptions:
    return pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in string_columns},
        strings_can_be_null=True,
    )


def _read_local(path: str, data_format: str, string_columns: Mapping[str, bool]) -> pa.Table:
    if data_format == "csv":
        return pa_csv.read_csv(path, convert_options=_csv_options(string_columns))
    return pq.read_table(path)


def _read_from_store(
    store: ArtifactStore, key: str, data_format: str, string_columns: Mapping[str, bool]
) -> pa.Table:
    if data_format == "csv":
        with store.open(key) as stream:
            # Read whole so the digest check completes before any row is used.
            content = stream.read()
        source = pa.input_stream(pa.py_buffer(content), compression=_compression(key))
        return pa_csv.read_csv(source, convert_options=_csv_options(string_columns))
    # Parquet needs random access: copy it (verified) to a temporary file first.
    with tempfile.TemporaryDirectory(prefix="sluice-data-") as folder:
        local = os.path.join(folder, "data.parquet")
        store.get_file(key, local)
        return pq.read_table(local)


def _compression(key: str) -> str | None:
    for suffix, codec in ((".gz", "gzip"), (".bz2", "bz2"), (".zst", "zstd")):
        if key.endswith(suffix):
            return codec
    return None


def table_to_bytes_csv(table: pa.Table) -> bytes:
    """A table as CSV bytes (tests and benchmarks write their data with it)."""
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()
