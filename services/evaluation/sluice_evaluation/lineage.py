"""What the evaluation service reads from and writes to the metadata service.

Written (types registered on first use; free-form values go in custom properties):

- an ``Evaluator`` execution per evaluation: inputs ``model``, ``examples``, ``baseline_model``;
  outputs a ``ModelEvaluation`` (the metrics JSON) and a ``ModelBlessing`` with TFX's custom
  properties ``blessed`` (1 or 0), ``current_model_id`` and ``current_model`` (the model's id and
  URI), ``baseline_model_id`` / ``baseline_model`` when there was one, and ``evaluation`` (the
  evaluation's name). The training service's warm start reads the same properties. A failed
  evaluation is recorded as a FAILED execution with no outputs;
- a ``VerdictOverride`` execution when a person overrides a verdict: input the evaluation, output a
  new ``ModelBlessing`` carrying ``override_reason`` and ``overridden_by``;
- an ``InfraValidator`` execution per infra validation: input ``model``, output an
  ``InfraBlessing`` with ``blessed`` 1 or 0.

The baseline rule ("the model serving now"), within the spec's context when it names one:

1. the model of the newest live ``PushedModel`` artifact (custom property ``current_model_id``,
   ``model_artifact_id`` or ``model_id``), other than the candidate: a push is the record of what
   is serving;
2. otherwise the newest model, other than the candidate, whose newest ``ModelBlessing`` has
   ``blessed`` = 1 (overrides included): the pusher only pushes blessed models;
3. otherwise none: a cold start, judged by value thresholds alone.

Without a metadata service (`NoLineage`) models and data are given by URI, nothing is recorded, and
there is never a default baseline.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluice.client import MetadataClient
from sluice.client.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    NotFoundError,
    SluiceRpcError,
    UnavailableError,
)
from sluice.client.values import from_properties
from sluice.metadata.v1 import artifact_pb2, context_pb2, event_pb2, execution_pb2
from sluice.metadata.v1 import metadata_service_pb2 as metadata_pb
from sluice_runtime.errors import (
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    SluiceError,
    Unavailable,
)

from sluice_evaluation.spec import ArtifactRef

logger = logging.getLogger(__name__)

MODEL = "Model"
EXAMPLES = "Examples"
MODEL_EVALUATION = "ModelEvaluation"
MODEL_BLESSING = "ModelBlessing"
INFRA_BLESSING = "InfraBlessing"
PUSHED_MODEL = "PushedModel"
EVALUATOR = "Evaluator"
INFRA_VALIDATOR = "InfraValidator"
VERDICT_OVERRIDE = "VerdictOverride"
_ARTIFACT_TYPES = (EXAMPLES, MODEL_EVALUATION, MODEL_BLESSING, INFRA_BLESSING)
_EXECUTION_TYPES = (EVALUATOR, INFRA_VALIDATOR, VERDICT_OVERRIDE)


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact as the metadata service knows it; properties and custom properties merged."""

    id: int
    uri: str
    type: str = ""
    name: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationRecord:
    """One evaluation's lineage: ids of 0 are unknown to the metadata service."""

    name: str
    model: ArtifactRecord
    data_uri: str
    data_artifact_id: int
    baseline: ArtifactRecord | None
    context_id: int
    evaluation_uri: str
    blessing_uri: str
    blessed: bool
    verdict: str
    task: str


@dataclass(frozen=True)
class Recorded:
    """Ids the metadata service gave the execution and its outputs (0 when nothing was recorded)."""

    execution_id: int = 0
    output_ids: tuple[int, ...] = ()


class Lineage(Protocol):
    """The metadata operations the evaluation service needs."""

    def artifact(self, artifact_id: int, field: str) -> ArtifactRecord:
        """The artifact with this id; NotFound naming ``field`` when there is none."""
        ...

    def model_by_uri(self, uri: str) -> ArtifactRecord:
        """The newest Model artifact at ``uri``, or a record with id 0 when none is known."""
        ...

    def serving_baseline(self, candidate: ArtifactRecord, context_id: int) -> ArtifactRecord | None:
        """The model serving now (see the module docstring), or None."""
        ...

    def record_evaluation(self, record: EvaluationRecord) -> Recorded:
        """Outputs: (evaluation artifact id, blessing artifact id)."""
        ...

    def record_failure(
        self, execution_type: str, name: str, model: ArtifactRecord, context_id: int, message: str
    ) -> None:
        """Best effort: a FAILED execution with the model as input."""
        ...

    def record_override(
        self,
        name: str,
        model: ArtifactRecord,
        evaluation_artifact_id: int,
        blessing_uri: str,
        blessed: bool,
        reason: str,
        actor: str,
    ) -> Recorded:
        """Outputs: (new blessing artifact id,)."""
        ...

    def record_infra_validation(
        self, name: str, model: ArtifactRecord, blessing_uri: str, blessed: bool, summary: str
    ) -> Recorded:
        """Outputs: (infra blessing artifact id,)."""
        ...


def resolve_model(lineage: Lineage, ref: ArtifactRef, field: str) -> ArtifactRecord:
    """The model artifact a reference names: by id (its URI must agree when both are given), or
    by URI (the newest Model recorded there, or an unrecorded one with id 0)."""
    if not ref.artifact_id:
        return lineage.model_by_uri(ref.uri)
    record = lineage.artifact(ref.artifact_id, f"{field}.artifact_id")
    if ref.uri and ref.uri.rstrip("/") != record.uri.rstrip("/"):
        raise InvalidArgument(
            f"{field}: artifact {ref.artifact_id} is at {record.uri!r}, not {ref.uri!r}",
            field=f"{field}.uri",
        )
    if not record.uri:
        raise FailedPrecondition(
            f"{field}: artifact {ref.artifact_id} has no URI", field=f"{field}.artifact_id"
        )
    return record


def resolve_data(lineage: Lineage, ref: ArtifactRef, field: str) -> tuple[str, int]:
    """(URI, artifact id) of a data reference; the id is 0 when given by URI only."""
    if not ref.artifact_id:
        return ref.uri, 0
    record = resolve_model(lineage, ref, field)  # the same checks hold for any artifact
    return record.uri, record.id


class NoLineage:
    """No metadata service: URIs only, nothing recorded, no default baseline."""

    def artifact(self, artifact_id: int, field: str) -> ArtifactRecord:
        raise FailedPrecondition(
            f"{field}: artifact ids need the metadata service, which this evaluation service is "
            "not connected to (set SLUICE_METADATA_ADDRESS); give the URI instead",
            field=field,
            reason="METADATA_NOT_CONFIGURED",
        )

    def model_by_uri(self, uri: str) -> ArtifactRecord:
        return ArtifactRecord(0, uri, MODEL)

    def serving_baseline(self, candidate: ArtifactRecord, context_id: int) -> ArtifactRecord | None:
        return None

    def record_evaluation(self, record: EvaluationRecord) -> Recorded:
        return Recorded()

    def record_failure(
        self, execution_type: str, name: str, model: ArtifactRecord, context_id: int, message: str
    ) -> None:
        return None

    def record_override(
        self,
        name: str,
        model: ArtifactRecord,
        evaluation_artifact_id: int,
        blessing_uri: str,
        blessed: bool,
        reason: str,
        actor: str,
    ) -> Recorded:
        return Recorded()

    def record_infra_validation(
        self, name: str, model: ArtifactRecord, blessing_uri: str, blessed: bool, summary: str
    ) -> Recorded:
        return Recorded()


class MetadataLineage:
    """`Lineage` over the metadata service, through the SDK's `MetadataClient`."""

    def __init__(self, client: MetadataClient) -> None:
        self.client = client
        self._types_registered = False

    def artifact(self, artifact_id: int, field: str) -> ArtifactRecord:
        try:
            return _record(self.client.get_artifact(artifact_id))
        except NotFoundError:
            raise NotFound(
                f"{field}: artifact {artifact_id} does not exist in the metadata service",
                field=field,
                reason="ARTIFACT_NOT_FOUND",
            ) from None
        except SluiceRpcError as error:
            raise _domain_error(error, f"reading artifact {artifact_id}") from None

    def model_by_uri(self, uri: str) -> ArtifactRecord:
        query = f"type = {_quote(MODEL)} AND uri = {_quote(uri)}"
        found = next(self._artifacts(query, "id desc"), None)
        return found or ArtifactRecord(0, uri, MODEL)

    def serving_baseline(self, candidate: ArtifactRecord, context_id: int) -> ArtifactRecord | None:
        scope = f" AND context.id = {context_id}" if context_id else ""
        for pushed in self._artifacts(f"type = {_quote(PUSHED_MODEL)} AND state = LIVE{scope}"):
            model_id = _model_id(pushed)
            if model_id and model_id != candidate.id:
                return self.artifact(model_id, "baseline")
        decided: set[int] = set()
        for blessing in self._artifacts(f"type = {_quote(MODEL_BLESSING)} AND state = LIVE{scope}"):
            model_id = _model_id(blessing)
            if not model_id or model_id in decided:
                continue
            decided.add(model_id)  # its newest blessing decides
            if model_id != candidate.id and _int_property(blessing, "blessed") == 1:
                return self.artifact(model_id, "baseline")
        return None

    def record_evaluation(self, record: EvaluationRecord) -> Recorded:
        events: list[metadata_pb.ArtifactAndEvent] = []
        if record.model.id:
            events.append(_input(_reference(record.model.id), "model"))
        if record.data_artifact_id:
            events.append(_input(_reference(record.data_artifact_id), "examples"))
        else:
            examples = artifact_pb2.Artifact(
                type=EXAMPLES, uri=record.data_uri, external_id=f"uri:{record.data_uri}"
            )
            examples.state = artifact_pb2.Artifact.STATE_LIVE
            events.append(_input(examples, "examples"))
        if record.baseline is not None and record.baseline.id:
            events.append(_input(_reference(record.baseline.id), "baseline_model"))
        outputs = [
            _output(
                _artifact(
                    MODEL_EVALUATION,
                    record.evaluation_uri,
                    record.name,
                    {"evaluation": record.name, "task": record.task},
                ),
                "evaluation",
            ),
            _output(
                _artifact(
                    MODEL_BLESSING,
                    record.blessing_uri,
                    record.name,
                    _blessing_properties(record.model, record.blessed, record.name)
                    | _baseline_properties(record.baseline)
                    | {"verdict": record.verdict},
                ),
                "blessing",
            ),
        ]
        execution = _execution(
            EVALUATOR,
            record.name,
            execution_pb2.Execution.STATE_COMPLETE,
            {"evaluation": record.name, "verdict": record.verdict, "task": record.task},
        )
        return self._put(execution, [*events, *outputs], record.context_id, len(events))

    def record_failure(
        self, execution_type: str, name: str, model: ArtifactRecord, context_id: int, message: str
    ) -> None:
        execution = _execution(
            execution_type, name, execution_pb2.Execution.STATE_FAILED, {"error": message[:2000]}
        )
        inputs = [_input(_reference(model.id), "model")] if model.id else []
        try:
            self._put(execution, inputs, context_id, len(inputs))
        except SluiceError as error:
            logger.warning("could not record the failure of %s: %s", name, error)

    def record_override(
        self,
        name: str,
        model: ArtifactRecord,
        evaluation_artifact_id: int,
        blessing_uri: str,
        blessed: bool,
        reason: str,
        actor: str,
    ) -> Recorded:
        inputs = []
        if evaluation_artifact_id:
            inputs.append(_input(_reference(evaluation_artifact_id), "evaluation"))
        if model.id:
            inputs.append(_input(_reference(model.id), "model"))
        properties = _blessing_properties(model, blessed, name) | {
            "override_reason": reason,
            "overridden_by": actor,
        }
        blessing = _artifact(MODEL_BLESSING, blessing_uri, "", properties)
        execution = _execution(
            VERDICT_OVERRIDE,
            f"{name} override",
            execution_pb2.Execution.STATE_COMPLETE,
            {"evaluation": name, "reason": reason, "actor": actor, "blessed": int(blessed)},
        )
        return self._put(execution, [*inputs, _output(blessing, "blessing")], 0, len(inputs))

    def record_infra_validation(
        self, name: str, model: ArtifactRecord, blessing_uri: str, blessed: bool, summary: str
    ) -> Recorded:
        inputs = [_input(_reference(model.id), "model")] if model.id else []
        properties = _blessing_properties(model, blessed, name) | {"summary": summary[:2000]}
        blessing = _artifact(INFRA_BLESSING, blessing_uri, name, properties)
        execution = _execution(
            INFRA_VALIDATOR,
            name,
            execution_pb2.Execution.STATE_COMPLETE,
            {"infra_validation": name, "blessed": int(blessed)},
        )
        return self._put(execution, [*inputs, _output(blessing, "blessing")], 0, len(inputs))

    # -- helpers ---------------------------------------------------------------------------------

    def _artifacts(self, query: str, order_by: str = "id desc") -> Iterator[ArtifactRecord]:
        # Newest first: ids grow with every put, where create times may tie.
        try:
            for artifact in self.client.iter_artifacts(query, order_by=order_by, page_size=100):
                yield _record(artifact)
        except SluiceRpcError as error:
            raise _domain_error(error, "looking up artifacts") from None

    def _register_types(self) -> None:
        if self._types_registered:
            return
        try:
            for name in _ARTIFACT_TYPES:
                _put_type(self.client, name, "artifact")
            for name in _EXECUTION_TYPES:
                _put_type(self.client, name, "execution")
        except SluiceRpcError as error:
            raise _domain_error(error, "registering types") from None
        self._types_registered = True

    def _put(
        self,
        execution: execution_pb2.Execution,
        artifact_events: list[metadata_pb.ArtifactAndEvent],
        context_id: int,
        inputs: int,
    ) -> Recorded:
        self._register_types()
        contexts = [context_pb2.Context(id=context_id)] if context_id else []
        try:
            response = self.client.put_execution(
                execution=execution, artifact_events=artifact_events, contexts=contexts
            )
        except SluiceRpcError as error:
            raise _domain_error(error, f"recording {execution.name}") from None
        return Recorded(response.execution_id, tuple(response.artifact_ids[inputs:]))


def _put_type(client: MetadataClient, name: str, kind: str) -> None:
    # AlreadyExists: registered by another service with declared properties; ours are custom.
    with contextlib.suppress(AlreadyExistsError):
        client.put_type(name, kind)


def _record(artifact: artifact_pb2.Artifact) -> ArtifactRecord:
    properties = from_properties(artifact.custom_properties) | from_properties(artifact.properties)
    return ArtifactRecord(artifact.id, artifact.uri, artifact.type, artifact.name, properties)


def _int_property(record: ArtifactRecord, name: str) -> int:
    value = record.properties.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reference(artifact_id: int) -> artifact_pb2.Artifact:
    return artifact_pb2.Artifact(id=artifact_id)


def _artifact(
    type_name: str, uri: str, external_id: str, properties: Mapping[str, int | str]
) -> artifact_pb2.Artifact:
    artifact = artifact_pb2.Artifact(type=type_name, uri=uri, external_id=external_id)
    artifact.state = artifact_pb2.Artifact.STATE_LIVE
    for key, value in properties.items():
        if isinstance(value, int):
            artifact.custom_properties[key].int_value = value
        else:
            artifact.custom_properties[key].string_value = value
    return artifact


def _blessing_properties(model: ArtifactRecord, blessed: bool, name: str) -> dict[str, int | str]:
    # TFX's names, which the training service's warm start reads too.
    return {
        "blessed": int(blessed),
        "current_model_id": model.id,
        "current_model": model.uri,
        "evaluation": name,
    }


def _baseline_properties(baseline: ArtifactRecord | None) -> dict[str, int | str]:
    if baseline is None:
        return {}
    return {"baseline_model_id": baseline.id, "baseline_model": baseline.uri}


def _model_id(record: ArtifactRecord) -> int:
    for name in ("current_model_id", "model_artifact_id", "model_id"):
        if value := _int_property(record, name):
            return value
    return 0


def _execution(
    type_name: str, name: str, state: int, properties: Mapping[str, int | str]
) -> execution_pb2.Execution:
    execution = execution_pb2.Execution(type=type_name, name=name)
    execution.state = state  # type: ignore[assignment]
    for key, value in properties.items():
        if isinstance(value, int):
            execution.custom_properties[key].int_value = value
        else:
            execution.custom_properties[key].string_value = value
    return execution


def _input(artifact: artifact_pb2.Artifact, path: str) -> metadata_pb.ArtifactAndEvent:
    return metadata_pb.ArtifactAndEvent(
        artifact=artifact, event=event_pb2.Event(type=event_pb2.Event.TYPE_INPUT, path=path)
    )


def _output(artifact: artifact_pb2.Artifact, path: str) -> metadata_pb.ArtifactAndEvent:
    return metadata_pb.ArtifactAndEvent(
        artifact=artifact, event=event_pb2.Event(type=event_pb2.Event.TYPE_OUTPUT, path=path)
    )


def _domain_error(error: SluiceRpcError, doing: str) -> SluiceError:
    message = f"metadata service, {doing}: {error.message}"
    if isinstance(error, UnavailableError | DeadlineExceededError):
        return Unavailable(message, reason="METADATA_UNAVAILABLE")
    if isinstance(error, NotFoundError):
        return NotFound(message, field=error.field, reason=error.reason)
    return Internal(message, reason="METADATA_ERROR")
