"""Fixtures: tiny SavedModels (built once per session), an artifact store, a core and a server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

# Two cores shared by a team: keep TensorFlow to one thread per op and one op at a time.
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from sluice_runtime.artifacts import ArtifactStore, LocalArtifactStore  # noqa: E402
from sluice_runtime.config import ServerConfig  # noqa: E402
from sluice_serving.core import ServingCore  # noqa: E402
from sluice_serving.server import ServingServer, build_core, build_serving_server  # noqa: E402
from sluice_serving.settings import ServingSettings  # noqa: E402
from sluice_serving.testing import (  # noqa: E402
    export_classifier,
    export_dict_model,
    export_linear,
    export_numeric_keras,
)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "numeric": export_numeric_keras(root / "numeric"),
        "dict": export_dict_model(root / "dict"),
        "linear2": export_linear(root / "linear2", 2.0),
        "linear3": export_linear(root / "linear3", 3.0),
        "fails_warmup": export_linear(root / "fails_warmup", 5.0, fail_on_zero=True),
        "classifier": export_classifier(root / "classifier"),
    }


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, store: ArtifactStore
) -> ServingSettings:
    """Settings for a test; a test may override fields (``indirect`` parametrization)."""
    overrides = getattr(request, "param", {})
    return ServingSettings(
        artifact_store_uri=store.root_uri,
        cache_dir=tmp_path / "cache",
        loader_threads=1,
        max_request_rows=1000,
        max_request_bytes=1 << 20,
        request_log_flush_seconds=60,
        **overrides,
    )


@pytest.fixture
def core(settings: ServingSettings, store: ArtifactStore) -> Iterator[ServingCore]:
    serving = build_core(settings, store=store)
    yield serving
    serving.close()


@pytest.fixture
def server(core: ServingCore) -> Iterator[ServingServer]:
    running = build_serving_server(ServerConfig(service="serving", port=0, max_workers=16), core)
    yield running
    running.running.stop(0)
