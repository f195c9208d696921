"""`sluice serving` commands against a running server."""

from __future__ import annotations

from pathlib import Path

import typer
from sluice.cli import serving as serving_cli
from sluice_runtime.artifacts import ArtifactStore
from sluice_serving.server import ServingServer
from sluice_serving.testing import upload
from typer.testing import CliRunner


def test_load_label_list_and_unload(
    server: ServingServer, store: ArtifactStore, model_dirs: dict[str, Path]
) -> None:
    app = typer.Typer()
    serving_cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `serving` a sub-command
    upload(store, model_dirs["linear2"], "models/cli/1")
    upload(store, model_dirs["linear3"], "models/cli/2")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["serving", *args, "--address", server.address])
        assert result.exit_code == 0, result.output
        return result.output

    assert "version 1: AVAILABLE" in run("load", "cli", "1", "models/cli/1")
    assert "version 2: AVAILABLE" in run("load", "cli", "2", "models/cli/2")
    assert "stable=2" in run("label", "cli", "stable", "2")
    listing = run("models")
    assert "cli" in listing and "stable=2" in listing
    assert "request-logs/cli/" in run("request-log", "cli")
    assert "current version 2" in run("show", "cli")
    failed = runner.invoke(
        app, ["serving", "load", "cli", "3", "models/none", "--address", server.address]
    )
    assert failed.exit_code == 1 and "failed to load" in failed.output


def test_config_changes_only_what_is_given(
    server: ServingServer, store: ArtifactStore, model_dirs: dict[str, Path]
) -> None:
    app = typer.Typer()
    serving_cli.register(app)
    app.command("noop")(lambda: None)
    store.put("schemas/cli.pbtxt", b'feature { name: "x" type: FLOAT }')
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(
            app, ["serving", "config", "cfg", *args, "--address", server.address]
        )
        assert result.exit_code == code, result.output
        return " ".join(result.output.split())

    first = run("--latest", "2", "--max-batch-size", "8", "--sample-rate", "0.5", "--flag", "x")
    assert "keeps latest 2; batching max 8 rows, wait 2 ms" in first
    assert "sample rate 0.5" in first and "x=flag" in first
    second = run("--max-wait-ms", "0", "--versions", "1,3", "--schema-uri", "schemas/cli.pbtxt")
    assert "keeps versions 1, 3; batching max 8 rows, wait 0 ms" in second
    assert "sample rate 0.5" in second and "schema schemas/cli.pbtxt" in second
    assert "schema (the model folder)" in run("--clear-schema", "--all-versions")
    assert "give one of" in run("--latest", "1", "--all-versions", code=1)
    assert "--versions must list version numbers" in run("--versions", "one", code=1)
