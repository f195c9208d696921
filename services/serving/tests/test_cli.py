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
