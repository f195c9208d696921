"""The job resource machinery: states, cancellation, idempotent creates, listing, watching, and
records that outlive the process (restarts, crashes, graceful shutdowns)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sluice_runtime.errors import InvalidArgument, NotFound, Unavailable
from sluice_validation.job_store import JobCodec, SqlJobStore, jobs_table
from sluice_validation.jobs import Job, JobCancelled, JobContext, JobManager, JobProgress, JobState


def wait_for(manager: JobManager[Any], job_id: str, *states: JobState) -> Job[Any]:
    for job in manager.watch(job_id):
        if job.state in states:
            return job
    return manager.get(job_id)


@pytest.fixture()
def manager() -> Iterator[JobManager[str]]:
    gates: dict[str, threading.Event] = {}

    def work(spec: str, context: JobContext) -> str:
        if spec == "fail":
            raise InvalidArgument("bad column", field="source.data.uri", reason="BAD")
        if spec == "crash":
            raise RuntimeError("boom")
        if spec.startswith("wait"):
            gate = gates.setdefault(spec, threading.Event())
            while not gate.wait(0.01):
                if context.should_stop():
                    raise JobCancelled()
        context.report(JobProgress(fraction_done=0.5, done=5, unit="rows"), force=True)
        return f"done:{spec}"

    jobs = JobManager(work, workers=1, max_kept=50)
    yield jobs
    for gate in gates.values():
        gate.set()
    jobs.shutdown()


def test_a_job_runs_to_success_off_the_callers_thread(manager: JobManager[str]) -> None:
    job = manager.create("a")
    assert job.state is JobState.QUEUED and job.name == f"statisticsJobs/{job.id}"
    states = [j.state for j in manager.watch(job.id)]
    assert states[-1] is JobState.SUCCEEDED
    done = manager.get(job.id)
    assert done.result == "done:a"
    assert done.progress.fraction_done == 1.0 and done.progress.done == 5
    assert done.update_time >= done.create_time


def test_failures_carry_the_rpc_code_reason_and_field(manager: JobManager[str]) -> None:
    failed = wait_for(manager, manager.create("fail").id, JobState.FAILED)
    assert failed.error is not None
    assert (failed.error.code, failed.error.reason, failed.error.field) == (
        3,
        "BAD",
        "source.data.uri",
    )
    crashed = wait_for(manager, manager.create("crash").id, JobState.FAILED)
    assert crashed.error is not None
    assert crashed.error.code == 13 and "boom" not in crashed.error.message  # no internals leak


def test_cancel_a_queued_and_a_running_job(manager: JobManager[str]) -> None:
    running = manager.create("wait-1")
    queued = manager.create("b")
    assert manager.cancel(queued.id).state is JobState.CANCELLED
    wait_for(manager, running.id, JobState.RUNNING)
    assert manager.cancel(running.id).state is JobState.CANCELLED
    finished = wait_for(manager, manager.create("c").id, JobState.SUCCEEDED)
    assert manager.cancel(finished.id) == finished  # a finished job is returned unchanged


def test_the_same_request_id_returns_the_first_job(manager: JobManager[str]) -> None:
    first = manager.create("a", request_id="r-1")
    assert manager.create("a", request_id="r-1").id == first.id
    assert manager.create("a", request_id="r-2").id != first.id


def test_listing_is_newest_first_with_page_tokens(manager: JobManager[str]) -> None:
    ids = [manager.create(f"j{i}").id for i in range(5)]
    page, token = manager.list(page_size=2)
    assert [j.id for j in page] == ids[::-1][:2] and token
    page, token = manager.list(page_size=2, page_token=token)
    assert [j.id for j in page] == ids[::-1][2:4]
    page, token = manager.list(page_size=2, page_token=token)
    assert [j.id for j in page] == ids[:1] and token == ""
    with pytest.raises(InvalidArgument):
        manager.list(page_token="garbage")
    with pytest.raises(InvalidArgument):
        manager.list(page_size=5_000)


def test_unknown_jobs_are_not_found(manager: JobManager[str]) -> None:
    with pytest.raises(NotFound):
        manager.get("nope")
    with pytest.raises(NotFound):
        list(manager.watch("nope"))


def test_old_finished_jobs_are_forgotten() -> None:
    jobs: JobManager[int] = JobManager(lambda spec, context: spec, workers=1, max_kept=2)
    try:
        ids = [jobs.create(i).id for i in range(4)]
        for job_id in ids:
            wait_for(jobs, job_id, JobState.SUCCEEDED)
        jobs.create(99)
        kept = {j.id for j in jobs.list()[0]}
        assert ids[0] not in kept and ids[3] in kept
    finally:
        jobs.shutdown()


# -- records: a new manager over the same store --------------------------------------------------

TEXT_CODEC: JobCodec[str] = JobCodec(
    spec_to_json=lambda spec: spec,
    spec_from_json=str,
    result_to_json=lambda result: result,
    result_from_json=str,
)


class Gated:
    """Work that waits at `gate` for specs starting with "wait", polling for a stop."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started: list[str] = []

    def __call__(self, spec: str, context: JobContext) -> str:
        self.started.append(spec)
        if spec == "fail":
            raise InvalidArgument("bad column", field="source.data.uri", reason="BAD")
        if spec.startswith("wait"):
            while not self.gate.wait(0.01):
                if context.should_stop():
                    raise JobCancelled()
        return f"done:{spec}"


@pytest.fixture()
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs' / 'jobs.db'}"


@pytest.fixture()
def managers(database: str) -> Iterator[Callable[[Gated], JobManager[str]]]:
    """Builds managers over `database`, as restarted processes would; all shut down at the end."""
    started: list[tuple[JobManager[str], Gated]] = []

    def start(work: Gated) -> JobManager[str]:
        jobs = JobManager(work, workers=1, max_kept=50, store=SqlJobStore(database, TEXT_CODEC))
        started.append((jobs, work))
        return jobs

    yield start
    for jobs, work in started:
        work.gate.set()
        jobs.shutdown()


def test_finished_jobs_outlive_the_manager(managers: Callable[[Gated], JobManager[str]]) -> None:
    first = managers(Gated())
    done = wait_for(first, first.create("a", request_id="r-1").id, JobState.SUCCEEDED)
    failed = wait_for(first, first.create("fail").id, JobState.FAILED)
    waiting = first.create("wait-1")
    wait_for(first, waiting.id, JobState.RUNNING)
    cancelled = first.cancel(waiting.id)
    assert cancelled.state is JobState.CANCELLED
    page, token = first.list(page_size=2)
    first.shutdown()

    again = managers(Gated())
    assert again.get(done.id).result == "done:a" and again.get(done.id).state is JobState.SUCCEEDED
    assert again.get(failed.id).error == failed.error
    assert again.get(cancelled.id).state is JobState.CANCELLED
    assert [j.id for j in again.list(page_size=2)[0]] == [j.id for j in page]
    assert [j.id for j in again.list(page_size=2, page_token=token)[0]] == [done.id]
    assert again.create("a", request_id="r-1").id == done.id  # retries still find the first job
    newest = again.create("b")
    assert again.list()[0][0].id == newest.id and newest.sequence > cancelled.sequence


def test_a_crash_fails_running_jobs_and_runs_queued_ones(
    managers: Callable[[Gated], JobManager[str]], database: str
) -> None:
    crashed = managers(Gated())
    running = crashed.create("wait-1")
    wait_for(crashed, running.id, JobState.RUNNING)
    queued = crashed.create("b")  # one worker: it waits behind the running job
    recorded = {job.id: job.state for job in SqlJobStore(database, TEXT_CODEC).load()}
    assert recorded == {running.id: JobState.RUNNING, queued.id: JobState.QUEUED}

    # The process died there (it is never stopped): a new one takes over its records.
    work = Gated()
    restarted = managers(work)
    failed = restarted.get(running.id)
    assert failed.state is JobState.FAILED and failed.error is not None
    assert (failed.error.code, failed.error.reason) == (10, "SERVICE_RESTARTED")  # ABORTED
    assert "create it again" in failed.error.message
    assert wait_for(restarted, queued.id, JobState.SUCCEEDED).result == "done:b"
    assert work.started == ["b"]  # the job that was running is not run again


def test_a_shutdown_puts_running_jobs_back_in_the_queue(
    managers: Callable[[Gated], JobManager[str]],
) -> None:
    stopping = managers(Gated())
    running = stopping.create("wait-1")
    wait_for(stopping, running.id, JobState.RUNNING)
    queued = stopping.create("b")
    stopping.shutdown()
    interrupted = stopping.get(running.id)
    assert interrupted.state is JobState.QUEUED and "shutdown" in interrupted.progress.message
    assert stopping.get(queued.id).state is JobState.QUEUED

    work = Gated()
    work.gate.set()
    restarted = managers(work)
    assert wait_for(restarted, running.id, JobState.SUCCEEDED).result == "done:wait-1"
    assert wait_for(restarted, queued.id, JobState.SUCCEEDED).result == "done:b"
    assert work.started == ["wait-1", "b"]  # in their order


def test_a_job_that_cannot_be_recorded_is_not_created() -> None:
    class BrokenStore:
        def save(self, job: Job[Any]) -> None:
            raise OSError("disk full")

        def load(self) -> list[Job[Any]]:
            return []

        def delete(self, job_ids: Iterable[str]) -> None: ...

        def close(self) -> None: ...

    jobs: JobManager[str] = JobManager(Gated(), workers=1, store=BrokenStore())
    try:
        with pytest.raises(Unavailable, match="nothing was created"):
            jobs.create("a")
        assert jobs.list() == ([], "")
    finally:
        jobs.shutdown()


def test_old_records_are_deleted_and_unreadable_ones_skipped(database: str) -> None:
    store = SqlJobStore(database, TEXT_CODEC)
    jobs: JobManager[str] = JobManager(Gated(), workers=1, max_kept=2, store=store)
    ids = [jobs.create(f"j{i}").id for i in range(4)]
    for job_id in ids:
        wait_for(jobs, job_id, JobState.SUCCEEDED)
    jobs.create("last")
    jobs.shutdown()
    reader = SqlJobStore(database, TEXT_CODEC)
    assert ids[0] not in {job.id for job in reader.load()}
    with reader.engine.begin() as connection:
        connection.execute(
            jobs_table.update().where(jobs_table.c.id == ids[3]).values(spec="{not json")
        )
    assert ids[3] not in {job.id for job in reader.load()}  # logged and left in the table
    reader.close()
