"""The sampled request log: requests and predictions as Parquet files in the artifact store.

Off the request path: the request thread only offers a record to a bounded queue (dropping and
counting it when the queue is full); one background thread groups the records per model and day and
writes a Parquet file every ``rows_per_file`` rows, or every ``flush_seconds`` for quiet models.

Layout: ``<prefix><yyyy-mm-dd>/<HHMMSS>-<id>.parquet`` where the prefix defaults to
``request-logs/<model>/`` in the service's artifact store. One Parquet row per example (row of the
batch), with these columns:

- each input feature under its own name (so validation can compare it with the training data),
- ``output.<key>`` for each model output,
- ``sluice.time`` (UTC timestamp), ``sluice.model_version``, ``sluice.signature``,
  ``sluice.protocol``, ``sluice.request_id`` and ``sluice.schema_flags`` (``feature:problem``
  pairs joined by ``;``, empty when the request broke no flagged schema rule).
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sluice_runtime.artifacts import ArtifactStore, open_artifact_store

from sluice_serving.tensors import STRING

logger = logging.getLogger(__name__)

DEFAULT_ROWS_PER_FILE = 1000
DEFAULT_PREFIX = "request-logs"
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class RequestLogSettings:
    """Per-model request log settings."""

    sample_rate: float = 0.0  # fraction of requests logged, [0, 1]
    rows_per_file: int = DEFAULT_ROWS_PER_FILE
    uri_prefix: str = ""  # '' = request-logs/<model>/ in the service's store; a key prefix or URI

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {self.sample_rate}")
        if self.rows_per_file < 1:
            raise ValueError(f"rows_per_file must be at least 1, got {self.rows_per_file}")


@dataclass(frozen=True)
class LogRecord:
    """One sampled request and its prediction."""

    model: str
    version: int
    signature: str
    protocol: str
    inputs: Mapping[str, np.ndarray]
    outputs: Mapping[str, np.ndarray]
    rows: int
    request_id: str = ""
    schema_flags: tuple[str, ...] = ()
    time: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class LogLocation:
    """Where one model's log goes: a store and a key prefix ending in '/' (or empty)."""

    store: ArtifactStore
    prefix: str

    @property
    def uri(self) -> str:
        return f"{self.store.root_uri}/{self.prefix}" if self.prefix else self.store.root_uri + "/"


@dataclass
class RequestLogCounters:
    """Callbacks for metrics; each gets the model name and a count."""

    rows_written: Callable[[str, int], None] = lambda model, rows: None
    files_written: Callable[[str, int], None] = lambda model, files: None
    dropped: Callable[[str, int], None] = lambda model, records: None
    write_errors: Callable[[str, int], None] = lambda model, files: None


class RequestLogger:
    """The background writer. `offer` from request threads; `flush` and `close` from anyone."""

    def __init__(
        self,
        store: ArtifactStore,
        *,
        queue_size: int = 10_000,
        flush_seconds: float = 10.0,
        counters: RequestLogCounters | None = None,
    ) -> None:
        self._store = store
        self._queue: queue.Queue[LogRecord | _Command] = queue.Queue(maxsize=queue_size)
        self._flush_seconds = flush_seconds
        self._counters = counters or RequestLogCounters()
        self._stores: dict[str, ArtifactStore] = {}
        self._settings: dict[str, RequestLogSettings] = {}
        self._buffers: dict[tuple[str, str], _Buffer] = {}
        self._dropped = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="request-log", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Records dropped because the queue was full, since start."""
        with self._lock:
            return self._dropped

    def location(self, model: str, settings: RequestLogSettings) -> LogLocation:
        """Where ``model``'s records go under ``settings`` (opening another store if named)."""
        prefix = settings.uri_prefix
        if not prefix:
            return LogLocation(self._store, f"{DEFAULT_PREFIX}/{model}/")
        if "://" not in prefix:
            return LogLocation(self._store, prefix.rstrip("/") + "/")
        with self._lock:
            store = self._stores.get(prefix)
            if store is None:
                store = self._stores[prefix] = open_artifact_store(prefix.rstrip("/"))
        return LogLocation(store, "")

    def offer(self, record: LogRecord, settings: RequestLogSettings) -> bool:
        """Queue a record without blocking; False (and counted) when the queue is full."""
        with self._lock:
            self._settings[record.model] = settings
        try:
            self._queue.put_nowait(record)
            return True
        except queue.Full:
            with self._lock:
                self._dropped += 1
            self._counters.dropped(record.model, 1)
            return False

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued so far; True when done within ``timeout`` seconds."""
        command = _Command("flush")
        self._queue.put(command, timeout=timeout)
        return command.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer thread."""
        if not self._thread.is_alive():
            return
        command = _Command("stop")
        try:
            self._queue.put(command, timeout=timeout)
        except queue.Full:
            logger.warning("request log queue stayed full; stopping without the last records")
            return
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._next_due())
            except queue.Empty:
                self._write_due(time.monotonic())
                continue
            if isinstance(item, _Command):
                self._write_all()
                item.done.set()
                if item.kind == "stop":
                    return
                continue
            self._add(item)

    def _next_due(self) -> float:
        if not self._buffers:
            return self._flush_seconds
        oldest = min(buffer.started for buffer in self._buffers.values())
        return max(0.01, oldest + self._flush_seconds - time.monotonic())

    def _add(self, record: LogRecord) -> None:
        day = record.time.astimezone(UTC).strftime("%Y-%m-%d")
        key = (record.model, day)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = _Buffer(record.model, day)
        try:
            buffer.add(record)
        except Exception:  # an odd tensor must not stop the writer
            logger.exception("request log: cannot convert a record of model %s", record.model)
            return
        with self._lock:
            settings = self._settings.get(record.model, RequestLogSettings())
        if buffer.rows >= settings.rows_per_file:
            self._write(key)
        else:
            self._write_due(time.monotonic())

    def _write_due(self, now: float) -> None:
        for key, buffer in list(self._buffers.items()):
            if now - buffer.started >= self._flush_seconds:
                self._write(key)

    def _write_all(self) -> None:
        for key in list(self._buffers):
            self._write(key)

    def _write(self, key: tuple[str, str]) -> None:
        buffer = self._buffers.pop(key)
        if not buffer.tables:
            return
        with self._lock:
            settings = self._settings.get(buffer.model, RequestLogSettings())
        try:
            location = self.location(buffer.model, settings)
            table = pa.concat_tables(buffer.tables, promote_options="permissive")
            sink = io.BytesIO()
            pq.write_table(table, sink, compression="zstd")
            stamp = datetime.now(UTC).strftime("%H%M%S")
            name = f"{location.prefix}{buffer.day}/{stamp}-{uuid.uuid4().hex[:12]}.parquet"
            location.store.put(name, sink.getvalue(), content_type=PARQUET_CONTENT_TYPE)
        except Exception:
            logger.exception(
                "request log: cannot write %d rows of model %s", buffer.rows, buffer.model
            )
            self._counters.write_errors(buffer.model, 1)
            return
        self._counters.rows_written(buffer.model, table.num_rows)
        self._counters.files_written(buffer.model, 1)


class _Command:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.done = threading.Event()


class _Buffer:
    def __init__(self, model: str, day: str) -> None:
        self.model = model
        self.day = day
        self.started = time.monotonic()
        self.tables: list[pa.Table] = []
        self.rows = 0

    def add(self, record: LogRecord) -> None:
        table = record_table(record)
        self.tables.append(table)
        self.rows += table.num_rows


def record_table(record: LogRecord) -> pa.Table:
    """The Parquet rows of one record: one per example when every tensor is batched by row."""
    arrays = [*record.inputs.values(), *record.outputs.values()]
    per_row = all(a.ndim >= 1 and a.shape[0] == record.rows for a in arrays)
    rows = record.rows if per_row else 1

    def rowwise(array: np.ndarray) -> np.ndarray:
        return array if per_row else array[np.newaxis, ...]

    columns: dict[str, pa.Array] = {}
    for name, array in record.inputs.items():
        columns[name] = _column(rowwise(array))
    for name, array in record.outputs.items():
        columns[f"output.{name}"] = _column(rowwise(array))
    flags = ";".join(record.schema_flags)
    columns["sluice.time"] = pa.array([record.time] * rows, type=pa.timestamp("us", tz="UTC"))
    columns["sluice.model_version"] = pa.array([record.version] * rows, type=pa.int64())
    columns["sluice.signature"] = pa.array([record.signature] * rows, type=pa.string())
    columns["sluice.protocol"] = pa.array([record.protocol] * rows, type=pa.string())
    columns["sluice.request_id"] = pa.array([record.request_id] * rows, type=pa.string())
    columns["sluice.schema_flags"] = pa.array([flags] * rows, type=pa.string())
    return pa.table(columns)


def _column(array: np.ndarray) -> pa.Array:
    # Row i of the column is array[i]; inner dimensions become fixed-size lists.
    flat = array.reshape(-1)
    if array.dtype == STRING:
        values: pa.Array = pa.array([_bytes(v) for v in flat], type=pa.binary())
    else:
        values = pa.array(flat)
    for size in reversed(array.shape[1:]):
        values = pa.FixedSizeListArray.from_arrays(values, size)
    return values


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
