"""Whole evaluations through the core, with fake models (no TensorFlow): verdicts, baselines,
overrides, comparisons, and every bad input failing with a reason and no blessing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sluice_evaluation.core import EvaluationCore
from sluice_evaluation.evaluator import Workspace
from sluice_evaluation.infra import SandboxSettings
from sluice_evaluation.jobs import Job, JobState
from sluice_evaluation.metrics import Task
from sluice_evaluation.slicing import SlicingSpec
from sluice_evaluation.spec import ArtifactRef, DataSource, EvaluationResult, EvaluationSpec
from sluice_evaluation.testing import GOOD, FakeLineage, put_fake_model, put_frame, tabular
from sluice_evaluation.thresholds import MetricThreshold, Verdict
from sluice_runtime.artifacts import LocalArtifactStore
from sluice_runtime.errors import FailedPrecondition, InvalidArgument, Unavailable

Evaluation = Job[EvaluationSpec, EvaluationResult]


@pytest.fixture
def core(workspace: Workspace) -> Iterator[EvaluationCore]:
    core = EvaluationCore(workspace, SandboxSettings(workspace.store.root_uri))
    yield core
    core.close()


def spec(model: str, data: str, **changes: object) -> EvaluationSpec:
    fields: dict[str, object] = {
        "model": ArtifactRef(uri=model),
        "data": DataSource(ArtifactRef(uri=data)),
        "label": "label",
        "example_weight": "weight",
        "slicing": (SlicingSpec(("country",)),),
        "bootstrap_samples": 50,
    }
    fields.update(changes)
    return EvaluationSpec(**fields)  # type: ignore[arg-type]


def run(core: EvaluationCore, evaluation_spec: EvaluationSpec) -> Evaluation:
    job = core.create_evaluation(evaluation_spec, {})
    return list(core.watch_evaluation(job.name))[-1]


def succeeded(job: Evaluation) -> EvaluationResult:
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result is not None
    return job.result


@pytest.fixture
def data(store: LocalArtifactStore) -> str:
    return put_frame(store, "data/eval.csv", tabular(3000))


def test_a_better_model_is_blessed_against_the_serving_baseline(
    core: EvaluationCore, store: LocalArtifactStore, lineage: FakeLineage, data: str
) -> None:
    model = lineage.add(put_fake_model(store, "models/good", GOOD))
    serving = lineage.add(
        put_fake_model(store, "models/serving", {"kind": "logistic", "weights": [1.0, 0.0]})
    )
    lineage.baseline = serving
    thresholds = (
        MetricThreshold("auc", "*", lower_bound=0.7, max_absolute_degradation=0.01),
        MetricThreshold("log_loss", max_relative_degradation=0.0),
    )
    result = succeeded(run(core, spec(model.uri, data, thresholds=thresholds)))

    assert result.verdict is Verdict.BLESSED
    assert result.task is Task.BINARY
    assert result.model == ArtifactRef(model.id, model.uri)
    assert result.baseline_model == ArtifactRef(serving.id, serving.uri)
    assert [s.slice for s in result.slices] == ["", "country=BR", "country=DE", "country=US"]
    assert result.slices[0].example_count == 3000
    overall = result.slices[0]
    low, high = overall.intervals["auc"]
    assert low < overall.values["auc"] < high
    assert result.baseline_slices is not None
    assert result.baseline_slices[0].values["auc"] < overall.values["auc"]
    assert result.checks and all(c.passed for c in result.checks)
    assert result.inference_seconds > 0 and result.metrics_seconds > 0

    # artifacts in the store, lineage recorded: model, data, baseline -> evaluation -> blessing
    blessing = json.loads(store.get_bytes(result.blessing.uri.split("/store/")[1]))  # type: ignore[union-attr]
    assert blessing["blessed"] is True and blessing["model"]["artifact_id"] == model.id
    document = json.loads(store.get_bytes(result.evaluation.uri.split("/store/")[1]))  # type: ignore[union-attr]
    assert document["slices"][1]["slice"] == "country=BR"
    assert "baseline_metrics" in document["slices"][1]
    (record,) = lineage.evaluations
    assert record.blessed and record.model.id == model.id and record.baseline == serving
    assert result.evaluation.artifact_id and result.blessing.artifact_id  # type: ignore[union-attr]


def test_a_candidate_worse_on_one_slice_only_is_not_blessed(
    core: EvaluationCore, store: LocalArtifactStore, lineage: FakeLineage, data: str
) -> None:
    # Same model, except that it pushes every Brazilian example towards "positive": log loss
    # worsens by 0.066 on BR, by 0.013 overall.
    candidate = put_fake_model(store, "models/c", {**GOOD, "country_shift": {"BR": 0.8}})
    lineage.baseline = lineage.add(put_fake_model(store, "models/b", GOOD))
    thresholds = (MetricThreshold("log_loss", "*", max_absolute_degradation=0.02),)
    result = succeeded(run(core, spec(candidate, data, thresholds=thresholds)))

    assert result.verdict is Verdict.NOT_BLESSED
    failed = [c for c in result.checks if not c.passed]
    assert [c.slice for c in failed] == ["country=BR"]
    assert "log_loss" in failed[0].message and "country=BR" in failed[0].message
    assert not lineage.evaluations[0].blessed


def test_cold_start_is_judged_by_value_thresholds_alone(
    core: EvaluationCore, store: LocalArtifactStore, data: str
) -> None:
    model = put_fake_model(store, "models/first", GOOD)
    thresholds = (MetricThreshold("auc", lower_bound=0.95, max_absolute_degradation=0.0),)
    result = succeeded(run(core, spec(model, data, thresholds=thresholds)))
    assert result.baseline_model is None and result.baseline_slices is None
    assert [c.passed for c in result.checks] == [False, True]
    assert "no baseline" in result.checks[1].message
    assert result.verdict is Verdict.NOT_BLESSED  # the value threshold decides


def test_explicit_baseline_and_no_baseline(
    core: EvaluationCore, store: LocalArtifactStore, lineage: FakeLineage, data: str
) -> None:
    model = put_fake_model(store, "models/m", GOOD)
    serving = lineage.add(put_fake_model(store, "models/serving", GOOD))
    chosen = lineage.add(
        put_fake_model(store, "models/chosen", {"kind": "logistic", "weights": [1, 0]})
    )
    lineage.baseline = serving
    explicit = succeeded(run(core, spec(model, data, baseline_model=ArtifactRef(chosen.id))))
    assert explicit.baseline_model == ArtifactRef(chosen.id, chosen.uri)
    none = succeeded(run(core, spec(model, data, no_baseline=True)))
    assert none.baseline_model is None


def test_tasks_are_told_from_the_model_output(
    core: EvaluationCore, store: LocalArtifactStore, data: str
) -> None:
    frame = tabular(600)
    frame["target"] = 2 * frame["x1"] - frame["x2"]
    frame["klass"] = np.argmax(np.stack([frame["x1"], frame["x2"], -frame["x1"]], 1), axis=1)
    table = put_frame(store, "data/multi.parquet", frame)
    regression = put_fake_model(store, "models/reg", {"kind": "linear", "weights": [2.0, -1.0]})
    multiclass = put_fake_model(
        store, "models/multi", {"kind": "softmax", "weights": [[3, 0], [0, 3], [-3, 0]]}
    )
    reg = succeeded(run(core, spec(regression, table, label="target", bootstrap_samples=0)))
    assert reg.task is Task.REGRESSION and reg.slices[0].values["rmse"] == pytest.approx(
        0, abs=1e-5
    )
    assert reg.slices[0].intervals == {}
    multi = succeeded(run(core, spec(multiclass, table, label="klass")))
    assert multi.task is Task.MULTICLASS and multi.slices[0].values["accuracy"] > 0.9
    assert "recall[2]" in multi.slices[0].values


def test_data_under_a_prefix_is_read_whole(core: EvaluationCore, store: LocalArtifactStore) -> None:
    frame = tabular(1000)
    put_frame(store, "span/7/part-0.csv", frame[:400])
    put_frame(store, "span/7/part-1.parquet", frame[400:])
    store.put("span/7/_SUCCESS", b"")
    model = put_fake_model(store, "models/m", GOOD)
    result = succeeded(run(core, spec(model, store.uri_for("span/7") + "/")))
    assert result.slices[0].example_count == 1000


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"label": "clicked"}, "LABEL_MISSING", "spec.label"),
        ({"label": "country"}, "LABEL_INVALID", "spec.label"),
        ({"label": "age", "task": "binary_classification"}, "LABEL_INVALID", "spec.label"),
        ({"example_weight": "nope"}, "WEIGHT_MISSING", "spec.example_weight"),
        (
            {"slicing": (SlicingSpec(("device",)),)},
            "FEATURE_MISSING",
            "spec.slicing[0].feature_names[0]",
        ),
        (
            {"thresholds": (MetricThreshold("auc", "country=FR", lower_bound=0.5),)},
            "SLICE_EMPTY",
            "spec.thresholds[0].slice",
        ),
        (
            {"thresholds": (MetricThreshold("rmse", lower_bound=0.5),)},
            "UNKNOWN_METRIC",
            "spec.thresholds[0].metric",
        ),
        ({"task": "regression", "label": "age"}, None, None),  # a valid combination: succeeds
    ],
)
def test_bad_input_fails_with_a_reason_and_never_blesses(
    core: EvaluationCore,
    store: LocalArtifactStore,
    lineage: FakeLineage,
    data: str,
    change: dict[str, object],
    reason: str | None,
    field: str | None,
) -> None:
    model = put_fake_model(store, "models/m", GOOD)
    job = run(core, spec(model, data, **change))
    if reason is None:
        assert job.state is JobState.SUCCEEDED
        return
    assert job.state is JobState.FAILED and job.result is None
    assert job.error is not None
    assert (job.error.reason, job.error.field) == (reason, field), job.error.message
    assert job.error.message
    assert not store.exists(f"{job.name}/blessing.json")
    assert lineage.evaluations == [] and lineage.failures[0][1] == job.name


def test_model_problems_fail_with_a_reason(
    core: EvaluationCore, store: LocalArtifactStore, lineage: FakeLineage, data: str
) -> None:
    cases = {
        "SIGNATURE_MISMATCH": put_fake_model(store, "models/x3", {**GOOD, "inputs": ["x1", "x3"]}),
        "MODEL_UNLOADABLE": store.put("models/broken/model.json", b"{not json").uri.rsplit("/", 1)[
            0
        ],
        "MODEL_MISSING": store.uri_for("models/nothing-here"),
        "MODEL_PREDICTIONS_INVALID": put_fake_model(
            store, "models/logits", {"kind": "linear", "weights": [3.0, -3.0]}
        ),
    }
    for reason, model in cases.items():
        task = "binary_classification" if reason == "MODEL_PREDICTIONS_INVALID" else ""
        job = run(core, spec(model, data, task=task))
        assert job.state is JobState.FAILED, reason
        assert job.error is not None and job.error.reason == reason, job.error
        assert job.error.field == "spec.model"

    lineage.baseline = lineage.add(store.uri_for("models/broken"))
    job = run(core, spec(put_fake_model(store, "models/ok", GOOD), data))
    assert job.error is not None and job.error.reason == "BASELINE_UNLOADABLE"
    assert job.error.field == "spec.baseline_model"


def test_empty_data_and_unknown_artifacts_fail(
    core: EvaluationCore, store: LocalArtifactStore
) -> None:
    empty = put_frame(store, "data/empty.csv", tabular(10)[:0])
    model = put_fake_model(store, "models/m", GOOD)
    job = run(core, spec(model, empty))
    assert job.error is not None and job.error.reason == "DATA_EMPTY"
    job = run(core, spec(model, "s3://elsewhere/data.csv"))
    assert job.error is not None and job.error.field == "spec.data"
    unknown = EvaluationSpec(
        model=ArtifactRef(artifact_id=424242),
        data=DataSource(ArtifactRef(uri=empty)),
        label="label",
    )
    job = run(core, unknown)
    assert job.error is not None and job.error.code == "NOT_FOUND"
    assert job.error.field == "spec.model.artifact_id"


def test_a_malformed_spec_is_refused_before_queueing(core: EvaluationCore) -> None:
    with pytest.raises(InvalidArgument) as error:
        core.create_evaluation(spec("m", "d", label=""), {})
    assert error.value.field == "spec.label"
    with pytest.raises(InvalidArgument) as error:
        core.create_evaluation(spec("m", "d", decision_thresholds=(1.5,)), {})
    assert error.value.field == "spec.decision_thresholds[0]"


def test_a_person_overrides_a_verdict_with_a_reason(
    core: EvaluationCore, store: LocalArtifactStore, lineage: FakeLineage, data: str
) -> None:
    model = put_fake_model(store, "models/m", GOOD)
    job = run(core, spec(model, data, thresholds=(MetricThreshold("auc", lower_bound=0.99),)))
    assert succeeded(job).verdict is Verdict.NOT_BLESSED

    with pytest.raises(InvalidArgument) as missing:
        core.override_verdict(job.name, Verdict.BLESSED, " ", "ana")
    assert missing.value.field == "reason"
    overridden = core.override_verdict(job.name, Verdict.BLESSED, "launch review signed off", "ana")
    result = succeeded(overridden)
    assert result.verdict is Verdict.BLESSED
    assert (result.override_reason, result.override_actor) == ("launch review signed off", "ana")
    assert lineage.overrides[0]["blessed"] and lineage.overrides[0]["actor"] == "ana"
    assert result.blessing is not None and "override" in result.blessing.uri
    assert json.loads(store.get_bytes(result.blessing.uri.split("/store/")[1]))["override"] == {
        "reason": "launch review signed off",
        "actor": "ana",
    }

    failed = run(core, spec(model, data, label="missing"))
    with pytest.raises(FailedPrecondition):
        core.override_verdict(failed.name, Verdict.BLESSED, "trust me", "ana")


def test_compare_two_evaluations_slice_by_slice(
    core: EvaluationCore, store: LocalArtifactStore, data: str
) -> None:
    first = run(core, spec(put_fake_model(store, "models/a", GOOD), data, bootstrap_samples=0))
    weaker = {"kind": "logistic", "weights": [1.0, 0.0]}
    second = run(core, spec(put_fake_model(store, "models/b", weaker), data, bootstrap_samples=0))
    rows = core.compare_evaluations(first.name, second.name)
    auc = {r.slice: r for r in rows if r.metric == "auc"}
    assert set(auc) == {"", "country=BR", "country=DE", "country=US"}
    assert auc[""].difference == pytest.approx(auc[""].candidate - auc[""].baseline)
    assert auc[""].difference < 0

    with pytest.raises(InvalidArgument):
        core.compare_evaluations("", second.name)


def test_cancel_leaves_nothing_behind(
    core: EvaluationCore, store: LocalArtifactStore, data: str
) -> None:
    big = put_frame(store, "data/big.csv", pd.concat([tabular(3000)] * 10))
    job = core.create_evaluation(
        spec(put_fake_model(store, "models/m", GOOD), big, bootstrap_samples=400), {}
    )
    core.cancel_evaluation(job.name)
    final = list(core.watch_evaluation(job.name))[-1]
    assert final.state is JobState.CANCELLED
    assert not store.exists(f"{job.name}/blessing.json")


def test_the_training_manifest_gives_the_task_and_the_label_vocabulary(
    core: EvaluationCore, store: LocalArtifactStore
) -> None:
    frame = tabular(800)
    frame["answer"] = np.where(frame["label"] == 1, "yes", "no")
    data = put_frame(store, "data/text_labels.csv", frame)
    model = put_fake_model(store, "models/trained", GOOD)
    manifest = {"task": "binary", "feature_plan": {"label": {"vocabulary": ["no", "yes"]}}}
    store.put("models/trained/sluice_manifest.json", json.dumps(manifest).encode())

    result = succeeded(run(core, spec(model, data, label="answer")))
    assert result.task is Task.BINARY
    plain = put_fake_model(store, "models/plain", GOOD)  # no manifest: 0/1 labels
    expected = succeeded(run(core, spec(plain, data, label="label"))).slices[0].values["auc"]
    assert result.slices[0].values["auc"] == pytest.approx(expected)

    frame.loc[3, "answer"] = "maybe"
    job = run(core, spec(model, put_frame(store, "data/maybe.csv", frame), label="answer"))
    assert job.error is not None and job.error.reason == "LABEL_INVALID"
    assert "maybe" in job.error.message


def test_an_unrecorded_blessing_is_not_left_behind(
    core: EvaluationCore, store: LocalArtifactStore, lineage: FakeLineage, data: str
) -> None:
    def down(record: object) -> None:
        raise Unavailable("metadata service: connection refused", reason="METADATA_UNAVAILABLE")

    lineage.record_evaluation = down  # type: ignore[assignment,method-assign]
    job = run(core, spec(put_fake_model(store, "models/m", GOOD), data))
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.reason == "METADATA_UNAVAILABLE"
    assert not store.exists(f"{job.name}/blessing.json")
    assert not store.exists(f"{job.name}/evaluation.json")
