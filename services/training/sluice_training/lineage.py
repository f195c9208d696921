"""Lineage in the metadata service, through the SDK's `MetadataClient`.

What a training job records:

* at its first start, an execution of type ``Trainer`` (RUNNING, named after the job, external id
  = the job name) with INPUT events to its data (``examples``, ``eval_examples``), ``schema``,
  ``statistics`` and ``base_model`` artifacts (existing ones by id; URIs given without an id are
  recorded as new ``Examples`` / ``Schema`` / ``ExampleStatistics`` / ``Model`` artifacts whose
  external id is ``uri:<uri>``) and its hyperparameters as a custom property;
* on success, in one transaction: a LIVE ``Model`` artifact (uri, digest, hyperparameters, eval
  metrics, external id = the job name, so a retry cannot register it twice) with an OUTPUT event
  ``model``, and the execution COMPLETE; on failure or cancellation the execution FAILED/CANCELED.

The latest blessed model (warm start ``MODE_LATEST_BLESSED``) is the newest model whose newest
LIVE ``ModelBlessing`` artifact (``current_model_id`` or ``model_id`` custom property) has the
custom property ``blessed`` = 1 (TFX's convention), in the spec's context when ``context_id`` is
set: the evaluation service's rule, so a blessing overridden to NOT_BLESSED is withdrawn here too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from google.protobuf import json_format
from sluice.client import MetadataClient
from sluice.client.errors import AlreadyExistsError, NotFoundError, SluiceRpcError
from sluice.client.values import from_value, to_properties
from sluice.metadata.v1 import (
    artifact_pb2,
    context_pb2,
    event_pb2,
    execution_pb2,
    metadata_service_pb2,
)
from sluice.training.v1 import training_job_pb2 as pb

from sluice_training.failures import TrainingFailure
from sluice_training.jobs import Job, JobState, Result
from sluice_training.spec import ResolvedInputs

TRAINER_TYPE = "Trainer"
MODEL_TYPE = "Model"
BLESSING_TYPE = "ModelBlessing"
INPUT_TYPES = {
    "examples": "Examples",
    "eval_examples": "Examples",
    "schema": "Schema",
    "statistics": "ExampleStatistics",
    "base_model": MODEL_TYPE,
}
RPC_TIMEOUT_SECONDS = 10.0


class Lineage(Protocol):
    def resolve(self, spec: pb.TrainingSpec) -> tuple[ResolvedInputs, int]:
        """The inputs' URIs and the base model's artifact id (0 when unknown or none)."""

    def start(self, job: Job, spec: pb.TrainingSpec, inputs: ResolvedInputs, base_id: int) -> int:
        """Record the running execution; its id (0 without a metadata service)."""

    def succeed(self, job: Job, spec: pb.TrainingSpec, result: Result) -> int:
        """Register the model and complete the execution; the Model artifact's id (0: none)."""

    def end(self, job: Job, state: JobState) -> None:
        """Mark the execution FAILED or CANCELED (best effort)."""


class NoLineage:
    """No metadata service: URIs only; MODE_LATEST_BLESSED is a cold start."""

    def resolve(self, spec: pb.TrainingSpec) -> tuple[ResolvedInputs, int]:
        base = ""
        if spec.warm_start.mode == pb.WarmStart.MODE_EXPLICIT:
            base = spec.warm_start.base_model.uri
        return _uris(spec, base), 0

    def start(self, job: Job, spec: pb.TrainingSpec, inputs: ResolvedInputs, base_id: int) -> int:
        return 0

    def succeed(self, job: Job, spec: pb.TrainingSpec, result: Result) -> int:
        return 0

    def end(self, job: Job, state: JobState) -> None:
        return None


class MetadataLineage:
    def __init__(self, client: MetadataClient) -> None:
        self.client = client
        self._types_registered = False
        self._inputs: dict[str, list[tuple[str, int, str]]] = {}

    def resolve(self, spec: pb.TrainingSpec) -> tuple[ResolvedInputs, int]:
        with _unavailable_as_failure():
            train = self._uri(spec.train_data.data, "spec.train_data.data", "DATA_NOT_FOUND")
            eval_uri = (
                self._uri(spec.eval_data.data, "spec.eval_data.data", "DATA_NOT_FOUND")
                if spec.HasField("eval_data")
                else ""
            )
            schema = self._uri(spec.schema, "spec.schema", "SCHEMA_NOT_FOUND")
            statistics = self._uri(spec.statistics, "spec.statistics", "DATA_NOT_FOUND")
            base_uri, base_id = self._base_model(spec)
        inputs = ResolvedInputs(
            train_data=train,
            eval_data=eval_uri,
            schema=schema,
            statistics=statistics,
            base_model=base_uri,
        )
        return inputs, base_id

    def start(self, job: Job, spec: pb.TrainingSpec, inputs: ResolvedInputs, base_id: int) -> int:
        if job.execution_id:
            return job.execution_id
        refs = [
            ("examples", spec.train_data.data.artifact_id, inputs.train_data),
            ("eval_examples", spec.eval_data.data.artifact_id, inputs.eval_data),
            ("schema", spec.schema.artifact_id, inputs.schema),
            ("statistics", spec.statistics.artifact_id, inputs.statistics),
            ("base_model", base_id, inputs.base_model),
        ]
        artifact_events = []
        for role, artifact_id, uri in refs:
            if not artifact_id and not uri:
                continue
            artifact = (
                artifact_pb2.Artifact(id=artifact_id)
                if artifact_id
                else artifact_pb2.Artifact(
                    type=INPUT_TYPES[role],
                    uri=uri,
                    external_id=f"uri:{uri}",
                    state=artifact_pb2.Artifact.STATE_LIVE,
                )
            )
            artifact_events.append(
                metadata_service_pb2.ArtifactAndEvent(
                    artifact=artifact,
                    event=event_pb2.Event(type=event_pb2.Event.TYPE_INPUT, path=role),
                )
            )
        execution = execution_pb2.Execution(
            type=TRAINER_TYPE,
            name=job.name,
            external_id=job.name,
            state=execution_pb2.Execution.STATE_RUNNING,
            custom_properties=to_properties(
                {
                    "training_job": job.name,
                    "hyperparameters": _hyperparameters(spec),
                    "label": spec.label,
                },
                "custom_properties",
            ),
        )
        with _unavailable_as_failure():
            self._register_types()
            response = self.client.put_execution(
                execution=execution,
                artifact_events=artifact_events,
                contexts=_contexts(spec),
                timeout=RPC_TIMEOUT_SECONDS,
            )
        return int(response.execution_id)

    def succeed(self, job: Job, spec: pb.TrainingSpec, result: Result) -> int:
        if not job.execution_id:
            return 0
        metrics = {f"eval_{k}": v for k, v in result.eval_metrics.items() if math.isfinite(v)}
        model = artifact_pb2.Artifact(
            type=MODEL_TYPE,
            uri=result.model_uri,
            name=f"model-{job.id}",
            external_id=job.name,
            digest=result.digest,
            state=artifact_pb2.Artifact.STATE_LIVE,
            custom_properties=to_properties(
                {
                    "training_job": job.name,
                    "hyperparameters": _hyperparameters(spec),
                    "base_model_uri": result.base_model_uri,
                    **metrics,
                },
                "custom_properties",
            ),
        )
        execution = execution_pb2.Execution(
            id=job.execution_id,
            type=TRAINER_TYPE,
            name=job.name,
            external_id=job.name,
            state=execution_pb2.Execution.STATE_COMPLETE,
        )
        with _unavailable_as_failure():
            response = self.client.put_execution(
                execution=execution,
                artifact_events=[
                    metadata_service_pb2.ArtifactAndEvent(
                        artifact=model,
                        event=event_pb2.Event(type=event_pb2.Event.TYPE_OUTPUT, path="model"),
                    )
                ],
                contexts=_contexts(spec),
                timeout=RPC_TIMEOUT_SECONDS,
            )
        return int(response.artifact_ids[0])

    def end(self, job: Job, state: JobState) -> None:
        if not job.execution_id:
            return
        final = (
            execution_pb2.Execution.STATE_CANCELED
            if state is JobState.CANCELLED
            else execution_pb2.Execution.STATE_FAILED
        )
        # Best effort: the job's own record says what happened.
        with contextlib.suppress(SluiceRpcError):
            self.client.put_executions(
                executions=[
                    execution_pb2.Execution(
                        id=job.execution_id,
                        type=TRAINER_TYPE,
                        name=job.name,
                        external_id=job.name,
                        state=final,
                    )
                ],
                timeout=RPC_TIMEOUT_SECONDS,
            )

    # -- helpers --------------------------------------------------------------------------------

    def _register_types(self) -> None:
        if self._types_registered:
            return
        for name in {*INPUT_TYPES.values(), MODEL_TYPE}:
            _put_type(self.client, name, "artifact")
        _put_type(self.client, TRAINER_TYPE, "execution")
        self._types_registered = True

    def _uri(self, ref: Any, field: str, missing_reason: str) -> str:
        if not ref.artifact_id:
            return str(ref.uri)
        try:
            artifact = self.client.get_artifact(ref.artifact_id, timeout=RPC_TIMEOUT_SECONDS)
        except NotFoundError:
            raise TrainingFailure(
                missing_reason,
                f"{field}.artifact_id {ref.artifact_id} is not in the metadata service",
                field=f"{field}.artifact_id",
            ) from None
        if ref.uri and artifact.uri.rstrip("/") != ref.uri.rstrip("/"):
            raise TrainingFailure(
                "INPUT_MISMATCH",
                f"{field}: artifact {ref.artifact_id} is at {artifact.uri}, not {ref.uri}",
                field=f"{field}.uri",
            )
        if not artifact.uri:
            raise TrainingFailure(
                missing_reason,
                f"{field}: artifact {ref.artifact_id} has no uri",
                field=f"{field}.artifact_id",
            )
        return str(artifact.uri)

    def _base_model(self, spec: pb.TrainingSpec) -> tuple[str, int]:
        mode = spec.warm_start.mode
        if mode == pb.WarmStart.MODE_NONE:
            return "", 0
        if mode == pb.WarmStart.MODE_EXPLICIT:
            ref = spec.warm_start.base_model
            return (
                self._uri(ref, "spec.warm_start.base_model", "BASE_MODEL_NOT_FOUND"),
                int(ref.artifact_id),
            )
        # The evaluation service's rule: a model's newest blessing decides (an override to
        # NOT_BLESSED withdraws an earlier blessing); the newest model so decided blessed wins.
        query = f'type = "{BLESSING_TYPE}" AND state = LIVE'
        if spec.context_id:
            query += f" AND context.id = {spec.context_id}"
        decided: set[int] = set()
        try:
            # Newest first by id: ids grow with every put, where create times may tie.
            for blessing in self.client.iter_artifacts(
                query, order_by="id desc", page_size=100, timeout=RPC_TIMEOUT_SECONDS
            ):
                properties = {k: from_value(v) for k, v in blessing.custom_properties.items()}
                model_id = int(
                    properties.get("current_model_id") or properties.get("model_id") or 0
                )
                if not model_id or model_id in decided:
                    continue
                decided.add(model_id)
                if int(properties.get("blessed") or 0) == 1:
                    model = self.client.get_artifact(model_id, timeout=RPC_TIMEOUT_SECONDS)
                    return str(model.uri), model_id
        except SluiceRpcError as error:
            if error.code.name == "INVALID_ARGUMENT":  # no ModelBlessing type yet: nothing blessed
                return "", 0
            raise
        return "", 0


@contextlib.contextmanager
def _unavailable_as_failure() -> Iterator[None]:
    """Turns a failing or unreachable metadata service into METADATA_UNAVAILABLE."""
    try:
        yield
    except SluiceRpcError as error:
        raise TrainingFailure(
            "METADATA_UNAVAILABLE",
            f"the metadata service failed: {error}; create the job again once it is back",
        ) from error


def _put_type(client: MetadataClient, name: str, kind: str) -> None:
    # Defined by another service with more properties is fine: ours are all custom properties.
    with contextlib.suppress(AlreadyExistsError):
        client.put_type(name, kind, timeout=RPC_TIMEOUT_SECONDS)


def _contexts(spec: pb.TrainingSpec) -> list[context_pb2.Context]:
    return [context_pb2.Context(id=spec.context_id)] if spec.context_id else []


def _hyperparameters(spec: pb.TrainingSpec) -> Mapping[str, Any]:
    if not spec.HasField("hyperparameters"):
        return {}
    converted: dict[str, Any] = json_format.MessageToDict(spec.hyperparameters)
    return converted


def _uris(spec: pb.TrainingSpec, base_model: str) -> ResolvedInputs:
    return ResolvedInputs(
        train_data=spec.train_data.data.uri,
        eval_data=spec.eval_data.data.uri if spec.HasField("eval_data") else "",
        schema=spec.schema.uri,
        statistics=spec.statistics.uri,
        base_model=base_model,
    )
