"""Lineage through the SDK's MetadataClient against a real metadata service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sluice.client import MetadataClient
from sluice.common.v1 import data_pb2
from sluice.metadata.v1 import event_pb2, execution_pb2
from sluice.training.v1 import training_job_pb2 as pb
from sluice_training.failures import TrainingFailure
from sluice_training.jobs import Job, JobState, Result
from sluice_training.lineage import MetadataLineage


@pytest.fixture
def client(metadata_address: str) -> Iterator[MetadataClient]:
    with MetadataClient(metadata_address) as client:
        yield client


def spec(**changes: object) -> pb.TrainingSpec:
    message = pb.TrainingSpec(
        train_data=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri="spans/1/train.csv")),
        schema=data_pb2.ArtifactRef(uri="schemas/1/schema.pbtxt"),
        label="bought",
        builtin=pb.BuiltinModel(task=pb.TASK_BINARY_CLASSIFICATION),
    )
    for name, value in changes.items():
        getattr(message, name).CopyFrom(value)
    return message


def bless(client: MetadataClient, model_uri: str, blessed: int, model_id: int = 0) -> int:
    """A LIVE blessing (as the evaluation service records them) of a new model, or of
    ``model_id``; returns the model's id."""
    for name in ("Model", "ModelBlessing"):
        client.put_type(name, "artifact")
    model_id = model_id or client.put_artifact("Model", model_uri, state="live")
    blessing = client.put_artifact(
        "ModelBlessing",
        f"{model_uri}/blessing-{blessed}",
        state="live",
        custom_properties={"blessed": blessed, "current_model_id": model_id},
    )
    assert blessing > 0
    return model_id


def test_latest_blessed_model_is_the_base_of_a_warm_start(client: MetadataClient) -> None:
    lineage = MetadataLineage(client)
    assert lineage.resolve(spec())[0].base_model == ""  # nothing blessed yet: cold start
    older = bless(client, "file:///models/1", blessed=1)
    bless(client, "file:///models/2", blessed=0)  # newer, but not blessed
    inputs, base_id = lineage.resolve(spec())
    assert (inputs.base_model, base_id) == ("file:///models/1", older)
    none = spec(warm_start=pb.WarmStart(mode=pb.WarmStart.MODE_NONE))
    assert lineage.resolve(none)[0].base_model == ""


def test_a_withdrawn_blessing_no_longer_makes_a_model_the_base(client: MetadataClient) -> None:
    lineage = MetadataLineage(client)
    first = bless(client, "file:///models/1", blessed=1)
    second = bless(client, "file:///models/2", blessed=1)
    assert lineage.resolve(spec())[1] == second
    # An override to NOT_BLESSED (evaluation records a newer blessing with blessed=0).
    bless(client, "file:///models/2", blessed=0, model_id=second)
    inputs, base_id = lineage.resolve(spec())
    assert (inputs.base_model, base_id) == ("file:///models/1", first)
    bless(client, "file:///models/1", blessed=0, model_id=first)
    assert lineage.resolve(spec())[0].base_model == ""  # nothing blessed any more: cold start


def test_artifact_ids_resolve_to_uris_and_must_agree_with_given_uris(
    client: MetadataClient,
) -> None:
    client.put_type("Examples", "artifact")
    examples = client.put_artifact("Examples", "spans/7/train.csv")
    lineage = MetadataLineage(client)
    by_id = spec(train_data=data_pb2.DataSource(data=data_pb2.ArtifactRef(artifact_id=examples)))
    assert lineage.resolve(by_id)[0].train_data == "spans/7/train.csv"
    both = data_pb2.ArtifactRef(artifact_id=examples, uri="spans/8/train.csv")
    with pytest.raises(TrainingFailure) as mismatch:
        lineage.resolve(spec(train_data=data_pb2.DataSource(data=both)))
    assert mismatch.value.reason == "INPUT_MISMATCH"
    with pytest.raises(TrainingFailure) as missing:
        lineage.resolve(spec(schema=data_pb2.ArtifactRef(artifact_id=999)))
    assert (missing.value.reason, missing.value.field) == (
        "SCHEMA_NOT_FOUND",
        "spec.schema.artifact_id",
    )


def test_a_successful_job_registers_its_model_with_its_inputs(client: MetadataClient) -> None:
    base_id = bless(client, "file:///models/base", blessed=1)
    lineage = MetadataLineage(client)
    message = spec()
    message.hyperparameters.update({"learning_rate": 0.01})
    inputs, resolved_base = lineage.resolve(message)
    job = Job(
        id="00000000000000aa", state=JobState.RUNNING, spec=b"", create_time=datetime.now(UTC)
    )
    execution_id = lineage.start(job, message, inputs, resolved_base)
    job = job.evolve(execution_id=execution_id)
    result = Result(
        model_uri="file:///models/new",
        digest="sha256:" + "1" * 64,
        base_model_uri=inputs.base_model,
        eval_metrics={"auc": 0.91},
    )
    model_id = lineage.succeed(job, message, result)

    model = client.get_artifact(model_id)
    assert (model.type, model.uri, model.digest) == ("Model", "file:///models/new", result.digest)
    assert model.custom_properties["eval_auc"].double_value == pytest.approx(0.91)
    (execution,) = client.batch_get_executions(execution_ids=[execution_id]).executions
    assert execution.state == execution_pb2.Execution.STATE_COMPLETE
    events = client.list_events(execution_ids=[execution_id]).events
    roles = {(e.path, e.type) for e in events}
    assert ("model", event_pb2.Event.TYPE_OUTPUT) in roles
    assert {"examples", "schema", "base_model"} <= {
        e.path for e in events if e.type == event_pb2.Event.TYPE_INPUT
    }
    assert base_id in {e.artifact_id for e in events}
    # A retried registration returns the same model, not a second one.
    assert lineage.succeed(job, message, result) == model_id


def test_an_unreachable_metadata_service_fails_with_a_clear_reason() -> None:
    with MetadataClient("127.0.0.1:9") as client:
        lineage = MetadataLineage(client)
        with pytest.raises(TrainingFailure) as failure:
            lineage.resolve(spec())
    assert failure.value.reason == "METADATA_UNAVAILABLE"
