"""Long work as resources with a state: create, get, list, cancel and watch, run on a worker pool.

A `JobRunner` owns the jobs of one kind ("evaluations", "infraValidations"). `create` queues the
work on its thread pool and returns at once; the work function gets a `JobControl` to report
progress and to notice cancellation (`JobControl.check` raises `Cancelled` between steps). Jobs are
immutable snapshots: every change makes a new one and wakes the watchers.

An exception out of the work function fails the job: a domain error (anything with a
``grpc_code_name``, such as `sluice_runtime.errors.InvalidArgument`) keeps its code, reason and
field; anything else is INTERNAL with its message.

Jobs live in memory: a restarted service forgets them (their artifacts and metadata records stay).
"""

from __future__ import annotations

import base64
import enum
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Generic, TypeVar

from sluice_runtime.errors import FailedPrecondition, InvalidArgument, NotFound, grpc_code_name_of

S = TypeVar("S")
R = TypeVar("R")

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Progress reports closer together than this only update the job when the fraction moved a lot.
PROGRESS_INTERVAL_SECONDS = 0.2


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Progress:
    fraction_done: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class JobError:
    """Why a job failed: a gRPC status code name, a sentence, a reason and the field at fault."""

    code: str
    message: str
    reason: str = ""
    field: str = ""

    @classmethod
    def from_exception(cls, error: BaseException) -> JobError:
        code = grpc_code_name_of(error)
        if code is None:
            text = str(error) or type(error).__name__
            return cls("INTERNAL", f"internal error: {text}", "INTERNAL")
        return cls(
            code,
            getattr(error, "message", None) or str(error),
            getattr(error, "reason", None) or code,
            getattr(error, "field", None) or "",
        )


@dataclass(frozen=True)
class Job(Generic[S, R]):
    """One snapshot of a job."""

    name: str
    spec: S
    state: JobState
    create_time: datetime
    update_time: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    progress: Progress = Progress()
    result: R | None = None
    error: JobError | None = None


class Cancelled(Exception):
    """Raised by `JobControl.check` once the job was asked to stop."""


class JobControl:
    """What a running job's work function can do: report progress, notice cancellation."""

    def __init__(self, runner: JobRunner[S, R], name: str) -> None:  # type: ignore[type-var]
        self._runner = runner
        self.name = name
        self._cancel = threading.Event()
        self._last_report = 0.0
        self._last_fraction = 0.0

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(self.name)

    def report(self, fraction: float, message: str | None = None) -> None:
        """Record progress (throttled, except when the message changes); also a cancel point."""
        self.check()
        now = time.monotonic()
        if (
            message is None
            and now - self._last_report < PROGRESS_INTERVAL_SECONDS
            and fraction - self._last_fraction < 0.1
        ):
            return
        self._last_report, self._last_fraction = now, fraction
        self._runner._set_progress(self.name, fraction, message)


WorkFunction = Callable[[str, S, JobControl], R]


class JobRunner(Generic[S, R]):
    """Jobs of one kind, run ``workers`` at a time on a thread pool."""

    def __init__(
        self,
        collection: str,
        work: WorkFunction[S, R],
        *,
        workers: int = 1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.collection = collection
        self._work = work
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=collection)
        self._changed = threading.Condition()
        self._jobs: dict[str, Job[S, R]] = {}
        self._sequence: dict[str, int] = {}
        self._controls: dict[str, JobControl] = {}
        self._by_request_id: dict[str, str] = {}
        self._counter = itertools.count(1)
        self._closed = False

    # -- queries ---------------------------------------------------------------------------------

    def get(self, name: str) -> Job[S, R]:
        with self._changed:
            job = self._jobs.get(name)
        if job is None:
            raise NotFound(f"{name!r} does not exist", field="name")
        return job

    def list(
        self,
        keep: Callable[[Job[S, R]], bool] = lambda job: True,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[Job[S, R]], str]:
        """Jobs newest first, one page; the token resumes after the last job returned."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"page_size: 0 to {MAX_PAGE_SIZE}, got {page_size}", field="page_size"
            )
        size = page_size or DEFAULT_PAGE_SIZE
        after = _decode_token(page_token)
        with self._changed:
            ordered = sorted(self._jobs.values(), key=lambda j: -self._sequence[j.name])
            sequence = dict(self._sequence)
        matching = [j for j in ordered if sequence[j.name] < after and keep(j)]
        page = matching[:size]
        token = _encode_token(sequence[page[-1].name]) if len(matching) > size else ""
        return page, token

    def watch(self, name: str, active: Callable[[], bool] = lambda: True) -> Iterator[Job[S, R]]:
        """The job now, then on every change, ending after a terminal state (or when ``active``
        turns false, checked every second)."""
        job = self.get(name)
        yield job
        while not job.state.terminal:
            with self._changed:
                self._changed.wait_for(partial(self._moved_on, name, job, active), 1.0)
                latest = self._jobs[name]
            if not active():
                return
            if latest is not job:
                job = latest
                yield job

    def _moved_on(self, name: str, seen: Job[S, R], active: Callable[[], bool]) -> bool:
        return self._jobs[name] is not seen or not active()

    # -- commands --------------------------------------------------------------------------------

    def create(
        self, spec: S, labels: Mapping[str, str] | None = None, request_id: str = ""
    ) -> Job[S, R]:
        """Queue a job; a repeated ``request_id`` returns the job it created first."""
        with self._changed:
            if self._closed:
                raise FailedPrecondition("the service is shutting down", reason="SHUTTING_DOWN")
            if request_id and request_id in self._by_request_id:
                return self._jobs[self._by_request_id[request_id]]
            name = f"{self.collection}/{uuid.uuid4().hex[:16]}"
            now = self._clock()
            job: Job[S, R] = Job(name, spec, JobState.QUEUED, now, now, dict(labels or {}))
            self._jobs[name] = job
            self._sequence[name] = next(self._counter)
            self._controls[name] = JobControl(self, name)
            if request_id:
                self._by_request_id[request_id] = name
            self._executor.submit(self._run, name)
        return job

    def cancel(self, name: str) -> Job[S, R]:
        """Stop a job: a queued one is cancelled at once, a running one at its next check."""
        with self._changed:
            job = self.get(name)
            if job.state.terminal:
                raise FailedPrecondition(
                    f"{name} already ended ({job.state.name}); there is nothing to cancel",
                    field="name",
                    reason="ALREADY_ENDED",
                )
            self._controls[name]._cancel.set()
            if job.state is JobState.QUEUED:
                job = self._replace(name, state=JobState.CANCELLED)
        return job

    def update_result(self, name: str, change: Callable[[R], R]) -> Job[S, R]:
        """Replace the result of a SUCCEEDED job with ``change(result)``."""
        with self._changed:
            job = self.get(name)
            if job.state is not JobState.SUCCEEDED or job.result is None:
                raise FailedPrecondition(
                    f"{name} is {job.state.name}; only a SUCCEEDED one can be changed",
                    field="name",
                    reason="NOT_SUCCEEDED",
                )
            current = job.result
        updated = change(current)  # may call other services: outside the lock
        with self._changed:
            if self._jobs[name].result is not current:
                raise FailedPrecondition(
                    f"{name} changed meanwhile; try again", field="name", reason="CONCURRENT_CHANGE"
                )
            return self._replace(name, result=updated)

    def close(self, wait: bool = True) -> None:
        """Refuse new jobs, cancel the others and (with ``wait``) wait for the workers to stop.

        Safe to call again, e.g. first without waiting (so watchers see CANCELLED at once), then
        with."""
        with self._changed:
            self._closed = True
            for control in self._controls.values():
                control._cancel.set()
        self._executor.shutdown(wait=wait, cancel_futures=True)
        with self._changed:
            for name, job in list(self._jobs.items()):
                if not job.state.terminal:
                    self._replace(name, state=JobState.CANCELLED)

    # -- internals -------------------------------------------------------------------------------

    def _replace(self, name: str, **changes: object) -> Job[S, R]:
        # Caller holds the lock.
        job = replace(self._jobs[name], update_time=self._clock(), **changes)  # type: ignore[arg-type]
        self._jobs[name] = job
        self._changed.notify_all()
        return job

    def _set_progress(self, name: str, fraction: float, message: str | None) -> None:
        with self._changed:
            job = self._jobs[name]
            if job.state is JobState.RUNNING:
                text = job.progress.message if message is None else message
                self._replace(name, progress=Progress(min(max(fraction, 0.0), 1.0), text))

    def _run(self, name: str) -> None:
        with self._changed:
            job = self._jobs[name]
            control = self._controls[name]
            if job.state is not JobState.QUEUED or control.cancelled:
                if not job.state.terminal:
                    self._replace(name, state=JobState.CANCELLED)
                return
            self._replace(name, state=JobState.RUNNING)
        try:
            result = self._work(name, job.spec, control)
        except Cancelled:
            self._finish(name, state=JobState.CANCELLED)
            return
        except Exception as error:  # every failure becomes the job's error
            failure = JobError.from_exception(error)
            if failure.code == "INTERNAL":
                logger.exception("%s failed unexpectedly", name)
            else:
                logger.info("%s failed: %s", name, failure.message)
            self._finish(name, state=JobState.FAILED, error=failure)
            return
        with self._changed:
            message = self._jobs[name].progress.message
        self._finish(name, state=JobState.SUCCEEDED, result=result, progress=Progress(1.0, message))

    def _finish(self, name: str, **changes: object) -> None:
        with self._changed:
            # close() may have declared it CANCELLED already: the first terminal state stays.
            if not self._jobs[name].state.terminal:
                self._replace(name, **changes)


def _encode_token(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"before:{sequence}".encode()).decode()


def _decode_token(token: str) -> int:
    if not token:
        return 1 << 62
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "before":
            raise ValueError(text)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(
            "page_token: not a token from a previous response", field="page_token"
        ) from None
