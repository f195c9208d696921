"""Statistics job records in a database, so that a restarted service still lists and gets its jobs.

One row per job in `validation_statistics_jobs` (SQLAlchemy: a SQLite file in the data directory by
default, any SQLAlchemy URL otherwise). The job's spec and result are JSON written by a `JobCodec`
the caller supplies, so this module knows nothing of statistics. A row is written when the job is
created and at each change of state (progress ticks stay in memory: they are worth nothing after a
restart). Times are epoch seconds.

One service process per database: at start the service takes every unfinished job it finds as
its own (see `JobManager`), so two live processes sharing a database would fail each other's jobs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from .jobs import Job, JobError, JobProgress, JobState

log = logging.getLogger(__name__)

_metadata = sa.MetaData()
jobs_table = sa.Table(
    "validation_statistics_jobs",
    _metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("sequence", sa.BigInteger, nullable=False, unique=True),
    sa.Column("request_id", sa.String(256), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("create_time", sa.Float, nullable=False),
    sa.Column("update_time", sa.Float, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("progress", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

_Spec = TypeVar("_Spec")


@dataclass(frozen=True)
class JobCodec(Generic[_Spec]):
    """How a job's spec and result become JSON values and back."""

    spec_to_json: Callable[[_Spec], Any]
    spec_from_json: Callable[[Any], _Spec]
    result_to_json: Callable[[Any], Any]
    result_from_json: Callable[[Any], Any]


class SqlJobStore(Generic[_Spec]):
    """`jobs.JobStore` on SQLAlchemy (`sqlite:////var/lib/sluice/validation/jobs.db`, `postgresql://`)."""

    def __init__(self, url: str, codec: JobCodec[_Spec]) -> None:
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self._codec = codec
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        _metadata.create_all(self.engine)
        self._lock = threading.Lock()

    def save(self, job: Job[Any]) -> None:
        row = self._row(job)
        with self._lock, self.engine.begin() as connection:
            updated = connection.execute(
                jobs_table.update().where(jobs_table.c.id == job.id).values(**row)
            )
            if updated.rowcount == 0:
                connection.execute(jobs_table.insert().values(**row))

    def load(self) -> list[Job[Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(jobs_table).order_by(jobs_table.c.sequence)).all()
        jobs: list[Job[Any]] = []
        for row in rows:
            try:
                jobs.append(self._job(row._mapping))
            except (ValueError, KeyError, TypeError) as error:
                # Left in the table untouched, for a person (or a newer version) to read.
                log.error("statistics job record %s cannot be read, skipped: %s", row.id, error)
        return jobs

    def delete(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        if not ids:
            return
        with self._lock, self.engine.begin() as connection:
            connection.execute(jobs_table.delete().where(jobs_table.c.id.in_(ids)))

    def close(self) -> None:
        self.engine.dispose()

    # -- rows <-> jobs -----------------------------------------------------------------------------

    def _row(self, job: Job[Any]) -> dict[str, Any]:
        return {
            "id": job.id,
            "sequence": job.sequence,
            "request_id": job.request_id,
            "state": job.state.name,
            "create_time": job.create_time,
            "update_time": job.update_time,
            "spec": json.dumps(self._codec.spec_to_json(job.spec)),
            "progress": json.dumps(asdict(job.progress)),
            "result": None
            if job.result is None
            else json.dumps(self._codec.result_to_json(job.result)),
            "error": None if job.error is None else json.dumps(asdict(job.error)),
        }

    def _job(self, row: Any) -> Job[Any]:
        progress = json.loads(row["progress"])
        error = json.loads(row["error"]) if row["error"] else None
        return Job(
            id=row["id"],
            spec=self._codec.spec_from_json(json.loads(row["spec"])),
            state=JobState[row["state"]],
            sequence=int(row["sequence"]),
            create_time=float(row["create_time"]),
            update_time=float(row["update_time"]),
            progress=JobProgress(**_known(JobProgress, progress)),
            result=None
            if row["result"] is None
            else self._codec.result_from_json(json.loads(row["result"])),
            error=None if error is None else JobError(**_known(JobError, error)),
            request_id=row["request_id"],
        )


def _known(kind: type, values: dict[str, Any]) -> dict[str, Any]:
    """The keys `kind` has: a record written by a newer version may hold more."""
    names = {known.name for known in fields(kind)}
    return {key: value for key, value in values.items() if key in names}


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
