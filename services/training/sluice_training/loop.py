"""The training loop: a step budget walked in deterministic batches, with progress, checkpoints
and NaN detection, over a `StepRunner` that does the actual steps.

Batches are a function of (seed, epoch, step): epoch ``e`` visits the rows in the permutation
``default_rng([seed, e])``, so an attempt that resumes at global step ``s`` replays exactly the
batches the lost attempt would have seen from ``s`` on.

Steps run in *chunks* that end at checkpoints and epoch ends (one ``model.fit`` call each, with
the default of a checkpoint per epoch: one per epoch). Within a chunk, a `StepTracker` counts
steps and reports progress about every ``progress_interval`` seconds, reading the loss only then:
reading it after every step makes the host wait for the device each time (measured: 28 % slower
on an H100 with JAX). Keras dispatches the tracker off the training thread where the backend
allows it (JAX, PyTorch).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sluice_training.failures import TrainingFailure
from sluice_training.jobs import Progress


class StepTracker(Protocol):
    def step(self, logs: Mapping[str, Any]) -> None:
        """Called after each step with that step's logs (device values, not read yet); may be
        called from another thread. Raises TrainingFailure on a NaN loss."""
        ...


class StepRunner(Protocol):
    def steps_per_epoch(self, rows: int, batch_size: int) -> int: ...

    def run(
        self,
        x: Mapping[str, np.ndarray],
        y: np.ndarray,
        rows: np.ndarray,
        batch_size: int,
        tracker: StepTracker,
    ) -> dict[str, float]:
        """One step per batch of ``batch_size`` of ``rows`` (indices into x and y), in order;
        the chunk's logs (mean loss and metrics over its steps)."""
        ...

    def evaluate(
        self, x: Mapping[str, np.ndarray], y: np.ndarray, batch_size: int
    ) -> dict[str, float]: ...


class FitRunner:
    """Steps through ``model.fit`` (works on TensorFlow, JAX and PyTorch).

    Under TensorFlow the chunk's rows are gathered into arrays that Keras turns into a tf.data
    pipeline (Python generators are slower there). Under JAX and PyTorch a generator gathers one
    batch at a time, so gathering batch k+1 overlaps the device's work on batch k (as in
    ``fit(shuffle=True)``), instead of permuting all the data up front.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def steps_per_epoch(self, rows: int, batch_size: int) -> int:
        return math.ceil(rows / batch_size)

    def run(
        self,
        x: Mapping[str, np.ndarray],
        y: np.ndarray,
        rows: np.ndarray,
        batch_size: int,
        tracker: StepTracker,
    ) -> dict[str, float]:
        import keras

        class Relay(keras.callbacks.Callback):  # type: ignore[misc]
            # Safe off the training thread: it never touches the model (on JAX, reading
            # self.model would copy the weights back) and StepTracker is thread-safe.
            async_safe = True

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                tracker.step(logs or {})

        if keras.backend.backend() == "tensorflow":
            history = self.model.fit(
                {k: v[rows] for k, v in x.items()},
                y[rows],
                batch_size=batch_size,
                epochs=1,
                shuffle=False,
                verbose=0,
                callbacks=[Relay()],
            )
        else:

            def batches() -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
                for start in range(0, len(rows), batch_size):
                    # Sorted: the same rows, read in memory order (the mean loss ignores order).
                    index = np.sort(rows[start : start + batch_size])
                    yield {k: v[index] for k, v in x.items()}, y[index]

            history = self.model.fit(
                batches(),
                steps_per_epoch=math.ceil(len(rows) / batch_size),
                epochs=1,
                verbose=0,
                callbacks=[Relay()],
            )
        return {str(k): _number(v[-1]) for k, v in history.history.items()}

    def evaluate(
        self, x: Mapping[str, np.ndarray], y: np.ndarray, batch_size: int
    ) -> dict[str, float]:
        logs = self.model.evaluate(dict(x), y, batch_size=batch_size, verbose=0, return_dict=True)
        return {str(k): float(v) for k, v in logs.items()}


@dataclass(frozen=True)
class Budget:
    """How many steps the job takes: ``epochs`` passes, capped at ``max_steps`` when set
    (``epochs`` 0: ``max_steps`` alone)."""

    steps_per_epoch: int
    epochs: int
    max_steps: int = 0

    @property
    def total_steps(self) -> int:
        if self.epochs == 0:  # no epoch limit: max_steps decides
            return self.max_steps
        total = self.steps_per_epoch * self.epochs
        return min(total, self.max_steps) if self.max_steps else total

    @property
    def total_epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)


def permutation(seed: int, epoch: int, rows: int) -> np.ndarray:
    """The order epoch ``epoch`` visits the rows in."""
    return np.random.default_rng([seed, epoch]).permutation(rows)


class Loop:
    """Walks the budget from ``start_step`` chunk by chunk, reporting progress and taking
    checkpoints.

    Args:
        on_progress: receives a `Progress` about every ``progress_interval`` seconds (possibly
            from another thread), after every chunk and at the end.
        on_checkpoint: called with the global step when a checkpoint is due (every
            ``checkpoint_every`` steps; 0 means at the end of every epoch). Not at the final step:
            the export follows it.
    """

    def __init__(
        self,
        runner: StepRunner,
        budget: Budget,
        *,
        batch_size: int,
        seed: int,
        checkpoint_every: int,
        on_progress: Callable[[Progress], None],
        on_checkpoint: Callable[[int], None],
        progress_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.budget = budget
        self.batch_size = batch_size
        self.seed = seed
        self.checkpoint_every = checkpoint_every or budget.steps_per_epoch
        self.on_progress = on_progress
        self.on_checkpoint = on_checkpoint
        self.progress_interval = progress_interval
        self.clock = clock
        self.global_step = 0
        self.last_progress = Progress()
        self._lock = threading.Lock()
        self._start_step = 0
        self._started = 0.0
        self._last_report = 0.0

    def run(self, x: Mapping[str, np.ndarray], y: np.ndarray, start_step: int = 0) -> Progress:
        total = self.budget.total_steps
        spe = self.budget.steps_per_epoch
        self.global_step = self._start_step = start_step
        self._started = self._last_report = self.clock()
        order_epoch, order = -1, np.empty(0, dtype=np.int64)
        while self.global_step < total:
            epoch, offset = divmod(self.global_step, spe)
            if epoch != order_epoch:
                order_epoch, order = epoch, permutation(self.seed, epoch, len(y))
            every = self.checkpoint_every
            next_checkpoint = (self.global_step // every + 1) * every
            chunk = min(spe - offset, next_checkpoint - self.global_step, total - self.global_step)
            rows = order[offset * self.batch_size : (offset + chunk) * self.batch_size]
            chunk_end = self.global_step + chunk
            logs = self.runner.run(x, y, rows, self.batch_size, self)
            with self._lock:
                self.global_step = chunk_end  # whatever the trackers counted, the chunk is done
                self._report(logs, self.clock())
            if self.global_step % self.checkpoint_every == 0 and self.global_step < total:
                self.on_checkpoint(self.global_step)
        return self.last_progress

    def step(self, logs: Mapping[str, Any]) -> None:
        """The `StepTracker` of every chunk."""
        with self._lock:
            self.global_step += 1
            now = self.clock()
            if now - self._last_report < self.progress_interval:
                return
            self._report({str(k): _number(v) for k, v in logs.items()}, now)

    def _report(self, logs: Mapping[str, float], now: float) -> None:
        loss = logs.get("loss", math.nan)
        if not math.isfinite(loss):
            # Keras' logs are running means: once a step is NaN they stay NaN until the chunk
            # ends, where they are checked again, so no NaN goes unseen.
            raise TrainingFailure(
                "NAN_LOSS",
                f"the training loss became {loss} by step {self.global_step}; lower the learning "
                "rate, or check the data for extreme values",
                field="spec.hyperparameters.learning_rate",
            )
        self.last_progress = self._progress(logs, now)
        self._last_report = now
        self.on_progress(self.last_progress)

    def _progress(self, logs: Mapping[str, float], now: float) -> Progress:
        total = self.budget.total_steps
        elapsed = max(now - self._started, 1e-9)
        steps_per_second = (self.global_step - self._start_step) / elapsed
        remaining = total - self.global_step
        return Progress(
            epoch=min(self.global_step // self.budget.steps_per_epoch + 1, self.budget.total_epochs)
            if self.global_step < total
            else self.budget.total_epochs,
            total_epochs=self.budget.total_epochs,
            step=self.global_step,
            total_steps=total,
            loss=logs.get("loss", math.nan),
            metrics={k: v for k, v in logs.items() if k != "loss" and math.isfinite(v)},
            examples_per_second=steps_per_second * self.batch_size,
            eta_seconds=round(remaining / steps_per_second) if steps_per_second > 0 else 0,
        )


def _number(value: Any) -> float:
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return math.nan
