"""`sluice training`: create, follow and cancel training jobs.

    sluice training create spec.json --label span=12 --watch
    sluice training list
    sluice training get trainingJobs/4f2a9c0d1e3b5a67
    sluice training watch trainingJobs/4f2a9c0d1e3b5a67
    sluice training cancel trainingJobs/4f2a9c0d1e3b5a67

A spec file is a `sluice.training.v1.TrainingSpec` in the protobuf JSON mapping, e.g.
``{"trainData": {"data": {"uri": "spans/12/train.csv"}}, "schema": {"uri": "schema.pbtxt"},
"label": "bought", "builtin": {"task": "TASK_BINARY_CLASSIFICATION"}, "epochs": 3}``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from google.protobuf import json_format
from rich.markup import escape
from rich.table import Table

from sluice.cli.output import console, fail
from sluice.client.config import ClientConfig
from sluice.client.errors import SluiceRpcError
from sluice.client.training import TrainingClient
from sluice.common.v1 import job_pb2
from sluice.training.v1 import training_job_pb2

group = typer.Typer(name="training", help="Training jobs: create, list, get, watch, cancel.")

ADDRESS_OPTION = typer.Option(
    None,
    "--address",
    help="Training service host:port (default: $SLUICE_TRAINING_ADDRESS or 127.0.0.1:50053).",
)
TERMINAL = (job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="training")


def _client(address: str | None) -> TrainingClient:
    config = ClientConfig.from_env("training")
    if address:
        try:
            config = dataclasses.replace(config, address=address)
        except ValueError as error:
            fail(f"--address: {error}")
    return TrainingClient(config)


def state_name(state: int) -> str:
    return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")  # type: ignore[arg-type]


def describe(job: training_job_pb2.TrainingJob) -> str:
    """One line: state, epoch, step, loss, metrics, throughput and ETA (or the outcome)."""
    parts = [f"{job.name} {state_name(job.state)}"]
    progress = job.progress
    if progress.total_steps:
        parts.append(f"epoch {progress.epoch}/{progress.total_epochs}")
        parts.append(f"step {progress.step}/{progress.total_steps}")
        parts.append(f"loss {progress.loss:.4f}")
        parts.extend(f"{k} {v:.4f}" for k, v in sorted(progress.metrics.items()))
        if progress.examples_per_second:
            parts.append(f"{progress.examples_per_second:,.0f} ex/s")
        if job.state == job_pb2.JOB_STATE_RUNNING and progress.eta_seconds:
            parts.append(f"eta {progress.eta_seconds}s")
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        parts.append(f"-> {job.result.model.uri} ({job.result.digest})")
    if job.state == job_pb2.JOB_STATE_FAILED:
        where = f" [{job.error.field}]" if job.error.field else ""
        parts.append(f"-> {job.error.reason}{where}: {job.error.message}")
    return "  ".join(parts)


def _follow(client: TrainingClient, name: str) -> None:
    last = None
    for response in client.watch_training_job(name=name):
        line = describe(response.job)
        if line != last:
            console.print(escape(line), soft_wrap=True)
            last = line
        if response.job.state in TERMINAL and response.job.state != job_pb2.JOB_STATE_SUCCEEDED:
            raise typer.Exit(1)


@group.command("create")
def create(
    spec_file: Path = typer.Argument(..., help="TrainingSpec as protobuf JSON."),
    label: list[str] = typer.Option([], "--label", help="key=value; repeatable."),
    request_id: str = typer.Option("", "--request-id", help="Makes a retried create idempotent."),
    watch: bool = typer.Option(False, "--watch", help="Follow the job until it ends."),
    address: str | None = ADDRESS_OPTION,
) -> None:
    """Queue a training job and print its name."""
    try:
        spec = json_format.Parse(spec_file.read_text(), training_job_pb2.TrainingSpec())
    except (OSError, json_format.ParseError) as error:
        fail(f"{spec_file}: {error}")
    labels = {}
    for item in label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--label {item!r}: expected key=value")
        labels[key] = value
    try:
        with _client(address) as client:
            job = client.create_training_job(spec=spec, labels=labels, request_id=request_id).job
            console.print(escape(describe(job)), soft_wrap=True)
            if watch:
                _follow(client, job.name)
    except SluiceRpcError as error:
        fail(str(error))


@group.command("get")
def get(
    name: str = typer.Argument(..., help="trainingJobs/<id>"),
    json_output: bool = typer.Option(False, "--json", help="The whole job as protobuf JSON."),
    address: str | None = ADDRESS_OPTION,
) -> None:
    """Show one job."""
    try:
        with _client(address) as client:
            job = client.get_training_job(name=name).job
    except SluiceRpcError as error:
        fail(str(error))
    if json_output:
        console.print_json(json_format.MessageToJson(job))
    else:
        console.print(escape(describe(job)), soft_wrap=True)


@group.command("list")
def list_jobs(
    page_size: int = typer.Option(0, "--page-size", help="Jobs per request; 0: the default."),
    address: str | None = ADDRESS_OPTION,
) -> None:
    """List jobs, newest first."""
    table = Table("name", "state", "step", "loss", "created", "model / error")
    try:
        with _client(address) as client:
            for job in client.iter_training_jobs(page_size=page_size):
                outcome = job.result.model.uri if job.HasField("result") else job.error.reason
                table.add_row(
                    escape(job.name),
                    state_name(job.state),
                    f"{job.progress.step}/{job.progress.total_steps}",
                    f"{job.progress.loss:.4f}" if job.progress.total_steps else "",
                    job.create_time.ToDatetime().isoformat(timespec="seconds"),
                    escape(outcome),
                )
    except SluiceRpcError as error:
        fail(str(error))
    console.print(table)


@group.command("watch")
def watch_job(
    name: str = typer.Argument(..., help="trainingJobs/<id>"),
    address: str | None = ADDRESS_OPTION,
) -> None:
    """Follow a job until it ends; exit status 1 unless it succeeds."""
    try:
        with _client(address) as client:
            _follow(client, name)
    except SluiceRpcError as error:
        fail(str(error))


@group.command("cancel")
def cancel(
    name: str = typer.Argument(..., help="trainingJobs/<id>"),
    address: str | None = ADDRESS_OPTION,
) -> None:
    """Stop a queued or running job; nothing it half-exported is published."""
    try:
        with _client(address) as client:
            job = client.cancel_training_job(name=name).job
    except SluiceRpcError as error:
        fail(str(error))
    console.print(escape(describe(job)), soft_wrap=True)
