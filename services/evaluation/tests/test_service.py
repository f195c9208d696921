"""The service over gRPC: build_server(port=0) and the SDK's EvaluationClient."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from sluice.client import (
    EvaluationClient,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    check_health,
)
from sluice.common.v1 import data_pb2, job_pb2
from sluice.evaluation.v1 import evaluation_pb2 as pb
from sluice_evaluation.config import EvaluationConfig
from sluice_evaluation.server import EvaluationServer, build_core, build_server
from sluice_evaluation.testing import (
    GOOD,
    FakeLineage,
    fake_loader,
    put_fake_model,
    put_frame,
    tabular,
)
from sluice_runtime.artifacts import LocalArtifactStore
from sluice_runtime.config import ServerConfig


@pytest.fixture
def server(
    store: LocalArtifactStore, lineage: FakeLineage, tmp_path: Path
) -> Iterator[EvaluationServer]:
    config = EvaluationConfig(
        artifact_store_uri=store.root_uri,
        scratch_dir=tmp_path / "scratch",
        server=ServerConfig(service="evaluation", port=0),
    )
    core = build_core(config, store=store, lineage=lineage, load_model=fake_loader)
    with build_server(config, core=core) as running:
        yield running


@pytest.fixture
def client(server: EvaluationServer) -> Iterator[EvaluationClient]:
    with EvaluationClient(server.address) as c:
        yield c


def evaluation_spec(model: str, data: str, **fields: object) -> pb.EvaluationSpec:
    spec = pb.EvaluationSpec(
        model=data_pb2.ArtifactRef(uri=model),
        data=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri=data)),
        label="label",
        slicing=[pb.SlicingSpec(feature_names=["country"])],
        bootstrap_samples=50,
    )
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(spec, name).extend(value)
        else:
            setattr(spec, name, value)
    return spec


def watch(client: EvaluationClient, name: str) -> list[pb.Evaluation]:
    return [response.evaluation for response in client.watch_evaluation(name=name, timeout=60)]


def test_create_watch_succeeded_with_slices_and_verdict(
    client: EvaluationClient, server: EvaluationServer, store: LocalArtifactStore
) -> None:
    assert (
        check_health(server.address, service="sluice.evaluation.v1.EvaluationService") == "SERVING"
    )
    data = put_frame(store, "data/eval.csv", tabular(2000))
    model = put_fake_model(store, "models/m", GOOD)
    thresholds = [pb.MetricThreshold(metric="auc", slice="*", lower_bound=0.7)]
    created = client.create_evaluation(
        spec=evaluation_spec(model, data, thresholds=thresholds), labels={"run": "7"}
    ).evaluation
    assert created.state == job_pb2.JOB_STATE_QUEUED and created.name.startswith("evaluations/")

    states = [e.state for e in watch(client, created.name)]
    assert states[-1] == job_pb2.JOB_STATE_SUCCEEDED
    evaluation = client.get_evaluation(name=created.name).evaluation
    result = evaluation.result
    assert result.verdict == pb.VERDICT_BLESSED
    assert [s.slice for s in result.slices] == ["", "country=BR", "country=DE", "country=US"]
    auc = result.slices[0].metrics["auc"]
    assert auc.HasField("lower") and auc.lower < auc.value < auc.upper
    assert result.slices[0].example_count == 2000
    assert len(result.checks) == 4 and all(c.passed for c in result.checks)
    assert result.evaluation.uri.endswith("/evaluation.json") and result.blessing.uri
    assert result.inference_seconds > 0 and result.metrics_seconds > 0
    assert evaluation.execution_id > 0 and evaluation.labels == {"run": "7"}
    assert evaluation.spec.bootstrap_samples == 50 and evaluation.spec.confidence_level == 0.95
    assert evaluation.progress.fraction_done == 1.0


def test_failure_reasons_reach_the_caller(
    client: EvaluationClient, store: LocalArtifactStore
) -> None:
    data = put_frame(store, "data/eval.csv", tabular(300))
    model = put_fake_model(store, "models/m", GOOD)
    name = client.create_evaluation(
        spec=evaluation_spec(model, data, label="clicked")
    ).evaluation.name
    evaluation = watch(client, name)[-1]
    assert evaluation.state == job_pb2.JOB_STATE_FAILED
    assert evaluation.error.code == 3  # INVALID_ARGUMENT
    assert (evaluation.error.reason, evaluation.error.field) == ("LABEL_MISSING", "spec.label")
    assert "clicked" in evaluation.error.message
    assert evaluation.result.verdict == pb.VERDICT_NOT_BLESSED  # a failure never blesses

    mismatched = put_fake_model(store, "models/x9", {**GOOD, "inputs": ["x1", "x9"]})
    name = client.create_evaluation(spec=evaluation_spec(mismatched, data)).evaluation.name
    assert watch(client, name)[-1].error.reason == "SIGNATURE_MISMATCH"


def test_invalid_requests_are_refused_with_the_field(client: EvaluationClient) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        client.create_evaluation(spec=evaluation_spec("m", "d", label=""))
    assert error.value.field == "spec.label"
    bad_threshold = [pb.MetricThreshold(metric="auc", slice="device=phone", lower_bound=0.5)]
    with pytest.raises(InvalidArgumentError) as error:
        client.create_evaluation(spec=evaluation_spec("m", "d", thresholds=bad_threshold))
    assert error.value.field == "spec.thresholds[0].slice"
    log = evaluation_spec("m", "d")
    log.data.format = data_pb2.DATA_FORMAT_REQUEST_LOG
    with pytest.raises(InvalidArgumentError) as error:
        client.create_evaluation(spec=log)
    assert error.value.field == "spec.data.format"
    with pytest.raises(NotFoundError):
        client.get_evaluation(name="evaluations/nope")
    with pytest.raises(InvalidArgumentError):
        client.override_verdict(name="evaluations/nope", reason="r", actor="a")


def test_list_compare_override_and_cancel(
    client: EvaluationClient, store: LocalArtifactStore, lineage: FakeLineage
) -> None:
    data = put_frame(store, "data/eval.csv", tabular(1500))
    first = lineage.add(put_fake_model(store, "models/a", GOOD))
    second = put_fake_model(store, "models/b", {"kind": "logistic", "weights": [1.0, 0.0]})
    strict = [pb.MetricThreshold(metric="auc", lower_bound=0.99)]
    by_id = evaluation_spec("", data, bootstrap_samples=-1)
    by_id.model.artifact_id = first.id
    a = client.create_evaluation(spec=by_id).evaluation.name
    b = client.create_evaluation(
        spec=evaluation_spec(second, data, thresholds=strict)
    ).evaluation.name
    watch(client, a), watch(client, b)

    assert (
        not client.get_evaluation(name=a)
        .evaluation.result.slices[0]
        .metrics["auc"]
        .HasField("lower")
    )
    listed = [e.name for e in client.iter_evaluations(page_size=1)]
    assert listed == [b, a]
    assert [e.name for e in client.iter_evaluations(first.id)] == [a]

    comparisons = client.compare_evaluations(baseline=a, candidate=b).comparisons
    auc = next(c for c in comparisons if c.slice == "" and c.metric == "auc")
    assert auc.difference == pytest.approx(auc.candidate - auc.baseline) and auc.difference < 0

    assert client.get_evaluation(name=b).evaluation.result.verdict == pb.VERDICT_NOT_BLESSED
    overridden = client.override_verdict(
        name=b, verdict=pb.VERDICT_BLESSED, reason="accepted for the holiday launch", actor="ana"
    ).evaluation
    assert overridden.result.verdict == pb.VERDICT_BLESSED
    assert overridden.result.override_reason == "accepted for the holiday launch"
    assert lineage.overrides[-1]["actor"] == "ana"

    with pytest.raises(FailedPreconditionError):
        client.cancel_evaluation(name=a)  # already ended


def test_infra_validation_requests_are_checked(client: EvaluationClient) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        client.create_infra_validation(model=data_pb2.ArtifactRef(uri="m"))
    assert error.value.field == "canary_data"
    with pytest.raises(NotFoundError):
        client.get_infra_validation(name="infraValidations/nope")


def test_nan_metrics_travel_as_nan(client: EvaluationClient, store: LocalArtifactStore) -> None:
    frame = tabular(300)
    frame["label"] = 0  # no positives: AUC is undefined
    data = put_frame(store, "data/negatives.csv", frame)
    model = put_fake_model(store, "models/m", GOOD)
    name = client.create_evaluation(
        spec=evaluation_spec(model, data, task="binary_classification", bootstrap_samples=-1)
    ).evaluation.name
    result = watch(client, name)[-1].result
    assert math.isnan(result.slices[0].metrics["auc"].value)
