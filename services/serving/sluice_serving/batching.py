"""Dynamic batching: concurrent requests for one signature of one model version, one model call.

A request joins a queue; a worker takes the oldest request, then gathers queued requests with the
same inner shapes and dtypes until the batch holds ``max_batch_size`` rows or the oldest request
has waited ``max_wait`` (TF Serving's ``batch_timeout_micros``). ``max_wait = 0`` never waits: a
batch is whatever queued while the model was busy, and a request that finds the model idle runs at
once on its own thread, so a lone request pays no hand-over between threads. The merged
inputs are concatenated along the first dimension, the outputs split back, so each request gets
exactly its own rows. When a merged call fails, its requests are retried one by one, so one bad
request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from sluice_runtime.errors import ResourceExhausted

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_WAIT_SECONDS = 0.002

Arrays = Mapping[str, np.ndarray]
RunBatch = Callable[[Arrays], dict[str, np.ndarray]]


@dataclass(frozen=True)
class BatchingSettings:
    """Per-model batching; ``max_batch_size`` <= 1 turns batching off."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS  # seconds

    def __post_init__(self) -> None:
        if self.max_batch_size < 0:
            raise ValueError(f"max_batch_size must be 0 or more, got {self.max_batch_size}")
        if not 0 <= self.max_wait <= 10:
            raise ValueError(f"max_wait must be between 0 and 10 seconds, got {self.max_wait}")

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1


class _Task:
    __slots__ = ("arrived", "done", "error", "future", "inputs", "key", "result", "rows")

    def __init__(
        self, inputs: Arrays, rows: int, future: asyncio.Future[dict[str, np.ndarray]] | None
    ) -> None:
        self.inputs = inputs
        self.rows = rows
        self.key = tuple((name, a.dtype.str, a.shape[1:]) for name, a in sorted(inputs.items()))
        self.arrived = time.monotonic()
        self.result: dict[str, np.ndarray] | None = None
        self.error: BaseException | None = None
        # An event-loop caller awaits ``future``; a thread blocks on ``done``, held until the
        # answer is in (a bare lock, not an Event: no Condition to build per request, and one
        # wake-up instead of two lock hand-overs under the GIL).
        self.future = future
        self.done: threading.Lock | None = None
        if future is None:
            self.done = threading.Lock()
            self.done.acquire()


class Batcher:
    """The batch queue of one signature of one model version, with its worker threads.

    Args:
        run: calls the model on (merged) inputs.
        settings: read at each batch, so configuration changes apply at once.
        max_queued_rows: rows that may wait; beyond, requests get RESOURCE_EXHAUSTED.
        on_batch: told the row count of every model call (for the batch size metric).
        name: for thread names and messages (``model/version/signature``).
        threads: concurrent model calls (TF Serving's ``num_batch_threads``).
    """

    def __init__(
        self,
        run: RunBatch,
        settings: Callable[[], BatchingSettings],
        *,
        max_queued_rows: int,
        on_batch: Callable[[int], None],
        name: str,
        threads: int = 1,
    ) -> None:
        self._run = run
        self._settings = settings
        self._max_queued_rows = max_queued_rows
        self._on_batch = on_batch
        self._name = name
        self._cond = threading.Condition()
        self._queue: collections.deque[_Task] = collections.deque()
        self._queued_rows = 0
        self._running = 0  # model calls in progress, by workers or by callers running directly
        self._threads = max(1, threads)
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"batch-{name}-{i}", daemon=True)
            for i in range(self._threads)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def queued_rows(self) -> int:
        with self._cond:
            return self._queued_rows

    def submit(self, inputs: Arrays, rows: int) -> dict[str, np.ndarray]:
        """Run ``inputs`` (``rows`` rows) as part of a batch and return their own outputs."""
        settings = self._settings()
        if rows >= settings.max_batch_size:
            # Already a full batch: queueing would only delay it.
            outputs = self._run(inputs)
            self._on_batch(rows)
            return outputs
        task = _Task(inputs, rows, None)
        with self._cond:
            if self._closed:
                raise RuntimeError(f"batcher {self._name} is closed")
            if settings.max_wait <= 0 and not self._queue and self._running < self._threads:
                self._running += 1
                direct = True
            else:
                direct = False
        if direct:
            try:
                outputs = self._run(inputs)
                self._on_batch(rows)
                return outputs
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
        self._enqueue(task)
        assert task.done is not None
        task.done.acquire()
        if task.error is not None:
            raise task.error
        assert task.result is not None
        return task.result

    async def submit_async(self, inputs: Arrays, rows: int) -> dict[str, np.ndarray]:
        """`submit` for a caller on an event loop: the model runs on the batch workers while
        the loop goes on with other requests, and the answers come back in one loop callback
        per batch."""
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        self._enqueue(_Task(inputs, rows, future))
        return await future

    def _enqueue(self, task: _Task) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError(f"batcher {self._name} is closed")
            if self._queued_rows + task.rows > self._max_queued_rows:
                raise ResourceExhausted(
                    f"the batch queue of {self._name} is full ({self._queued_rows} rows waiting; "
                    f"limit max_queued_rows={self._max_queued_rows}, "
                    "SLUICE_SERVING_MAX_QUEUED_ROWS)",
                    reason="BATCH_QUEUE_FULL",
                )
            self._queue.append(task)
            self._queued_rows += task.rows
            self._cond.notify_all()

    def close(self) -> None:
        """Finish what is queued, then stop the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for worker in self._workers:
            if worker is not threading.current_thread():
                worker.join()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._queue or self._running >= self._threads):
                    self._cond.wait()
                if not self._queue:
                    return
                self._running += 1
                batch, rows = self._gather()
            try:
                self._execute(batch, rows)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _gather(self) -> tuple[list[_Task], int]:
        # Called with the lock held; waits (releasing it) for more requests until full or due.
        settings = self._settings()
        first = self._queue.popleft()
        self._queued_rows -= first.rows
        batch, rows = [first], first.rows
        deadline = first.arrived + settings.max_wait
        while rows < settings.max_batch_size:
            rows = self._take_matching(batch, rows, first.key, settings.max_batch_size)
            if rows >= settings.max_batch_size or self._closed:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._cond.wait(remaining)
        return batch, rows

    def _take_matching(self, batch: list[_Task], rows: int, key: object, limit: int) -> int:
        if not self._queue:
            return rows
        kept: collections.deque[_Task] = collections.deque()
        for task in self._queue:
            if task.key == key and rows + task.rows <= limit:
                batch.append(task)
                rows += task.rows
                self._queued_rows -= task.rows
            else:
                kept.append(task)
        self._queue = kept
        return rows

    def _execute(self, batch: list[_Task], rows: int) -> None:
        if len(batch) == 1:
            self._run_alone(batch[0])
            _answer(batch)
            return
        try:
            merged = {
                name: np.concatenate([task.inputs[name] for task in batch])
                for name in batch[0].inputs
            }
            outputs = self._run(merged)
            self._on_batch(rows)
            offset = 0
            for task in batch:
                task.result = {
                    key: _rows_of(value, offset, task.rows, rows, key)
                    for key, value in outputs.items()
                }
                offset += task.rows
        except Exception:
            # One request may have poisoned the batch: give each its own answer.
            logger.debug(
                "batch of %d requests failed in %s; retrying one by one", len(batch), self._name
            )
            for task in batch:
                task.result = None
                self._run_alone(task)
        _answer(batch)

    def _run_alone(self, task: _Task) -> None:
        try:
            task.result = self._run(task.inputs)
            self._on_batch(task.rows)
        except BaseException as error:
            task.error = error


def _answer(batch: list[_Task]) -> None:
    """Wake the threads of ``batch`` and hand its event-loop callers their answers."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Task]] = {}
    for task in batch:
        if task.done is not None:
            task.done.release()
        elif task.future is not None:
            by_loop.setdefault(task.future.get_loop(), []).append(task)
    for loop, tasks in by_loop.items():
        # One wake-up of the loop per batch, not one per request.
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, tasks)


def _resolve(tasks: list[_Task]) -> None:
    for task in tasks:
        future = task.future
        assert future is not None
        if future.done():  # the caller went away (cancelled)
            continue
        if task.error is not None:
            future.set_exception(task.error)
        else:
            assert task.result is not None
            future.set_result(task.result)


def _rows_of(value: np.ndarray, offset: int, count: int, total: int, key: str) -> np.ndarray:
    if value.ndim == 0 or value.shape[0] != total:
        raise ValueError(f"output '{key}' has shape {list(value.shape)}: not batched by row")
    return value[offset : offset + count]
