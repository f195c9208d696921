"""`sluice serving`: models and versions of the serving service (load, unload, labels, listing).

Predictions are not made here: they go through the TF Serving or Open Inference Protocol clients.
"""

from __future__ import annotations

import dataclasses

import typer
from rich.markup import escape
from rich.table import Table

from sluice.cli.output import console, fail
from sluice.client.config import ClientConfig
from sluice.client.errors import SluiceRpcError
from sluice.client.serving import ServingClient
from sluice.serving.v1 import model_pb2

group = typer.Typer(
    name="serving",
    help="Models served by the serving service: load versions, labels, request log.",
    no_args_is_help=True,
)

ADDRESS_HELP = "Serving service host:port [default: $SLUICE_SERVING_ADDRESS or 127.0.0.1:50055]."


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="serving")


def _client(address: str | None) -> ServingClient:
    config = ClientConfig.from_env("serving")
    if address:
        try:
            config = dataclasses.replace(config, address=address)
        except ValueError as error:
            fail(f"--address: {error}")
    return ServingClient(config)


@group.command("models")
def list_models(address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP)) -> None:
    """List the served models, their current version and labels."""
    table = Table("model", "current", "versions", "labels")
    try:
        with _client(address) as client:
            for model in client.iter_models():
                table.add_row(
                    escape(model.name),
                    str(model.current_version or "-"),
                    describe_versions(model),
                    ", ".join(f"{k}={v}" for k, v in sorted(model.labels.items())) or "-",
                )
    except SluiceRpcError as error:
        fail(str(error))
    console.print(table)


@group.command("show")
def show_model(
    model: str = typer.Argument(..., help="Model name."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Show one model's versions (state, digest, load time, error) and settings."""
    try:
        with _client(address) as client:
            served = client.get_model(model_name=model).model
    except SluiceRpcError as error:
        fail(str(error))
    table = Table("version", "state", "digest", "load s", "error")
    for version in served.versions:
        table.add_row(
            str(version.version),
            state_name(version.state),
            version.digest[:19],
            f"{version.load_seconds:.2f}",
            escape(version.error.message),
        )
    console.print(f"[bold]{escape(served.name)}[/] current version {served.current_version or '-'}")
    console.print(table)
    batching = served.batching
    console.print(
        f"batching: max {batching.max_batch_size} rows, wait "
        f"{batching.max_wait.ToNanoseconds() / 1e6:g} ms; request log sample rate "
        f"{served.request_log.sample_rate:g}"
    )


@group.command("load")
def load_version(
    model: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version number (positive)."),
    uri: str = typer.Argument("", help="SavedModel folder: a key in the artifact store or a URI."),
    digest: str = typer.Option("", "--digest", help="Expected sha256:<hex> of the folder."),
    artifact_id: int = typer.Option(0, "--artifact-id", help="Model artifact in metadata."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until available or failed."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Load a version; it becomes current once loaded and warmed up, if it is the newest."""
    try:
        with _client(address) as client:
            loaded = client.load_model_version(
                model_name=model,
                version=version,
                uri=uri,
                digest=digest,
                artifact_id=artifact_id,
                wait=wait,
                timeout=600 if wait else None,
            ).version
    except SluiceRpcError as error:
        fail(str(error))
    if loaded.state == model_pb2.VERSION_STATE_FAILED:
        fail(f"{model} version {version} failed to load: {loaded.error.message}")
    console.print(f"{escape(model)} version {version}: {state_name(loaded.state)}")


@group.command("unload")
def unload_version(
    model: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version number."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Unload a version once its in-flight requests finish (never the last available one)."""
    try:
        with _client(address) as client:
            unloaded = client.unload_model_version(model_name=model, version=version).version
    except SluiceRpcError as error:
        fail(str(error))
    console.print(f"{escape(model)} version {version}: {state_name(unloaded.state)}")


@group.command("label")
def set_label(
    model: str = typer.Argument(..., help="Model name."),
    label: str = typer.Argument(..., help="Label, e.g. stable or canary."),
    version: int = typer.Argument(..., help="An available version; 0 removes the label."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Point a label at an available version."""
    try:
        with _client(address) as client:
            served = client.set_model_label(model_name=model, label=label, version=version).model
    except SluiceRpcError as error:
        fail(str(error))
    labels = ", ".join(f"{k}={v}" for k, v in sorted(served.labels.items())) or "no labels"
    console.print(f"{escape(model)}: {escape(labels)}")


@group.command("request-log")
def request_log_location(
    model: str = typer.Argument(..., help="Model name."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Where the model's sampled request log is written, and its sample rate."""
    try:
        with _client(address) as client:
            location = client.get_request_log_location(model_name=model)
    except SluiceRpcError as error:
        fail(str(error))
    console.print(
        f"{escape(location.uri_prefix)} (sample rate {location.sample_rate:g})", soft_wrap=True
    )


def state_name(state: int) -> str:
    return model_pb2.VersionState.Name(state).removeprefix("VERSION_STATE_")  # type: ignore[arg-type]


def describe_versions(model: model_pb2.Model) -> str:
    return ", ".join(f"{v.version}:{state_name(v.state)}" for v in model.versions) or "-"
