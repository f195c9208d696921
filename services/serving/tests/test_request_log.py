"""The sampled request log: Parquet in the artifact store, written off the request path."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sluice_runtime.artifacts import ArtifactInfo, ArtifactStore, LocalArtifactStore, ReadableBinary
from sluice_serving.core import ServingCore
from sluice_serving.request_log import (
    LogRecord,
    RequestLogCounters,
    RequestLogger,
    RequestLogSettings,
)
from sluice_serving.testing import upload


def _read_all(store: ArtifactStore, prefix: str) -> list[pa.Table]:
    return [
        pq.read_table(io.BytesIO(store.get_bytes(info.key)))
        for info in store.list(prefix)
        if info.key.endswith(".parquet")
    ]


def test_sampled_requests_are_written_as_parquet(
    core: ServingCore, store: ArtifactStore, model_dirs: dict[str, Path]
) -> None:
    upload(store, model_dirs["dict"], "models/dict/1")
    core.load_version("dict", 1, "models/dict/1", wait=True)
    core.update_model_config(
        "dict", request_log=RequestLogSettings(sample_rate=1.0, rows_per_file=4)
    )
    for age in (20, 30, 40):
        core.predict(
            "dict",
            {
                "age": np.array([age, age + 1], np.int64),
                "income": np.array([1.0, 2.0], np.float32),
                "country": np.array([b"NL", b"US"], object),
            },
            protocol="test",
            request_id=f"r{age}",
        )
    assert core.request_logger is not None and core.request_logger.flush()

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    uri, rate = core.request_log_location("dict")
    assert (uri, rate) == (f"{store.root_uri}/request-logs/dict/", 1.0)
    tables = _read_all(store, f"request-logs/dict/{day}/")
    assert sorted(t.num_rows for t in tables) == [2, 4]  # a full file of 4 rows, then the rest
    rows = sorted(
        (row for table in tables for row in table.to_pylist()), key=lambda row: row["age"]
    )
    assert [row["age"] for row in rows] == [20, 21, 30, 31, 40, 41]
    assert rows[0]["country"] == b"NL" and rows[1]["country"] == b"US"
    assert rows[0]["sluice.request_id"] == "r20" and rows[0]["sluice.model_version"] == 1
    assert rows[0]["sluice.protocol"] == "test"
    assert rows[0]["output.score"] == np.float32(20 * 0.1 + 1.0 * 0.001 + 1.0)


def test_unsampled_models_write_nothing(
    core: ServingCore, store: ArtifactStore, model_dirs: dict[str, Path]
) -> None:
    upload(store, model_dirs["linear2"], "models/quiet/1")
    core.load_version("quiet", 1, "models/quiet/1", wait=True)
    core.predict("quiet", {"x": np.ones((1, 2), np.float32)})
    assert core.request_logger is not None and core.request_logger.flush()
    assert _read_all(store, "request-logs/") == []


class _BlockingStore(LocalArtifactStore):
    """A local artifact store whose writes wait until released."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()

    def put(self, key: str, data: ReadableBinary | bytes, **kwargs: Any) -> ArtifactInfo:
        self.release.wait(10)
        return super().put(key, data, **kwargs)


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    slow = _BlockingStore(tmp_path / "slow")
    dropped: list[int] = []
    logger = RequestLogger(
        slow,
        queue_size=2,
        counters=RequestLogCounters(dropped=lambda model, n: dropped.append(n)),
    )
    settings = RequestLogSettings(sample_rate=1.0, rows_per_file=1)

    def record(i: int) -> LogRecord:
        x = np.array([[float(i)]], np.float32)
        return LogRecord("m", 1, "serving_default", "test", {"x": x}, {"y": x}, rows=1)

    accepted = [logger.offer(record(i), settings) for i in range(20)]

    assert not all(accepted)
    assert logger.dropped == accepted.count(False) == len(dropped)
    slow.release.set()
    logger.close()
    tables = _read_all(slow, "request-logs/m/")
    assert sum(t.num_rows for t in tables) == accepted.count(True)
