"""Lineage and the baseline rule against a real metadata service (SQLite, in-process gRPC)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sluice.client import MetadataClient
from sluice_evaluation.lineage import (
    MODEL_BLESSING,
    ArtifactRecord,
    EvaluationRecord,
    MetadataLineage,
)
from sluice_runtime.config import ServerConfig
from sluice_runtime.errors import NotFound

metadata_server = pytest.importorskip("sluice_metadata.server")
metadata_config = pytest.importorskip("sluice_metadata.config")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MetadataClient]:
    config = metadata_config.MetadataConfig(
        database_url=f"sqlite:///{tmp_path / 'metadata.db'}",
        server=ServerConfig(service="metadata", port=0),
    )
    with (
        metadata_server.build_server(config, port=0) as server,
        MetadataClient(server.address) as metadata,
    ):
        metadata.put_type("Model", "artifact")
        yield metadata


def model(client: MetadataClient, name: str) -> ArtifactRecord:
    uri = f"file:///store/models/{name}"
    return ArtifactRecord(client.put_artifact("Model", uri, name=name), uri, "Model")


def record(
    lineage: MetadataLineage,
    name: str,
    candidate: ArtifactRecord,
    blessed: bool,
    baseline: ArtifactRecord | None = None,
) -> tuple[int, ...]:
    recorded = lineage.record_evaluation(
        EvaluationRecord(
            name=name,
            model=candidate,
            data_uri="file:///store/data/eval.csv",
            data_artifact_id=0,
            baseline=baseline,
            context_id=0,
            evaluation_uri=f"file:///store/{name}/evaluation.json",
            blessing_uri=f"file:///store/{name}/blessing.json",
            blessed=blessed,
            verdict="BLESSED" if blessed else "NOT_BLESSED",
            task="binary_classification",
        )
    )
    return (recorded.execution_id, *recorded.output_ids)


def test_an_evaluation_is_recorded_with_its_inputs_and_outputs(client: MetadataClient) -> None:
    lineage = MetadataLineage(client)
    candidate, baseline = model(client, "m2"), model(client, "m1")
    execution_id, evaluation_id, blessing_id = record(
        lineage, "evaluations/a", candidate, True, baseline
    )

    (execution,) = client.batch_get_executions(execution_ids=[execution_id]).executions
    assert execution.type == "Evaluator"
    events = client.list_events(execution_ids=[execution_id]).events
    roles = {(e.path, e.artifact_id) for e in events}
    assert ("model", candidate.id) in roles and ("baseline_model", baseline.id) in roles
    assert ("evaluation", evaluation_id) in roles and ("blessing", blessing_id) in roles
    assert any(path == "examples" for path, _ in roles)
    blessing = client.get_artifact(blessing_id)
    assert blessing.type == MODEL_BLESSING
    assert blessing.custom_properties["blessed"].int_value == 1
    assert blessing.custom_properties["current_model_id"].int_value == candidate.id
    # the model's provenance now reaches the evaluation and the blessing
    steps = client.provenance(candidate.id).steps
    assert any(step.execution.id == execution_id for step in steps)


def test_the_baseline_is_the_newest_model_whose_newest_blessing_blesses(
    client: MetadataClient,
) -> None:
    lineage = MetadataLineage(client)
    first, second, candidate = model(client, "first"), model(client, "second"), model(client, "c")
    assert lineage.serving_baseline(candidate, 0) is None  # cold start

    record(lineage, "evaluations/1", first, True)
    assert lineage.serving_baseline(candidate, 0) == lineage.artifact(first.id, "x")
    record(lineage, "evaluations/2", second, False)
    assert lineage.serving_baseline(candidate, 0).id == first.id  # type: ignore[union-attr]
    # a person blesses the second model after all: it becomes the baseline
    (_, evaluation_id, _) = record(lineage, "evaluations/3", second, False)
    lineage.record_override(
        "evaluations/3", second, evaluation_id, "file:///o.json", True, "ok", "ana"
    )
    assert lineage.serving_baseline(candidate, 0).id == second.id  # type: ignore[union-attr]
    # ... and then takes it back: the first model is the newest blessed one again
    lineage.record_override(
        "evaluations/3", second, evaluation_id, "file:///p.json", False, "no", "bo"
    )
    assert lineage.serving_baseline(candidate, 0).id == first.id  # type: ignore[union-attr]
    # the candidate itself is never its own baseline
    assert lineage.serving_baseline(first, 0) is None


def test_a_push_record_names_the_serving_model(client: MetadataClient) -> None:
    lineage = MetadataLineage(client)
    blessed, pushed, candidate = model(client, "b"), model(client, "p"), model(client, "c")
    record(lineage, "evaluations/1", blessed, True)
    client.put_type("PushedModel", "artifact")
    client.put_artifact(
        "PushedModel",
        "serving://ads/3",
        state="live",
        custom_properties={"model_artifact_id": pushed.id},
    )
    assert lineage.serving_baseline(candidate, 0).id == pushed.id  # type: ignore[union-attr]


def test_unknown_artifacts_and_uris(client: MetadataClient) -> None:
    lineage = MetadataLineage(client)
    with pytest.raises(NotFound) as error:
        lineage.artifact(9999, "spec.model.artifact_id")
    assert error.value.field == "spec.model.artifact_id"
    known = model(client, "known")
    assert lineage.model_by_uri(known.uri).id == known.id
    assert lineage.model_by_uri("file:///store/models/unknown").id == 0
