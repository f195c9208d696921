"""The job life cycle in `TrainingCore`, with scripted fake workers (no Keras, no processes)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2
from sluice.client import MetadataClient
from sluice.common.v1 import data_pb2
from sluice.metadata.v1 import execution_pb2
from sluice.training.v1 import training_job_pb2 as pb
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from sluice_training.core import CoreSettings, TrainingCore
from sluice_training.jobs import Job, JobState
from sluice_training.lineage import MetadataLineage, NoLineage
from sluice_training.publish import MANIFEST_NAME
from sluice_training.spec import SpecContext
from sluice_training.store import SqlJobStore


@pytest.fixture
def launcher(fake_launcher: Any) -> Any:
    return fake_launcher


def make_spec(fake: str = "succeed", **changes: Any) -> pb.TrainingSpec:
    hyperparameters = struct_pb2.Struct()
    hyperparameters.update({"fake": fake})
    spec = pb.TrainingSpec(
        train_data=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri="data/train.csv")),
        schema=data_pb2.ArtifactRef(uri="data/schema.pbtxt"),
        label="bought",
        builtin=pb.BuiltinModel(task=pb.TASK_BINARY_CLASSIFICATION),
        hyperparameters=hyperparameters,
    )
    for name, value in changes.items():
        setattr(spec, name, value)
    return spec


def make_core(store: ArtifactStore, launcher: Any, tmp_path: Path, **settings: Any) -> TrainingCore:
    return TrainingCore(
        SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}"),
        store,
        {"local": launcher},
        NoLineage(),
        SpecContext(store_root_uri=store.root_uri),
        CoreSettings(jobs_dir=tmp_path / "jobs", poll_seconds=0.02, **settings),
    )


@pytest.fixture
def core(store: ArtifactStore, launcher: Any, tmp_path: Path) -> Iterator[TrainingCore]:
    core = make_core(store, launcher, tmp_path)
    core.start()
    yield core
    core.stop()


def final(core: TrainingCore, job: Job) -> Job:
    *_, last = core.watch(job.name)
    return last


def wait_for(core: TrainingCore, job: Job, state: JobState, timeout: float = 30) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = core.get(job.name)
        if current.state is state:
            return current
        time.sleep(0.01)
    raise AssertionError(f"{job.name} is {core.get(job.name).state}, not {state}")


def test_create_queues_then_watch_streams_to_success(core: TrainingCore) -> None:
    job = core.create(make_spec(), labels={"team": "growth"})
    assert job.state is JobState.QUEUED and job.name.startswith("trainingJobs/")
    states = [j.state for j in core.watch(job.name)]
    assert states[0] is JobState.QUEUED and states[-1] is JobState.SUCCEEDED
    done = core.get(job.name)
    assert done.result is not None and done.result.eval_metrics == {"auc": 0.9}
    assert done.result.model_uri.endswith(f"/models/{job.id}")
    assert done.progress.step == 2 and done.attempt == 1 and done.labels == {"team": "growth"}
    assert done.start_time is not None and done.end_time is not None


def test_jobs_wait_for_a_free_slot(core: TrainingCore) -> None:
    first = core.create(make_spec("hang"))
    wait_for(core, first, JobState.RUNNING)
    second = core.create(make_spec())
    time.sleep(0.2)
    assert core.get(second.name).state is JobState.QUEUED  # one slot, taken
    core.cancel(first.name)
    assert final(core, second).state is JobState.SUCCEEDED


def test_cancel_a_running_job_stops_it_and_unpublishes_what_it_wrote(
    core: TrainingCore, launcher: Any, store: ArtifactStore
) -> None:
    job = core.create(make_spec("publish-then-hang"))
    wait_for(core, job, JobState.RUNNING)
    deadline = time.monotonic() + 20
    while not store.exists(f"models/{job.id}/{MANIFEST_NAME}") and time.monotonic() < deadline:
        time.sleep(0.01)
    cancelled = core.cancel(job.name)
    assert cancelled.state is JobState.CANCELLED
    assert final(core, job).state is JobState.CANCELLED
    deadline = time.monotonic() + 20
    while list(store.list(f"models/{job.id}/")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(store.list(f"models/{job.id}/")) == []
    assert launcher.workers[f"{job.id}/1"].stopped.is_set()
    assert core.cancel(job.name).state is JobState.CANCELLED  # again: no change, no error


def test_cancel_a_queued_job_and_a_finished_one(core: TrainingCore) -> None:
    blocker = core.create(make_spec("hang"))
    queued = core.create(make_spec())
    assert core.cancel(queued.name).state is JobState.CANCELLED
    core.cancel(blocker.name)
    done = core.create(make_spec())
    assert final(core, done).state is JobState.SUCCEEDED
    with pytest.raises(FailedPrecondition) as error:
        core.cancel(done.name)
    assert error.value.reason == "JOB_FINISHED"


def test_a_reported_failure_becomes_the_jobs_error(core: TrainingCore) -> None:
    job = final(core, core.create(make_spec("fail")))
    assert job.state is JobState.FAILED
    assert job.error is not None
    assert (job.error.reason, job.error.field, job.error.code) == ("LABEL_MISSING", "spec.label", 3)


def test_a_worker_that_dies_is_retried_as_a_new_attempt(core: TrainingCore, launcher: Any) -> None:
    job = final(core, core.create(make_spec("die-once")))
    assert job.state is JobState.SUCCEEDED
    assert job.attempt == 2
    assert [p.attempt for p in launcher.plans] == [1, 2]
    assert launcher.plans[0].checkpoint_prefix == launcher.plans[1].checkpoint_prefix


def test_workers_that_keep_dying_fail_the_job_after_max_attempts(core: TrainingCore) -> None:
    job = final(core, core.create(make_spec("die")))
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.reason == "WORKER_LOST"
    assert job.attempt == 3


def test_a_restarted_service_resumes_the_jobs_it_was_running(
    store: ArtifactStore, tmp_path: Path, new_fake_launcher: Callable[[], Any]
) -> None:
    first_launcher = new_fake_launcher()
    first = make_core(store, first_launcher, tmp_path, max_attempts=1)
    first.start()
    job = first.create(make_spec("die-once"))
    # Attempt 1 "dies" with the service: stop the scheduler before it notices.
    wait_for(first, job, JobState.RUNNING)
    first.stop(stop_workers=False)
    first.store.close()

    second_launcher = new_fake_launcher()
    second = make_core(store, second_launcher, tmp_path, max_attempts=1)
    second.start()
    try:
        done = final(second, second.get(job.name))
    finally:
        second.stop()
    # max_attempts=1, yet the restart does not count as the workers' fault.
    assert done.state is JobState.SUCCEEDED
    assert [p.attempt for p in second_launcher.plans] == [2]


def test_request_id_makes_create_idempotent(core: TrainingCore) -> None:
    first = core.create(make_spec(), request_id="retry-me")
    again = core.create(make_spec(), request_id="retry-me")
    assert again.id == first.id
    with pytest.raises(FailedPrecondition) as error:
        core.create(make_spec(label="other"), request_id="retry-me")
    assert error.value.field == "request_id"


def test_list_is_newest_first_in_pages(core: TrainingCore) -> None:
    created = [core.create(make_spec("hang")) for _ in range(5)]
    page, token = core.list(page_size=2)
    seen = [j.id for j in page]
    while token:
        page, token = core.list(page_size=2, page_token=token)
        seen += [j.id for j in page]
    assert seen == [j.id for j in reversed(created)]
    for job in created:
        core.cancel(job.name)
    with pytest.raises(InvalidArgument) as error:
        core.list(page_token="garbage!")
    assert error.value.field == "page_token"
    with pytest.raises(InvalidArgument):
        core.list(page_size=1001)


def test_names_and_specs_are_checked(core: TrainingCore) -> None:
    with pytest.raises(NotFound):
        core.get("trainingJobs/0000000000000000")
    with pytest.raises(InvalidArgument) as bad_name:
        core.get("jobs/1")
    assert bad_name.value.field == "name"
    with pytest.raises(InvalidArgument) as no_label:
        core.create(make_spec(label=""))
    assert no_label.value.field == "spec.label"


def test_a_job_is_recorded_in_the_metadata_service(
    store: ArtifactStore, launcher: Any, tmp_path: Path, metadata_address: str
) -> None:
    client = MetadataClient(metadata_address)
    core = TrainingCore(
        SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}"),
        store,
        {"local": launcher},
        MetadataLineage(client),
        SpecContext(store_root_uri=store.root_uri, metadata_configured=True),
        CoreSettings(jobs_dir=tmp_path / "jobs", poll_seconds=0.02),
    )
    core.start()
    try:
        done = final(core, core.create(make_spec()))
        failed = final(core, core.create(make_spec("fail")))
    finally:
        core.stop()
        client.close()
    assert done.state is JobState.SUCCEEDED and done.execution_id > 0
    assert done.result is not None and done.result.model_artifact_id > 0
    with MetadataClient(metadata_address) as check:
        model = check.get_artifact(done.result.model_artifact_id)
        assert model.uri == done.result.model_uri and model.external_id == done.name
        (execution,) = check.batch_get_executions(execution_ids=[failed.execution_id]).executions
        assert execution.state == execution_pb2.Execution.STATE_FAILED
