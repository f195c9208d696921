"""Model versions in processes of their own (``SLUICE_SERVING_MODEL_PROCESSES=true``, opt-in).

A version loaded into the serving process shares its GIL and its CPUs with every request: an
asyncio loop sharing a process with a SavedModel load was measured late by up to 6.5 ms (p99
4.3 ms), and up to 215 ms when the start-up objects are not frozen out of garbage collection.
In a process of its own a version shares no GIL with the front end: the batch worker sends a
merged batch over a pipe and waits with the GIL released; the model's own Python (tensor
conversion, the graph call, ``numpy()``) runs in the model process; a model that crashes takes
only its process down (its requests get UNAVAILABLE, ``MODEL_PROCESS_EXITED``); an unloaded
version's memory returns to the system when its process exits.

Why it is not the default: on the 2-vCPU development machine it lost on every count (open loop
at 2,500 requests/s, h2load): p50 1.8 ms against 1.2 ms in-process (the pipe), 0.4-0.6 s loads
against 0.1-0.2 s, and the process started ahead for the next load (a TensorFlow import, ~3.5 s
of CPU, even at the lowest priority) slowed every request for seconds after each swap - two
vCPUs are likely two hyperthreads of one core, where priorities do not help. It is for machines
with cores to spare, and for models that must be isolated.

Starting a process and importing TensorFlow takes seconds, so `ModelProcesses` keeps one process
started ahead (TensorFlow imported, nothing loaded) for the next load, and starts the next one
once a load is done. Import and load run at the lowest CPU priority; a model process also exits
by itself when the serving process goes away (its pipe closes).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sluice_serving.gil import lowest_priority
from sluice_serving.signature import Signature

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 10.0


class ModelProcessExited(Exception):
    """The process of a model version is gone: its requests cannot be answered."""

    grpc_code_name = "UNAVAILABLE"
    reason = "MODEL_PROCESS_EXITED"


class ModelCallFailed(Exception):
    """The model raised in its process; ``error_type`` names the exception it raised there."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.pid: int | None = None  # the process, when it failed to load the model


class _Worker:
    """One model process and the parent's end of its pipe."""

    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self._ready = False

    def wait_ready(self) -> None:
        if self._ready:
            return
        reply = self.receive()
        if reply != ("ready",):
            raise RuntimeError(f"model process sent {reply[0]!r} instead of ready")
        self._ready = True

    def send(self, message: tuple[Any, ...]) -> None:
        try:
            self.connection.send(message)
        except (OSError, EOFError):
            raise self._exited() from None

    def receive(self) -> tuple[Any, ...]:
        try:
            reply: tuple[Any, ...] = self.connection.recv()
        except (OSError, EOFError):
            raise self._exited() from None
        return reply

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.connection.send(("close",))
        self.process.join(CLOSE_TIMEOUT_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(CLOSE_TIMEOUT_SECONDS)
        self.connection.close()

    def _exited(self) -> ModelProcessExited:
        self.process.join(1.0)
        return ModelProcessExited(
            f"the model process (pid {self.process.pid}) exited with code {self.process.exitcode}"
        )


class ModelProcesses:
    """Starts model processes: a `RunnerFactory` whose runners live in processes of their own.

    Args:
        intra_op_threads, inter_op_threads: TensorFlow's thread settings in each process
            (0: TensorFlow decides).
        flat_calls: passed to `SavedModelRunner` in each process.
    """

    def __init__(
        self, *, intra_op_threads: int = 0, inter_op_threads: int = 0, flat_calls: bool = True
    ) -> None:
        # Forked from a server process that imported only this module: a fresh process in
        # milliseconds, without TensorFlow (whose threads do not survive a fork) and without
        # re-running the serving process's __main__ as a spawned process would.
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([__name__])
        self._threads = (intra_op_threads, inter_op_threads)
        self._flat_calls = flat_calls
        self._lock = threading.Lock()
        self._standby: _Worker | None = None
        self._closed = False
        self._start_standby()

    def __call__(self, folder: Path) -> ProcessRunner:
        """Load the model in ``folder`` in a process (the one started ahead, if there is one)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the model processes are closed")
            worker, self._standby = self._standby, None
        if worker is None or not worker.process.is_alive():
            if worker is not None:
                worker.stop()
            worker = self._spawn()
        try:
            return ProcessRunner(worker, folder, flat_calls=self._flat_calls)
        finally:
            # The next one starts once this load is done: two TensorFlow imports at once would
            # only take CPU from the versions serving meanwhile.
            self._start_standby()

    def close(self) -> None:
        """Stop the process kept for the next load (runners close their own)."""
        with self._lock:
            self._closed = True
            worker, self._standby = self._standby, None
        if worker is not None:
            worker.stop()

    def _start_standby(self) -> None:
        with self._lock:
            if self._closed or self._standby is not None:
                return
            self._standby = self._spawn()

    def _spawn(self) -> _Worker:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child_end, *self._threads), name="sluice-model", daemon=True
        )
        process.start()
        child_end.close()  # so the parent sees EOF when the child goes
        return _Worker(process, parent_end)


class ProcessRunner:
    """A `ModelRunner` whose model lives in a process of its own (see the module docstring)."""

    def __init__(self, worker: _Worker, folder: Path, *, flat_calls: bool = True) -> None:
        self._worker = worker
        self._lock = threading.Lock()
        try:
            worker.wait_ready()
            worker.send(("load", str(folder), flat_calls))
            reply = worker.receive()
        except BaseException:
            worker.stop()
            raise
        if reply[0] != "loaded":
            worker.stop()
            failed = ModelCallFailed(reply[1], reply[2])
            failed.pid = worker.process.pid
            raise failed
        self._signatures: dict[str, Signature] = reply[1]
        self._signature_defs: dict[str, bytes] = reply[2]
        self.flat_signatures: Sequence[str] = reply[3]
        self.pid: int = worker.process.pid or 0

    @property
    def signatures(self) -> Mapping[str, Signature]:
        return self._signatures

    def signature_defs(self) -> Mapping[str, bytes]:
        return self._signature_defs

    def run(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # One call at a time per process: the model runs them one after another anyway.
        with self._lock:
            self._worker.send(("run", signature, dict(inputs)))
            reply = self._worker.receive()
        if reply[0] == "ok":
            outputs: dict[str, np.ndarray] = reply[1]
            return outputs
        raise ModelCallFailed(reply[1], reply[2])

    def close(self) -> None:
        with self._lock:
            self._worker.stop()


def _serve(connection: Connection, intra_op_threads: int, inter_op_threads: int) -> None:
    """The model process: import TensorFlow, say ready, load one model, answer calls.

    Importing TensorFlow (seconds of CPU) and loading the model run on a thread at the lowest CPU
    priority, so that on a busy machine they take the CPU the serving process leaves; the model
    is then called from the main thread at normal priority (an unprivileged process could not
    raise its priority again). TensorFlow's thread pools start from the main thread too.
    """
    # The serving process decides when to stop (it drains first); a Ctrl-C meant for it reaches
    # the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _in_background(lambda: importlib.import_module("tensorflow"))
    import tensorflow as tf

    if intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    if inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    tf.constant(0.0).numpy()
    from sluice_serving.runner import SavedModelRunner

    try:
        connection.send(("ready",))
        message = connection.recv()
        if message[0] != "load":
            return
        folder, flat_calls = Path(message[1]), message[2]
        try:
            runner = _in_background(lambda: SavedModelRunner(folder, flat_calls=flat_calls))
        except Exception as error:
            connection.send(("failed", type(error).__name__, str(error)))
            return
        connection.send(
            (
                "loaded",
                dict(runner.signatures),
                dict(runner.signature_defs()),
                list(runner.flat_signatures),
            )
        )
        # What exists now lives as long as the process: never walk it again (see __main__).
        gc.collect()
        gc.freeze()
        while True:
            message = connection.recv()
            if message[0] != "run":
                return
            try:
                reply: tuple[Any, ...] = ("ok", runner.run(message[1], message[2]))
            except Exception as error:
                reply = ("error", type(error).__name__, str(error))
            connection.send(reply)
    except (EOFError, OSError):  # the serving process went away
        return


T = TypeVar("T")


def _in_background(work: Callable[[], T]) -> T:
    """``work()`` on a thread of the lowest CPU priority; its result or its exception."""
    outcome: list[Any] = []

    def run() -> None:
        lowest_priority()
        try:
            outcome.append((True, work()))
        except BaseException as error:
            outcome.append((False, error))

    thread = threading.Thread(target=run, name="background")
    thread.start()
    thread.join()
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    result: T = value
    return result
