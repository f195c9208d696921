"""Fixtures: a local artifact store, the in-memory metadata fake, a workspace, tiny SavedModels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sluice_evaluation.evaluator import Workspace
from sluice_evaluation.testing import FakeLineage, export_saved_models, fake_loader
from sluice_runtime.artifacts import LocalArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


@pytest.fixture
def lineage() -> FakeLineage:
    return FakeLineage()


@pytest.fixture
def workspace(store: LocalArtifactStore, lineage: FakeLineage, tmp_path: Path) -> Workspace:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return Workspace(store=store, lineage=lineage, scratch_dir=scratch, load_model=fake_loader)


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Made once per session: TensorFlow takes seconds to import and export."""
    yield export_saved_models(tmp_path_factory.mktemp("saved_models"))
