"""`sluice predict` and `sluice models` against a real serving server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sluice.cli.main import app
from sluice_runtime.artifacts import ArtifactStore
from sluice_serving.core import ServingCore
from sluice_serving.server import ServingServer
from sluice_serving.testing import in_process, serve_folder
from typer.testing import CliRunner


def test_predict_matches_the_model_in_process(
    core: ServingCore, store: ArtifactStore, server: ServingServer, model_dirs: dict[str, Path]
) -> None:
    serve_folder(core, store, model_dirs["dict"], "dict")
    rows = {"age": [30, 45], "income": [1000.0, 52000.5], "country": ["BR", "DE"]}
    result = CliRunner().invoke(
        app, ["predict", "dict", "--json", json.dumps(rows), "--address", server.address]
    )
    assert result.exit_code == 0, result.output
    reply = json.loads(result.output)
    assert reply["model"] == "dict" and reply["version"] == "1"
    expected = in_process(
        model_dirs["dict"],
        age=np.array(rows["age"], np.int64),
        income=np.array(rows["income"], np.float32),
        country=np.array(rows["country"]),
    )
    for name, values in expected.items():
        assert reply["outputs"][name]["values"] == np.asarray(values).ravel().tolist()

    # One row without the batch dimension is accepted as a batch of one.
    single = CliRunner().invoke(
        app,
        [
            "predict",
            "dict",
            "--json",
            '{"age": 30, "income": 1000.0, "country": "BR"}',
            "--address",
            server.address,
        ],
    )
    assert single.exit_code == 0, single.output

    models = CliRunner().invoke(app, ["models", "--address", server.address])
    assert models.exit_code == 0 and "dict" in models.output


def test_predict_names_the_problem(
    core: ServingCore, store: ArtifactStore, server: ServingServer, model_dirs: dict[str, Path]
) -> None:
    serve_folder(core, store, model_dirs["dict"], "dict")
    runner = CliRunner()
    unknown = runner.invoke(
        app, ["predict", "dict", "--json", '{"height": 1}', "--address", server.address]
    )
    assert unknown.exit_code != 0 and "height" in unknown.output
    missing = runner.invoke(
        app, ["predict", "nope", "--json", '{"a": 1}', "--address", server.address]
    )
    assert missing.exit_code != 0 and "NOT_FOUND" in missing.output
    broken = runner.invoke(
        app, ["predict", "dict", "--json", "{not json", "--address", server.address]
    )
    assert broken.exit_code != 0 and "--json" in broken.output


def test_a_training_model_folder_serves_from_its_saved_model_subfolder(
    core: ServingCore,
    store: ArtifactStore,
    server: ServingServer,
    model_dirs: dict[str, Path],
    tmp_path: Path,
) -> None:
    # The training service publishes <model>/saved_model/, <model>/model.keras and a manifest;
    # the digest covers the whole folder.
    import shutil

    folder = tmp_path / "trained"
    shutil.copytree(model_dirs["dict"], folder / "saved_model")
    (folder / "model.keras").write_bytes(b"keras file stand-in")
    (folder / "sluice_manifest.json").write_text("{}")
    serve_folder(core, store, folder, "trained")
    rows = {"age": [30], "income": [1000.0], "country": ["BR"]}
    result = CliRunner().invoke(
        app, ["predict", "trained", "--json", json.dumps(rows), "--address", server.address]
    )
    assert result.exit_code == 0, result.output


def test_each_request_is_counted_with_its_version_and_status(
    core: ServingCore, store: ArtifactStore, server: ServingServer, model_dirs: dict[str, Path]
) -> None:
    serve_folder(core, store, model_dirs["dict"], "dict")
    runner = CliRunner()
    good = '{"age": 30, "income": 1000.0, "country": "BR"}'
    for _ in range(2):
        assert runner.invoke(app, ["predict", "dict", "--json", good, "--address", server.address])
    runner.invoke(app, ["predict", "dict", "--json", '{"age": 30}', "--address", server.address])

    def count(version: str, code: str) -> float | None:
        labels = {"model": "dict", "version": version, "protocol": "oip", "code": code}
        return core.metrics.registry.get_sample_value("sluice_serving_requests_total", labels)

    assert count("1", "OK") == 2
    bad = [count(v, "INVALID_ARGUMENT") for v in ("", "1")]  # missing inputs: refused
    assert sum(value or 0 for value in bad) == 1
    latency = core.metrics.registry.get_sample_value(
        "sluice_serving_request_latency_seconds_count",
        {"model": "dict", "version": "1", "protocol": "oip"},
    )
    assert latency == 2
