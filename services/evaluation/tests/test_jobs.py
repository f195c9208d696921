"""The job runner: states, progress, cancellation, watching, paging, idempotent creation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sluice_evaluation.jobs import JobControl, JobRunner, JobState
from sluice_runtime.errors import FailedPrecondition, InvalidArgument, NotFound


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def make_runner(gate: threading.Event, hold: threading.Event | None = None) -> JobRunner[str, str]:
    def work(name: str, spec: str, control: JobControl) -> str:
        if spec == "hold":  # keeps the only worker busy until `hold` is set
            assert hold is not None
            while not hold.wait(0.01):
                control.check()
            return "held"
        if spec == "fail":
            raise InvalidArgument(
                "spec.label: no such column", field="spec.label", reason="LABEL_MISSING"
            )
        if spec == "crash":
            raise RuntimeError("boom")
        control.report(0.5, "half way")
        while not gate.wait(0.01):
            control.check()
        return spec.upper()

    return JobRunner("things", work, workers=1)


def terminal(runner: JobRunner[str, str], name: str) -> JobState:
    return list(runner.watch(name))[-1].state


def test_a_job_runs_to_success_and_watch_sees_every_stage(gate: threading.Event) -> None:
    hold = threading.Event()
    runner = make_runner(gate, hold)
    # The only worker is busy first, so the job is certainly still queued when watching starts.
    holder = runner.create("hold")
    for snapshot in runner.watch(holder.name):
        if snapshot.state is JobState.RUNNING:
            break
    job = runner.create("ok", {"team": "ads"})
    assert job.state is JobState.QUEUED and job.name.startswith("things/")
    seen = []
    for snapshot in runner.watch(job.name):
        seen.append(snapshot.state)
        if snapshot.state is JobState.QUEUED:
            hold.set()
        if snapshot.progress.message == "half way":
            gate.set()
    assert seen[0] is JobState.QUEUED and seen[-1] is JobState.SUCCEEDED
    assert JobState.RUNNING in seen
    done = runner.get(job.name)
    assert (
        done.result == "OK"
        and done.progress.fraction_done == 1.0
        and done.labels == {"team": "ads"}
    )
    runner.close()


def test_failures_keep_their_code_reason_and_field(gate: threading.Event) -> None:
    runner = make_runner(gate)
    failed = runner.create("fail")
    crashed = runner.create("crash")
    assert terminal(runner, failed.name) is JobState.FAILED
    error = runner.get(failed.name).error
    assert error is not None
    assert (error.code, error.reason, error.field) == (
        "INVALID_ARGUMENT",
        "LABEL_MISSING",
        "spec.label",
    )
    assert terminal(runner, crashed.name) is JobState.FAILED
    internal = runner.get(crashed.name).error
    assert internal is not None and internal.code == "INTERNAL" and "boom" in internal.message
    runner.close()


def test_cancel_a_running_and_a_queued_job(gate: threading.Event) -> None:
    runner = make_runner(gate)
    running = runner.create("slow")
    queued = runner.create("queued")  # one worker: waits behind the first
    assert runner.cancel(queued.name).state is JobState.CANCELLED
    runner.cancel(running.name)
    assert terminal(runner, running.name) is JobState.CANCELLED
    with pytest.raises(FailedPrecondition):
        runner.cancel(running.name)
    runner.close()


def test_request_id_makes_create_idempotent_and_paging_is_newest_first(
    gate: threading.Event,
) -> None:
    gate.set()
    runner = make_runner(gate)
    first = runner.create("a", request_id="r1")
    assert runner.create("other", request_id="r1").name == first.name
    names = [first.name] + [runner.create(str(i)).name for i in range(4)]
    page, token = runner.list(page_size=2)
    assert [j.name for j in page] == names[::-1][:2]
    collected = [j.name for j in page]
    while token:
        page, token = runner.list(page_size=2, page_token=token)
        collected += [j.name for j in page]
    assert collected == names[::-1]
    with pytest.raises(InvalidArgument):
        runner.list(page_token="garbage")
    with pytest.raises(NotFound):
        runner.get("things/missing")
    runner.close()


def test_close_cancels_what_is_left(gate: threading.Event) -> None:
    runner = make_runner(gate)
    job = runner.create("slow")
    runner.close()
    assert runner.get(job.name).state is JobState.CANCELLED
    with pytest.raises(FailedPrecondition):
        runner.create("late")
