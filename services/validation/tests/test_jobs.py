"""The job resource machinery: states, cancellation, idempotent creates, listing, watching."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sluice_runtime.errors import InvalidArgument, NotFound
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
