"""`sluice eval ...`: evaluations (sliced metrics, verdicts), comparisons, overrides, infra checks.

Thresholds on the command line, repeatable, ``[SLICE:]METRIC OP VALUE``:

    auc>=0.7            value: at least 0.7 on the overall slice
    log_loss<=0.45      value: at most 0.45
    *:auc~0.01          change: AUC on every large-enough slice at most 0.01 worse than baseline
    country=BR:auc~2%   change: at most 2% worse, relatively, on one slice

A change threshold on a metric with no natural direction takes ``!higher`` or ``!lower``
(``calibration~0.05!lower``). Anything else the API offers goes in ``--spec FILE`` (an
EvaluationSpec as JSON); options given on the command line replace its fields.
"""

from __future__ import annotations

import dataclasses
import getpass
import math
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import typer
from google.protobuf import json_format
from rich.markup import escape
from rich.table import Table

from sluice.cli.output import console, fail
from sluice.client.config import ClientConfig
from sluice.client.errors import SluiceRpcError
from sluice.client.evaluation import EvaluationClient
from sluice.common.v1 import data_pb2, job_pb2
from sluice.evaluation.v1 import evaluation_pb2 as pb

group = typer.Typer(
    name="eval",
    help="The model gate: sliced metrics with intervals, blessings, overrides, infra checks.",
    no_args_is_help=True,
)

ADDRESS_HELP = (
    "Evaluation service host:port [default: $SLUICE_EVALUATION_ADDRESS or 127.0.0.1:50054]."
)
_FORMATS = {
    "": data_pb2.DATA_FORMAT_UNSPECIFIED,
    "csv": data_pb2.DATA_FORMAT_CSV,
    "parquet": data_pb2.DATA_FORMAT_PARQUET,
}
_VERDICTS = {
    pb.VERDICT_BLESSED: "[green]BLESSED[/]",
    pb.VERDICT_NOT_BLESSED: "[red]NOT_BLESSED[/]",
    pb.VERDICT_UNSPECIFIED: "-",
}
_THRESHOLD = re.compile(
    r"^(?:(?P<slice>[^:]+):)?(?P<metric>[A-Za-z0-9_@.\[\]]+)\s*"
    r"(?P<op>>=|<=|~)\s*(?P<value>[-+0-9.eE]+)(?P<percent>%?)(?:!(?P<direction>higher|lower))?$"
)
# Shown by default, in this order, when present; --metric picks others.
_DEFAULT_METRICS = (
    "auc",
    "auc_pr",
    "log_loss",
    "accuracy",
    "calibration",
    "top_2_accuracy",
    "rmse",
    "mae",
    "r2",
    "prediction_mean",
    "label_mean",
)
_LOWER_IS_BETTER = ("log_loss", "rmse", "mse", "mae", "false_")
_NO_DIRECTION = ("calibration", "prediction_mean", "label_mean")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="eval")


def _client(address: str | None) -> EvaluationClient:
    config = ClientConfig.from_env("evaluation")
    if address:
        try:
            config = dataclasses.replace(config, address=address)
        except ValueError as error:
            fail(f"--address: {error}")
    return EvaluationClient(config)


def artifact_ref(text: str) -> data_pb2.ArtifactRef:
    """A URI, or "#<id>" for an artifact recorded in the metadata service."""
    if text.startswith("#") and text[1:].isdigit():
        return data_pb2.ArtifactRef(artifact_id=int(text[1:]))
    return data_pb2.ArtifactRef(uri=text)


def parse_threshold(text: str) -> pb.MetricThreshold:
    """``[SLICE:]METRIC>=X``, ``<=X``, ``~X`` or ``~X%`` (see the module docstring)."""
    match = _THRESHOLD.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a threshold; write e.g. auc>=0.7, log_loss<=0.5, *:auc~0.01 or "
            "country=BR:auc~2%"
        )
    threshold = pb.MetricThreshold(metric=match["metric"], slice=match["slice"] or "")
    value = float(match["value"])
    if match["op"] == ">=":
        threshold.lower_bound = value
    elif match["op"] == "<=":
        threshold.upper_bound = value
    elif match["percent"]:
        threshold.max_relative_degradation = value / 100
    else:
        threshold.max_absolute_degradation = value
    if match["percent"] and match["op"] != "~":
        raise ValueError(f"{text!r}: '%' only goes with a change threshold (~)")
    if match["direction"] == "higher":
        threshold.direction = pb.DIRECTION_HIGHER_IS_BETTER
    elif match["direction"] == "lower":
        threshold.direction = pb.DIRECTION_LOWER_IS_BETTER
    return threshold


@group.command("create")
def create(
    model: str = typer.Argument(..., help="Model folder URI, or #artifact-id."),
    data: str = typer.Argument(
        ..., help="Evaluation data URI (CSV/Parquet; ending in / = prefix)."
    ),
    label: str = typer.Option("", "--label", help="Label column."),
    weight: str = typer.Option("", "--weight", help="Example weight column."),
    task: str = typer.Option(
        "", "--task", help="binary_classification, multiclass_classification or regression."
    ),
    slices: list[str] = typer.Option(
        [], "--slice", help="Feature(s) to slice by; a,b crosses; repeatable."
    ),
    buckets: int = typer.Option(
        0, "--buckets", help="Quantile buckets for numeric slice features."
    ),
    thresholds: list[str] = typer.Option(
        [], "--threshold", "-t", help="[SLICE:]METRIC>=X | <=X | ~X | ~X% (repeatable)."
    ),
    baseline: str = typer.Option(
        "", "--baseline", help="Baseline model URI or #id (default: serving)."
    ),
    no_baseline: bool = typer.Option(False, "--no-baseline", help="Judge without any baseline."),
    bootstrap: int | None = typer.Option(
        None, "--bootstrap", help="Resamples for intervals (default 200; 0: none)."
    ),
    data_format: str = typer.Option("", "--format", help="csv or parquet (default: by name)."),
    spec_file: Path | None = typer.Option(
        None, "--spec", help="EvaluationSpec as JSON; the options above replace its fields."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow it to the end and show it."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Evaluate a model; by default follow it and show its slices and verdict."""
    spec = pb.EvaluationSpec()
    if spec_file is not None:
        try:
            json_format.Parse(spec_file.read_text(), spec)
        except (OSError, json_format.ParseError) as error:
            fail(f"--spec: {error}")
    if data_format not in _FORMATS:
        fail(f"--format must be csv or parquet; got {data_format!r}")
    spec.model.CopyFrom(artifact_ref(model))
    spec.data.data.CopyFrom(artifact_ref(data))
    if data_format:
        spec.data.format = _FORMATS[data_format]
    for name, value in (("label", label), ("example_weight", weight), ("task", task)):
        if value:
            setattr(spec, name, value)
    if slices:
        del spec.slicing[:]
        for features in slices:
            spec.slicing.add(feature_names=features.split(","), numeric_buckets=buckets)
    try:
        parsed = [parse_threshold(text) for text in thresholds]
    except ValueError as error:
        fail(f"--threshold: {error}")
    spec.thresholds.extend(parsed)
    if baseline:
        spec.baseline_model.CopyFrom(artifact_ref(baseline))
    if no_baseline:
        spec.no_baseline = True
    if bootstrap is not None:
        spec.bootstrap_samples = bootstrap if bootstrap > 0 else -1
    try:
        with _client(address) as client:
            created = client.create_evaluation(spec=spec).evaluation
            console.print(f"{escape(created.name)} queued")
            if wait:
                final = _follow(client, created.name)
                print_evaluation(final)
                _exit_for(final)
    except SluiceRpcError as error:
        fail(str(error))


@group.command("watch")
def watch(
    name: str = typer.Argument(..., help="evaluations/<id>"),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Follow an evaluation until it ends, then show it."""
    try:
        with _client(address) as client:
            final = _follow(client, name)
    except SluiceRpcError as error:
        fail(str(error))
    print_evaluation(final)
    _exit_for(final)


@group.command("show")
def show(
    name: str = typer.Argument(..., help="evaluations/<id>"),
    metrics: list[str] = typer.Option([], "--metric", "-m", help="Metrics to show (repeatable)."),
    all_metrics: bool = typer.Option(False, "--all", help="Every metric, one table per slice."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Show an evaluation: its verdict, checks and metrics by slice."""
    try:
        with _client(address) as client:
            evaluation = client.get_evaluation(name=name).evaluation
    except SluiceRpcError as error:
        fail(str(error))
    print_evaluation(evaluation, metrics=metrics, all_metrics=all_metrics)


@group.command("list")
def list_evaluations(
    model: int = typer.Option(0, "--model-id", help="Only evaluations of this model artifact."),
    limit: int = typer.Option(20, "--limit", help="Newest evaluations to show."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """List evaluations, newest first."""
    table = Table("evaluation", "state", "verdict", "model", "created")
    try:
        with _client(address) as client:
            for index, evaluation in enumerate(client.iter_evaluations(model, page_size=limit)):
                if index >= limit:
                    break
                table.add_row(
                    escape(evaluation.name),
                    _state(evaluation.state),
                    _VERDICTS.get(evaluation.result.verdict, "-"),
                    escape(_describe_ref(evaluation.spec.model)),
                    evaluation.create_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S"),
                )
    except SluiceRpcError as error:
        fail(str(error))
    console.print(table)


@group.command("compare")
def compare(
    baseline: str = typer.Argument(..., help="The baseline evaluation (evaluations/<id>)."),
    candidate: str = typer.Argument(..., help="The candidate evaluation."),
    metrics: list[str] = typer.Option([], "--metric", "-m", help="Metrics to show (repeatable)."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Metric differences between two evaluations, slice by slice."""
    try:
        with _client(address) as client:
            rows = client.compare_evaluations(baseline=baseline, candidate=candidate).comparisons
    except SluiceRpcError as error:
        fail(str(error))
    present = list(dict.fromkeys(row.metric for row in rows))
    chosen = metrics or [m for m in _DEFAULT_METRICS if m in present] or present[:6]
    table = Table("slice", "metric", "baseline", "candidate", "difference")
    for row in rows:
        if row.metric in chosen:
            table.add_row(
                escape(_slice_name(row.slice)),
                escape(row.metric),
                _number(row.baseline),
                _number(row.candidate),
                _difference(row.metric, row.difference),
            )
    console.print(table)


@group.command("override")
def override(
    name: str = typer.Argument(..., help="evaluations/<id>"),
    verdict: str = typer.Option(..., "--verdict", help="blessed or not_blessed"),
    reason: str = typer.Option(..., "--reason", help="Why; recorded in the metadata service."),
    actor: str = typer.Option("", "--actor", help="Who decides (default: your user name)."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Override the verdict of an evaluation, with a reason."""
    values = {"blessed": pb.VERDICT_BLESSED, "not_blessed": pb.VERDICT_NOT_BLESSED}
    if verdict.lower() not in values:
        fail(f"--verdict must be blessed or not_blessed; got {verdict!r}")
    try:
        with _client(address) as client:
            evaluation = client.override_verdict(
                name=name,
                verdict=values[verdict.lower()],
                reason=reason,
                actor=actor or getpass.getuser(),
            ).evaluation
    except SluiceRpcError as error:
        fail(str(error))
    console.print(
        f"{escape(evaluation.name)}: {_VERDICTS[evaluation.result.verdict]} "
        f"({escape(evaluation.result.override_reason)})"
    )


@group.command("cancel")
def cancel(
    name: str = typer.Argument(..., help="evaluations/<id>"),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Cancel a queued or running evaluation."""
    try:
        with _client(address) as client:
            evaluation = client.cancel_evaluation(name=name).evaluation
    except SluiceRpcError as error:
        fail(str(error))
    console.print(f"{escape(evaluation.name)}: {_state(evaluation.state)}")


@group.command("infra")
def infra(
    model: str = typer.Argument(..., help="Model folder URI, or #artifact-id."),
    canary_data: str = typer.Argument(..., help="Data to build canary requests from."),
    requests: int = typer.Option(0, "--requests", help="Canary requests (default 10)."),
    load_timeout: float = typer.Option(0, "--load-timeout", help="Seconds (default 60)."),
    latency_budget: float = typer.Option(0, "--latency-budget", help="p99 ms (default 100)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Poll until it ends."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Infra-validate a model: load it in a sandboxed server and send canary requests."""
    try:
        with _client(address) as client:
            validation = client.create_infra_validation(
                model=artifact_ref(model),
                canary_data=data_pb2.DataSource(data=artifact_ref(canary_data)),
                canary_requests=requests,
                load_timeout_seconds=load_timeout,
                latency_budget_ms=latency_budget,
            ).infra_validation
            console.print(f"{escape(validation.name)} queued")
            while wait and validation.state in (
                job_pb2.JOB_STATE_QUEUED,
                job_pb2.JOB_STATE_RUNNING,
            ):
                time.sleep(1.0)
                validation = client.get_infra_validation(name=validation.name).infra_validation
    except SluiceRpcError as error:
        fail(str(error))
    table = Table("state", "verdict", "load s", "p99 ms", "failed requests", show_header=True)
    table.add_row(
        _state(validation.state),
        _VERDICTS.get(validation.verdict, "-"),
        f"{validation.load_seconds:.2f}",
        f"{validation.p99_latency_ms:.1f}",
        str(validation.failed_requests),
    )
    console.print(table)
    if validation.error.message:
        console.print(
            f"[red]{escape(validation.error.reason)}[/]: {escape(validation.error.message)}"
        )
    if wait and validation.verdict != pb.VERDICT_BLESSED:
        raise typer.Exit(1)


# -- output ---------------------------------------------------------------------------------------


def _follow(client: EvaluationClient, name: str) -> pb.Evaluation:
    final: pb.Evaluation | None = None
    last_message = None
    for update in client.watch_evaluation(name=name, timeout=None):
        final = update.evaluation
        progress = final.progress
        line = f"{_state(final.state)} {progress.fraction_done:6.1%} {escape(progress.message)}"
        if line != last_message:
            console.print(f"  {line}")
            last_message = line
    if final is None:
        fail(f"{name}: the service sent no update")
    return final


def _exit_for(evaluation: pb.Evaluation) -> None:
    if evaluation.state != job_pb2.JOB_STATE_SUCCEEDED:
        raise typer.Exit(2)
    if evaluation.result.verdict != pb.VERDICT_BLESSED:
        raise typer.Exit(1)


def print_evaluation(
    evaluation: pb.Evaluation, *, metrics: Sequence[str] = (), all_metrics: bool = False
) -> None:
    """The header, the failed (or all) checks, and a table of metrics by slice."""
    result = evaluation.result
    header = Table.grid(padding=(0, 2))
    header.add_row("evaluation", escape(evaluation.name))
    header.add_row("state", _state(evaluation.state))
    header.add_row("verdict", _VERDICTS.get(result.verdict, "-"))
    header.add_row("model", escape(_describe_ref(evaluation.spec.model)))
    baseline = _describe_ref(result.baseline_model) if result.HasField("baseline_model") else ""
    header.add_row("baseline", escape(baseline) or "none (judged by value thresholds alone)")
    if evaluation.state == job_pb2.JOB_STATE_SUCCEEDED:
        header.add_row(
            "time",
            f"inference {result.inference_seconds:.2f} s, metrics {result.metrics_seconds:.2f} s",
        )
    if result.override_reason:
        header.add_row("override", escape(result.override_reason))
    if evaluation.error.message:
        header.add_row(
            "error",
            f"[red]{escape(evaluation.error.reason)}[/]: {escape(evaluation.error.message)}",
        )
    console.print(header)
    if result.checks:
        _print_checks(result.checks)
    if result.slices:
        if all_metrics:
            for sliced in result.slices:
                _print_slice_detail(sliced)
        else:
            _print_slices(result.slices, metrics)


def _print_checks(checks: Iterable[pb.ThresholdCheck]) -> None:
    table = Table("", "check")
    for check in checks:
        mark = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        table.add_row(mark, escape(check.message))
    console.print(table)


def _print_slices(slices: Sequence[pb.SliceMetrics], metrics: Sequence[str]) -> None:
    present = list(slices[0].metrics)
    chosen = (
        list(metrics) or [m for m in _DEFAULT_METRICS if m in present][:5] or sorted(present)[:5]
    )
    has_baseline = any(s.baseline_metrics for s in slices)
    table = Table("slice", "examples", *chosen)
    for sliced in slices:
        cells = []
        for metric in chosen:
            cell = _value(sliced.metrics.get(metric))
            if has_baseline and metric in sliced.baseline_metrics:
                diff = sliced.metrics[metric].value - sliced.baseline_metrics[metric].value
                cell += f"\n{_difference(metric, diff)} vs base"
            cells.append(cell)
        examples = f"{sliced.example_count:,}" + (
            " [yellow](too small)[/]" if sliced.too_small else ""
        )
        table.add_row(escape(_slice_name(sliced.slice)), examples, *cells)
    console.print(table)


def _print_slice_detail(sliced: pb.SliceMetrics) -> None:
    title = f"{_slice_name(sliced.slice)} ({sliced.example_count:,} examples)"
    table = Table("metric", "value", "interval", "baseline", title=escape(title))
    for name in sorted(sliced.metrics):
        value = sliced.metrics[name]
        interval = (
            escape(f"[{_number(value.lower)}, {_number(value.upper)}]")
            if value.HasField("lower")
            else "-"
        )
        base = (
            _number(sliced.baseline_metrics[name].value) if name in sliced.baseline_metrics else "-"
        )
        table.add_row(escape(name), _number(value.value), interval, base)
    console.print(table)


def _value(value: pb.MetricValue | None) -> str:
    if value is None:
        return "-"
    text = _number(value.value)
    if value.HasField("lower") and value.HasField("upper"):
        text += f"\n[dim]{escape(f'[{_number(value.lower)}, {_number(value.upper)}]')}[/]"
    return text


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"


def _difference(metric: str, difference: float) -> str:
    if math.isnan(difference):
        return "n/a"
    better = difference < 0 if metric.startswith(_LOWER_IS_BETTER) else difference > 0
    color = "green" if better else "red"
    if difference == 0 or metric.startswith(_NO_DIRECTION):
        color = "dim"
    return f"[{color}]{difference:+.4f}[/]"


def _slice_name(key: str) -> str:
    return key or "(overall)"


def _state(state: int) -> str:
    name = job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")  # type: ignore[arg-type]
    color = {"SUCCEEDED": "green", "FAILED": "red", "CANCELLED": "yellow"}.get(name, "cyan")
    return f"[{color}]{name}[/]"


def _describe_ref(ref: data_pb2.ArtifactRef) -> str:
    if ref.artifact_id and ref.uri:
        return f"#{ref.artifact_id} {ref.uri}"
    return f"#{ref.artifact_id}" if ref.artifact_id else ref.uri
