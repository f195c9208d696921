"""Long-running work as resources: jobs queued to a worker pool, polled, listed, watched, cancelled.

A job is an immutable snapshot (`Job`) replaced under a lock at each change, so readers never see a
half-updated job; watchers wait on a condition and get every new version. Work runs on the pool's
threads, never on the caller's (an RPC thread). Jobs live in memory: a restart forgets them (their
results stay in the artifact store and the metadata service).
"""

from __future__ import annotations

import base64
import enum
import itertools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from sluice_runtime.errors import InvalidArgument, NotFound

log = logging.getLogger(__name__)

# google.rpc.Code values, so a JobError carries the code a failed RPC would (no grpc import).
RPC_CODES = {
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
PROGRESS_INTERVAL_S = 0.25  # at most this often a running job publishes progress


class JobState(enum.Enum):
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class JobProgress:
    fraction_done: float = 0.0
    done: int = 0
    total: int = 0
    unit: str = ""
    eta_seconds: int | None = None
    message: str = ""


@dataclass(frozen=True)
class JobError:
    code: int
    message: str
    reason: str = ""
    field: str = ""

    @staticmethod
    def of(error: BaseException) -> JobError:
        code_name = getattr(type(error), "grpc_code_name", None)
        if isinstance(code_name, str) and code_name in RPC_CODES:
            return JobError(
                RPC_CODES[code_name],
                str(getattr(error, "message", error)),
                getattr(error, "reason", None) or code_name,
                getattr(error, "field", None) or "",
            )
        return JobError(
            RPC_CODES["INTERNAL"],
            f"internal error ({type(error).__name__}); see the service log",
            "INTERNAL",
        )


_Spec = TypeVar("_Spec")


@dataclass(frozen=True)
class Job(Generic[_Spec]):
    """One snapshot of a job. `result` holds what the work returned once SUCCEEDED."""

    id: str
    spec: _Spec
    state: JobState
    sequence: int  # creation order, for listing
    create_time: float
    update_time: float
    progress: JobProgress = field(default_factory=JobProgress)
    result: Any = None
    error: JobError | None = None
    version: int = 0  # bumped at every change; watchers compare it

    @property
    def name(self) -> str:
        return f"statisticsJobs/{self.id}"


class JobCancelled(Exception):
    """The job's work stopped because it was cancelled."""


class JobContext:
    """What the work sees of its job: progress reporting and cancellation."""

    def __init__(self, manager: JobManager[Any], job_id: str) -> None:
        self._manager = manager
        self.job_id = job_id
        self.cancelled = threading.Event()
        self._last_report = 0.0
        self._started = time.monotonic()

    def should_stop(self) -> bool:
        return self.cancelled.is_set()

    def report(self, progress: JobProgress, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < PROGRESS_INTERVAL_S:
            return
        self._last_report = now
        if progress.eta_seconds is None and 0 < progress.fraction_done < 1:
            elapsed = now - self._started
            eta = elapsed * (1 - progress.fraction_done) / progress.fraction_done
            progress = replace(progress, eta_seconds=round(eta))
        self._manager._update(self.job_id, progress=progress)


Work = Callable[[Any, JobContext], Any]


class JobManager(Generic[_Spec]):
    """Jobs of one kind, run by `work(spec, context)` on a pool of `workers` threads.

    `work` returns the job's result (stored on SUCCEEDED), raises JobCancelled (or anything once
    cancelled) to end CANCELLED, or raises anything else to end FAILED with `JobError.of(error)`.
    """

    def __init__(
        self,
        work: Callable[[_Spec, JobContext], Any],
        *,
        workers: int = 1,
        max_kept: int = 1000,
        clock: Callable[[], float] = time.time,
        on_finished: Callable[[Job[_Spec]], None] | None = None,
    ) -> None:
        self._work = work
        self._clock = clock
        self._max_kept = max_kept
        self._on_finished = on_finished
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="validation-job")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._jobs: OrderedDict[str, Job[_Spec]] = OrderedDict()
        self._contexts: dict[str, JobContext] = {}
        self._futures: dict[str, Future[None]] = {}
        self._by_request: dict[str, str] = {}
        self._sequence = itertools.count(1)
        self._closed = False

    # -- commands ----------------------------------------------------------------------------------

    def create(self, spec: _Spec, *, request_id: str = "") -> Job[_Spec]:
        """Queue a job; a second create with the same `request_id` returns the first job."""
        with self._lock:
            if self._closed:
                from sluice_runtime.errors import Unavailable

                raise Unavailable("the service is shutting down; retry on another replica")
            if request_id and request_id in self._by_request:
                existing = self._jobs.get(self._by_request[request_id])
                if existing is not None:
                    return existing
            now = self._clock()
            job = Job(
                id=uuid.uuid4().hex[:16],
                spec=spec,
                state=JobState.QUEUED,
                sequence=next(self._sequence),
                create_time=now,
                update_time=now,
            )
            self._jobs[job.id] = job
            context = JobContext(self, job.id)
            self._contexts[job.id] = context
            if request_id:
                self._by_request[request_id] = job.id
            self._forget_old()
            self._futures[job.id] = self._pool.submit(self._run, job.id, context)
            self._changed.notify_all()
            return job

    def cancel(self, job_id: str, *, wait_s: float = 2.0) -> Job[_Spec]:
        """Stop a queued or running job; a finished one is returned unchanged.

        A running job stops at its next check (between batches); this waits up to `wait_s` for
        that, and returns the job as it is then (RUNNING if it has not stopped yet).
        """
        deadline = time.monotonic() + wait_s
        with self._lock:
            job = self._get(job_id)
            if job.state.terminal:
                return job
            self._contexts[job_id].cancelled.set()
            if job.state is JobState.QUEUED and self._futures[job_id].cancel():
                return self._set(job_id, state=JobState.CANCELLED)
            while not job.state.terminal and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(timeout=left)
                job = self._get(job_id)
            return job

    def shutdown(self, *, cancel_running: bool = True, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            ids = list(self._jobs)
        if cancel_running:
            for job_id in ids:
                self.cancel(job_id, wait_s=0)
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # -- queries -----------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job[_Spec]:
        with self._lock:
            return self._get(job_id)

    def list(self, page_size: int = 0, page_token: str = "") -> tuple[list[Job[_Spec]], str]:
        """Newest first; the token is the sequence number of the last job returned."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"page_size must be 0 to {MAX_PAGE_SIZE}, got {page_size}", field="page_size"
            )
        size = page_size or DEFAULT_PAGE_SIZE
        before = _decode_token(page_token) if page_token else None
        with self._lock:
            newest_first = sorted(self._jobs.values(), key=lambda j: j.sequence, reverse=True)
        chosen = [j for j in newest_first if before is None or j.sequence < before]
        page = chosen[:size]
        token = _encode_token(page[-1].sequence) if len(chosen) > size else ""
        return page, token

    def watch(
        self, job_id: str, *, is_active: Callable[[], bool] = lambda: True, poll_s: float = 1.0
    ) -> Iterator[Job[_Spec]]:
        """The job now, then each new version, ending after a terminal state (or when
        `is_active()` turns false, e.g. the client went away)."""
        version = -1
        while True:
            with self._lock:
                job = self._get(job_id)
                while job.version == version and is_active():
                    self._changed.wait(timeout=poll_s)
                    job = self._get(job_id)
                if job.version == version:
                    return  # the watcher went away
            version = job.version
            yield job
            if job.state.terminal:
                return

    # -- the worker side ---------------------------------------------------------------------------

    def _run(self, job_id: str, context: JobContext) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state.terminal:
                return
            if context.cancelled.is_set():
                self._set(job_id, state=JobState.CANCELLED)
                return
            self._set(job_id, state=JobState.RUNNING)
        try:
            result = self._work(job.spec, context)
        except BaseException as error:
            if context.cancelled.is_set() or isinstance(error, JobCancelled):
                finished = self._finish(job_id, state=JobState.CANCELLED)
            else:
                if getattr(type(error), "grpc_code_name", None):  # the caller's problem
                    log.info("job %s failed: %s", job_id, error)
                else:
                    log.exception("job %s failed", job_id)
                finished = self._finish(job_id, state=JobState.FAILED, error=JobError.of(error))
        else:
            if context.cancelled.is_set():
                finished = self._finish(job_id, state=JobState.CANCELLED)
            else:
                finished = self._finish(job_id, state=JobState.SUCCEEDED, result=result)
        if finished is not None and self._on_finished is not None:
            try:
                self._on_finished(finished)
            except Exception:
                log.exception("after-finish hook of job %s failed", job_id)

    def _finish(self, job_id: str, **changes: Any) -> Job[_Spec] | None:
        with self._lock:
            if job_id not in self._jobs:
                return None
            job = self._jobs[job_id]
            if changes.get("state") is JobState.SUCCEEDED:
                changes.setdefault(
                    "progress",
                    replace(job.progress, fraction_done=1.0, eta_seconds=0, message="done"),
                )
            return self._set(job_id, **changes)

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and not job.state.terminal:
                self._set(job_id, **changes)

    def replace_result(self, job_id: str, result: Any) -> None:
        """Attach extra output to a finished job (e.g. its metadata execution id)."""
        with self._lock:
            if job_id in self._jobs:
                self._set(job_id, result=result)

    # -- internals (lock held) ---------------------------------------------------------------------

    def _get(self, job_id: str) -> Job[_Spec]:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"statistics job {job_id!r} does not exist", field="name")
        return job

    def _set(self, job_id: str, **changes: Any) -> Job[_Spec]:
        job = self._jobs[job_id]
        updated = replace(job, update_time=self._clock(), version=job.version + 1, **changes)
        self._jobs[job_id] = updated
        if updated.state.terminal:
            self._contexts.pop(job_id, None)
            self._futures.pop(job_id, None)
        self._changed.notify_all()
        return updated

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state.terminal]
        excess = len(finished) - self._max_kept
        for job in sorted(finished, key=lambda j: j.sequence)[: max(excess, 0)]:
            del self._jobs[job.id]
            for request_id, target in list(self._by_request.items()):
                if target == job.id:
                    del self._by_request[request_id]


def _encode_token(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"before:{sequence}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        prefix, _, number = text.partition(":")
        if prefix != "before":
            raise ValueError(text)
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(
            "page_token is not one this service returned", field="page_token"
        ) from None
