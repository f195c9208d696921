"""Plain-Python parts: feature plans, spec checks, publishing, events, job records, settings."""

from __future__ import annotations

import hashlib
import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from google.protobuf import struct_pb2
from sluice.common.v1 import data_pb2
from sluice.training.v1 import training_job_pb2 as pb
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.config import ConfigError
from sluice_runtime.errors import FailedPrecondition, InvalidArgument
from sluice_training.config import TrainingConfig
from sluice_training.events import FileEventReader, FileEventSink, StoreEventReader, StoreEventSink
from sluice_training.failures import TrainingFailure
from sluice_training.features import (
    EncodingOptions,
    FeatureKind,
    FeaturePlan,
    build_feature_plan,
    label_array,
    parse_schema,
)
from sluice_training.jobs import Job, JobFailure, JobState, Progress, Result
from sluice_training.loop import Budget, permutation
from sluice_training.plan import DataRef, JobPlan, ModelFamily, ModelPlan, Task
from sluice_training.publish import MANIFEST_NAME, publish_folder, read_manifest
from sluice_training.spec import ResolvedInputs, SpecContext, job_plan, validate_spec
from sluice_training.store import SqlJobStore
from sluice_training.testing import SCHEMA_PBTXT, tabular_span
from tensorflow_metadata.proto.v0 import statistics_pb2

# -- feature plans --------------------------------------------------------------------------------


def test_plan_of_the_generated_data() -> None:
    plan = build_feature_plan(
        parse_schema(SCHEMA_PBTXT.encode()),
        tabular_span(500, seed=1),
        label="bought",
        task=Task.BINARY,
    )
    kinds = {f.name: f.kind for f in plan.features}
    assert kinds == {
        "age": FeatureKind.NUMERIC,
        "income": FeatureKind.NUMERIC,
        "color": FeatureKind.STRING,
        "size": FeatureKind.INTEGER,
    }
    age = plan.feature("age")
    assert 35 < age.mean < 45 and 100 < age.variance < 200  # NaN left out of the statistics
    assert set(plan.feature("color").vocabulary) == {"red", "green", "blue", "black"}
    assert plan.feature("color").cardinality == 5  # 4 tokens + 1 OOV bucket
    assert FeaturePlan.from_json(json.loads(plan.dumps())) == plan


def test_statistics_and_string_domains_take_precedence_over_the_data() -> None:
    schema = parse_schema(
        SCHEMA_PBTXT.replace(
            'name: "color" type: BYTES', 'name: "color" type: BYTES domain: "colors"'
        ).encode()
        + b'string_domain { name: "colors" value: "blue" value: "red" value: "pink" }\n'
    )
    statistics = statistics_pb2.DatasetFeatureStatisticsList()
    feature = statistics.datasets.add().features.add(name="age")
    feature.num_stats.mean = 50.0
    feature.num_stats.std_dev = 2.0
    plan = build_feature_plan(
        schema, tabular_span(200, seed=1), label="bought", task=Task.BINARY, statistics=statistics
    )
    assert plan.feature("color").vocabulary == ("blue", "red", "pink")
    assert (plan.feature("age").mean, plan.feature("age").variance) == (50.0, 4.0)


def test_large_vocabularies_are_hashed() -> None:
    table = pa.table({"user": [f"u{i}" for i in range(300)], "y": [i % 2 for i in range(300)]})
    schema = parse_schema(b'feature { name: "user" type: BYTES }\n')
    plan = build_feature_plan(
        schema,
        table,
        label="y",
        task=Task.BINARY,
        options=EncodingOptions(max_vocabulary_size=100, hash_buckets=64),
    )
    assert plan.feature("user").hash_bins == 64
    assert plan.feature("user").cardinality == 64


@pytest.mark.parametrize(
    ("label", "task", "values", "reason", "field"),
    [
        ("missing", Task.BINARY, [0, 1], "LABEL_MISSING", "spec.label"),
        ("y", Task.BINARY, [0, 2], "LABEL_INVALID", "spec.label"),
        ("y", Task.BINARY, [0.5, 1.0], "LABEL_INVALID", "spec.label"),
        ("y", Task.BINARY, ["a", "b", "c"], "LABEL_INVALID", "spec.label"),
        ("y", Task.REGRESSION, ["a", "b"], "LABEL_INVALID", "spec.label"),
        ("y", Task.MULTICLASS, [0, None], "LABEL_INVALID", "spec.label"),
    ],
)
def test_labels_that_do_not_fit_the_task(
    label: str, task: Task, values: list[object], reason: str, field: str
) -> None:
    table = pa.table({"x": [1.0] * len(values), "y": values})
    schema = parse_schema(b'feature { name: "x" type: FLOAT }\n')
    with pytest.raises(TrainingFailure) as failure:
        build_feature_plan(schema, table, label=label, task=task)
    assert (failure.value.reason, failure.value.field) == (reason, field)


def test_text_labels_become_class_indices() -> None:
    table = pa.table({"x": [1.0, 2.0, 3.0], "y": ["yes", "no", "yes"]})
    plan = build_feature_plan(
        parse_schema(b'feature { name: "x" type: FLOAT }\n'), table, label="y", task=Task.BINARY
    )
    assert plan.label.vocabulary == ("no", "yes")
    np.testing.assert_array_equal(label_array(table, plan.label), [1.0, 0.0, 1.0])


def test_schema_files_that_are_not_schemas() -> None:
    with pytest.raises(TrainingFailure) as failure:
        parse_schema(b"this is { not a schema")
    assert failure.value.reason == "SCHEMA_INVALID"


# -- specs ----------------------------------------------------------------------------------------


def training_spec(**changes: object) -> pb.TrainingSpec:
    spec = pb.TrainingSpec(
        train_data=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri="data/train.csv")),
        schema=data_pb2.ArtifactRef(uri="data/schema.pbtxt"),
        label="bought",
        builtin=pb.BuiltinModel(task=pb.TASK_BINARY_CLASSIFICATION),
    )
    for name, value in changes.items():
        field = getattr(spec, name)
        if hasattr(field, "CopyFrom"):
            field.CopyFrom(value)
        else:
            setattr(spec, name, value)
    return spec


CONTEXT = SpecContext(store_root_uri="file:///srv/artifacts")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (training_spec(label=""), "spec.label"),
        (training_spec(schema=data_pb2.ArtifactRef()), "spec.schema.uri"),
        (
            training_spec(
                train_data=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri="s3://x/y"))
            ),
            "spec.train_data.data.uri",
        ),
        (training_spec(builtin=pb.BuiltinModel()), "spec.builtin.task"),
        (training_spec(user_module=pb.UserModule(module="bad module")), "spec.user_module.module"),
        (training_spec(batch_size=-5), "spec.batch_size"),
        (training_spec(epochs=-1), "spec.epochs"),
        (
            training_spec(placement=pb.Placement(keras_backend="theano")),
            "spec.placement.keras_backend",
        ),
        (
            training_spec(placement=pb.Placement(keras_backend="jax", num_workers=2)),
            "spec.placement.num_workers",
        ),
        (training_spec(output_uri="file:///elsewhere/model"), "spec.output_uri"),
        (
            training_spec(warm_start=pb.WarmStart(mode=pb.WarmStart.MODE_EXPLICIT)),
            "spec.warm_start.base_model.uri",
        ),
    ],
)
def test_invalid_specs_name_their_field(spec: pb.TrainingSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_spec(spec, CONTEXT)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (
            training_spec(placement=pb.Placement(kind=pb.Placement.KIND_KUBERNETES)),
            "spec.placement.kind",
        ),
        (training_spec(schema=data_pb2.ArtifactRef(artifact_id=4)), "spec.schema.artifact_id"),
        (training_spec(context_id=9), "spec.context_id"),
    ],
)
def test_specs_this_service_cannot_serve(spec: pb.TrainingSpec, field: str) -> None:
    with pytest.raises(FailedPrecondition) as error:
        validate_spec(spec, CONTEXT)
    assert error.value.field == field


def test_job_plan_defaults() -> None:
    hyperparameters = struct_pb2.Struct()
    hyperparameters.update({"learning_rate": 0.1})
    spec = training_spec(hyperparameters=hyperparameters)
    validate_spec(spec, CONTEXT)
    inputs = ResolvedInputs(train_data="data/train.csv", schema="data/schema.pbtxt")
    plan = job_plan("00000000000000ff", 1, spec, inputs, CONTEXT)
    assert (plan.epochs, plan.batch_size, plan.num_workers) == (1, 256, 1)
    assert plan.keras_backend == "tensorflow"
    assert plan.output_prefix == "models/00000000000000ff"
    assert plan.hyperparameters == {"learning_rate": 0.1}
    assert plan.seed == zlib.crc32(b"00000000000000ff")  # stable across attempts
    assert JobPlan.from_json(plan.to_json()) == plan
    steps_only = job_plan("00000000000000ff", 1, training_spec(max_steps=30), inputs, CONTEXT)
    assert (steps_only.epochs, steps_only.max_steps) == (0, 30)


def test_budget_and_batch_order() -> None:
    assert Budget(steps_per_epoch=10, epochs=3).total_steps == 30
    assert Budget(steps_per_epoch=10, epochs=3, max_steps=25).total_steps == 25
    assert Budget(steps_per_epoch=10, epochs=0, max_steps=25).total_epochs == 3
    np.testing.assert_array_equal(permutation(1, 2, 50), permutation(1, 2, 50))
    assert not np.array_equal(permutation(1, 2, 50), permutation(1, 3, 50))


# -- publishing -----------------------------------------------------------------------------------


def model_folder(tmp_path: Path, content: bytes = b"weights") -> Path:
    folder = tmp_path / "export"
    (folder / "saved_model" / "variables").mkdir(parents=True)
    (folder / "saved_model" / "saved_model.pb").write_bytes(b"graph")
    (folder / "saved_model" / "variables" / "variables.index").write_bytes(b"index")
    (folder / "model.keras").write_bytes(content)
    return folder


def test_publish_commits_with_a_manifest_and_a_serving_compatible_digest(
    store: ArtifactStore, tmp_path: Path
) -> None:
    store.put("models/m1/stale-from-a-dead-attempt", b"x")
    uri, digest = publish_folder(
        store, "models/m1", model_folder(tmp_path), {"job": "trainingJobs/a"}
    )

    assert uri == store.uri_for("models/m1")
    keys = sorted(info.key for info in store.list("models/m1/"))
    assert keys == sorted(
        [
            "models/m1/model.keras",
            f"models/m1/{MANIFEST_NAME}",
            "models/m1/saved_model/saved_model.pb",
            "models/m1/saved_model/variables/variables.index",
        ]
    )
    manifest = read_manifest(store, "models/m1")
    assert manifest is not None
    assert manifest["files"]["model.keras"] == hashlib.sha256(b"weights").hexdigest()
    # Recomputed here from the definition the serving service verifies.
    lines = sorted(
        f"{info.key[len('models/m1/') :]}\0{info.sha256}\n" for info in store.list("models/m1/")
    )
    assert digest == "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def test_publish_is_idempotent_per_job_and_never_overwrites_another_jobs_model(
    store: ArtifactStore, tmp_path: Path
) -> None:
    folder = model_folder(tmp_path)
    first = publish_folder(store, "models/m1", folder, {"job": "trainingJobs/a"})
    assert publish_folder(store, "models/m1", folder, {"job": "trainingJobs/a"}) == first
    with pytest.raises(TrainingFailure) as failure:
        publish_folder(store, "models/m1", folder, {"job": "trainingJobs/b"})
    assert failure.value.reason == "ALREADY_PUBLISHED"
    assert failure.value.field == "spec.output_uri"


# -- events ---------------------------------------------------------------------------------------


def test_file_events_are_read_once_and_partial_lines_wait(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink, reader = FileEventSink(path), FileEventReader(path)
    sink.emit("started", attempt=1)
    sink.emit("progress", progress={"step": 1})
    assert [e["event"] for e in reader.read_new()] == ["started", "progress"]
    with open(path, "a") as stream:
        stream.write('{"event": "resu')
    assert reader.read_new() == []
    with open(path, "a") as stream:
        stream.write('lt"}\n')
    assert [e["event"] for e in reader.read_new()] == ["result"]
    sink.close()


def test_store_events_keep_the_latest_progress(store: ArtifactStore) -> None:
    clock = [0.0]
    sink = StoreEventSink(store, "jobs/x/events.json", progress_interval=10, clock=lambda: clock[0])
    reader = StoreEventReader(store, "jobs/x/events.json")
    sink.emit("started", attempt=1)
    sink.emit("progress", progress={"step": 1})  # within the interval: not written yet
    assert [e["event"] for e in reader.read_new()] == ["started"]
    sink.emit("progress", progress={"step": 2})
    clock[0] = 11
    sink.emit("progress", progress={"step": 3})
    assert [e["progress"]["step"] for e in reader.read_new()] == [3]
    sink.emit("result", result={})
    assert [e["event"] for e in reader.read_new()] == ["result"]


# -- job records ----------------------------------------------------------------------------------


def test_job_records_round_trip_and_page_newest_first(tmp_path: Path) -> None:
    store = SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    jobs = [
        Job(
            id=f"{i:016x}",
            state=JobState.QUEUED,
            spec=b"spec",
            create_time=start + timedelta(seconds=i),
        )
        for i in range(3)
    ]
    for job in jobs:
        store.add(job)
    done = jobs[1].evolve(
        state=JobState.FAILED,
        progress=Progress(step=3, metrics={"auc": 0.5}),
        result=Result(model_uri="u", digest="d", eval_metrics={"loss": 1.0}),
        error=JobFailure(code=3, message="m", reason="R", field="f"),
        launch={"pids": [1]},
    )
    store.update(done)
    assert store.get(done.id) == done
    assert [j.id for j in store.newest_first(None, 2)] == [jobs[2].id, jobs[1].id]
    cursor = (jobs[1].create_time, jobs[1].id)
    assert [j.id for j in store.newest_first(cursor, 5)] == [jobs[0].id]
    assert [j.id for j in store.in_states([JobState.QUEUED])] == [jobs[0].id, jobs[2].id]
    with pytest.raises(KeyError):
        store.add(Job(id="x", state=JobState.QUEUED, spec=b"", create_time=start, request_id="r"))
        store.add(Job(id="y", state=JobState.QUEUED, spec=b"", create_time=start, request_id="r"))
    store.close()


def test_settings_from_the_environment(tmp_path: Path) -> None:
    config = TrainingConfig.from_env(
        {"SLUICE_DATA_DIR": str(tmp_path), "SLUICE_TRAINING_MAX_CONCURRENT_JOBS": "4"}
    )
    assert config.max_concurrent_jobs == 4
    assert config.artifact_store_uri == (tmp_path / "artifacts").as_uri()
    assert config.effective_database_url == f"sqlite:///{tmp_path / 'training' / 'jobs.db'}"
    assert not config.kubernetes.enabled and not config.metadata_address
    with pytest.raises(ConfigError) as error:
        TrainingConfig.from_env({"SLUICE_TRAINING_MAX_ATTEMPTS": "0"})
    assert error.value.variable == "SLUICE_TRAINING_MAX_ATTEMPTS"


def test_data_refs_in_plans() -> None:
    plan = JobPlan(
        job_id="j",
        attempt=1,
        store_uri="file:///a",
        train_data=DataRef("t.csv", "csv"),
        schema_uri="s",
        label="y",
        model=ModelPlan(ModelFamily.USER_MODULE, Task.REGRESSION, module="m"),
        output_prefix="o",
        checkpoint_prefix="c",
    )
    assert JobPlan.from_json(plan.to_json()) == plan
