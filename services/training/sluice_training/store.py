"""Job records: the `JobStore` interface and its SQLAlchemy implementation (SQLite by default).

One row per job; the spec is the caller's serialized `TrainingSpec`, progress/result/error/launch
are JSON. Times are stored as UTC epoch seconds, which sort the same on every database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from sluice_training.jobs import Job, JobFailure, JobState, Progress, Result

_metadata = sa.MetaData()
jobs_table = sa.Table(
    "training_jobs",
    _metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("state", sa.Integer, nullable=False, index=True),
    sa.Column("create_time", sa.Float, nullable=False, index=True),
    sa.Column("request_id", sa.String(256), nullable=True, unique=True),
    sa.Column("spec", sa.LargeBinary, nullable=False),
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("progress", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("execution_id", sa.BigInteger, nullable=False),
    sa.Column("start_time", sa.Float, nullable=True),
    sa.Column("end_time", sa.Float, nullable=True),
    sa.Column("launch", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)


class JobStore(Protocol):
    def add(self, job: Job) -> None:
        """Insert a new job; raises KeyError when its request_id is taken."""

    def get(self, job_id: str) -> Job | None: ...

    def get_by_request_id(self, request_id: str) -> Job | None: ...

    def update(self, job: Job) -> None: ...

    def newest_first(self, after: tuple[datetime, str] | None, limit: int) -> list[Job]:
        """Jobs ordered by (create_time, id) descending, strictly after the cursor."""

    def in_states(self, states: Iterable[JobState]) -> list[Job]:
        """Jobs in any of ``states``, oldest first."""

    def close(self) -> None: ...


class SqlJobStore:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            # One writer at a time anyway; serialise in-process writers instead of hitting
            # "database is locked".
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        _metadata.create_all(self.engine)
        self._write_lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._write_lock, self.engine.begin() as connection:
            try:
                connection.execute(jobs_table.insert().values(**_row(job)))
            except sa.exc.IntegrityError:
                raise KeyError(job.request_id) from None

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as connection:
            row = connection.execute(jobs_table.select().where(jobs_table.c.id == job_id)).first()
        return None if row is None else _job(row._mapping)

    def get_by_request_id(self, request_id: str) -> Job | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                jobs_table.select().where(jobs_table.c.request_id == request_id)
            ).first()
        return None if row is None else _job(row._mapping)

    def update(self, job: Job) -> None:
        values = _row(job)
        values.pop("id")
        with self._write_lock, self.engine.begin() as connection:
            connection.execute(
                jobs_table.update().where(jobs_table.c.id == job.id).values(**values)
            )

    def newest_first(self, after: tuple[datetime, str] | None, limit: int) -> list[Job]:
        query = jobs_table.select().order_by(
            jobs_table.c.create_time.desc(), jobs_table.c.id.desc()
        )
        if after is not None:
            time, job_id = _seconds(after[0]), after[1]
            query = query.where(
                sa.or_(
                    jobs_table.c.create_time < time,
                    sa.and_(jobs_table.c.create_time == time, jobs_table.c.id < job_id),
                )
            )
        with self.engine.connect() as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [_job(row._mapping) for row in rows]

    def in_states(self, states: Iterable[JobState]) -> list[Job]:
        query = (
            jobs_table.select()
            .where(jobs_table.c.state.in_([s.value for s in states]))
            .order_by(jobs_table.c.create_time, jobs_table.c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_job(row._mapping) for row in rows]

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state.value,
        "create_time": _seconds(job.create_time),
        "request_id": job.request_id or None,
        "spec": job.spec,
        "labels": json.dumps(job.labels, sort_keys=True),
        "progress": json.dumps(job.progress.to_json()),
        "result": None if job.result is None else json.dumps(job.result.to_json()),
        "error": None if job.error is None else json.dumps(job.error.to_json()),
        "attempt": job.attempt,
        "execution_id": job.execution_id,
        "start_time": None if job.start_time is None else _seconds(job.start_time),
        "end_time": None if job.end_time is None else _seconds(job.end_time),
        "launch": json.dumps(job.launch, sort_keys=True),
        "version": job.version,
    }


def _job(row: Any) -> Job:
    created = _moment(row["create_time"])
    assert created is not None
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        spec=bytes(row["spec"]),
        create_time=created,
        labels=json.loads(row["labels"]),
        request_id=row["request_id"] or "",
        progress=Progress.from_json(json.loads(row["progress"])),
        result=None if row["result"] is None else Result.from_json(json.loads(row["result"])),
        error=None if row["error"] is None else JobFailure.from_json(json.loads(row["error"])),
        attempt=row["attempt"],
        execution_id=row["execution_id"],
        start_time=_moment(row["start_time"]),
        end_time=_moment(row["end_time"]),
        launch=json.loads(row["launch"]),
        version=row["version"],
    )
