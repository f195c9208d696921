"""Fixtures of the training service's tests: an artifact store with generated data, job plans."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sluice_runtime.artifacts import ArtifactStore, open_artifact_store
from sluice_training.launchers import WorkerStatus
from sluice_training.plan import DataRef, JobPlan, ModelFamily, ModelPlan, Task
from sluice_training.publish import MANIFEST_NAME
from sluice_training.testing import SCHEMA_PBTXT, put_csv, put_text, tabular_span

# Tests run Keras in this process with the TensorFlow backend; workers get theirs per job.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return open_artifact_store((tmp_path / "artifacts").as_uri())


@pytest.fixture
def span_data(store: ArtifactStore) -> dict[str, str]:
    """Two spans of training data, an eval file and the schema, as keys in ``store``."""
    put_csv(store, "data/span-1/train.csv", tabular_span(3000, seed=1))
    put_csv(store, "data/span-1/eval.csv", tabular_span(1000, seed=2))
    put_csv(
        store,
        "data/span-2/train.csv",
        tabular_span(3000, seed=3, colors=("red", "green", "blue", "black", "violet")),
    )
    put_csv(
        store,
        "data/span-2/eval.csv",
        tabular_span(1000, seed=4, colors=("red", "green", "blue", "black", "violet")),
    )
    put_text(store, "data/schema.pbtxt", SCHEMA_PBTXT)
    return {
        "train": "data/span-1/train.csv",
        "eval": "data/span-1/eval.csv",
        "train2": "data/span-2/train.csv",
        "eval2": "data/span-2/eval.csv",
        "schema": "data/schema.pbtxt",
    }


@pytest.fixture
def make_plan(store: ArtifactStore, span_data: dict[str, str]) -> Callable[..., JobPlan]:
    """A JobPlan for the generated binary problem; keyword arguments replace its fields."""

    def make(job_id: str = "0123456789abcdef", **changes: Any) -> JobPlan:
        plan = JobPlan(
            job_id=job_id,
            attempt=1,
            store_uri=store.root_uri,
            train_data=DataRef(span_data["train"]),
            eval_data=DataRef(span_data["eval"]),
            schema_uri=span_data["schema"],
            label="bought",
            model=ModelPlan(ModelFamily.DNN, Task.BINARY, hidden_units=(32, 16)),
            output_prefix=f"models/{job_id}",
            checkpoint_prefix=f"training-jobs/{job_id}/checkpoints",
            hyperparameters={"learning_rate": 0.01},
            epochs=3,
            batch_size=128,
            seed=7,
        )
        return replace(plan, **changes)

    return make


class RecordingSink:
    """An EventSink that keeps the events in memory."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, kind: str, **payload: Any) -> None:
        self.events.append({"event": kind, **payload})

    def close(self) -> None:
        return None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def metadata_address(tmp_path: Path) -> Iterator[str]:
    """A metadata service on SQLite, in this process (the real one: lineage is its contract)."""
    from sluice_metadata.config import MetadataConfig
    from sluice_metadata.server import build_server

    server = build_server(
        MetadataConfig(database_url=f"sqlite:///{tmp_path / 'metadata.db'}"), port=0
    )
    try:
        yield server.address
    finally:
        server.stop(0)


# -- fake workers (the scheduler's tests) -------------------------------------------------


class FakeWorker:
    """A thread that plays a worker according to the plan's ``fake`` hyperparameter."""

    def __init__(self, plan: JobPlan, store: ArtifactStore) -> None:
        self.plan = plan
        self.store = store
        self.events: list[dict[str, Any]] = []
        self.stopped = threading.Event()
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._play, daemon=True)
        self.thread.start()

    def _play(self) -> None:
        script = str(self.plan.hyperparameters.get("fake", "succeed"))
        self.events.append({"event": "started", "attempt": self.plan.attempt})
        for step in (1, 2):
            self.events.append({"event": "progress", "progress": {"step": step, "total_steps": 2}})
        if script == "die" or (script == "die-once" and self.plan.attempt == 1):
            self.exit_code = -9
            return
        if script == "fail":
            failure = {
                "code": 3,
                "message": "no label",
                "reason": "LABEL_MISSING",
                "field": "spec.label",
            }
            self.events.append({"event": "failed", "failure": failure})
            self.exit_code = 0
            return
        if script in ("hang", "publish-then-hang"):
            if script == "publish-then-hang":
                manifest = {"job": f"trainingJobs/{self.plan.job_id}"}
                self.store.put(f"{self.plan.output_prefix}/model.keras", b"weights")
                self.store.put(
                    f"{self.plan.output_prefix}/{MANIFEST_NAME}", json.dumps(manifest).encode()
                )
            self.stopped.wait(30)
            self.exit_code = -15
            return
        result = {
            "model_uri": self.store.uri_for(self.plan.output_prefix),
            "digest": "sha256:" + "0" * 64,
            "eval_metrics": {"auc": 0.9},
            "base_model_uri": self.plan.base_model_uri,
        }
        self.events.append({"event": "result", "result": result})
        self.exit_code = 0


class ListReader:
    def __init__(self, worker: FakeWorker) -> None:
        self.worker = worker
        self.seen = 0

    def read_new(self) -> list[dict[str, Any]]:
        fresh = self.worker.events[self.seen :]
        self.seen += len(fresh)
        return fresh


class FakeLauncher:
    kind = "local"

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.workers: dict[str, FakeWorker] = {}
        self.plans: list[JobPlan] = []

    def launch(self, plan: JobPlan, folder: Path, placement: Any) -> dict[str, Any]:
        key = f"{plan.job_id}/{plan.attempt}"
        self.plans.append(plan)
        self.workers[key] = FakeWorker(plan, self.store)
        return {"kind": self.kind, "worker": key}

    def readers(self, launch: Mapping[str, Any]) -> list[Any]:
        worker = self.workers.get(launch["worker"])
        return [ListReader(worker)] if worker else []

    def status(self, launch: Mapping[str, Any]) -> WorkerStatus:
        worker = self.workers.get(launch["worker"])
        if worker is None:  # started by another service process that is gone
            return WorkerStatus(exited=(True,), exit_codes=(None,))
        done = not worker.thread.is_alive()
        return WorkerStatus(exited=(done,), exit_codes=(worker.exit_code,))

    def stop(self, launch: Mapping[str, Any], grace_seconds: float) -> None:
        worker = self.workers.get(launch["worker"])
        if worker is not None:
            worker.stopped.set()
            worker.thread.join(5)

    def survives_restart(self, launch: Mapping[str, Any]) -> bool:
        return False


@pytest.fixture
def fake_launcher(store: ArtifactStore) -> FakeLauncher:
    return FakeLauncher(store)


@pytest.fixture
def new_fake_launcher(store: ArtifactStore) -> Callable[[], FakeLauncher]:
    """Makes more fake launchers (a restarted service gets a fresh one)."""
    return lambda: FakeLauncher(store)
