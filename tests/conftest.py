"""Shared by the cross-service tests: what the code reads from the environment."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from sluice_evaluation.config import EvaluationConfig
from sluice_metadata.config import MetadataConfig
from sluice_runtime.config import ServerConfig
from sluice_serving.settings import ServingSettings
from sluice_training.config import TrainingConfig
from sluice_validation.config import ValidationConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def variables_the_code_reads() -> set[str]:
    """Every SLUICE_* name spelled out in the SDK and service sources, and each service's server
    variables (SLUICE_<SERVICE>_PORT, ..._METRICS_PORT, which the runtime builds from a prefix)."""
    sources = [*(ROOT / "services").glob("*/sluice_*/**/*.py")]
    sources += (ROOT / "clients" / "python" / "sluice").glob("**/*.py")
    names: set[str] = set()
    for path in sources:
        names |= set(re.findall(r"\bSLUICE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    for project in (ROOT / "services").glob("*/pyproject.toml"):
        names |= {row[0] for row in ServerConfig.describe_env(project.parent.name)}
    return names


@pytest.fixture(scope="session")
def settings_from_env() -> dict[str, Callable[[Mapping[str, str]], object]]:
    """Each service's own settings, read from an environment (raises when one is malformed)."""
    return {
        "metadata": MetadataConfig.from_env,
        "validation": ValidationConfig.from_env,
        "training": TrainingConfig.from_env,
        "evaluation": EvaluationConfig.from_env,
        "serving": ServingSettings.from_env,
    }
