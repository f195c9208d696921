"""One attempt of a training job, inside a worker: data -> plan -> model -> loop -> export.

Order matters for failing fast and cheaply: the schema and the data are read and checked with
pyarrow before Keras is imported, so bad input fails in about a second; TensorFlow is imported
only by categorical encoders, the multi-worker strategy and the export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sluice_runtime.artifacts import ArtifactNotFound, ArtifactStore, open_artifact_store

from sluice_training.checkpoints import Checkpoints
from sluice_training.data import read_table
from sluice_training.events import EventSink
from sluice_training.failures import TrainingFailure
from sluice_training.features import (
    EncodingOptions,
    FeaturePlan,
    build_feature_plan,
    feature_arrays,
    label_array,
    parse_schema,
    parse_statistics,
    string_columns,
)
from sluice_training.jobs import Progress, Result
from sluice_training.locations import locate
from sluice_training.plan import JobPlan, ModelFamily
from sluice_training.publish import publish_folder

EXPORT_TIMEOUT_SECONDS = 900


@dataclass
class PreparedData:
    plan: FeaturePlan
    schema: Any
    x: dict[str, np.ndarray]  # raw features
    y: np.ndarray
    eval_x: dict[str, np.ndarray] | None
    eval_y: np.ndarray | None


def run_attempt(
    job: JobPlan,
    sink: EventSink,
    work_dir: Path,
    *,
    store: ArtifactStore | None = None,
    strategy: Any = None,
    is_chief: bool = True,
) -> Result | None:
    """Train, export and publish; return the result (None on a non-chief worker).

    Raises:
        TrainingFailure: for anything a person can fix (the worker reports it as ``failed``).
    """
    store = store or open_artifact_store(job.store_uri)
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = Checkpoints(store, job.checkpoint_prefix, work_dir)
    resume = checkpoints.latest()
    fixed_plan = FeaturePlan.from_json(resume.feature_plan) if resume else None
    data = prepare_data(job, store, fixed_plan)

    import keras

    from sluice_training.loop import Budget, FitRunner, Loop
    from sluice_training.preprocessing import encode

    _seed(job.seed)
    x = encode(data.plan, data.x)
    eval_x = encode(data.plan, data.eval_x) if data.eval_x is not None else None

    if strategy is not None:
        from sluice_training.distributed import MultiWorkerRunner

        with strategy.scope():
            model = build_model(job, data, store, work_dir)
        runner: Any = MultiWorkerRunner(strategy, model)
    else:
        model = build_model(job, data, store, work_dir)
        runner = FitRunner(model)

    warm_start_report: dict[str, Any] = {}
    start_step = 0
    if resume is not None:
        checkpoints.restore(model, resume)
        start_step = resume.step
        warm_start_report = resume.warm_start
    elif job.base_model_uri:
        from sluice_training.warmstart import load_base_model, warm_start

        base = load_base_model(job.base_model_uri, store, work_dir)
        warm_start_report = warm_start(model, data.plan, base).to_json()
    sink.emit(
        "started",
        attempt=job.attempt,
        resumed_from_step=start_step,
        warm_start=warm_start_report,
        keras_backend=keras.backend.backend(),
        # Under JAX or PyTorch, TensorFlow is loaded only for categorical encoders (diagnostics).
        tensorflow_loaded="tensorflow" in sys.modules,
    )

    budget = Budget(
        steps_per_epoch=runner.steps_per_epoch(len(data.y), job.batch_size),
        epochs=job.epochs,
        max_steps=job.max_steps,
    )
    plan_json = data.plan.to_json()

    def on_progress(progress: Progress) -> None:
        if is_chief:
            sink.emit("progress", progress=progress.to_json())

    def on_checkpoint(step: int) -> None:
        if is_chief:
            checkpoints.save(model, step, plan_json, warm_start_report)
            sink.emit("checkpoint", step=step)

    loop = Loop(
        runner,
        budget,
        batch_size=job.batch_size,
        seed=job.seed,
        checkpoint_every=job.checkpoint_every_steps,
        on_progress=on_progress,
        on_checkpoint=on_checkpoint,
    )
    if start_step < budget.total_steps:
        loop.run(x, data.y, start_step)

    if eval_x is not None and data.eval_y is not None:
        eval_metrics = runner.evaluate(eval_x, data.eval_y, job.batch_size)
    else:
        eval_metrics = runner.evaluate(x, data.y, job.batch_size)
    if not is_chief:
        return None

    export_dir = Path(tempfile.mkdtemp(prefix="export-", dir=work_dir))
    sample_source = data.eval_x if data.eval_x is not None else data.x
    signature = export(model, data.plan, export_dir, sample_source, work_dir)
    manifest = {
        "job": f"trainingJobs/{job.job_id}",
        "attempt": job.attempt,
        "task": data.plan.label.task.value,
        "label": data.plan.label.name,
        "feature_plan": plan_json,
        "signature": signature,
        "keras_backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "hyperparameters": job.hyperparameters,
        "base_model_uri": job.base_model_uri,
        "warm_start": warm_start_report,
        "eval_metrics": eval_metrics,
        "train_data": job.train_data.uri,
        "schema": job.schema_uri,
    }
    uri, digest = publish_folder(store, job.output_prefix, export_dir, manifest)
    return Result(
        model_uri=uri,
        digest=digest,
        base_model_uri=job.base_model_uri,
        eval_metrics=eval_metrics,
    )


def build_model(job: JobPlan, data: PreparedData, store: ArtifactStore, work_dir: Path) -> Any:
    """The compiled core model, its optimizer built (so checkpoints can restore into it)."""
    from sluice_training.models import (
        ModelSchema,
        build_builtin,
        build_user_model,
        compile_for_task,
    )

    if job.model.family is ModelFamily.USER_MODULE:
        model = build_user_model(
            job.model, ModelSchema(data.schema, data.plan), job.hyperparameters, store, work_dir
        )
        if not model.compiled:
            compile_for_task(model, data.plan.label.task, job.hyperparameters)
    else:
        model = build_builtin(data.plan, job.model, job.hyperparameters)
        compile_for_task(model, data.plan.label.task, job.hyperparameters)
    model.optimizer.build(model.trainable_variables)
    return model


def prepare_data(
    job: JobPlan, store: ArtifactStore, fixed_plan: FeaturePlan | None = None
) -> PreparedData:
    """Read and check the schema, statistics and data; build (or reuse) the feature plan."""
    schema = parse_schema(_read(store, job.schema_uri, "spec.schema", "SCHEMA_NOT_FOUND"))
    statistics = None
    if job.statistics_uri:
        statistics = parse_statistics(
            _read(store, job.statistics_uri, "spec.statistics", "DATA_NOT_FOUND")
        )
    text_columns = string_columns(schema)
    table = read_table(job.train_data, store, "spec.train_data", text_columns)
    plan = fixed_plan or build_feature_plan(
        schema,
        table,
        label=job.label,
        task=job.model.task,
        num_classes=job.model.num_classes,
        statistics=statistics,
        options=EncodingOptions.from_hyperparameters(job.hyperparameters),
    )
    x = feature_arrays(table, plan)
    y = label_array(table, plan.label)
    eval_x = eval_y = None
    if job.eval_data is not None:
        eval_table = read_table(job.eval_data, store, "spec.eval_data", text_columns)
        eval_x = feature_arrays(eval_table, plan)
        eval_y = label_array(eval_table, plan.label)
    return PreparedData(plan=plan, schema=schema, x=x, y=y, eval_x=eval_x, eval_y=eval_y)


def export(
    model: Any,
    plan: FeaturePlan,
    out_dir: Path,
    raw_sample: dict[str, np.ndarray],
    work_dir: Path,
) -> dict[str, Any]:
    """The SavedModel + model.keras export: in-process under TensorFlow, else in a TF process."""
    import keras

    from sluice_training.export import export_model, sample_rows

    sample = sample_rows(raw_sample)
    if keras.backend.backend() == "tensorflow":
        try:
            return export_model(model, plan, out_dir, sample)
        except TrainingFailure:
            raise
        except Exception as error:
            raise TrainingFailure(
                "EXPORT_FAILED", f"export failed: {type(error).__name__}: {error}"
            ) from error
    staging = Path(tempfile.mkdtemp(prefix="export-request-", dir=work_dir))
    model.save(staging / "core.keras")
    (staging / "plan.json").write_text(json.dumps(plan.to_json()))
    (staging / "sample.json").write_text(json.dumps(sample))
    request = {
        "core": str(staging / "core.keras"),
        "plan": str(staging / "plan.json"),
        "sample": str(staging / "sample.json"),
        "out": str(out_dir),
    }
    (staging / "request.json").write_text(json.dumps(request))
    return _export_in_tensorflow_process(staging / "request.json", out_dir)


def _export_in_tensorflow_process(request: Path, out_dir: Path) -> dict[str, Any]:
    from sluice_training.export import RESULT_FILE

    # On the CPU: the model is small, and the worker may still hold the accelerator's memory.
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "sluice_training.export", str(request)],
            env=env,
            capture_output=True,
            text=True,
            timeout=EXPORT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TrainingFailure(
            "EXPORT_FAILED", f"the export took more than {EXPORT_TIMEOUT_SECONDS} s"
        ) from None
    result_path = out_dir / RESULT_FILE
    if not result_path.exists():
        tail = completed.stderr.strip().splitlines()[-5:]
        if "No module named 'tensorflow'" in completed.stderr:
            raise TrainingFailure(
                "TENSORFLOW_REQUIRED",
                "the SavedModel export needs TensorFlow, which is not installed where the worker "
                "runs; install tensorflow next to the worker",
            )
        raise TrainingFailure(
            "EXPORT_FAILED",
            f"the export process failed: {' | '.join(tail) or completed.returncode}",
        )
    outcome = json.loads(result_path.read_text())
    result_path.unlink()  # not part of the model folder
    if "failure" in outcome:
        failure = outcome["failure"]
        raise TrainingFailure(failure["reason"], failure["message"], field=failure.get("field", ""))
    signature: dict[str, Any] = outcome["signature"]
    return signature


def _read(store: ArtifactStore, uri: str, field: str, missing_reason: str) -> bytes:
    location = locate(uri, store.root_uri, field)
    try:
        if location.key:
            return store.get_bytes(location.key)
        return Path(location.path).read_bytes()
    except (ArtifactNotFound, FileNotFoundError):
        raise TrainingFailure(missing_reason, f"nothing at {field} = {uri}", field=field) from None


def _seed(seed: int) -> None:
    """Seed Python, NumPy and the backend; keras.utils.set_random_seed would import TensorFlow
    under every backend."""
    import random

    import keras

    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)  # Keras draws its global seed generator's seed from Python's random
    np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch  # type: ignore[import-not-found]

        torch.manual_seed(seed)
