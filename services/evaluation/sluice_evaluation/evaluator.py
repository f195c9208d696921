"""One evaluation, start to end: data and models in, metrics, checks, verdict and lineage out.

Steps (each a cancellation point): resolve the model, data and baseline artifacts; read the data;
load each model and run its serving signature over the data in batches (timed apart from the
metrics); compute every slice's metrics with bootstrap intervals, and the baseline's on the same
slices; judge the thresholds; write the evaluation and blessing JSON to the artifact store; record
the lineage. Any error fails the evaluation - and a failed evaluation writes no blessing.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sluice_runtime.artifacts import ArtifactStore, ArtifactStoreError
from sluice_runtime.errors import FailedPrecondition, InvalidArgument

from sluice_evaluation.config import DEFAULT_PREDICTION_BATCH
from sluice_evaluation.data import (
    fetch_folder,
    numeric_column,
    read_frame,
    require_column,
    write_json,
)
from sluice_evaluation.jobs import Cancelled, JobControl
from sluice_evaluation.lineage import (
    EVALUATOR,
    ArtifactRecord,
    EvaluationRecord,
    Lineage,
    resolve_data,
    resolve_model,
)
from sluice_evaluation.metrics import FloatArray, Task, make_suite
from sluice_evaluation.model import (
    ModelLoader,
    ModelManifest,
    ModelUnloadable,
    SavedModelPredictor,
    SignatureMismatch,
    predict,
    read_manifest,
)
from sluice_evaluation.sliced import DEFAULT_BLOCK_ELEMENTS, SliceMetrics, compute_sliced_metrics
from sluice_evaluation.slicing import build_partitions
from sluice_evaluation.spec import ArtifactRef, EvaluationResult, EvaluationSpec
from sluice_evaluation.thresholds import ThresholdCheck, Verdict, judge, verdict_of


@dataclass(frozen=True)
class Workspace:
    """What evaluations run against.

    Attributes:
        store: the artifact store models and data are read from and results written to.
        lineage: the metadata service (or `NoLineage`).
        scratch_dir: where model folders are downloaded for the duration of a job.
        load_model: loads a local model folder (default: TensorFlow SavedModel).
        prediction_batch: rows per model call.
        block_elements: work unit of the metrics computation (see `compute_sliced_metrics`).
    """

    store: ArtifactStore
    lineage: Lineage
    scratch_dir: Path
    load_model: ModelLoader = SavedModelPredictor
    prediction_batch: int = DEFAULT_PREDICTION_BATCH
    block_elements: int = DEFAULT_BLOCK_ELEMENTS


@dataclass(frozen=True)
class _Scored:
    predictions: FloatArray
    seconds: float
    manifest: ModelManifest


class Evaluator:
    """Runs evaluations (the work function of the evaluations `JobRunner`) and overrides."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def __call__(self, name: str, spec: EvaluationSpec, control: JobControl) -> EvaluationResult:
        model: ArtifactRecord | None = None
        try:
            model = resolve_model(self.workspace.lineage, spec.model, "spec.model")
            return self._run(name, spec, model, control)
        except Cancelled:
            raise
        except Exception as error:
            if model is not None:
                self.workspace.lineage.record_failure(
                    EVALUATOR, name, model, spec.context_id, str(error)
                )
            raise

    # -- the steps -------------------------------------------------------------------------------

    def _run(
        self, name: str, spec: EvaluationSpec, model: ArtifactRecord, control: JobControl
    ) -> EvaluationResult:
        ws = self.workspace
        data_uri, data_id = resolve_data(ws.lineage, spec.data.data, "spec.data.data")
        baseline = self._baseline(spec, model)
        control.report(0.02, "reading the evaluation data")
        frame = read_frame(ws.store, data_uri, spec.data.format, "spec.data")
        if frame.empty:
            raise InvalidArgument(
                f"spec.data: {data_uri!r} has no rows", field="spec.data", reason="DATA_EMPTY"
            )
        require_column(frame, spec.label, "spec.label", "LABEL_MISSING")  # before any model runs
        weights = self._weights(frame, spec)
        partitions = build_partitions(frame, spec.slicing)

        with tempfile.TemporaryDirectory(dir=ws.scratch_dir, prefix="evaluation-") as scratch:
            control.report(0.05, "loading the model")
            scored = self._score(
                model, frame, Path(scratch, "model"), "spec.model", "MODEL", control, 0.05
            )
            baseline_scored = None
            if baseline is not None:
                control.report(0.3, "loading the baseline model")
                baseline_scored = self._score(
                    baseline,
                    frame,
                    Path(scratch, "baseline"),
                    "spec.baseline_model",
                    "BASELINE",
                    control,
                    0.3,
                )
        labels = _labels(frame, spec.label, scored.manifest.label_vocabulary)
        task = _task(spec.task, model, scored.manifest, scored.predictions, labels)
        predictions = _checked_predictions(task, scored.predictions, "spec.model", "MODEL")
        _check_labels(task, labels, predictions)
        baseline_predictions = None
        if baseline_scored is not None:
            baseline_predictions = _checked_predictions(
                task, baseline_scored.predictions, "spec.baseline_model", "BASELINE"
            )
            if baseline_predictions.shape != predictions.shape:
                raise FailedPrecondition(
                    f"spec.baseline_model: the baseline predicts {baseline_predictions.shape[1:]} "
                    f"values per example, the candidate {predictions.shape[1:]}; they cannot be "
                    "compared",
                    field="spec.baseline_model",
                    reason="BASELINE_INCOMPATIBLE",
                )
        num_classes = predictions.shape[1] if predictions.ndim == 2 else 0
        suite = make_suite(
            task,
            labels=labels,
            weights=weights,
            num_classes=num_classes,
            decision_thresholds=spec.decision_thresholds,
        )

        control.report(0.55, f"computing metrics on {len(partitions)} slicings")
        began = time.perf_counter()
        slices = compute_sliced_metrics(
            suite,
            labels,
            predictions,
            weights,
            partitions,
            bootstrap_samples=spec.bootstrap_samples,
            confidence_level=spec.confidence_level,
            min_slice_size=spec.min_slice_size,
            block_elements=ws.block_elements,
            checkpoint=lambda f: control.report(0.55 + 0.35 * f),
        )
        baseline_slices = None
        if baseline_predictions is not None:
            baseline_slices = compute_sliced_metrics(
                suite,
                labels,
                baseline_predictions,
                weights,
                partitions,
                bootstrap_samples=0,
                min_slice_size=spec.min_slice_size,
                block_elements=ws.block_elements,
                checkpoint=lambda f: control.check(),
            )
        metrics_seconds = time.perf_counter() - began
        checks = judge(spec.thresholds, slices, baseline_slices, suite.metric_names())
        verdict = verdict_of(checks)
        control.report(0.95, "recording the results")
        control.check()  # the last point at which a cancel leaves nothing behind

        result = EvaluationResult(
            task=task,
            model=ArtifactRef(model.id, model.uri),
            slices=tuple(slices),
            checks=tuple(checks),
            verdict=verdict,
            baseline_slices=None if baseline_slices is None else tuple(baseline_slices),
            baseline_model=None if baseline is None else ArtifactRef(baseline.id, baseline.uri),
            inference_seconds=scored.seconds,
            metrics_seconds=metrics_seconds,
        )
        published = self._publish(name, spec, result, model, baseline, data_uri, data_id)
        control.report(1.0, f"{verdict.name}: {sum(not c.passed for c in checks)} failed checks")
        return published

    def _publish(
        self,
        name: str,
        spec: EvaluationSpec,
        result: EvaluationResult,
        model: ArtifactRecord,
        baseline: ArtifactRecord | None,
        data_uri: str,
        data_id: int,
    ) -> EvaluationResult:
        """Write the evaluation and blessing JSON, then record them: the metadata record is the
        commit point, so when it fails the files are removed again."""
        store = self.workspace.store
        keys = (f"{name}/evaluation.json", f"{name}/blessing.json")
        evaluation_uri = write_json(store, keys[0], evaluation_json(name, result))
        blessing_uri = write_json(
            store, keys[1], blessing_json(name, result.model, result.verdict, result.checks)
        )
        try:
            recorded = self.workspace.lineage.record_evaluation(
                EvaluationRecord(
                    name=name,
                    model=model,
                    data_uri=data_uri,
                    data_artifact_id=data_id,
                    baseline=baseline,
                    context_id=spec.context_id,
                    evaluation_uri=evaluation_uri,
                    blessing_uri=blessing_uri,
                    blessed=result.verdict is Verdict.BLESSED,
                    verdict=result.verdict.name,
                    task=result.task.value,
                )
            )
        except BaseException:
            for key in keys:
                with contextlib.suppress(ArtifactStoreError):
                    store.delete(key)
            raise
        ids = recorded.output_ids or (0, 0)
        return replace(
            result,
            evaluation=ArtifactRef(ids[0], evaluation_uri),
            blessing=ArtifactRef(ids[1], blessing_uri),
            execution_id=recorded.execution_id,
        )

    def override(
        self, name: str, result: EvaluationResult, verdict: Verdict, reason: str, actor: str
    ) -> EvaluationResult:
        """A person's verdict replaces the computed one: a new blessing, with who and why."""
        ws = self.workspace
        blessing_uri = write_json(
            ws.store,
            f"{name}/blessing-override-{uuid.uuid4().hex[:8]}.json",
            blessing_json(name, result.model, verdict, result.checks, reason=reason, actor=actor),
        )
        model = ArtifactRecord(result.model.artifact_id, result.model.uri)
        evaluation_id = result.evaluation.artifact_id if result.evaluation else 0
        recorded = ws.lineage.record_override(
            name, model, evaluation_id, blessing_uri, verdict is Verdict.BLESSED, reason, actor
        )
        blessing_id = recorded.output_ids[0] if recorded.output_ids else 0
        return replace(
            result,
            verdict=verdict,
            override_reason=reason,
            override_actor=actor,
            blessing=ArtifactRef(blessing_id, blessing_uri),
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _baseline(self, spec: EvaluationSpec, model: ArtifactRecord) -> ArtifactRecord | None:
        if spec.no_baseline:
            return None
        if spec.baseline_model is not None and not spec.baseline_model.empty:
            return resolve_model(self.workspace.lineage, spec.baseline_model, "spec.baseline_model")
        return self.workspace.lineage.serving_baseline(model, spec.context_id)

    def _weights(self, frame: pd.DataFrame, spec: EvaluationSpec) -> FloatArray:
        if not spec.example_weight:
            return np.ones(len(frame))
        weights = numeric_column(frame, spec.example_weight, "spec.example_weight", "weight")
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise InvalidArgument(
                f"spec.example_weight: column {spec.example_weight!r} holds negative or infinite "
                "weights",
                field="spec.example_weight",
                reason="WEIGHT_INVALID",
            )
        if weights.sum() <= 0:
            raise InvalidArgument(
                f"spec.example_weight: every weight in {spec.example_weight!r} is 0",
                field="spec.example_weight",
                reason="WEIGHT_INVALID",
            )
        return weights

    def _score(
        self,
        model: ArtifactRecord,
        frame: pd.DataFrame,
        folder: Path,
        field: str,
        role: str,
        control: JobControl,
        progress_from: float,
    ) -> _Scored:
        ws = self.workspace
        what = "baseline model" if role == "BASELINE" else "model"
        fetch_folder(ws.store, model.uri, folder, field)
        try:
            predictor = ws.load_model(folder)
        except ModelUnloadable as error:
            raise FailedPrecondition(
                f"{field}: the {what} at {model.uri!r} cannot be loaded: {error}",
                field=field,
                reason=f"{role}_UNLOADABLE",
            ) from None
        control.report(progress_from + 0.05, f"running the {what} over {len(frame):,} rows")
        try:
            inference = predict(
                predictor,
                frame,
                ws.prediction_batch,
                lambda f: control.report(progress_from + 0.05 + 0.2 * f),
            )
        except SignatureMismatch as error:
            raise InvalidArgument(
                f"{field}: the {what}'s serving signature does not match the evaluation data: "
                f"{error}",
                field=field,
                reason="SIGNATURE_MISMATCH",
            ) from None
        return _Scored(inference.predictions, inference.seconds, read_manifest(folder))


def _labels(frame: pd.DataFrame, name: str, vocabulary: Sequence[str | int | float]) -> FloatArray:
    """The label column as numbers; through the model's label vocabulary when it has one (text
    labels become class indices in the order the model was trained with)."""
    if not vocabulary:
        return numeric_column(frame, name, "spec.label", "label")
    column = frame[name]
    if column.isna().any():
        raise InvalidArgument(
            f"spec.label: label column {name!r} has no value in {int(column.isna().sum()):,} rows",
            field="spec.label",
            reason="LABEL_MISSING",
        )
    index = {_label_key(value): i for i, value in enumerate(vocabulary)}
    keys = [_label_key(value) for value in column.tolist()]
    unknown = sorted({str(key) for key in keys if key not in index})
    if unknown:
        raise InvalidArgument(
            f"spec.label: {name!r} holds values the model was not trained on: "
            f"{', '.join(unknown[:5])} (the model knows {', '.join(map(str, vocabulary[:10]))})",
            field="spec.label",
            reason="LABEL_INVALID",
        )
    return np.array([index[key] for key in keys], dtype=np.float64)


def _label_key(value: object) -> object:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return str(value)


def _task(
    requested: str,
    model: ArtifactRecord,
    manifest: ModelManifest,
    predictions: FloatArray,
    labels: FloatArray,
) -> Task:
    """The task: as requested, else as the model's manifest or its artifact's ``task`` property
    says, else from the shape of the predictions (several columns: multi-class; one column of
    probabilities with 0/1 labels: binary; else regression)."""
    if requested:
        return Task.parse(requested)
    for declared in (manifest.task, model.properties.get("task")):
        if isinstance(declared, str) and declared:
            with contextlib.suppress(ValueError):
                return Task.parse(declared)
    if predictions.ndim == 2:
        return Task.MULTICLASS
    binary_labels = bool(np.isin(labels, (0.0, 1.0)).all())
    if binary_labels and bool(((predictions >= 0) & (predictions <= 1)).all()):
        return Task.BINARY
    return Task.REGRESSION


def _checked_predictions(task: Task, predictions: FloatArray, field: str, role: str) -> FloatArray:
    reason = f"{role}_PREDICTIONS_INVALID"
    what = "baseline model" if role == "BASELINE" else "model"
    not_finite = ~np.isfinite(predictions.reshape(len(predictions), -1)).all(axis=1)
    if not_finite.any():
        raise InvalidArgument(
            f"{field}: the {what} predicted NaN or infinity for {int(not_finite.sum()):,} rows",
            field=field,
            reason=reason,
        )
    if task is Task.BINARY and predictions.ndim == 2:
        if predictions.shape[1] != 2:
            raise InvalidArgument(
                f"{field}: binary classification needs one probability per example (or two "
                f"columns, negative and positive); the {what} gives {predictions.shape[1]}",
                field=field,
                reason=reason,
            )
        predictions = predictions[:, 1]
    if task is Task.MULTICLASS and (predictions.ndim != 2 or predictions.shape[1] < 2):
        raise InvalidArgument(
            f"{field}: multi-class classification needs a probability per class; the {what} "
            "gives one value per example",
            field=field,
            reason=reason,
        )
    if task is Task.REGRESSION and predictions.ndim != 1:
        raise InvalidArgument(
            f"{field}: regression needs one value per example; the {what} gives "
            f"{predictions.shape[1]}",
            field=field,
            reason=reason,
        )
    if task is not Task.REGRESSION and ((predictions < 0) | (predictions > 1)).any():
        raise InvalidArgument(
            f"{field}: the {what}'s predictions fall outside [0, 1]; classification metrics need "
            "probabilities (is the output a logit?)",
            field=field,
            reason=reason,
        )
    return predictions


def _check_labels(task: Task, labels: FloatArray, predictions: FloatArray) -> None:
    if task is Task.BINARY:
        bad = labels[~np.isin(labels, (0.0, 1.0))]
        if len(bad):
            raise InvalidArgument(
                f"spec.label: binary classification needs labels 0 and 1; found "
                f"{', '.join(_number(v) for v in np.unique(bad)[:5])}",
                field="spec.label",
                reason="LABEL_INVALID",
            )
    elif task is Task.MULTICLASS:
        classes = predictions.shape[1]
        bad = labels[(labels != np.round(labels)) | (labels < 0) | (labels >= classes)]
        if len(bad):
            raise InvalidArgument(
                f"spec.label: labels must be class indices 0 to {classes - 1} (the model has "
                f"{classes} outputs); found {', '.join(_number(v) for v in np.unique(bad)[:5])}",
                field="spec.label",
                reason="LABEL_INVALID",
            )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# -- the JSON artifacts ----------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def slice_json(s: SliceMetrics, baseline: SliceMetrics | None) -> dict[str, Any]:
    def metrics(m: SliceMetrics) -> dict[str, dict[str, float | None]]:
        out: dict[str, dict[str, float | None]] = {}
        for name, value in m.values.items():
            entry: dict[str, float | None] = {"value": _finite(value)}
            if name in m.intervals:
                entry["lower"], entry["upper"] = (_finite(v) for v in m.intervals[name])
            out[name] = entry
        return out

    document: dict[str, Any] = {
        "slice": s.slice,
        "example_count": s.example_count,
        "weighted_example_count": s.weighted_example_count,
        "too_small": s.too_small,
        "metrics": metrics(s),
    }
    if baseline is not None:
        document["baseline_metrics"] = metrics(baseline)
    return document


def evaluation_json(name: str, result: EvaluationResult) -> str:
    """The evaluation artifact: every slice's metrics (null for undefined), checks and verdict."""
    baseline = {s.slice: s for s in result.baseline_slices or ()}
    return json.dumps(
        {
            "evaluation": name,
            "task": result.task.value,
            "model": asdict(result.model),
            "baseline_model": None
            if result.baseline_model is None
            else asdict(result.baseline_model),
            "verdict": result.verdict.name,
            "checks": [asdict(c) for c in result.checks],
            "inference_seconds": result.inference_seconds,
            "metrics_seconds": result.metrics_seconds,
            "slices": [slice_json(s, baseline.get(s.slice)) for s in result.slices],
        },
        indent=1,
    )


def blessing_json(
    name: str,
    model: ArtifactRef,
    verdict: Verdict,
    checks: Sequence[ThresholdCheck],
    *,
    reason: str = "",
    actor: str = "",
) -> str:
    """The blessing artifact, as TFX's: whether the model is blessed, and why not."""
    document: dict[str, Any] = {
        "blessed": verdict is Verdict.BLESSED,
        "verdict": verdict.name,
        "evaluation": name,
        "model": asdict(model),
        "failed_checks": [c.message for c in checks if not c.passed],
    }
    if reason:
        document["override"] = {"reason": reason, "actor": actor}
    return json.dumps(document, indent=1)


def compare(
    baseline: EvaluationResult, candidate: EvaluationResult
) -> list[tuple[str, str, float, float]]:
    """(slice, metric, baseline value, candidate value) for every slice and metric in both, in
    the candidate's order."""
    by_slice = {s.slice: s for s in baseline.slices}
    rows = []
    for s in candidate.slices:
        other = by_slice.get(s.slice)
        if other is None:
            continue
        for metric, value in s.values.items():
            if metric in other.values:
                rows.append((s.slice, metric, other.values[metric], value))
    return rows
