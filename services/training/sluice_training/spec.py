"""Checking a `TrainingSpec` at Create, and turning it into a worker's `JobPlan` at start.

Create rejects what is wrong whatever the data (a missing label name, an unknown backend, a
multi-worker job on JAX...) with INVALID_ARGUMENT naming the field. What depends on the data
(the label missing from the file, a schema/data mismatch) is found by the worker and fails the job.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from sluice.common.v1 import data_pb2
from sluice.training.v1 import training_job_pb2 as pb
from sluice_runtime.errors import FailedPrecondition, InvalidArgument

from sluice_training.locations import locate
from sluice_training.plan import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FUNCTION,
    KERAS_BACKENDS,
    DataRef,
    JobPlan,
    ModelFamily,
    ModelPlan,
    Task,
)

MAX_WORKERS = 64
MAX_BATCH_SIZE = 1 << 20
MAX_HIDDEN_UNITS = 1 << 16
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_TASKS: dict[int, Task] = {
    pb.TASK_BINARY_CLASSIFICATION: Task.BINARY,
    pb.TASK_MULTICLASS_CLASSIFICATION: Task.MULTICLASS,
    pb.TASK_REGRESSION: Task.REGRESSION,
}
_FORMATS: dict[int, str] = {
    data_pb2.DATA_FORMAT_UNSPECIFIED: "",
    data_pb2.DATA_FORMAT_CSV: "csv",
    data_pb2.DATA_FORMAT_PARQUET: "parquet",
}


@dataclass(frozen=True)
class SpecContext:
    """What validation needs to know about the service."""

    store_root_uri: str
    default_backend: str = "tensorflow"
    metadata_configured: bool = False
    kubernetes_enabled: bool = False


@dataclass(frozen=True)
class ResolvedInputs:
    """URIs of the spec's inputs, artifact ids resolved through the metadata service."""

    train_data: str
    schema: str
    eval_data: str = ""
    statistics: str = ""
    base_model: str = ""


def validate_spec(spec: pb.TrainingSpec, context: SpecContext) -> None:
    """Raise InvalidArgument (or FailedPrecondition) naming the first field at fault."""
    _check_source(spec.train_data, "spec.train_data", context, required=True)
    if spec.HasField("eval_data"):
        _check_source(spec.eval_data, "spec.eval_data", context, required=False)
    _check_ref(spec.schema, "spec.schema", context, required=True)
    _check_ref(spec.statistics, "spec.statistics", context, required=False)
    if not spec.label.strip():
        raise InvalidArgument("spec.label must name the label column", field="spec.label")
    model_plan(spec)  # validates the model oneof
    if spec.epochs < 0:
        raise InvalidArgument(
            f"spec.epochs must be 0 or more, got {spec.epochs}", field="spec.epochs"
        )
    if spec.max_steps < 0:
        raise InvalidArgument(
            f"spec.max_steps must be 0 or more, got {spec.max_steps}", field="spec.max_steps"
        )
    if not 0 <= spec.batch_size <= MAX_BATCH_SIZE:
        raise InvalidArgument(
            f"spec.batch_size must be between 1 and {MAX_BATCH_SIZE} (0: {DEFAULT_BATCH_SIZE}), "
            f"got {spec.batch_size}",
            field="spec.batch_size",
        )
    if spec.checkpoint_every_steps < 0:
        raise InvalidArgument(
            "spec.checkpoint_every_steps must be 0 (once per epoch) or more",
            field="spec.checkpoint_every_steps",
        )
    if spec.output_uri:
        location = locate(spec.output_uri, context.store_root_uri, "spec.output_uri")
        if not location.key:
            raise InvalidArgument(
                f"spec.output_uri must be in the artifact store ({context.store_root_uri})",
                field="spec.output_uri",
            )
    _check_warm_start(spec.warm_start, context)
    _check_placement(spec.placement, context)
    if spec.context_id < 0:
        raise InvalidArgument("spec.context_id must not be negative", field="spec.context_id")
    if spec.context_id and not context.metadata_configured:
        raise FailedPrecondition(
            "spec.context_id needs the metadata service: set SLUICE_METADATA_ADDRESS",
            field="spec.context_id",
            reason="METADATA_NOT_CONFIGURED",
        )


def model_plan(spec: pb.TrainingSpec) -> ModelPlan:
    which = spec.WhichOneof("model")
    if which == "builtin":
        builtin = spec.builtin
        task = _task(builtin.task, "spec.builtin.task")
        if any(not 1 <= u <= MAX_HIDDEN_UNITS for u in builtin.hidden_units):
            raise InvalidArgument(
                f"spec.builtin.hidden_units must each be between 1 and {MAX_HIDDEN_UNITS}",
                field="spec.builtin.hidden_units",
            )
        _check_classes(task, builtin.num_classes, "spec.builtin.num_classes")
        family = (
            ModelFamily.WIDE_AND_DEEP
            if builtin.kind == pb.BuiltinModel.KIND_WIDE_AND_DEEP
            else ModelFamily.DNN
        )
        return ModelPlan(
            family=family,
            task=task,
            hidden_units=tuple(builtin.hidden_units),
            num_classes=builtin.num_classes,
        )
    if which == "user_module":
        module = spec.user_module
        if not _MODULE_NAME.match(module.module):
            raise InvalidArgument(
                f"spec.user_module.module must be a dotted module path, got {module.module!r}",
                field="spec.user_module.module",
            )
        function = module.function or DEFAULT_FUNCTION
        if not function.isidentifier():
            raise InvalidArgument(
                f"spec.user_module.function must be a Python name, got {function!r}",
                field="spec.user_module.function",
            )
        task = _task(module.task, "spec.user_module.task")
        _check_classes(task, module.num_classes, "spec.user_module.num_classes")
        return ModelPlan(
            family=ModelFamily.USER_MODULE,
            task=task,
            num_classes=module.num_classes,
            module=module.module,
            source_uri=module.source_uri,
            function=function,
        )
    raise InvalidArgument("spec.model: set spec.builtin or spec.user_module", field="spec.builtin")


def job_plan(
    job_id: str,
    attempt: int,
    spec: pb.TrainingSpec,
    inputs: ResolvedInputs,
    context: SpecContext,
) -> JobPlan:
    """The worker's plan for one attempt (the spec already passed `validate_spec`)."""
    hyperparameters: dict[str, Any] = (
        json_format.MessageToDict(spec.hyperparameters) if spec.HasField("hyperparameters") else {}
    )
    seed = hyperparameters.get("seed")
    output_prefix = (
        locate(spec.output_uri, context.store_root_uri, "spec.output_uri").key.rstrip("/")
        if spec.output_uri
        else f"models/{job_id}"
    )
    placement = spec.placement
    return JobPlan(
        job_id=job_id,
        attempt=attempt,
        store_uri=context.store_root_uri,
        train_data=DataRef(uri=inputs.train_data, format=_FORMATS[spec.train_data.format]),
        eval_data=DataRef(uri=inputs.eval_data, format=_FORMATS[spec.eval_data.format])
        if inputs.eval_data
        else None,
        schema_uri=inputs.schema,
        statistics_uri=inputs.statistics,
        label=spec.label,
        model=model_plan(spec),
        hyperparameters=hyperparameters,
        epochs=spec.epochs or (0 if spec.max_steps else 1),
        max_steps=spec.max_steps,
        batch_size=spec.batch_size or DEFAULT_BATCH_SIZE,
        checkpoint_every_steps=spec.checkpoint_every_steps,
        base_model_uri=inputs.base_model,
        keras_backend=placement.keras_backend or context.default_backend,
        num_workers=max(placement.num_workers, 1),
        output_prefix=output_prefix,
        checkpoint_prefix=f"training-jobs/{job_id}/checkpoints",
        seed=int(seed) if isinstance(seed, int | float) else zlib.crc32(job_id.encode()),
    )


def _task(value: int, field: str) -> Task:
    if value not in _TASKS:
        raise InvalidArgument(
            f"{field} must be TASK_BINARY_CLASSIFICATION, TASK_MULTICLASS_CLASSIFICATION or "
            "TASK_REGRESSION",
            field=field,
        )
    return _TASKS[value]


def _check_classes(task: Task, num_classes: int, field: str) -> None:
    if num_classes < 0 or (task is Task.MULTICLASS and num_classes == 1):
        raise InvalidArgument(
            f"{field} must be 0 (from the data) or at least 2, got {num_classes}", field=field
        )


def _check_source(
    source: data_pb2.DataSource, field: str, context: SpecContext, *, required: bool
) -> None:
    if source.format not in _FORMATS:
        raise InvalidArgument(
            f"{field}.format: training reads CSV or Parquet", field=f"{field}.format"
        )
    _check_ref(source.data, f"{field}.data", context, required=required)


def _check_ref(ref: Any, field: str, context: SpecContext, *, required: bool) -> None:
    if ref.artifact_id < 0:
        raise InvalidArgument(
            f"{field}.artifact_id must not be negative", field=f"{field}.artifact_id"
        )
    if ref.uri:
        locate(ref.uri, context.store_root_uri, f"{field}.uri")
    elif ref.artifact_id:
        if not context.metadata_configured:
            raise FailedPrecondition(
                f"{field}.artifact_id needs the metadata service to resolve it: give {field}.uri "
                "or set SLUICE_METADATA_ADDRESS",
                field=f"{field}.artifact_id",
                reason="METADATA_NOT_CONFIGURED",
            )
    elif required:
        raise InvalidArgument(f"{field}: give a uri or an artifact_id", field=f"{field}.uri")


def _check_warm_start(warm_start: pb.WarmStart, context: SpecContext) -> None:
    if warm_start.mode == pb.WarmStart.MODE_EXPLICIT:
        _check_ref(warm_start.base_model, "spec.warm_start.base_model", context, required=True)
    elif warm_start.base_model.uri or warm_start.base_model.artifact_id:
        raise InvalidArgument(
            "spec.warm_start.base_model is only read with MODE_EXPLICIT",
            field="spec.warm_start.mode",
        )


def _check_placement(placement: pb.Placement, context: SpecContext) -> None:
    backend = placement.keras_backend or context.default_backend
    if backend not in KERAS_BACKENDS:
        raise InvalidArgument(
            f"spec.placement.keras_backend must be one of {', '.join(KERAS_BACKENDS)}, got "
            f"{backend!r}",
            field="spec.placement.keras_backend",
        )
    if not 0 <= placement.num_workers <= MAX_WORKERS:
        raise InvalidArgument(
            f"spec.placement.num_workers must be between 1 and {MAX_WORKERS}",
            field="spec.placement.num_workers",
        )
    if placement.num_workers > 1 and backend != "tensorflow":
        raise InvalidArgument(
            "several workers use tf.distribute.MultiWorkerMirroredStrategy: set "
            "spec.placement.keras_backend to tensorflow or num_workers to 1",
            field="spec.placement.num_workers",
        )
    if placement.gpus_per_worker < 0:
        raise InvalidArgument(
            "spec.placement.gpus_per_worker must not be negative",
            field="spec.placement.gpus_per_worker",
        )
    if placement.kind == pb.Placement.KIND_KUBERNETES:
        if not context.kubernetes_enabled:
            raise FailedPrecondition(
                "this training service cannot start Kubernetes jobs: set "
                "SLUICE_TRAINING_K8S_IMAGE (and run it with access to the Kubernetes API)",
                field="spec.placement.kind",
                reason="KUBERNETES_NOT_CONFIGURED",
            )
    elif placement.namespace or placement.node_selector:
        raise InvalidArgument(
            "spec.placement.namespace and node_selector apply to KIND_KUBERNETES only",
            field="spec.placement.kind",
        )
