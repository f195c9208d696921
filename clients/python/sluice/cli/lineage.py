"""`sluice lineage`: where a model (or any artifact) came from and where it went."""

from __future__ import annotations

import dataclasses

import typer
from rich.markup import escape
from rich.tree import Tree

from sluice.cli.output import console, fail
from sluice.client.config import ClientConfig
from sluice.client.errors import SluiceRpcError
from sluice.client.metadata import MetadataClient
from sluice.metadata.v1 import artifact_pb2, execution_pb2, metadata_service_pb2


def register(app: typer.Typer) -> None:
    app.command("lineage")(lineage)


def lineage(
    artifact_id: int = typer.Argument(..., help="Id of the artifact in the metadata service."),
    max_hops: int = typer.Option(0, "--max-hops", help="Steps to walk; 0: the server's default."),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Metadata service host:port (default: $SLUICE_METADATA_ADDRESS or 127.0.0.1:50051).",
    ),
) -> None:
    """Print the provenance of an artifact: the steps that produced it and used it."""
    config = ClientConfig.from_env("metadata")
    if address:
        try:
            config = dataclasses.replace(config, address=address)
        except ValueError as error:
            fail(f"--address: {error}")
    try:
        with MetadataClient(config) as client:
            response = client.provenance(artifact_id, max_hops=max_hops)
    except SluiceRpcError as error:
        fail(str(error))
    console.print(provenance_tree(response))


def provenance_tree(response: metadata_service_pb2.GetProvenanceResponse) -> Tree:
    """A rich Tree: the artifact, then each step with the artifacts it read and wrote."""
    tree = Tree(f"[bold]{describe_artifact(response.artifact)}[/]")
    if not response.steps:
        tree.add("[dim]no recorded steps[/]")
    for step in response.steps:
        arrow = "<-" if step.hop < 0 else "->"
        node = tree.add(f"{arrow} hop {step.hop:+d}  {describe_execution(step.execution)}")
        for artifact in step.inputs:
            node.add(f"in:  {describe_artifact(artifact)}")
        for artifact in step.outputs:
            node.add(f"out: {describe_artifact(artifact)}")
    return tree


def describe_artifact(artifact: artifact_pb2.Artifact) -> str:
    parts = [escape(artifact.type or f"type {artifact.type_id}"), f"#{artifact.id}"]
    if artifact.name:
        parts.append(escape(repr(artifact.name)))
    if artifact.uri:
        parts.append(f"[cyan]{escape(artifact.uri)}[/]")
    if artifact.state:
        state = artifact_pb2.Artifact.State.Name(artifact.state).removeprefix("STATE_")
        parts.append(escape(f"[{state}]"))
    return " ".join(parts)


def describe_execution(execution: execution_pb2.Execution) -> str:
    parts = [escape(execution.type or f"type {execution.type_id}"), f"#{execution.id}"]
    if execution.name:
        parts.append(escape(repr(execution.name)))
    if execution.state:
        state = execution_pb2.Execution.State.Name(execution.state).removeprefix("STATE_")
        color = {"COMPLETE": "green", "CACHED": "green", "FAILED": "red"}.get(state, "yellow")
        parts.append(f"[{color}]{state}[/]")
    return " ".join(parts)
