"""`sluice eval ...` against a real evaluation server (fake models)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sluice.cli import evaluation as cli
from sluice.evaluation.v1 import evaluation_pb2 as pb
from sluice_evaluation.config import EvaluationConfig
from sluice_evaluation.server import EvaluationServer, build_core, build_server
from sluice_evaluation.testing import (
    GOOD,
    FakeLineage,
    fake_loader,
    put_fake_model,
    put_frame,
    tabular,
)
from sluice_runtime.artifacts import LocalArtifactStore
from sluice_runtime.config import ServerConfig
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command keeps "eval" a sub-command
    cli.register(app)
    return app


@pytest.fixture
def server(
    store: LocalArtifactStore, lineage: FakeLineage, tmp_path: Path
) -> Iterator[EvaluationServer]:
    config = EvaluationConfig(
        artifact_store_uri=store.root_uri,
        scratch_dir=tmp_path / "scratch",
        server=ServerConfig(service="evaluation", port=0),
    )
    core = build_core(config, store=store, lineage=lineage, load_model=fake_loader)
    with build_server(config, core=core) as running:
        yield running


def invoke(app: typer.Typer, server: EvaluationServer, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["eval", *args, "--address", server.address], env={"COLUMNS": "200"}
    )
    return result.exit_code, result.output


def test_create_show_compare_override(
    app: typer.Typer, server: EvaluationServer, store: LocalArtifactStore
) -> None:
    data = put_frame(store, "data/eval.csv", tabular(1500))
    good = put_fake_model(store, "models/good", GOOD)
    weak = put_fake_model(store, "models/weak", {"kind": "logistic", "weights": [1.0, 0.0]})

    code, output = invoke(
        app,
        server,
        "create",
        good,
        data,
        "--label",
        "label",
        "--slice",
        "country",
        "--threshold",
        "auc>=0.7",
        "--threshold",
        "*:log_loss<=0.9",
        "--bootstrap",
        "30",
    )
    assert code == 0, output
    assert "BLESSED" in output and "country=BR" in output and "(overall)" in output
    first = output.split()[0]
    assert first.startswith("evaluations/")

    code, output = invoke(
        app, server, "create", weak, data, "--label", "label", "-t", "auc>=0.9", "--bootstrap", "0"
    )
    assert code == 1  # NOT_BLESSED
    assert "NOT_BLESSED" in output and "below the lower bound 0.9" in output
    second = output.split()[0]

    code, output = invoke(app, server, "show", first, "--all")
    assert code == 0 and "auc_pr" in output and "precision@0.5" in output

    code, output = invoke(app, server, "compare", first, second, "-m", "auc")
    assert code == 0 and "auc" in output and "-0." in output

    code, output = invoke(
        app,
        server,
        "override",
        second,
        "--verdict",
        "blessed",
        "--reason",
        "known gap",
        "--actor",
        "ana",
    )
    assert code == 0 and "BLESSED" in output and "known gap" in output

    code, output = invoke(app, server, "list")
    assert code == 0 and first in output and second in output


def test_failures_exit_non_zero_with_the_reason(
    app: typer.Typer, server: EvaluationServer, store: LocalArtifactStore
) -> None:
    data = put_frame(store, "data/eval.csv", tabular(200))
    model = put_fake_model(store, "models/m", GOOD)
    code, output = invoke(app, server, "create", model, data, "--label", "clicked")
    assert code == 2 and "LABEL_MISSING" in output
    code, output = invoke(app, server, "create", model, data, "--label", "label", "-t", "auc>>1")
    assert code == 1 and "not a threshold" in output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auc>=0.7", pb.MetricThreshold(metric="auc", lower_bound=0.7)),
        ("log_loss<=0.45", pb.MetricThreshold(metric="log_loss", upper_bound=0.45)),
        ("*:auc~0.01", pb.MetricThreshold(metric="auc", slice="*", max_absolute_degradation=0.01)),
        (
            "country=BR,device=phone:precision@0.5~2%",
            pb.MetricThreshold(
                metric="precision@0.5",
                slice="country=BR,device=phone",
                max_relative_degradation=0.02,
            ),
        ),
        (
            "calibration~0.05!lower",
            pb.MetricThreshold(
                metric="calibration",
                max_absolute_degradation=0.05,
                direction=pb.DIRECTION_LOWER_IS_BETTER,
            ),
        ),
    ],
)
def test_threshold_syntax(text: str, expected: pb.MetricThreshold) -> None:
    assert cli.parse_threshold(text) == expected


def test_bad_threshold_syntax() -> None:
    for text in ("auc", "auc>0.7", "auc>=0.7%", ":auc>=1"):
        with pytest.raises(ValueError):
            cli.parse_threshold(text)
