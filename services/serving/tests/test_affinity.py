"""One CPU for the Python threads: the choice, the setting, and what pinning does to threads."""

from __future__ import annotations

import contextlib
import os
import threading

import pytest
from sluice_runtime.config import ConfigError
from sluice_serving import affinity
from sluice_serving.settings import ServingSettings


def test_choose_cpu() -> None:
    assert affinity.choose_cpu("auto", {0, 1, 2, 3}) == 3
    assert affinity.choose_cpu("1", {0, 1}) == 1
    assert affinity.choose_cpu("off", {0, 1}) is None
    # Only one CPU to run on: nothing to choose.
    assert affinity.choose_cpu("auto", {5}) is None
    assert affinity.choose_cpu("auto", set()) is None
    with pytest.raises(ConfigError, match="CPU 7 is not one this process may run on"):
        affinity.choose_cpu("7", {0, 1})


@pytest.mark.parametrize("value", ["two", "-1", "1.5", ""])
def test_bad_setting_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="SLUICE_SERVING_PYTHON_CPU"):
        affinity.check_setting(value)


def test_setting_from_the_environment() -> None:
    assert ServingSettings.from_env({}).python_cpu == "auto"
    assert ServingSettings.from_env({"SLUICE_SERVING_PYTHON_CPU": "OFF"}).python_cpu == "off"
    assert ServingSettings.from_env({"SLUICE_SERVING_PYTHON_CPU": " 1 "}).python_cpu == "1"
    with pytest.raises(ConfigError, match="SLUICE_SERVING_PYTHON_CPU"):
        ServingSettings.from_env({"SLUICE_SERVING_PYTHON_CPU": "fast"})


@pytest.mark.skipif(len(affinity.allowed_cpus()) < 2, reason="needs Linux and two CPUs")
def test_pinned_threads_and_their_children_stay_on_one_cpu() -> None:
    allowed = affinity.allowed_cpus()
    cpu = max(allowed)
    started = threading.Event()
    stop = threading.Event()
    seen: dict[str, set[int]] = {}

    def child() -> None:
        seen["child"] = set(os.sched_getaffinity(0))

    def parent() -> None:
        started.set()
        stop.wait(10)
        # Started after pinning, by a pinned thread: inherits the one CPU.
        thread = threading.Thread(target=child)
        thread.start()
        thread.join()

    before = {
        t.native_id: set(os.sched_getaffinity(t.native_id))
        for t in threading.enumerate()
        if t.native_id is not None
    }
    worker = threading.Thread(target=parent)
    worker.start()
    started.wait(10)
    try:
        pinned = affinity.pin_python_threads(cpu)
        assert worker.native_id in pinned and threading.main_thread().native_id in pinned
        assert worker.native_id is not None
        assert os.sched_getaffinity(worker.native_id) == {cpu}
        stop.set()
        worker.join(10)
        assert seen["child"] == {cpu}
    finally:
        stop.set()
        # This process runs the other tests too: give every thread its CPUs back.
        for native_id, cpus in before.items():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(native_id, cpus)
    assert affinity.allowed_cpus() == allowed
