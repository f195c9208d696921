"""Reading evaluation data and model folders from the artifact store.

Every byte comes through the store, so it is checked against the digest recorded when it was
written. A URI must lie in the service's artifact store (``<root>/<key>``), or be a key relative
to it; one ending in '/' names every file under it (names starting with '.' or '_', such as
``_SUCCESS``, are skipped).
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sluice_runtime.artifacts import ArtifactNotFound, ArtifactStore, check_prefix
from sluice_runtime.errors import InvalidArgument, NotFound

CSV = "csv"
PARQUET = "parquet"
_EXTENSIONS = {".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET}


def store_key(store: ArtifactStore, uri: str, field: str) -> str:
    """The store key of ``uri`` (a URI under the store's root, or a key); a prefix keeps its '/'."""
    if not uri:
        raise InvalidArgument(f"{field}: give a URI or an artifact id", field=field)
    root = store.root_uri
    if "://" in uri:
        if not uri.startswith(root + "/"):
            raise InvalidArgument(
                f"{field}: {uri!r} is not in the evaluation service's artifact store ({root}); "
                "give a URI under it or a key relative to it",
                field=field,
            )
        uri = unquote(uri[len(root) + 1 :])
    key = uri.lstrip("/")
    if not key.strip("/"):
        raise InvalidArgument(f"{field}: {uri!r} names no file or folder in the store", field=field)
    try:
        check_prefix(key.rstrip("/") + "/")
    except ValueError as error:
        raise InvalidArgument(f"{field}: {error}", field=field) from None
    return key


def _visible(key: str, prefix: str) -> bool:
    return not any(part.startswith((".", "_")) for part in key[len(prefix) :].split("/"))


def read_frame(store: ArtifactStore, uri: str, data_format: str, field: str) -> pd.DataFrame:
    """The table at ``uri`` (one file, or every file under a prefix) as a DataFrame.

    Raises:
        NotFound: nothing is stored there (reason DATA_MISSING).
        InvalidArgument: a file cannot be parsed, or its format cannot be told (DATA_UNREADABLE).
    """
    key = store_key(store, uri, field)
    if key.endswith("/"):
        keys = [info.key for info in store.list(key) if _visible(info.key, key)]
        if not keys:
            raise NotFound(
                f"{field}: no data files under {uri!r}", field=field, reason="DATA_MISSING"
            )
    else:
        keys = [key]
    tables = []
    for one in keys:
        fmt = data_format or _format_of(one, field)
        try:
            with store.open(one) as stream:
                if fmt == CSV:
                    tables.append(pa_csv.read_csv(stream))
                else:
                    tables.append(pq.read_table(pa.BufferReader(stream.read())))
        except ArtifactNotFound:
            raise NotFound(
                f"{field}: no data at {store.uri_for(one)!r}", field=field, reason="DATA_MISSING"
            ) from None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
            raise InvalidArgument(
                f"{field}: cannot read {store.uri_for(one)!r} as {fmt.upper()}: {error}",
                field=field,
                reason="DATA_UNREADABLE",
            ) from None
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise InvalidArgument(
            f"{field}: the files under {uri!r} do not share one set of columns: {error}",
            field=field,
            reason="DATA_UNREADABLE",
        ) from None
    return table.to_pandas()


def _format_of(key: str, field: str) -> str:
    suffix = Path(key).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise InvalidArgument(
            f"{field}: cannot tell the format of {key!r} from its name; set the data format "
            "(CSV or Parquet)",
            field=field,
            reason="DATA_UNREADABLE",
        )
    return _EXTENSIONS[suffix]


def fetch_folder(store: ArtifactStore, uri: str, destination: Path, field: str) -> Path:
    """Download every file under the folder ``uri`` into ``destination``; returns it.

    Raises:
        NotFound: no files under ``uri`` (reason MODEL_MISSING).
    """
    prefix = store_key(store, uri.rstrip("/") + "/", field)
    infos = list(store.list(prefix))
    if not infos:
        raise NotFound(
            f"{field}: no model files under {uri!r}", field=field, reason="MODEL_MISSING"
        )
    for info in infos:
        target = destination / info.key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(info.key, target)
    return destination


def saved_model_uri(store: ArtifactStore, uri: str, field: str) -> str:
    """The URI of the SavedModel in a model folder: the folder, or its one subfolder holding
    saved_model.pb (the serving service loads SavedModel folders only)."""
    prefix = store_key(store, uri.rstrip("/") + "/", field)
    roots = sorted(
        info.key[: -len("saved_model.pb")]
        for info in store.list(prefix)
        if info.key.endswith("/saved_model.pb") and info.key.count("/") - prefix.count("/") <= 1
    )
    if not roots:
        if not any(True for _ in store.list(prefix)):
            raise NotFound(
                f"{field}: no model files under {uri!r}", field=field, reason="MODEL_MISSING"
            )
        return store.uri_for(prefix.rstrip("/"))  # let the sandbox say what is wrong with it
    if prefix in roots:
        return store.uri_for(prefix.rstrip("/"))
    if len(roots) > 1:
        raise InvalidArgument(
            f"{field}: several SavedModels under {uri!r}; point at one", field=field
        )
    return store.uri_for(roots[0].rstrip("/"))


def require_column(frame: pd.DataFrame, name: str, field: str, reason: str) -> None:
    """InvalidArgument with ``reason``, listing the columns there are, when ``name`` is not one."""
    if name not in frame.columns:
        raise InvalidArgument(
            f"{field}: the evaluation data has no column {name!r} (columns: "
            f"{', '.join(map(str, frame.columns))})",
            field=field,
            reason=reason,
        )


def numeric_column(frame: pd.DataFrame, name: str, field: str, what: str) -> np.ndarray:
    """A column as float64; InvalidArgument (``<WHAT>_MISSING`` / ``<WHAT>_INVALID``) when it is
    absent, not numeric, or has missing values."""
    upper = what.upper()
    require_column(frame, name, field, f"{upper}_MISSING")
    column = frame[name]
    try:
        values = pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError):
        sample = ", ".join(map(repr, column.drop_duplicates().head(3).tolist()))
        raise InvalidArgument(
            f"{field}: {what} column {name!r} is not numeric (values like {sample})",
            field=field,
            reason=f"{upper}_INVALID",
        ) from None
    missing = int(np.isnan(values).sum())
    if missing:
        raise InvalidArgument(
            f"{field}: {what} column {name!r} has no value in {missing:,} of {len(values):,} rows",
            field=field,
            reason=f"{upper}_MISSING",
        )
    return np.asarray(values, dtype=np.float64)


def write_json(store: ArtifactStore, key: str, text: str) -> str:
    """Store a JSON document; returns its URI."""
    info = store.put(key, io.BytesIO(text.encode()), content_type="application/json")
    return info.uri
