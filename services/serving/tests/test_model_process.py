"""Model versions in processes of their own: same answers, contained failures, nothing left."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sluice_runtime.config import ConfigError
from sluice_serving.model_process import ModelCallFailed, ModelProcesses, ModelProcessExited
from sluice_serving.runner import SavedModelRunner
from sluice_serving.settings import ServingSettings
from tensorflow.core.protobuf import meta_graph_pb2


@pytest.fixture(scope="module")
def processes() -> Iterator[ModelProcesses]:
    # One per module: its process started ahead saves a TensorFlow import on the first load.
    started = ModelProcesses(intra_op_threads=1, inter_op_threads=1)
    yield started
    started.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not reaped yet is a zombie: gone for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_answers_and_signatures_are_those_of_the_model_loaded_here(
    processes: ModelProcesses, model_dirs: dict[str, Path]
) -> None:
    local = SavedModelRunner(model_dirs["dict"])
    remote = processes(model_dirs["dict"])
    try:
        assert remote.pid != os.getpid()
        assert dict(remote.signatures) == dict(local.signatures)
        # Serialized maps may come in another order: compare the messages.
        defs = {
            name: meta_graph_pb2.SignatureDef.FromString(data)
            for name, data in remote.signature_defs().items()
        }
        assert defs == {
            name: meta_graph_pb2.SignatureDef.FromString(data)
            for name, data in local.signature_defs().items()
        }
        inputs: dict[str, np.ndarray] = {
            "age": np.array([30, 41], np.int64),
            "income": np.array([1.5, 2.5], np.float32),
            "country": np.array([b"NL", b"DE"], object),
        }
        got, want = remote.run("serving_default", inputs), local.run("serving_default", inputs)
        assert sorted(got) == sorted(want)
        for key, value in want.items():
            assert got[key].dtype == value.dtype
            np.testing.assert_allclose(got[key], value, rtol=1e-6)
    finally:
        remote.close()
        local.close()


def test_a_failing_call_names_its_error_and_the_process_serves_on(
    processes: ModelProcesses, model_dirs: dict[str, Path]
) -> None:
    runner = processes(model_dirs["fails_warmup"])
    try:
        with pytest.raises(ModelCallFailed) as failed:
            runner.run("serving_default", {"x": np.zeros((1, 2), np.float32)})
        assert failed.value.error_type == "InvalidArgumentError"
        answer = runner.run("serving_default", {"x": np.ones((1, 2), np.float32)})
        assert answer["y"].tolist() == [10.0]
    finally:
        runner.close()


def test_a_dead_process_fails_calls_as_unavailable_and_close_leaves_no_process(
    processes: ModelProcesses, model_dirs: dict[str, Path]
) -> None:
    runner = processes(model_dirs["linear2"])
    os.kill(runner.pid, signal.SIGKILL)

    with pytest.raises(ModelProcessExited, match=r"exited with code -9") as exited:
        runner.run("serving_default", {"x": np.ones((1, 2), np.float32)})
    assert exited.value.grpc_code_name == "UNAVAILABLE"

    healthy = processes(model_dirs["linear2"])
    pid = healthy.pid
    assert healthy.run("serving_default", {"x": np.ones((1, 2), np.float32)})["y"].tolist() == [4.0]
    healthy.close()
    runner.close()
    assert not _alive(pid)


def test_a_folder_that_is_no_model_is_refused_and_its_process_ends(
    processes: ModelProcesses, tmp_path: Path
) -> None:
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "README").write_text("hello")

    with pytest.raises(ModelCallFailed, match=r"no saved_model\.pb") as failed:
        processes(tmp_path / "not-a-model")

    assert failed.value.error_type == "ValueError"
    assert failed.value.pid is not None and not _alive(failed.value.pid)


def test_model_processes_are_switched_on_by_their_variable() -> None:
    base = {"SLUICE_ARTIFACT_STORE_URI": "file:///tmp/store"}
    assert not ServingSettings.from_env(base).model_processes
    on = ServingSettings.from_env({**base, "SLUICE_SERVING_MODEL_PROCESSES": "true"})
    assert on.model_processes
    with pytest.raises(ConfigError, match="SLUICE_SERVING_MODEL_PROCESSES"):
        ServingSettings.from_env({**base, "SLUICE_SERVING_MODEL_PROCESSES": "sometimes"})
