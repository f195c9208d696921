"""The data plane with a plain-Python model: in-flight requests, unloading, memory release."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.errors import NotFound, Unavailable
from sluice_serving.core import ServingCore, VersionSelector, VersionState
from sluice_serving.server import build_core
from sluice_serving.settings import ServingSettings
from sluice_serving.signature import Signature, TensorSpec

SIGNATURE = Signature(
    "serving_default",
    inputs={"x": TensorSpec("x", np.dtype(np.float32), (-1, 1))},
    outputs={"y": TensorSpec("y", np.dtype(np.float32), (-1, 1))},
)


class _FakeRunner:
    """y = weight * x, the weight read from the model folder; can hold calls that ask for it."""

    hold = threading.Event()
    holding = threading.Event()

    def __init__(self, folder: Path) -> None:
        self.weight = float((folder / "weight.txt").read_text())

    @property
    def signatures(self) -> Mapping[str, Signature]:
        return {SIGNATURE.name: SIGNATURE}

    def signature_defs(self) -> Mapping[str, bytes]:
        return {}

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if inputs["x"][0, 0] == 42:  # the test's marker for "hold me in flight"
            _FakeRunner.holding.set()
            _FakeRunner.hold.wait(10)
        return {"y": inputs["x"] * self.weight}

    def close(self) -> None:
        pass


@pytest.fixture
def fake_core(settings: ServingSettings, store: ArtifactStore) -> Iterator[ServingCore]:
    created: list[weakref.ref[_FakeRunner]] = []

    def factory(folder: Path) -> _FakeRunner:
        runner = _FakeRunner(folder)
        created.append(weakref.ref(runner))
        return runner

    core = build_core(settings, store=store, runner_factory=factory)
    core.created = created  # type: ignore[attr-defined]
    yield core
    core.close()


def _publish(store: ArtifactStore, version: int, weight: float) -> str:
    store.put(f"models/fake/{version}/weight.txt", str(weight).encode())
    return f"models/fake/{version}"


def test_an_in_flight_request_finishes_on_the_version_it_started_on(
    fake_core: ServingCore, store: ArtifactStore
) -> None:
    fake_core.load_version("fake", 1, _publish(store, 1, 2.0), wait=True)
    _FakeRunner.hold.clear()
    _FakeRunner.holding.clear()
    answers: list[tuple[int, float]] = []

    def slow_request() -> None:
        prediction = fake_core.predict("fake", {"x": np.array([[42.0]], np.float32)})
        answers.append((prediction.version, float(prediction.outputs["y"][0, 0])))

    in_flight = threading.Thread(target=slow_request)
    in_flight.start()
    assert _FakeRunner.holding.wait(5)

    assert fake_core.load_version("fake", 2, _publish(store, 2, 3.0), wait=True).state is (
        VersionState.AVAILABLE
    )
    # New requests go to version 2 while version 1 still answers its last one.
    assert fake_core.predict("fake", {"x": np.ones((1, 1), np.float32)}).version == 2
    assert fake_core.model_status("fake", 1)[0].state is VersionState.UNLOADING
    with pytest.raises(NotFound):
        fake_core.predict("fake", {"x": np.ones((1, 1), np.float32)}, selector=VersionSelector(1))

    _FakeRunner.hold.set()
    in_flight.join(5)
    assert answers == [(1, 84.0)]
    deadline = time.monotonic() + 10
    while fake_core.model_status("fake", 1)[0].state is not VersionState.END:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    first_runner = fake_core.created[0]  # type: ignore[attr-defined]
    assert first_runner() is None, "an unloaded version's model is released"


def test_a_model_with_no_available_version_is_unavailable(
    fake_core: ServingCore, store: ArtifactStore
) -> None:
    fake_core.load_version("fake", 1, "models/fake/missing", wait=True)
    with pytest.raises(Unavailable, match="no available version"):
        fake_core.predict("fake", {"x": np.ones((1, 1), np.float32)})
    assert fake_core.is_ready()  # its only version failed: nothing left to wait for
