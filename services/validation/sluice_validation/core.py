"""The service layer: statistics jobs, schema inference, validation and comparison over artifacts.

Everything the gRPC servicer offers, in plain Python: inputs and outputs are artifact references
and domain objects, results are written to the artifact store and recorded (when configured) in
the metadata service. No grpc here; `servicer` translates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import posixpath
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.errors import InvalidArgument, SluiceError
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from . import lineage as kinds
from .accumulators import SketchSettings
from .artifact_io import ArtifactAccess
from .comparison import ComparisonKind, FeatureDistance, compare
from .formats import statistics_from_bytes, statistics_to_bytes
from .inputs import DataFormat, DataResolver
from .jobs import Job, JobCancelled, JobContext, JobManager, JobProgress, JobStore
from .lineage import ArtifactRecord, Lineage, NoLineage
from .schema import infer_schema, main_dataset, schema_from_text, schema_to_text
from .statistics import Cancelled, Progress, StatsOptions, compute_statistics
from .validation import ValidationResult, comparison_anomalies, validate_statistics

log = logging.getLogger(__name__)

STATISTICS_FILE = "FeatureStats.pb"  # TFX's name for a binary DatasetFeatureStatisticsList
SCHEMA_FILE = "schema.pbtxt"
ANOMALIES_FILE = "SchemaDiff.pb"  # TFX's name for a binary Anomalies
PROTOBUF = "application/x-protobuf"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Ref:
    """An artifact named by its metadata id, its URI, or both (then they must agree)."""

    artifact_id: int = 0
    uri: str = ""

    def __bool__(self) -> bool:
        return bool(self.artifact_id or self.uri)


@dataclass(frozen=True)
class StatisticsJobSpec:
    data: Ref
    data_format: DataFormat | None = None
    options: StatsOptions = field(default_factory=StatsOptions)
    beam_runner: str = ""
    output_uri: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatisticsOutcome:
    statistics: Ref
    row_count: int
    execution_id: int


@dataclass(frozen=True)
class Written:
    """An artifact this service wrote (and recorded)."""

    ref: Ref
    execution_id: int


@dataclass(frozen=True)
class ValidationOutcome:
    anomalies: Written
    result: ValidationResult


@dataclass(frozen=True)
class ComparisonOutcome:
    distances: list[FeatureDistance]
    result: ValidationResult


class ValidationCore:
    """The validation service's operations.

    Args:
        store: the artifact store results are written to.
        lineage: where executions are recorded (NoLineage: nowhere).
        job_workers: statistics jobs running at once.
        beam_pipeline_args, beam_temp_location: for jobs that name a Beam runner.
        job_store: where statistics jobs are recorded (with STATISTICS_JOB_CODEC), so that a
            restarted service still has them; None: in memory only.
    """

    def __init__(
        self,
        store: ArtifactStore,
        lineage: Lineage | None = None,
        *,
        job_workers: int = 1,
        max_jobs_kept: int = 1000,
        beam_pipeline_args: Sequence[str] = (),
        beam_temp_location: str | None = None,
        resolver: DataResolver | None = None,
        job_store: JobStore | None = None,
    ) -> None:
        self.store = store
        self.lineage = lineage or NoLineage()
        self.resolver = resolver or DataResolver(store)
        self.artifacts = ArtifactAccess(store, self.resolver)
        self._beam_args = tuple(beam_pipeline_args)
        self._beam_temp = beam_temp_location
        self.jobs: JobManager[StatisticsJobSpec] = JobManager(
            self._run_statistics, workers=job_workers, max_kept=max_jobs_kept, store=job_store
        )

    def close(self) -> None:
        self.jobs.shutdown(interrupt_running=True, wait=True)
        self.lineage.close()

    # -- statistics jobs ---------------------------------------------------------------------------

    def create_statistics_job(
        self, spec: StatisticsJobSpec, *, request_id: str = ""
    ) -> Job[StatisticsJobSpec]:
        if not spec.data:
            raise InvalidArgument(
                "job.source.data is empty: give the data's uri (or its artifact_id)",
                field="job.source.data",
            )
        if spec.output_uri:
            self.artifacts.output_key(spec.output_uri, field="job.output_uri")
        if spec.beam_runner:
            from .beam_statistics import RUNNERS

            if spec.beam_runner not in RUNNERS:
                raise InvalidArgument(
                    f"unknown Beam runner {spec.beam_runner!r}; use one of {', '.join(RUNNERS)}"
                    " or leave it empty to compute in-process",
                    field="job.options.beam_runner",
                )
        return self.jobs.create(spec, request_id=request_id)

    def _run_statistics(self, spec: StatisticsJobSpec, context: JobContext) -> StatisticsOutcome:
        try:
            return self._compute_job(spec, context)
        except SluiceError as error:
            # Name the field as the request does: the spec came in as CreateStatisticsJob's job.
            if error.field and not error.field.startswith("job."):
                error.field = f"job.{error.field}"
            raise

    def _compute_job(self, spec: StatisticsJobSpec, context: JobContext) -> StatisticsOutcome:
        data_uri = self._resolve(spec.data, "job.source.data")
        files = self.resolver.list_files(data_uri, spec.data_format)
        context.report(
            JobProgress(unit="rows", message=f"reading {len(files)} file(s)"), force=True
        )
        if spec.beam_runner:
            from .beam_statistics import compute_statistics_beam

            statistics = compute_statistics_beam(
                files,
                spec.options,
                runner=spec.beam_runner,
                pipeline_args=self._beam_args,
                temp_location=self._beam_temp,
            )
            row_count = _num_examples(statistics)
        else:

            def on_progress(progress: Progress) -> None:
                context.report(
                    JobProgress(
                        fraction_done=progress.fraction,
                        done=progress.rows,
                        unit="rows",
                        message=f"{progress.rows} rows, file {progress.files_done + 1}"
                        f" of {progress.files_total}",
                    )
                )

            try:
                result = compute_statistics(
                    files, spec.options, on_progress=on_progress, should_stop=context.should_stop
                )
            except Cancelled:
                raise JobCancelled() from None
            statistics, row_count = result.statistics, result.num_examples
        if context.should_stop():
            raise JobCancelled()
        context.report(
            JobProgress(fraction_done=1.0, done=row_count, unit="rows", message="writing"),
            force=True,
        )
        key = (
            self.artifacts.output_key(spec.output_uri, field="job.output_uri")
            if spec.output_uri
            else f"statistics/{context.job_id}/{STATISTICS_FILE}"
        )
        info = self.artifacts.write(key, statistics_to_bytes(statistics), content_type=PROTOBUF)
        recorded = self.lineage.record(
            kinds.STATISTICS_GEN,
            name=f"statisticsJobs/{context.job_id}",
            inputs=[_input(kinds.EXAMPLES, spec.data, data_uri, "examples")],
            outputs=[
                ArtifactRecord(
                    kinds.STATISTICS,
                    info.uri,
                    digest=info.sha256,
                    external_id=info.uri,
                    properties={"row_count": row_count},
                    path="statistics",
                )
            ],
            properties={"row_count": row_count, "files": len(files)},
        )
        return StatisticsOutcome(
            Ref(recorded.output_ids[0], info.uri), row_count, recorded.execution_id
        )

    def get_job(self, job_id: str) -> Job[StatisticsJobSpec]:
        return self.jobs.get(job_id)

    def list_jobs(
        self, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Job[StatisticsJobSpec]], str]:
        return self.jobs.list(page_size, page_token)

    def cancel_job(self, job_id: str) -> Job[StatisticsJobSpec]:
        return self.jobs.cancel(job_id)

    def watch_job(
        self, job_id: str, is_active: Callable[[], bool] = lambda: True
    ) -> Iterator[Job[StatisticsJobSpec]]:
        return self.jobs.watch(job_id, is_active=is_active)

    # -- quick calls -------------------------------------------------------------------------------

    def load_statistics(self, ref: Ref, field: str) -> statistics_pb2.DatasetFeatureStatisticsList:
        uri = self._resolve(ref, field)
        return statistics_from_bytes(self.artifacts.read(uri, field=field), what=field)

    def load_schema(self, ref: Ref, field: str) -> schema_pb2.Schema:
        uri = self._resolve(ref, field)
        return schema_from_text(self.artifacts.read(uri, field=field), what=field)

    def infer_schema(
        self, statistics: Ref, *, max_domain_size: int = 0, output_uri: str = ""
    ) -> tuple[Written, schema_pb2.Schema]:
        stats_uri = self._resolve(statistics, "statistics")
        loaded = self.load_statistics(Ref(uri=stats_uri), "statistics")
        schema = infer_schema(loaded, max_string_domain_size=max_domain_size or 100)
        text = schema_to_text(schema).encode("utf-8")
        key = (
            self.artifacts.output_key(output_uri, field="output_uri")
            if output_uri
            else self._next_to(stats_uri, "schema", text, SCHEMA_FILE)
        )
        info = self.artifacts.write(key, text, content_type=TEXT)
        recorded = self.lineage.record(
            kinds.SCHEMA_GEN,
            inputs=[_input(kinds.STATISTICS, statistics, stats_uri, "statistics")],
            outputs=[
                ArtifactRecord(
                    kinds.SCHEMA, info.uri, digest=info.sha256, external_id=info.uri, path="schema"
                )
            ],
        )
        return Written(Ref(recorded.output_ids[0], info.uri), recorded.execution_id), schema

    def validate(
        self,
        statistics: Ref,
        schema: Ref,
        *,
        environment: str = "",
        previous_statistics: Ref | None = None,
        serving_statistics: Ref | None = None,
    ) -> ValidationOutcome:
        stats_uri = self._resolve(statistics, "statistics")
        schema_uri = self._resolve(schema, "schema")
        inputs = [
            _input(kinds.STATISTICS, statistics, stats_uri, "statistics"),
            _input(kinds.SCHEMA, schema, schema_uri, "schema"),
        ]
        previous = serving = None
        if previous_statistics:
            uri = self._resolve(previous_statistics, "previous_statistics")
            previous = self.load_statistics(Ref(uri=uri), "previous_statistics")
            inputs.append(_input(kinds.STATISTICS, previous_statistics, uri, "previous_statistics"))
        if serving_statistics:
            uri = self._resolve(serving_statistics, "serving_statistics")
            serving = self.load_statistics(Ref(uri=uri), "serving_statistics")
            inputs.append(_input(kinds.STATISTICS, serving_statistics, uri, "serving_statistics"))
        result = validate_statistics(
            self.load_statistics(Ref(uri=stats_uri), "statistics"),
            self.load_schema(Ref(uri=schema_uri), "schema"),
            environment=environment,
            previous_statistics=previous,
            serving_statistics=serving,
        )
        data = result.anomalies.SerializeToString(deterministic=True)
        key = self._next_to(stats_uri, "anomalies", data, ANOMALIES_FILE)
        info = self.artifacts.write(key, data, content_type=PROTOBUF)
        recorded = self.lineage.record(
            kinds.EXAMPLE_VALIDATOR,
            inputs=inputs,
            outputs=[
                ArtifactRecord(
                    kinds.ANOMALIES,
                    info.uri,
                    digest=info.sha256,
                    external_id=info.uri,
                    properties={"anomalies": len(result.findings)},
                    path="anomalies",
                )
            ],
            properties={"environment": environment, "anomalies": len(result.findings)},
        )
        written = Written(Ref(recorded.output_ids[0], info.uri), recorded.execution_id)
        return ValidationOutcome(written, result)

    def compare(
        self,
        baseline: Ref,
        candidate: Ref,
        *,
        schema: Ref | None = None,
        kind: ComparisonKind = ComparisonKind.DRIFT,
    ) -> ComparisonOutcome:
        before = self.load_statistics(baseline, "baseline")
        after = self.load_statistics(candidate, "candidate")
        loaded_schema = self.load_schema(schema, "schema") if schema else None
        distances = compare(before, after, loaded_schema, kind)
        return ComparisonOutcome(distances, comparison_anomalies(distances, loaded_schema, kind))

    # -- helpers -----------------------------------------------------------------------------------

    def _resolve(self, ref: Ref, field: str) -> str:
        """The URI of `ref`, looked up in the metadata service when only its id is given."""
        if not ref:
            raise InvalidArgument(f"{field} is empty: give a uri or an artifact_id", field=field)
        if not ref.artifact_id:
            return ref.uri
        recorded = self.lineage.artifact_uri(ref.artifact_id)
        if ref.uri and recorded and ref.uri != recorded:
            raise InvalidArgument(
                f"{field}: artifact {ref.artifact_id} is at {recorded!r}, not {ref.uri!r}",
                field=field,
            )
        return recorded or ref.uri

    def _next_to(self, uri: str, kind: str, content: bytes, file_name: str) -> str:
        """A content-addressed key beside `uri` (when it is in the store) or under `kind`s/."""
        digest = hashlib.sha256(content).hexdigest()[:16]
        key = self.artifacts.key_of(uri)
        if key is not None and "/" in key:
            return f"{posixpath.dirname(key)}/{kind}-{digest}/{file_name}"
        return f"{kind}/{digest}/{file_name}"


# -- job records (JSON, for job_store) ------------------------------------------------------------


def _ref_to_json(ref: Ref) -> dict[str, Any]:
    return {"artifact_id": ref.artifact_id, "uri": ref.uri}


def _ref_from_json(value: Mapping[str, Any]) -> Ref:
    return Ref(artifact_id=int(value.get("artifact_id", 0)), uri=str(value.get("uri", "")))


def spec_to_json(spec: StatisticsJobSpec) -> dict[str, Any]:
    return {
        "data": _ref_to_json(spec.data),
        "data_format": spec.data_format.value if spec.data_format else None,
        "options": dataclasses.asdict(spec.options),
        "beam_runner": spec.beam_runner,
        "output_uri": spec.output_uri,
        "labels": dict(spec.labels),
    }


def spec_from_json(value: Mapping[str, Any]) -> StatisticsJobSpec:
    """The spec of a record; options a newer version added are ignored, missing ones default."""
    options = {k: v for k, v in value["options"].items() if k in _OPTION_NAMES}
    if "slices" in options:
        options["slices"] = tuple(tuple(spec) for spec in options["slices"])
    if "sketches" in options:
        sketches = options["sketches"]
        options["sketches"] = SketchSettings(
            **{k: v for k, v in sketches.items() if k in _SKETCH_NAMES}
        )
    data_format = value.get("data_format")
    return StatisticsJobSpec(
        data=_ref_from_json(value["data"]),
        data_format=DataFormat(data_format) if data_format else None,
        options=StatsOptions(**options),
        beam_runner=str(value.get("beam_runner", "")),
        output_uri=str(value.get("output_uri", "")),
        labels=dict(value.get("labels", {})),
    )


def outcome_to_json(outcome: StatisticsOutcome) -> dict[str, Any]:
    return {
        "statistics": _ref_to_json(outcome.statistics),
        "row_count": outcome.row_count,
        "execution_id": outcome.execution_id,
    }


def outcome_from_json(value: Mapping[str, Any]) -> StatisticsOutcome:
    return StatisticsOutcome(
        _ref_from_json(value["statistics"]), int(value["row_count"]), int(value["execution_id"])
    )


_OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(StatsOptions))
_SKETCH_NAMES = frozenset(f.name for f in dataclasses.fields(SketchSettings))


def _input(kind: str, ref: Ref, uri: str, path: str) -> ArtifactRecord:
    return ArtifactRecord(kind, uri, artifact_id=ref.artifact_id, external_id=uri, path=path)


def _num_examples(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> int:
    return int(main_dataset(statistics).num_examples)
