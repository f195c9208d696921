"""The service through gRPC with real worker processes: the slow end-to-end paths.

Each test starts worker processes (TensorFlow or JAX imports of a few seconds each), so data and
models are tiny; what is checked is the plumbing: states, progress, cancel, kill and resume,
two workers on 127.0.0.1, the JAX backend with its TensorFlow export process.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from sluice.client import InvalidArgumentError, TrainingClient
from sluice.common.v1 import data_pb2, job_pb2
from sluice.training.v1 import training_job_pb2 as pb
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.config import ServerConfig
from sluice_training.config import TrainingConfig
from sluice_training.publish import MANIFEST_NAME
from sluice_training.server import TrainingServer, build_server
from sluice_training.testing import put_text

pytestmark = pytest.mark.slow

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
FAILED = job_pb2.JOB_STATE_FAILED
RUNNING = job_pb2.JOB_STATE_RUNNING
CANCELLED = job_pb2.JOB_STATE_CANCELLED


@pytest.fixture
def service(
    tmp_path: Path, store: ArtifactStore
) -> Iterator[tuple[TrainingServer, TrainingClient]]:
    config = TrainingConfig(
        data_dir=tmp_path / "service",
        artifact_store_uri=store.root_uri,
        server=ServerConfig(service="training", port=0),
        max_concurrent_jobs=3,
        poll_seconds=0.1,
        cancel_grace_seconds=2,
    )
    server = build_server(config)
    client = TrainingClient(server.address)
    try:
        yield server, client
    finally:
        client.close()
        server.stop(0)


def spec(
    span_data: dict[str, str],
    *,
    hyperparameters: dict[str, Any] | None = None,
    **changes: Any,
) -> pb.TrainingSpec:
    params = struct_pb2.Struct()
    params.update(hyperparameters or {"learning_rate": 0.01})
    message = pb.TrainingSpec(
        train_data=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri=span_data["train"])),
        eval_data=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri=span_data["eval"])),
        schema=data_pb2.ArtifactRef(uri=span_data["schema"]),
        label="bought",
        builtin=pb.BuiltinModel(task=pb.TASK_BINARY_CLASSIFICATION, hidden_units=[16]),
        hyperparameters=params,
        epochs=1,
        batch_size=256,
        warm_start=pb.WarmStart(mode=pb.WarmStart.MODE_NONE),
    )
    for name, value in changes.items():
        field = getattr(message, name)
        if hasattr(field, "CopyFrom"):
            field.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def watch(client: TrainingClient, name: str, timeout: float = 150) -> list[pb.TrainingJob]:
    return [response.job for response in client.watch_training_job(name=name, timeout=timeout)]


def wait_until(
    client: TrainingClient, name: str, check: Any, timeout: float = 90
) -> pb.TrainingJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get_training_job(name=name).job
        if check(job):
            return job
        assert job.state not in (SUCCEEDED, FAILED, CANCELLED), job
        time.sleep(0.1)
    raise AssertionError(f"{name} never got there: {client.get_training_job(name=name).job}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )


def test_create_watch_succeeded_through_grpc(
    service: tuple[TrainingServer, TrainingClient], span_data: dict[str, str], store: ArtifactStore
) -> None:
    _, client = service
    created = client.create_training_job(spec=spec(span_data), labels={"span": "1"}).job
    assert created.state == job_pb2.JOB_STATE_QUEUED

    jobs = watch(client, created.name)
    states = [job.state for job in jobs]
    assert states[-1] == SUCCEEDED  # the first may already be RUNNING: the queue was empty
    assert RUNNING in states
    done = jobs[-1]
    assert done.result.eval_metrics["auc"] > 0.7
    assert done.result.digest.startswith("sha256:")
    assert done.result.model.uri == store.uri_for(f"models/{created.name.split('/')[1]}")
    assert done.progress.step == done.progress.total_steps == 12
    assert done.progress.examples_per_second > 0
    assert any(job.progress.step > 0 for job in jobs[:-1]) or done.progress.step == 12
    assert done.HasField("start_time") and done.HasField("end_time")
    listed = client.list_training_jobs(page_size=10).jobs
    assert [job.name for job in listed] == [created.name]
    assert client.get_training_job(name=created.name).job == done


def test_bad_input_fails_with_reasons_a_person_can_act_on(
    service: tuple[TrainingServer, TrainingClient],
    span_data: dict[str, str],
    store: ArtifactStore,
) -> None:
    _, client = service
    put_text(store, "data/other-schema.pbtxt", 'feature { name: "loyalty" type: FLOAT }\n')
    cases = {
        "LABEL_MISSING": spec(span_data, label="clicked"),
        "SCHEMA_DATA_MISMATCH": spec(
            span_data, schema=data_pb2.ArtifactRef(uri="data/other-schema.pbtxt")
        ),
        "USER_MODULE_IMPORT_FAILED": spec(
            span_data,
            user_module=pb.UserModule(
                module="not_installed.models", task=pb.TASK_BINARY_CLASSIFICATION
            ),
        ),
    }
    names = {
        reason: client.create_training_job(spec=message).job.name
        for reason, message in cases.items()
    }
    for reason, name in names.items():
        done = watch(client, name)[-1]
        assert done.state == FAILED
        assert done.error.reason == reason
        assert done.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert done.error.field and done.error.message
    assert list(store.list("models/")) == []

    with pytest.raises(InvalidArgumentError) as error:
        client.create_training_job(spec=spec(span_data, batch_size=-1))
    assert error.value.field == "spec.batch_size"


def test_cancel_stops_the_worker_and_publishes_nothing(
    service: tuple[TrainingServer, TrainingClient], span_data: dict[str, str], store: ArtifactStore
) -> None:
    server, client = service
    name = client.create_training_job(spec=spec(span_data, epochs=500)).job.name
    wait_until(client, name, lambda job: job.progress.step > 0)
    pids = server.core.get(name).launch["pids"]

    cancelled = client.cancel_training_job(name=name).job
    assert cancelled.state == CANCELLED
    assert watch(client, name)[-1].state == CANCELLED
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)
    assert list(store.list("models/")) == []


def test_a_killed_worker_resumes_from_its_last_checkpoint(
    service: tuple[TrainingServer, TrainingClient], span_data: dict[str, str], store: ArtifactStore
) -> None:
    server, client = service
    name = client.create_training_job(
        spec=spec(span_data, epochs=12, batch_size=128, checkpoint_every_steps=20)
    ).job.name
    wait_until(client, name, lambda job: server.core.get(name).launch.get("last_checkpoint_step"))
    launch = server.core.get(name).launch
    checkpoint = launch["last_checkpoint_step"]
    os.kill(launch["pids"][0], signal.SIGKILL)

    done = watch(client, name)[-1]
    assert done.state == SUCCEEDED
    assert done.attempt == 2
    resumed = server.core.get(name).launch["resumed_from_step"]
    assert resumed >= checkpoint and resumed % 20 == 0
    assert done.progress.step == done.progress.total_steps == 12 * 24
    assert [i.key for i in store.list("training-jobs/")] == []  # checkpoints dropped at the end


def test_two_workers_train_together_on_localhost(
    service: tuple[TrainingServer, TrainingClient], span_data: dict[str, str], store: ArtifactStore
) -> None:
    server, client = service
    placement = pb.Placement(num_workers=2)
    name = client.create_training_job(spec=spec(span_data, placement=placement)).job.name
    done = watch(client, name)[-1]
    assert done.state == SUCCEEDED, done.error
    launch = server.core.get(name).launch
    assert len(launch["pids"]) == 2
    plan = json.loads(Path(launch["plan"]).read_text())
    assert plan["num_workers"] == 2
    # 3000 rows in global batches of 256: 11 whole batches, split between the two workers.
    assert done.progress.step == 11
    assert done.result.eval_metrics["auc"] > 0.6
    assert store.exists(f"models/{name.split('/')[1]}/{MANIFEST_NAME}")


def test_jax_backend_trains_without_tensorflow_and_exports_a_saved_model(
    service: tuple[TrainingServer, TrainingClient], span_data: dict[str, str], store: ArtifactStore
) -> None:
    server, client = service
    put_text(
        store,
        "data/numeric.pbtxt",
        'feature { name: "age" type: FLOAT }\nfeature { name: "income" type: FLOAT }\n',
    )
    message = spec(
        span_data,
        schema=data_pb2.ArtifactRef(uri="data/numeric.pbtxt"),
        placement=pb.Placement(keras_backend="jax"),
    )
    name = client.create_training_job(spec=message).job.name
    done = watch(client, name)[-1]
    assert done.state == SUCCEEDED, done.error
    launch = server.core.get(name).launch
    assert launch["keras_backend"] == "jax"
    assert launch["tensorflow_loaded"] is False
    prefix = f"models/{name.split('/')[1]}"
    manifest = json.loads(store.get_bytes(f"{prefix}/{MANIFEST_NAME}"))
    assert manifest["keras_backend"] == "jax"
    assert manifest["signature"]["inputs"] == {"age": "float32", "income": "float32"}
    assert store.exists(f"{prefix}/saved_model/saved_model.pb")
    assert store.exists(f"{prefix}/model.keras")
