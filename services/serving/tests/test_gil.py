"""Short GIL turns while a version loads, and the usual ones once no load is running."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
from sluice_runtime.artifacts import ArtifactStore
from sluice_serving.gil import LOADING_SWITCH_INTERVAL, short_turns
from sluice_serving.server import build_core
from sluice_serving.settings import ServingSettings
from sluice_serving.signature import Signature, TensorSpec

SIGNATURE = Signature(
    "serving_default",
    inputs={"x": TensorSpec("x", np.dtype(np.float32), (-1, 1))},
    outputs={"y": TensorSpec("y", np.dtype(np.float32), (-1, 1))},
)


def test_nested_short_turns_restore_the_interval_once_the_last_ends() -> None:
    usual = sys.getswitchinterval()
    with short_turns():
        assert sys.getswitchinterval() == LOADING_SWITCH_INTERVAL
        with short_turns():
            assert sys.getswitchinterval() == LOADING_SWITCH_INTERVAL
        assert sys.getswitchinterval() == LOADING_SWITCH_INTERVAL
    assert sys.getswitchinterval() == usual


class _RecordingRunner:
    seen: ClassVar[list[float]] = []

    def __init__(self, folder: Path) -> None:
        _RecordingRunner.seen.append(sys.getswitchinterval())

    @property
    def signatures(self) -> Mapping[str, Signature]:
        return {SIGNATURE.name: SIGNATURE}

    def signature_defs(self) -> Mapping[str, bytes]:
        return {}

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        _RecordingRunner.seen.append(sys.getswitchinterval())
        return {"y": inputs["x"]}

    def close(self) -> None:
        pass


def test_a_load_runs_with_short_turns(settings: ServingSettings, store: ArtifactStore) -> None:
    usual = sys.getswitchinterval()
    _RecordingRunner.seen.clear()
    core = build_core(settings, store=store, runner_factory=_RecordingRunner)
    try:
        store.put("models/fake/1/weights.txt", b"1")
        core.load_version("fake", 1, "models/fake/1", wait=True)
        # Loaded and warmed up (one synthetic call) with short turns; serving with the usual ones.
        assert _RecordingRunner.seen == [LOADING_SWITCH_INTERVAL, LOADING_SWITCH_INTERVAL]
        assert sys.getswitchinterval() == usual
        core.predict("fake", {"x": np.ones((1, 1), np.float32)})
        assert _RecordingRunner.seen[-1] == usual
    finally:
        core.close()
