"""Recording results in the metadata service: one execution per run, with input and output events.

Types follow TFX's names, so lineage reads the same as a TFX pipeline's: artifacts Examples,
ExampleStatistics, Schema and ExampleAnomalies; executions StatisticsGen, SchemaGen and
ExampleValidator. Recording is optional: `NoLineage` is used when no metadata service is
configured, and every result then carries artifact id 0 and execution id 0.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sluice_runtime.errors import FailedPrecondition, NotFound, Unavailable

if TYPE_CHECKING:  # the SDK (and grpc) load only when a metadata service is configured
    from sluice.client.metadata import MetadataClient

log = logging.getLogger(__name__)

EXAMPLES = "Examples"
STATISTICS = "ExampleStatistics"
SCHEMA = "Schema"
ANOMALIES = "ExampleAnomalies"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "SchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
ARTIFACT_TYPES = (EXAMPLES, STATISTICS, SCHEMA, ANOMALIES)
EXECUTION_TYPES = (STATISTICS_GEN, SCHEMA_GEN, EXAMPLE_VALIDATOR)

Property = str | int | float | bool


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact taking part in an execution: an existing one (`artifact_id`) or a new one."""

    type: str
    uri: str = ""
    artifact_id: int = 0
    digest: str = ""
    # Makes a repeated put return the same artifact (used for input data named by URI only).
    external_id: str = ""
    properties: Mapping[str, Property] = field(default_factory=dict)
    path: str = ""  # the event's path, e.g. "statistics", "baseline"


@dataclass(frozen=True)
class Recorded:
    execution_id: int
    input_ids: tuple[int, ...]
    output_ids: tuple[int, ...]


class Lineage(abc.ABC):
    """Where executions and their artifacts are recorded."""

    @abc.abstractmethod
    def record(
        self,
        execution_type: str,
        *,
        inputs: Sequence[ArtifactRecord],
        outputs: Sequence[ArtifactRecord],
        succeeded: bool = True,
        properties: Mapping[str, Property] | None = None,
        name: str = "",
    ) -> Recorded:
        """Record one execution; returns the ids (all 0 when nothing is recorded)."""

    @abc.abstractmethod
    def artifact_uri(self, artifact_id: int) -> str:
        """The URI of a recorded artifact; raises NotFound / FailedPrecondition."""

    def close(self) -> None:
        return None


class NoLineage(Lineage):
    """Records nothing: the service runs without a metadata service."""

    def record(
        self,
        execution_type: str,
        *,
        inputs: Sequence[ArtifactRecord],
        outputs: Sequence[ArtifactRecord],
        succeeded: bool = True,
        properties: Mapping[str, Property] | None = None,
        name: str = "",
    ) -> Recorded:
        return Recorded(0, tuple(r.artifact_id for r in inputs), tuple(0 for _ in outputs))

    def artifact_uri(self, artifact_id: int) -> str:
        raise FailedPrecondition(
            f"artifact {artifact_id} is named by id, but this validation service has no metadata"
            " service (SLUICE_METADATA_ADDRESS unset): give its uri instead",
            field="artifact_id",
            reason="NO_METADATA_SERVICE",
        )


class MetadataLineage(Lineage):
    """Records through the SDK's MetadataClient (types registered once, on first use)."""

    def __init__(self, client: MetadataClient) -> None:
        self._client = client
        self._types_ready = False
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, address: str) -> MetadataLineage:
        import dataclasses

        from sluice.client.config import ClientConfig
        from sluice.client.metadata import MetadataClient

        config = dataclasses.replace(ClientConfig.from_env("metadata"), address=address)
        return cls(MetadataClient(config))

    def _ensure_types(self) -> None:
        with self._lock:
            if self._types_ready:
                return
            for name in ARTIFACT_TYPES:
                self._client.put_type(name, "artifact", can_add_fields=True)
            for name in EXECUTION_TYPES:
                self._client.put_type(name, "execution", can_add_fields=True)
            self._types_ready = True

    def record(
        self,
        execution_type: str,
        *,
        inputs: Sequence[ArtifactRecord],
        outputs: Sequence[ArtifactRecord],
        succeeded: bool = True,
        properties: Mapping[str, Property] | None = None,
        name: str = "",
    ) -> Recorded:
        from sluice.client.values import to_properties
        from sluice.metadata.v1 import artifact_pb2, event_pb2, execution_pb2
        from sluice.metadata.v1 import metadata_service_pb2 as pb

        try:
            self._ensure_types()
        except Exception as error:
            raise _metadata_error(error, "registering the artifact and execution types") from error
        execution = execution_pb2.Execution(
            type=execution_type,
            name=name,
            state=(
                execution_pb2.Execution.STATE_COMPLETE
                if succeeded
                else execution_pb2.Execution.STATE_FAILED
            ),
            custom_properties=to_properties(dict(properties or {}), "custom_properties"),
        )
        pairs = []
        for records, event_type in (
            (inputs, event_pb2.Event.TYPE_INPUT),
            (outputs, event_pb2.Event.TYPE_OUTPUT),
        ):
            for record in records:
                if record.artifact_id:
                    artifact = artifact_pb2.Artifact(id=record.artifact_id)
                else:
                    artifact = artifact_pb2.Artifact(
                        type=record.type,
                        uri=record.uri,
                        digest=record.digest,
                        external_id=record.external_id,
                        state=artifact_pb2.Artifact.STATE_LIVE,
                        custom_properties=to_properties(
                            dict(record.properties), "custom_properties"
                        ),
                    )
                pairs.append(
                    pb.ArtifactAndEvent(
                        artifact=artifact,
                        event=event_pb2.Event(type=event_type, path=record.path),
                    )
                )
        try:
            response = self._client.put_execution(execution=execution, artifact_events=pairs)
        except Exception as error:
            raise _metadata_error(error, "recording the execution") from error
        ids = tuple(int(i) for i in response.artifact_ids)
        return Recorded(int(response.execution_id), ids[: len(inputs)], ids[len(inputs) :])

    def artifact_uri(self, artifact_id: int) -> str:
        from sluice.client.errors import NotFoundError

        try:
            artifact = self._client.get_artifact(artifact_id)
        except NotFoundError:
            raise NotFound(
                f"artifact {artifact_id} does not exist in the metadata service",
                field="artifact_id",
            ) from None
        except Exception as error:
            raise _metadata_error(error, f"looking up artifact {artifact_id}") from error
        return str(artifact.uri)

    def close(self) -> None:
        self._client.close()


def _metadata_error(error: Exception, doing: str) -> Exception:
    """A domain error for a failed metadata call (UNAVAILABLE when it is worth retrying)."""
    code = getattr(getattr(error, "code", None), "name", "")
    if not code:
        return error  # not an RPC error: a bug, reported as such
    message = f"{doing} in the metadata service failed: {error}"
    if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "RESOURCE_EXHAUSTED"):
        return Unavailable(message, reason="METADATA_UNAVAILABLE")
    return FailedPrecondition(message, reason="METADATA_REJECTED")
