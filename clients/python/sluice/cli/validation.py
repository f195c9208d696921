"""`sluice validation ...`: statistics jobs, schema inference, validation and drift/skew checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import typer
from rich.markup import escape
from rich.table import Table

from sluice.cli.output import console, fail
from sluice.client.config import ClientConfig
from sluice.client.errors import SluiceRpcError
from sluice.client.validation import ValidationClient
from sluice.common.v1 import data_pb2, job_pb2
from sluice.validation.v1 import statistics_job_pb2
from sluice.validation.v1 import validation_service_pb2 as pb

group = typer.Typer(
    name="validation",
    help="The data gate: statistics, schemas, anomalies, drift and skew (TFDV formats).",
    no_args_is_help=True,
)

_FORMATS = {
    "": data_pb2.DATA_FORMAT_UNSPECIFIED,
    "csv": data_pb2.DATA_FORMAT_CSV,
    "parquet": data_pb2.DATA_FORMAT_PARQUET,
    "request_log": data_pb2.DATA_FORMAT_REQUEST_LOG,
}
_SEVERITY = {pb.SEVERITY_WARNING: "[yellow]WARNING[/]", pb.SEVERITY_ERROR: "[red]ERROR[/]"}
ADDRESS_HELP = (
    "Validation service host:port (default: $SLUICE_VALIDATION_ADDRESS, 127.0.0.1:50052)."
)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="validation")


def _client(address: str | None) -> ValidationClient:
    config = ClientConfig.from_env("validation")
    if address:
        try:
            config = dataclasses.replace(config, address=address)
        except ValueError as error:
            fail(f"--address: {error}")
    return ValidationClient(config)


def _ref(uri: str) -> data_pb2.ArtifactRef:
    """A URI, or "#<id>" for an artifact recorded in the metadata service."""
    if uri.startswith("#") and uri[1:].isdigit():
        return data_pb2.ArtifactRef(artifact_id=int(uri[1:]))
    return data_pb2.ArtifactRef(uri=uri)


@group.command("stats")
def stats(
    data: str = typer.Argument(..., help="Data URI (file:///..., s3://...); ending in / = prefix."),
    data_format: str = typer.Option("", "--format", help="csv, parquet or request_log."),
    slices: list[str] = typer.Option(
        [], "--slice", help="Features to slice by, comma-separated crosses; repeatable."
    ),
    sample_rate: float = typer.Option(0.0, "--sample-rate", help="Fraction of rows (0: all)."),
    beam_runner: str = typer.Option("", "--beam-runner", help="Run on Beam (e.g. DirectRunner)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the job until it ends."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Start a statistics job (and by default follow it to the end)."""
    if data_format not in _FORMATS:
        fail(f"--format must be one of csv, parquet, request_log; got {data_format!r}")
    job = statistics_job_pb2.StatisticsJob(
        source=data_pb2.DataSource(data=_ref(data), format=_FORMATS[data_format]),
        slices=[statistics_job_pb2.SliceSpec(feature_names=s.split(",")) for s in slices],
        options=statistics_job_pb2.StatisticsOptions(
            sample_rate=sample_rate, beam_runner=beam_runner
        ),
    )
    try:
        with _client(address) as client:
            created = client.create_statistics_job(job=job).job
            console.print(f"{escape(created.name)} queued")
            if not wait:
                return
            final = created
            for update in client.watch_statistics_job(name=created.name):
                final = update.job
                progress = final.progress
                console.print(
                    f"  {job_pb2.JobState.Name(final.state).removeprefix('JOB_STATE_')}"
                    f" {progress.fraction_done:6.1%} {escape(progress.message)}"
                )
    except SluiceRpcError as error:
        fail(str(error))
    if final.state != job_pb2.JOB_STATE_SUCCEEDED:
        fail(f"{final.name}: {final.error.message or 'did not succeed'}")
    console.print(
        f"[green]{final.row_count} rows[/]: {escape(final.statistics.uri)}"
        + (f" (artifact #{final.statistics.artifact_id})" if final.statistics.artifact_id else ""),
        soft_wrap=True,
    )


@group.command("infer-schema")
def infer_schema(
    statistics: str = typer.Argument(..., help="Statistics URI or #artifact-id."),
    max_domain_size: int = typer.Option(0, "--max-domain-size", help="0: the default (100)."),
    output_uri: str = typer.Option("", "--output-uri", help="Where to write schema.pbtxt."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Infer a schema.pbtxt from statistics."""
    try:
        with _client(address) as client:
            response = client.infer_schema(
                statistics=_ref(statistics), max_domain_size=max_domain_size, output_uri=output_uri
            )
    except SluiceRpcError as error:
        fail(str(error))
    console.print(escape(response.schema.uri), soft_wrap=True)


@group.command("validate")
def validate(
    statistics: str = typer.Argument(..., help="Statistics URI or #artifact-id."),
    schema: str = typer.Argument(..., help="schema.pbtxt URI or #artifact-id."),
    environment: str = typer.Option("", "--environment", help="e.g. SERVING."),
    previous: str = typer.Option("", "--previous", help="Previous span's statistics (drift)."),
    serving: str = typer.Option("", "--serving", help="Serving statistics (skew)."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Check statistics against a schema; exits 1 when an anomaly is an ERROR."""
    request = pb.ValidateStatisticsRequest(
        statistics=_ref(statistics), schema=_ref(schema), environment=environment
    )
    if previous:
        request.previous_statistics.CopyFrom(_ref(previous))
    if serving:
        request.serving_statistics.CopyFrom(_ref(serving))
    try:
        with _client(address) as client:
            response = client.validate_statistics(request)
    except SluiceRpcError as error:
        fail(str(error))
    _print_summaries(response.summaries)
    console.print(f"anomalies: {escape(response.anomalies.uri)}", soft_wrap=True)
    if response.max_severity == pb.SEVERITY_ERROR:
        raise typer.Exit(1)


@group.command("compare")
def compare(
    baseline: str = typer.Argument(..., help="Baseline statistics URI or #artifact-id."),
    candidate: str = typer.Argument(..., help="Candidate statistics URI or #artifact-id."),
    schema: str = typer.Option("", "--schema", help="Schema with comparators and thresholds."),
    skew: bool = typer.Option(False, "--skew", help="Use skew (not drift) comparators."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Distances per feature between two statistics (drift or skew)."""
    request = pb.CompareStatisticsRequest(
        baseline=_ref(baseline),
        candidate=_ref(candidate),
        kind=pb.COMPARISON_KIND_SKEW if skew else pb.COMPARISON_KIND_DRIFT,
    )
    if schema:
        request.schema.CopyFrom(_ref(schema))
    try:
        with _client(address) as client:
            response = client.compare_statistics(request)
    except SluiceRpcError as error:
        fail(str(error))
    table = Table("feature", "measure", "distance", "threshold")
    for distance in response.distances:
        color = "red" if distance.over_threshold else "green"
        table.add_row(
            escape(distance.feature),
            distance.measure,
            f"[{color}]{distance.distance:.4f}[/]",
            f"{distance.threshold:g}",
        )
    console.print(table)


@group.command("jobs")
def jobs(
    limit: int = typer.Option(20, "--limit", help="Newest jobs to show."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """List statistics jobs, newest first."""
    table = Table("job", "state", "rows", "statistics")
    try:
        with _client(address) as client:
            for index, job in enumerate(client.iter_statistics_jobs(page_size=limit)):
                if index >= limit:
                    break
                table.add_row(
                    escape(job.name),
                    job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_"),
                    str(job.row_count),
                    escape(job.statistics.uri or job.error.message),
                )
    except SluiceRpcError as error:
        fail(str(error))
    console.print(table)


def _print_summaries(summaries: Iterable[pb.AnomalySummary]) -> None:
    rows = list(summaries)
    if not rows:
        console.print("[green]no anomalies[/]")
        return
    table = Table("feature", "anomaly", "severity", "what to do")
    for summary in rows:
        table.add_row(
            escape(summary.feature or "(dataset)"),
            summary.kind,
            _SEVERITY.get(summary.severity, "?"),
            escape(summary.description),
        )
    console.print(table)
