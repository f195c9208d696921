"""Real TensorFlow SavedModels: a tf.Module and an exported Keras model, on raw features."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from sluice_evaluation.core import EvaluationCore
from sluice_evaluation.evaluator import Workspace
from sluice_evaluation.infra import SandboxSettings
from sluice_evaluation.jobs import JobState
from sluice_evaluation.model import SavedModelPredictor, predict
from sluice_evaluation.spec import ArtifactRef, DataSource, EvaluationSpec
from sluice_evaluation.testing import FakeLineage, put_frame, tabular, upload_folder
from sluice_evaluation.thresholds import MetricThreshold, Verdict
from sluice_runtime.artifacts import LocalArtifactStore


@pytest.fixture
def core(
    store: LocalArtifactStore, lineage: FakeLineage, tmp_path: Path
) -> Iterator[EvaluationCore]:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    workspace = Workspace(store=store, lineage=lineage, scratch_dir=scratch, prediction_batch=512)
    core = EvaluationCore(workspace, SandboxSettings(store.root_uri))
    yield core
    core.close()


def evaluate(core: EvaluationCore, model: str, data: str, **changes: object):  # type: ignore[no-untyped-def]
    spec = EvaluationSpec(
        model=ArtifactRef(uri=model),
        data=DataSource(ArtifactRef(uri=data)),
        label="label",
        bootstrap_samples=20,
        **changes,  # type: ignore[arg-type]
    )
    job = core.create_evaluation(spec, {})
    return list(core.watch_evaluation(job.name))[-1]


@pytest.mark.parametrize("kind", ["logistic", "keras"])
def test_saved_model_predictions_through_the_serving_signature(
    core: EvaluationCore,
    store: LocalArtifactStore,
    saved_models: dict[str, Path],
    kind: str,
) -> None:
    frame = tabular(1500)
    data = put_frame(store, "data/eval.csv", frame)
    model = upload_folder(store, saved_models[kind], f"models/{kind}")
    job = evaluate(core, model, data, thresholds=(MetricThreshold("auc", lower_bound=0.7),))
    assert job.state is JobState.SUCCEEDED, job.error
    result = job.result
    assert result.verdict is Verdict.BLESSED and result.inference_seconds > 0

    # The metrics are those of the model's own predictions.
    root = saved_models[kind] if kind == "logistic" else saved_models[kind] / "saved_model"
    predictions = predict(SavedModelPredictor(root), frame, batch_size=700).predictions
    expected = 1 / (1 + np.exp(-(1.5 * frame["x1"] - frame["x2"]).to_numpy()))
    assert predictions == pytest.approx(expected, abs=1e-5)
    assert result.slices[0].values["auc"] == pytest.approx(
        skm.roc_auc_score(frame["label"], predictions), abs=1e-9
    )


def test_signature_mismatch_and_a_corrupted_model_fail(
    core: EvaluationCore, store: LocalArtifactStore, saved_models: dict[str, Path]
) -> None:
    frame = tabular(200)
    model = upload_folder(store, saved_models["logistic"], "models/logistic")
    job = evaluate(core, model, put_frame(store, "data/no_x2.csv", frame.drop(columns=["x2"])))
    assert job.state is JobState.FAILED
    assert job.error.reason == "SIGNATURE_MISMATCH" and "'x2'" in job.error.message

    store.put("models/corrupt/saved_model.pb", b"not a protobuf at all")
    job = evaluate(core, store.uri_for("models/corrupt"), put_frame(store, "data/eval.csv", frame))
    assert job.state is JobState.FAILED
    assert job.error.reason == "MODEL_UNLOADABLE"
