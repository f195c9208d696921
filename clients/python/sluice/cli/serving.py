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
from sluice.serving.v1 import model_pb2, serving_service_pb2

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


@group.command("config")
def configure_model(
    model: str = typer.Argument(..., help="Model name (configured before its first load too)."),
    latest: int = typer.Option(0, "--latest", help="Keep the latest N versions."),
    versions: str = typer.Option("", "--versions", help="Keep exactly these, e.g. 1,3."),
    all_versions: bool = typer.Option(False, "--all-versions", help="Keep every loaded version."),
    max_batch_size: int = typer.Option(-1, "--max-batch-size", help="Rows; 0 or 1: no batching."),
    max_wait_ms: float = typer.Option(-1.0, "--max-wait-ms", help="Batch wait; 0 never waits."),
    sample_rate: float = typer.Option(-1.0, "--sample-rate", help="Requests logged, 0 to 1."),
    schema_uri: str = typer.Option("", "--schema-uri", help="schema.pbtxt to enforce."),
    clear_schema: bool = typer.Option(False, "--clear-schema", help="Drop --schema-uri's schema."),
    flag: list[str] = typer.Option([], "--flag", help="Feature whose violations are flagged."),
    reject: list[str] = typer.Option([], "--reject", help="Feature whose violations reject."),
    address: str | None = typer.Option(None, "--address", help=ADDRESS_HELP),
) -> None:
    """Change a model's settings; what is not given stays as it is."""
    policies = [bool(latest), bool(versions), all_versions]
    if sum(policies) > 1:
        fail("give one of --latest, --versions and --all-versions")
    try:
        with _client(address) as client:
            current = _current_settings(client, model)
            request = serving_service_pb2.UpdateModelConfigRequest(
                model_name=model, schema_uri=schema_uri, clear_schema=clear_schema
            )
            policy = request.version_policy
            if latest:
                policy.latest.num_versions = latest
            elif versions:
                policy.specific.versions.extend(int(v) for v in versions.split(",") if v.strip())
            elif all_versions:
                policy.all.SetInParent()
            else:
                request.ClearField("version_policy")
            if max_batch_size >= 0 or max_wait_ms >= 0:
                request.batching.CopyFrom(current.batching)  # the part not given stays
                if max_batch_size >= 0:
                    request.batching.max_batch_size = max_batch_size
                if max_wait_ms >= 0:
                    request.batching.max_wait.FromNanoseconds(round(max_wait_ms * 1e6))
            if sample_rate >= 0:
                request.request_log.CopyFrom(current.request_log)
                request.request_log.sample_rate = sample_rate
            if flag or reject:
                request.schema_policy.CopyFrom(current.schema_policy)
                actions = request.schema_policy.feature_actions
                for feature in flag:
                    actions[feature] = model_pb2.SCHEMA_VIOLATION_ACTION_FLAG
                for feature in reject:
                    actions[feature] = model_pb2.SCHEMA_VIOLATION_ACTION_REJECT
            served = client.update_model_config(request).model
    except ValueError:
        fail(f"--versions must list version numbers, got {versions!r}")
    except SluiceRpcError as error:
        fail(str(error))
    console.print(describe_settings(served))


def _current_settings(client: ServingClient, model: str) -> model_pb2.Model:
    """The model's settings now; defaults for a model the server does not know yet."""
    try:
        served: model_pb2.Model = client.get_model(model_name=model).model
    except SluiceRpcError as error:
        if error.code.name != "NOT_FOUND":
            raise
        return model_pb2.Model(name=model)
    return served


def describe_settings(model: model_pb2.Model) -> str:
    policy = model.version_policy
    kind = policy.WhichOneof("policy")
    kept = (
        f"versions {', '.join(map(str, policy.specific.versions))}"
        if kind == "specific"
        else "every version"
        if kind == "all"
        else f"latest {policy.latest.num_versions or 1}"
    )
    batching = model.batching
    actions = {
        name: "flag" if action == model_pb2.SCHEMA_VIOLATION_ACTION_FLAG else "reject"
        for name, action in sorted(model.schema_policy.feature_actions.items())
    }
    return escape(
        f"{model.name}: keeps {kept}; batching max {batching.max_batch_size} rows, wait "
        f"{batching.max_wait.ToNanoseconds() / 1e6:g} ms; request log sample rate "
        f"{model.request_log.sample_rate:g}; schema {model.schema_uri or '(the model folder)'}"
        + (f"; {', '.join(f'{k}={v}' for k, v in actions.items())}" if actions else "")
    )


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
