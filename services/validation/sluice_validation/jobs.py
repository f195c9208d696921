"""Long-running work as resources: jobs queued to a worker pool, polled, listed, watched, cancelled.

A job is an immutable snapshot (`Job`) replaced under a lock at each change, so readers never see a
half-updated job; watchers wait on a condition and get every new version. Work runs on the pool's
threads, never on the caller's (an RPC thread).

With a `JobStore`, every job is recorded when created and at each change of state, and a new
manager over the same store picks up where the last one stopped:

* finished jobs come back as they were (Get, List and page tokens keep working);
* QUEUED jobs are queued again, in their order: nothing of them had run;
* RUNNING jobs come back FAILED (ABORTED, reason SERVICE_RESTARTED): the process died under them
  (a crash, a kill, an out-of-memory, a lost machine), and running the job again could kill the
  next process the same way; the caller decides whether to create it again.

A graceful shutdown (`shutdown`, on SIGTERM) loses nothing either: running jobs are interrupted
at their next batch and put back in the queue with the queued ones, so the next start runs them.
Without a store, jobs live in memory only and a restart forgets them (their results stay in the
artifact store and the metadata service).
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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar

from sluice_runtime.errors import InvalidArgument, NotFound, Unavailable

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
RESTARTED_REASON = "SERVICE_RESTARTED"


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
    request_id: str = ""  # the caller's idempotency key, if any

    @property
    def name(self) -> str:
        return f"statisticsJobs/{self.id}"


class JobCancelled(Exception):
    """The job's work stopped because it was cancelled."""


class JobStore(Protocol):
    """Where a JobManager records its jobs (`job_store.SqlJobStore`)."""

    def save(self, job: Job[Any]) -> None:
        """Insert or replace the record of `job`."""

    def load(self) -> list[Job[Any]]:
        """Every record, oldest first."""

    def delete(self, job_ids: Iterable[str]) -> None: ...

    def close(self) -> None: ...


class JobContext:
    """What the work sees of its job: progress reporting and cancellation."""

    def __init__(self, manager: JobManager[Any], job_id: str) -> None:
        self._manager = manager
        self.job_id = job_id
        # Set to stop the work: by a cancel (then `by_caller` is true) or by a shutdown.
        self.cancelled = threading.Event()
        self.by_caller = False
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
        store: JobStore | None = None,
    ) -> None:
        self._work = work
        self._store = store
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
        if store is not None:
            self._restore(store)

    # -- commands ----------------------------------------------------------------------------------

    def create(self, spec: _Spec, *, request_id: str = "") -> Job[_Spec]:
        """Queue a job; a second create with the same `request_id` returns the first job."""
        with self._lock:
            if self._closed:
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
                request_id=request_id,
            )
            if self._store is not None:
                try:
                    self._store.save(job)  # first: a job that is not recorded is not created
                except Exception as error:
                    log.exception("cannot record a new statistics job")
                    raise Unavailable(
                        f"cannot record the job ({type(error).__name__}); nothing was created,"
                        " retry later"
                    ) from None
            self._jobs[job.id] = job
            if request_id:
                self._by_request[request_id] = job.id
            self._forget_old()
            self._submit(job.id)
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
            context = self._contexts[job_id]
            context.by_caller = True
            context.cancelled.set()
            if job.state is JobState.QUEUED and self._futures[job_id].cancel():
                return self._set(job_id, state=JobState.CANCELLED)
            while not job.state.terminal and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(timeout=left)
                job = self._get(job_id)
            return job

    def shutdown(self, *, interrupt_running: bool = True, wait: bool = True) -> None:
        """Stop taking jobs. Queued jobs stay queued; running ones are interrupted at their next
        batch (with `interrupt_running`) and queued again, so a restart over the same store runs
        them all. Without a store they are simply dropped with the process."""
        with self._lock:
            self._closed = True
            contexts = list(self._contexts.values())
        if interrupt_running:
            for context in contexts:
                context.cancelled.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)
        if self._store is not None:
            self._store.close()

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
                if context.by_caller:
                    self._set(job_id, state=JobState.CANCELLED)
                return  # a shutdown: it stays queued for the next start
            self._set(job_id, state=JobState.RUNNING)
        try:
            result = self._work(job.spec, context)
        except BaseException as error:
            if context.cancelled.is_set() and not context.by_caller:
                self._requeue_interrupted(job_id)
                return
            if context.cancelled.is_set() or isinstance(error, JobCancelled):
                finished = self._finish(job_id, state=JobState.CANCELLED)
            else:
                if getattr(type(error), "grpc_code_name", None):  # the caller's problem
                    log.info("job %s failed: %s", job_id, error)
                else:
                    log.exception("job %s failed", job_id)
                finished = self._finish(job_id, state=JobState.FAILED, error=JobError.of(error))
        else:
            if context.cancelled.is_set() and not context.by_caller:
                self._requeue_interrupted(job_id)
                return
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

    def _requeue_interrupted(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._jobs:
                self._set(
                    job_id,
                    state=JobState.QUEUED,
                    progress=JobProgress(
                        message="interrupted by a shutdown of the service; it runs again from"
                        " the start when the service is back"
                    ),
                )

    def _update(self, job_id: str, **changes: Any) -> None:
        """Progress: published to readers, not recorded (it is stale after a restart anyway)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and not job.state.terminal:
                self._set(job_id, record=False, **changes)

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

    def _set(self, job_id: str, *, record: bool = True, **changes: Any) -> Job[_Spec]:
        job = self._jobs[job_id]
        updated = replace(job, update_time=self._clock(), version=job.version + 1, **changes)
        self._jobs[job_id] = updated
        if updated.state.terminal:
            self._contexts.pop(job_id, None)
            self._futures.pop(job_id, None)
        if record:
            self._record(updated)
        self._changed.notify_all()
        return updated

    def _record(self, job: Job[_Spec]) -> None:
        if self._store is None:
            return
        try:
            self._store.save(job)
        except Exception:
            # Readers still see the right state; after a restart the record says what it said
            # last (a RUNNING record then comes back FAILED, never silently SUCCEEDED).
            log.exception("cannot record statistics job %s as %s", job.id, job.state.name)

    def _submit(self, job_id: str) -> None:
        context = JobContext(self, job_id)
        self._contexts[job_id] = context
        self._futures[job_id] = self._pool.submit(self._run, job_id, context)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state.terminal]
        excess = len(finished) - self._max_kept
        forgotten = sorted(finished, key=lambda j: j.sequence)[: max(excess, 0)]
        for job in forgotten:
            del self._jobs[job.id]
            if job.request_id and self._by_request.get(job.request_id) == job.id:
                del self._by_request[job.request_id]
        if forgotten and self._store is not None:
            try:
                self._store.delete(job.id for job in forgotten)
            except Exception:
                log.exception("cannot delete %d old statistics job records", len(forgotten))

    def _restore(self, store: JobStore) -> None:
        """Take over the jobs recorded by the last process (see the module's docstring)."""
        jobs = store.load()
        with self._lock:
            for job in jobs:
                self._jobs[job.id] = job
                if job.request_id:
                    self._by_request[job.request_id] = job.id
            last = max((job.sequence for job in jobs), default=0)
            self._sequence = itertools.count(last + 1)
            for job in jobs:
                if job.state is JobState.RUNNING:
                    self._set(
                        job.id,
                        state=JobState.FAILED,
                        error=JobError(
                            RPC_CODES["ABORTED"],
                            "the service stopped while this job was running (a crash, a kill,"
                            " out of memory or a lost machine), so its work was lost; it is not"
                            " run again by itself, in case it was the cause: create it again",
                            RESTARTED_REASON,
                        ),
                    )
                elif job.state is JobState.QUEUED:
                    self._submit(job.id)
            self._forget_old()
        if jobs:
            log.info("took over %d recorded statistics jobs", len(jobs))


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
