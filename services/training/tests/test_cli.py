"""`sluice training` (clients/python/sluice/cli/training.py) against a service with fake workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sluice.cli import training
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.config import ServerConfig
from sluice_training.config import TrainingConfig
from sluice_training.server import TrainingServer, build_core, build_server
from typer.testing import CliRunner


@pytest.fixture
def server(tmp_path: Path, store: ArtifactStore, fake_launcher: Any) -> Iterator[TrainingServer]:
    config = TrainingConfig(
        data_dir=tmp_path / "service",
        artifact_store_uri=store.root_uri,
        server=ServerConfig(service="training", port=0),
        poll_seconds=0.02,
    )
    core = build_core(config, launchers={"local": fake_launcher})
    with build_server(config, core=core) as running:
        yield running


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("version")(lambda: None)  # a second command keeps `training` a sub-command
    training.register(app)
    return app


def spec_file(tmp_path: Path, fake: str) -> Path:
    spec = {
        "trainData": {"data": {"uri": "data/train.csv"}},
        "schema": {"uri": "data/schema.pbtxt"},
        "label": "bought",
        "builtin": {"task": "TASK_BINARY_CLASSIFICATION"},
        "hyperparameters": {"fake": fake},
    }
    path = tmp_path / f"{fake}.json"
    path.write_text(json.dumps(spec))
    return path


def test_create_watch_list_get(app: typer.Typer, server: TrainingServer, tmp_path: Path) -> None:
    runner = CliRunner()
    address = ["--address", server.address]
    spec = str(spec_file(tmp_path, "succeed"))
    created = runner.invoke(
        app, ["training", "create", spec, "--label", "span=1", "--watch", *address]
    )
    assert created.exit_code == 0, created.output
    assert "QUEUED" in created.output and "SUCCEEDED" in created.output
    name = created.output.split()[0]
    listed = runner.invoke(app, ["training", "list", *address])
    assert listed.exit_code == 0 and "SUCCEEDED" in listed.output
    shown = runner.invoke(app, ["training", "get", name, "--json", *address])
    assert json.loads(shown.output)["labels"] == {"span": "1"}


def test_failures_and_bad_input_exit_non_zero(
    app: typer.Typer, server: TrainingServer, tmp_path: Path
) -> None:
    runner = CliRunner()
    address = ["--address", server.address]
    failed = runner.invoke(
        app, ["training", "create", str(spec_file(tmp_path, "fail")), "--watch", *address]
    )
    assert failed.exit_code == 1 and "LABEL_MISSING [spec.label]" in failed.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"label": 3}')
    bad = runner.invoke(app, ["training", "create", str(broken), *address])
    assert bad.exit_code == 1
    missing = runner.invoke(app, ["training", "cancel", "trainingJobs/0000", *address])
    assert missing.exit_code == 1 and "NOT_FOUND" in missing.output
