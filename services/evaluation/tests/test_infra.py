"""Infra validation in a real sandboxed serving process (``python -m sluice_serving``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sluice_evaluation.infra import InfraValidator, SandboxSettings
from sluice_evaluation.jobs import Job, JobRunner, JobState
from sluice_evaluation.spec import (
    ArtifactRef,
    DataSource,
    InfraValidationResult,
    InfraValidationSpec,
)
from sluice_evaluation.testing import FakeLineage, put_frame, tabular, upload_folder
from sluice_evaluation.thresholds import Verdict
from sluice_runtime.artifacts import LocalArtifactStore

pytest.importorskip("sluice_serving")

Validation = Job[InfraValidationSpec, InfraValidationResult]


@pytest.fixture
def runner(
    store: LocalArtifactStore, lineage: FakeLineage, tmp_path: Path
) -> Iterator[JobRunner[InfraValidationSpec, InfraValidationResult]]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # The serving service, patched to abort on a model folder holding a CRASH file.
    command = (sys.executable, str(Path(__file__).with_name("crashing_serving.py")))
    settings = SandboxSettings(store.root_uri, command=command, start_timeout_seconds=90)
    jobs = JobRunner("infraValidations", InfraValidator(store, lineage, scratch, settings))
    yield jobs
    jobs.close()


def validate(
    runner: JobRunner[InfraValidationSpec, InfraValidationResult],
    model: str,
    canary: str,
    **kw: float,
) -> Validation:
    spec = InfraValidationSpec(ArtifactRef(uri=model), DataSource(ArtifactRef(uri=canary)), **kw)  # type: ignore[arg-type]
    job = runner.create(spec.checked())
    return list(runner.watch(job.name))[-1]


@pytest.mark.slow
def test_bad_models_are_not_infra_blessed_and_leave_the_validator_running(
    runner: JobRunner[InfraValidationSpec, InfraValidationResult],
    store: LocalArtifactStore,
    lineage: FakeLineage,
    saved_models: dict[str, Path],
) -> None:
    canary = put_frame(store, "data/canary.csv", tabular(20))
    upload_folder(store, saved_models["logistic"], "models/crashing")
    store.put("models/crashing/CRASH", b"")
    crashed = validate(runner, store.uri_for("models/crashing"), canary)
    assert crashed.state is JobState.SUCCEEDED and crashed.result is not None
    assert crashed.result.verdict is Verdict.NOT_BLESSED
    assert crashed.result.problems[0].reason == "SANDBOX_CRASHED", crashed.result.problems
    assert "SIGABRT" in crashed.result.problems[0].message

    store.put("models/corrupt/saved_model.pb", b"not a SavedModel")
    corrupt = validate(runner, store.uri_for("models/corrupt"), canary)
    assert corrupt.result is not None and corrupt.result.verdict is Verdict.NOT_BLESSED
    assert corrupt.result.problems[0].reason == "MODEL_LOAD_FAILED"

    # A Keras export: model.keras beside the SavedModel in its own subfolder.
    good = upload_folder(store, saved_models["keras"], "models/keras")
    slow = validate(runner, good, canary, load_timeout_seconds=0.001)
    assert slow.result is not None and slow.result.verdict is Verdict.NOT_BLESSED
    assert slow.result.problems[0].reason == "LOAD_TIMEOUT"

    # after all that, this process still validates models, and blesses a good one
    job = validate(runner, good, canary, canary_requests=5, latency_budget_ms=5000)
    assert job.state is JobState.SUCCEEDED and job.result is not None
    assert job.result.verdict is Verdict.BLESSED, job.result.problems
    assert job.result.failed_requests == 0 and 0 < job.result.p99_latency_ms < 5000
    assert job.result.load_seconds > 0
    assert json.loads(store.get_bytes(f"{job.name}/infra_blessing.json"))["blessed"] is True
    assert [entry["blessed"] for entry in lineage.infra] == [False, False, False, True]


@pytest.mark.slow
def test_canary_requests_the_model_rejects_fail_it(
    runner: JobRunner[InfraValidationSpec, InfraValidationResult],
    store: LocalArtifactStore,
    saved_models: dict[str, Path],
) -> None:
    frame = tabular(5).drop(columns=["x2"])  # the model needs x2
    canary = put_frame(store, "data/bad_canary.csv", frame)
    good = upload_folder(store, saved_models["logistic"], "models/good")
    job = validate(runner, good, canary, canary_requests=2)
    assert job.result is not None and job.result.verdict is Verdict.NOT_BLESSED
    assert job.result.problems[0].reason == "CANARY_FAILED"
    assert "'x2'" in job.result.problems[0].message


def test_a_sandbox_that_cannot_start_fails_the_validation(
    store: LocalArtifactStore, lineage: FakeLineage, tmp_path: Path
) -> None:
    settings = SandboxSettings(
        store.root_uri, command=(sys.executable, "-c", "raise SystemExit(3)")
    )
    jobs = JobRunner("infraValidations", InfraValidator(store, lineage, tmp_path, settings))
    try:
        canary = put_frame(store, "data/canary.csv", tabular(5))
        store.put("models/m/saved_model.pb", b"x")
        job = validate(jobs, store.uri_for("models/m"), canary)
        assert job.state is JobState.FAILED and job.error is not None
        assert job.error.reason == "SANDBOX_UNAVAILABLE" and "code 3" in job.error.message
    finally:
        jobs.close()
