"""The training service's domain logic: jobs, the queue, and the scheduler that runs them.

RPC threads only read and write job records (create, get, list, cancel, watch). One scheduler
thread does everything slow: it resolves inputs and records lineage, starts workers through a
`Launcher` when a slot is free (``max_concurrent_jobs``), reads their events into the job record,
retries an attempt whose workers died (resuming from the last checkpoint) and publishes the
outcome. No gRPC, no SQLAlchemy, no Keras here: those sit behind `JobStore`, `Launcher`, `Lineage`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice.training.v1 import training_job_pb2 as pb
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.errors import FailedPrecondition, InvalidArgument, NotFound

from sluice_training.checkpoints import Checkpoints
from sluice_training.events import EventReader
from sluice_training.failures import TrainingFailure
from sluice_training.jobs import (
    Job,
    JobFailure,
    JobState,
    Progress,
    Result,
    code_number,
    job_id_from_name,
)
from sluice_training.launchers import Launcher, describe
from sluice_training.lineage import Lineage
from sluice_training.publish import read_manifest
from sluice_training.spec import SpecContext, job_plan, validate_spec
from sluice_training.store import JobStore

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_LABELS = 64


@dataclass(frozen=True)
class CoreSettings:
    jobs_dir: Path
    max_concurrent_jobs: int = 1
    max_attempts: int = 3
    cancel_grace_seconds: float = 5.0
    poll_seconds: float = 0.25


@dataclass
class _Attempt:
    """A job whose workers the scheduler is watching."""

    job_id: str
    spec: pb.TrainingSpec
    launcher: Launcher
    launch: dict[str, Any]
    readers: list[EventReader]
    final: tuple[str, Any] | None = None
    recovered: bool = False  # found RUNNING at start-up: losing it is not the workers' fault
    events: list[str] = field(default_factory=list)


class TrainingCore:
    """Args:
    store: job records.
    artifacts: the artifact store (checkpoints and outputs are cleaned through it).
    launchers: by placement kind: "local" and, when configured, "kubernetes".
    lineage: the metadata service, or `NoLineage`.
    context: what spec validation needs to know about this service.
    """

    def __init__(
        self,
        store: JobStore,
        artifacts: ArtifactStore,
        launchers: Mapping[str, Launcher],
        lineage: Lineage,
        context: SpecContext,
        settings: CoreSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.launchers = dict(launchers)
        self.lineage = lineage
        self.context = context
        self.settings = settings
        self.clock = clock
        self._changed = threading.Condition()
        self._cache: dict[str, Job] = {}
        self._active: dict[str, _Attempt] = {}
        self._pending_cleanups: list[Job] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- RPCs ---------------------------------------------------------------------------------

    def create(
        self, spec: pb.TrainingSpec, labels: Mapping[str, str] | None = None, request_id: str = ""
    ) -> Job:
        """Validate and queue a job; with a known ``request_id``, the job it created before."""
        labels = dict(labels or {})
        _check_labels(labels)
        if len(request_id) > 256:
            raise InvalidArgument("request_id must be at most 256 characters", field="request_id")
        spec_bytes = spec.SerializeToString(deterministic=True)
        if request_id:
            existing = self.store.get_by_request_id(request_id)
            if existing is not None:
                return self._same_request(existing, spec_bytes)
        validate_spec(spec, self.context)
        job = Job(
            id=uuid.uuid4().hex[:16],
            state=JobState.QUEUED,
            spec=spec_bytes,
            create_time=self.clock(),
            labels=labels,
            request_id=request_id,
        )
        try:
            self.store.add(job)
        except KeyError:  # a concurrent create with the same request_id won
            existing = self.store.get_by_request_id(request_id)
            assert existing is not None
            return self._same_request(existing, spec_bytes)
        self._publish(job)
        return job

    def get(self, name: str) -> Job:
        job_id = _job_id(name)
        job = self._cache.get(job_id) or self.store.get(job_id)
        if job is None:
            raise NotFound(f"{name} does not exist", field="name")
        return job

    def list(self, page_size: int = 0, page_token: str = "") -> tuple[list[Job], str]:
        """Newest first; returns the page and the token of the next one ("" on the last)."""
        if not 0 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"page_size must be between 1 and {MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE})",
                field="page_size",
            )
        size = page_size or DEFAULT_PAGE_SIZE
        cursor = _decode_token(page_token) if page_token else None
        jobs = self.store.newest_first(cursor, size + 1)
        page = [self._cache.get(job.id, job) for job in jobs[:size]]
        next_token = _encode_token(page[-1]) if len(jobs) > size else ""
        return page, next_token

    def cancel(self, name: str) -> Job:
        """Stop a queued or running job. Cancelling a cancelled job returns it as it is; a job that
        already succeeded or failed cannot be cancelled (FAILED_PRECONDITION)."""
        job_id = _job_id(name)
        with self._changed:
            job = self._cache.get(job_id) or self.store.get(job_id)
            if job is None:
                raise NotFound(f"{name} does not exist", field="name")
            if job.state is JobState.CANCELLED:
                return job
            if job.state.terminal:
                raise FailedPrecondition(
                    f"{name} already {job.state.name.lower()}; nothing to cancel",
                    field="name",
                    reason="JOB_FINISHED",
                )
            job = job.evolve(state=JobState.CANCELLED, end_time=self.clock())
            self._save(job)
            if job_id not in self._active:
                self._pending_cleanups.append(job)  # queued: lineage and checkpoints only
            self._changed.notify_all()
        return job

    def watch(
        self, name: str, is_active: Callable[[], bool] = lambda: True, wait_seconds: float = 1.0
    ) -> Iterator[Job]:
        """The job now, then again on every change, ending after a terminal state (or when
        ``is_active`` turns false: the caller went away)."""
        job = self.get(name)
        yield job
        while not job.state.terminal and is_active():
            with self._changed:
                current = self._cache.get(job.id) or self.store.get(job.id) or job
                if current.version == job.version:
                    self._changed.wait(wait_seconds)
                    current = self._cache.get(job.id) or current
            if current.version != job.version:
                job = current
                yield job

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Pick up jobs left RUNNING by a previous service process, then start the scheduler."""
        for job in self.store.in_states([JobState.RUNNING]):
            self._recover(job)
        self._thread = threading.Thread(target=self._run, name="training-scheduler", daemon=True)
        self._thread.start()

    def stop(self, *, stop_workers: bool = True) -> None:
        """Stop the scheduler. Running jobs stay RUNNING in the store: the next service process
        resumes them from their checkpoints (local workers exit with this process anyway)."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if stop_workers:
            for attempt in list(self._active.values()):
                if not attempt.launcher.survives_restart(attempt.launch):
                    attempt.launcher.stop(attempt.launch, 0)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- the scheduler ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:  # keep scheduling whatever one job did
                logger.exception("training scheduler step failed")
            with self._changed:
                self._changed.wait(self.settings.poll_seconds)

    def _tick(self) -> None:
        with self._changed:
            cleanups, self._pending_cleanups = self._pending_cleanups, []
        for job in cleanups:
            self._clean_up(job, None)
        for attempt in list(self._active.values()):
            if self._stopping.is_set():
                return
            self._watch_attempt(attempt)
        free = self.settings.max_concurrent_jobs - len(self._active)
        if free > 0:
            for job in self.store.in_states([JobState.QUEUED])[:free]:
                if self._stopping.is_set():
                    return
                self._start_attempt(job)

    def _start_attempt(self, queued: Job) -> None:
        spec = pb.TrainingSpec.FromString(queued.spec)
        number = queued.attempt + 1
        try:
            inputs, base_id = self.lineage.resolve(spec)
            execution_id = self.lineage.start(queued, spec, inputs, base_id)
        except TrainingFailure as failure:
            self._finish(queued, None, JobState.FAILED, error=failure.to_failure())
            return
        plan = job_plan(queued.id, number, spec, inputs, self.context)
        placement = spec.placement
        kind = "kubernetes" if placement.kind == pb.Placement.KIND_KUBERNETES else "local"
        launcher = self.launchers[kind]
        folder = self.settings.jobs_dir / queued.id / f"attempt-{number}"
        with self._changed:
            current = self._cache.get(queued.id) or self.store.get(queued.id)
            if current is None or current.state is not JobState.QUEUED:
                return  # cancelled while lineage was being recorded
            try:
                launch = launcher.launch(plan, folder, placement)
            except Exception as error:
                logger.exception("cannot start the workers of %s", queued.name)
                launch_failure = JobFailure(
                    code=code_number("UNAVAILABLE"),
                    message=f"cannot start the workers: {type(error).__name__}: {error}",
                    reason="LAUNCH_FAILED",
                    field="spec.placement",
                )
                self._finish(
                    current.evolve(execution_id=execution_id), None, JobState.FAILED, launch_failure
                )
                return
            launch["output_prefix"] = plan.output_prefix
            launch["checkpoint_prefix"] = plan.checkpoint_prefix
            launch["base_model"] = {"uri": inputs.base_model, "artifact_id": base_id}
            job = current.evolve(
                state=JobState.RUNNING,
                attempt=number,
                start_time=current.start_time or self.clock(),
                execution_id=execution_id,
                launch=launch,
                error=None,
            )
            self._save(job)
            self._active[job.id] = _Attempt(
                job_id=job.id,
                spec=spec,
                launcher=launcher,
                launch=launch,
                readers=launcher.readers(launch),
            )
            self._changed.notify_all()
        logger.info("%s attempt %d started (%s)", job.name, number, describe(launch))

    def _watch_attempt(self, attempt: _Attempt) -> None:
        job = self._cache.get(attempt.job_id) or self.store.get(attempt.job_id)
        if job is None:
            return
        if job.state is JobState.CANCELLED:
            attempt.launcher.stop(attempt.launch, self.settings.cancel_grace_seconds)
            self._active.pop(job.id, None)
            self._clean_up(job, attempt.launch)
            return
        self._read_events(attempt)
        if attempt.final is None:
            status = attempt.launcher.status(attempt.launch)
            if not (status.all_exited or status.any_failed):
                return
            self._read_events(attempt)  # events written just before the exit
            if attempt.final is None:
                attempt.launcher.stop(attempt.launch, 0)
                self._worker_lost(attempt, status.exit_codes)
                return
        # The chief reported the outcome: let the other workers finish or stop them.
        if attempt.final[0] == "result":
            status = attempt.launcher.status(attempt.launch)
            if not status.all_exited:
                attempt.launcher.stop(attempt.launch, self.settings.cancel_grace_seconds)
            self._succeed(attempt, Result.from_json(attempt.final[1]))
        else:
            attempt.launcher.stop(attempt.launch, 0)
            self._active.pop(attempt.job_id, None)
            job = self._cache.get(attempt.job_id) or job
            self._finish(
                job, attempt.launch, JobState.FAILED, JobFailure.from_json(attempt.final[1])
            )

    def _read_events(self, attempt: _Attempt) -> None:
        for index, reader in enumerate(attempt.readers):
            for event in reader.read_new():
                self._apply_event(attempt, index, event)

    def _apply_event(self, attempt: _Attempt, worker: int, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "failed" and attempt.final is None:
            attempt.final = ("failed", event["failure"])
            return
        if worker != 0:
            return  # only the chief reports progress and results
        if kind == "result" and attempt.final is None:
            attempt.final = ("result", event["result"])
        elif kind == "progress":
            self._update(attempt.job_id, progress=Progress.from_json(event["progress"]))
        elif kind == "started":
            launch = {
                **attempt.launch,
                "resumed_from_step": event.get("resumed_from_step", 0),
                "warm_start": event.get("warm_start", {}),
                "keras_backend": event.get("keras_backend", ""),
                "tensorflow_loaded": event.get("tensorflow_loaded", True),
            }
            attempt.launch = launch
            self._update(attempt.job_id, launch=launch)
        elif kind == "checkpoint":
            launch = {**attempt.launch, "last_checkpoint_step": event.get("step", 0)}
            attempt.launch = launch
            self._update(attempt.job_id, launch=launch)

    def _worker_lost(self, attempt: _Attempt, exit_codes: tuple[int | None, ...]) -> None:
        self._active.pop(attempt.job_id, None)
        with self._changed:
            job = self._cache.get(attempt.job_id) or self.store.get(attempt.job_id)
            if job is None or job.state is not JobState.RUNNING:
                return
            logs = ", ".join(attempt.launch.get("logs", [])) or "the worker logs"
            if attempt.recovered or job.attempt < self.settings.max_attempts:
                logger.warning(
                    "%s: workers of attempt %d ended without a result (exit codes %s); retrying "
                    "from the last checkpoint",
                    job.name,
                    job.attempt,
                    list(exit_codes),
                )
                self._save(job.evolve(state=JobState.QUEUED, launch={}))
                self._changed.notify_all()
                return
        failure = JobFailure(
            code=code_number("UNAVAILABLE"),
            message=f"the workers died {job.attempt} times without finishing (exit codes "
            f"{list(exit_codes)}); see {logs}",
            reason="WORKER_LOST",
        )
        self._finish(job, attempt.launch, JobState.FAILED, failure)

    def _succeed(self, attempt: _Attempt, result: Result) -> None:
        job = self._cache.get(attempt.job_id) or self.store.get(attempt.job_id)
        assert job is not None
        base = attempt.launch.get("base_model") or {}
        result = Result(
            model_uri=result.model_uri,
            digest=result.digest,
            base_model_uri=result.base_model_uri,
            base_model_artifact_id=int(base.get("artifact_id", 0)),
            eval_metrics=result.eval_metrics,
        )
        try:
            artifact_id = self.lineage.succeed(job, attempt.spec, result)
        except TrainingFailure as failure:
            self._active.pop(job.id, None)
            self._finish(job, attempt.launch, JobState.FAILED, failure.to_failure())
            return
        self._active.pop(job.id, None)
        result = replace(result, model_artifact_id=artifact_id)
        # Clean first, so a job seen SUCCEEDED has nothing left behind.
        self._clean_up(job, attempt.launch, JobState.SUCCEEDED)
        with self._changed:
            current = self._cache.get(job.id) or job
            if current.state is JobState.CANCELLED:  # cancelled while registering: keep it so
                return
            done = current.evolve(state=JobState.SUCCEEDED, result=result, end_time=self.clock())
            self._save(done)
            self._changed.notify_all()
        logger.info("%s succeeded: %s (%s)", done.name, result.model_uri, result.digest)

    def _finish(
        self,
        job: Job,
        launch: Mapping[str, Any] | None,
        state: JobState,
        error: JobFailure | None = None,
    ) -> None:
        current = self._cache.get(job.id) or job
        if current.state.terminal:
            return  # cancelled meanwhile: the cancellation cleans up
        # Clean first, so a job seen in its final state has nothing half-done left behind.
        ending = replace(current, execution_id=job.execution_id or current.execution_id)
        self._clean_up(ending, launch, state)
        with self._changed:
            current = self._cache.get(job.id) or job
            if current.state.terminal:
                return
            done = current.evolve(
                state=state,
                error=error,
                end_time=self.clock(),
                execution_id=ending.execution_id,
            )
            self._save(done)
            self._changed.notify_all()
        if error is not None:
            logger.warning("%s failed: %s (%s)", job.name, error.message, error.reason)

    def _clean_up(
        self, job: Job, launch: Mapping[str, Any] | None, state: JobState | None = None
    ) -> None:
        """At a terminal ``state`` (default: the job's): drop checkpoints, unpublish a model that
        was not registered (only ever one of this job), record the end in lineage, remove
        scratch folders."""
        launch = launch or job.launch or {}
        state = state or job.state
        if state is not JobState.SUCCEEDED:
            prefix = launch.get("output_prefix", "")
            if prefix:
                with contextlib.suppress(Exception):
                    manifest = read_manifest(self.artifacts, prefix)
                    if manifest is not None and manifest.get("job") == job.name:
                        self.artifacts.delete_prefix(prefix.rstrip("/") + "/")
            self.lineage.end(job, state)
        checkpoint_prefix = launch.get("checkpoint_prefix") or f"training-jobs/{job.id}/checkpoints"
        with contextlib.suppress(Exception):
            Checkpoints(self.artifacts, checkpoint_prefix, self.settings.jobs_dir).clear()
        job_dir = self.settings.jobs_dir / job.id
        for work in job_dir.glob("attempt-*/work-*"):
            shutil.rmtree(work, ignore_errors=True)

    def _recover(self, job: Job) -> None:
        launch = dict(job.launch)
        kind = launch.get("kind", "local")
        launcher = self.launchers.get(kind)
        if launcher is None or not launch:
            self._save(job.evolve(state=JobState.QUEUED, launch={}))
            return
        if not launcher.survives_restart(launch):
            launcher.stop(launch, 0)  # an orphan of the previous process, if any is left
        self._active[job.id] = _Attempt(
            job_id=job.id,
            spec=pb.TrainingSpec.FromString(job.spec),
            launcher=launcher,
            launch=launch,
            readers=launcher.readers(launch),
            recovered=True,
        )
        self._cache[job.id] = job

    # -- records ------------------------------------------------------------------------------

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._changed:
            job = self._cache.get(job_id) or self.store.get(job_id)
            if job is None or job.state.terminal:
                return
            self._save(job.evolve(**changes))
            self._changed.notify_all()

    def _save(self, job: Job) -> None:
        self.store.update(job)
        self._cache[job.id] = job

    def _publish(self, job: Job) -> None:
        with self._changed:
            self._cache[job.id] = job
            self._changed.notify_all()

    def _same_request(self, existing: Job, spec_bytes: bytes) -> Job:
        if existing.spec != spec_bytes:
            raise FailedPrecondition(
                f"request_id {existing.request_id!r} was used for {existing.name} with another "
                "spec; use a new request_id",
                field="request_id",
                reason="REQUEST_ID_REUSED",
            )
        return self._cache.get(existing.id, existing)


def _job_id(name: str) -> str:
    job_id = job_id_from_name(name)
    if job_id is None:
        raise InvalidArgument(f"name must read trainingJobs/<id>, got {name!r}", field="name")
    return job_id


def _check_labels(labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"at most {MAX_LABELS} labels", field="labels")
    for key, value in labels.items():
        if not key or len(key) > 63 or len(value) > 256:
            raise InvalidArgument(
                f"label {key!r}: keys are 1 to 63 characters, values at most 256",
                field=f"labels.{key}",
            )


def _encode_token(job: Job) -> str:
    raw = json.dumps([job.create_time.timestamp(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        seconds, job_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromtimestamp(float(seconds), UTC), str(job_id)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidArgument(
            "page_token is not one this service returned", field="page_token"
        ) from None
