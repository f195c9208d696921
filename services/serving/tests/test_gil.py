"""Background work (loads, unloads) gives way and runs at the lowest CPU priority; requests not."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from sluice_runtime.artifacts import ArtifactStore
from sluice_serving.gil import LOWEST_PRIORITY, giving_way, lowest_priority
from sluice_serving.server import build_core
from sluice_serving.settings import ServingSettings
from sluice_serving.signature import Signature, TensorSpec

SIGNATURE = Signature(
    "serving_default",
    inputs={"x": TensorSpec("x", np.dtype(np.float32), (-1, 1))},
    outputs={"y": TensorSpec("y", np.dtype(np.float32), (-1, 1))},
)


def _python_calls(count: int) -> None:
    for _ in range(count):
        abs(-1)


def test_giving_way_naps_after_each_slice_of_python_and_only_then() -> None:
    now = [0.0]
    naps: list[float] = []
    with giving_way(0.5, 0.25, check_every=1, clock=lambda: now[0], sleep=naps.append):
        _python_calls(50)
        assert naps == []
        now[0] = 0.6  # the slice has run out: the next event naps once
        _python_calls(50)
        assert naps == [0.25]
        now[0] = 1.0  # the next slice began after the nap (at 0.6) and ends at 1.1
        _python_calls(50)
        assert naps == [0.25]
        now[0] = 1.2
        _python_calls(50)
        assert naps == [0.25, 0.25]
    now[0] = 5.0
    _python_calls(50)
    assert naps == [0.25, 0.25]


def test_giving_way_is_for_its_own_thread_and_puts_back_a_profile_function() -> None:
    def outer(frame: object, event: str, arg: object) -> None:
        pass

    seen_elsewhere: list[object] = []
    sys.setprofile(outer)
    try:
        with giving_way():
            assert sys.getprofile() not in (None, outer)
            other = threading.Thread(target=lambda: seen_elsewhere.append(sys.getprofile()))
            other.start()
            other.join()
        assert sys.getprofile() is outer
    finally:
        sys.setprofile(None)
    assert seen_elsewhere == [None]


class _RecordingRunner:
    """Records (this thread's nice value, whether a profile function gives way) at load, at each
    call and at close."""

    seen: ClassVar[list[tuple[int, bool]]] = []
    closed: ClassVar[list[tuple[int, bool]]] = []

    def __init__(self, folder: Path) -> None:
        _RecordingRunner.seen.append(_now())

    @property
    def signatures(self) -> Mapping[str, Signature]:
        return {SIGNATURE.name: SIGNATURE}

    def signature_defs(self) -> Mapping[str, bytes]:
        return {}

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        _RecordingRunner.seen.append(_now())
        return {"y": inputs["x"]}

    def close(self) -> None:
        _RecordingRunner.closed.append(_now())


def _now() -> tuple[int, bool]:
    return _nice(), sys.getprofile() is not None


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_lowest_priority_is_for_the_calling_thread_alone() -> None:
    seen: dict[str, int] = {}

    def background() -> None:
        lowest_priority()
        seen["background"] = _nice()
        beside = threading.Thread(target=lambda: seen.setdefault("started by it", _nice()))
        beside.start()
        beside.join()

    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen == {"background": LOWEST_PRIORITY, "started by it": LOWEST_PRIORITY}
    assert _nice() != LOWEST_PRIORITY


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_loads_and_unloads_run_as_background_work(
    settings: ServingSettings, store: ArtifactStore
) -> None:
    usual = _nice()
    _RecordingRunner.seen.clear()
    _RecordingRunner.closed.clear()
    core = build_core(settings, store=store, runner_factory=_RecordingRunner)
    try:
        store.put("models/fake/1/weights.txt", b"1")
        core.load_version("fake", 1, "models/fake/1", wait=True)
        # Loaded and warmed up (one synthetic call) at the lowest priority, giving way;
        # requests are served at the usual priority, with no profile function.
        background = (LOWEST_PRIORITY, True)
        assert _RecordingRunner.seen == [background, background]
        core.predict("fake", {"x": np.ones((1, 1), np.float32)})
        assert _RecordingRunner.seen[-1] == (usual, False)
        # Version 2 replaces it (latest 1): version 1 is closed on its unload thread, giving way.
        store.put("models/fake/2/weights.txt", b"2")
        core.load_version("fake", 2, "models/fake/2", wait=True)
        deadline = time.monotonic() + 30
        while not _RecordingRunner.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _RecordingRunner.closed == [background]
    finally:
        core.close()
