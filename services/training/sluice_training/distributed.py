"""Several workers with ``tf.distribute.MultiWorkerMirroredStrategy`` (TensorFlow backend only).

Each worker process gets ``TF_CONFIG`` (the local launcher writes it; in a Kubernetes Indexed Job
it is derived from ``SLUICE_TRAINING_WORKER_HOSTS`` and ``JOB_COMPLETION_INDEX``, see
`tf_config_from_env`). Every worker reads the same data and runs the same steps; the strategy
splits each global batch between them and all-reduces the gradients. Worker 0 (the chief) alone
reports progress, writes checkpoints and exports.

Keras 3's ``fit`` does not run under this strategy (keras-team/keras#20585: it reduces scalar
logs along axis 0), so steps go through Keras' own ``train_step`` inside ``strategy.run``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from sluice_training.loop import StepTracker

WORKER_HOSTS_ENV = "SLUICE_TRAINING_WORKER_HOSTS"
WORKER_INDEX_ENV = "JOB_COMPLETION_INDEX"


def tf_config(hosts: list[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``hosts`` (``host:port`` each)."""
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def tf_config_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``TF_CONFIG`` as given, or built from the worker hosts and the Indexed Job's index."""
    env = os.environ if environ is None else environ
    if env.get("TF_CONFIG"):
        return env["TF_CONFIG"]
    hosts = [h for h in env.get(WORKER_HOSTS_ENV, "").split(",") if h]
    if not hosts:
        return None
    return tf_config(hosts, int(env.get(WORKER_INDEX_ENV, "0")))


def task_index(environ: Mapping[str, str] | None = None) -> int:
    """This worker's index in ``TF_CONFIG`` (0 without one)."""
    config = tf_config_from_env(environ)
    if not config:
        return 0
    return int(json.loads(config)["task"]["index"])


def create_strategy() -> Any:
    """The strategy for this process' ``TF_CONFIG`` (set before TensorFlow starts collectives)."""
    import tensorflow as tf

    config = tf_config_from_env()
    if config:
        os.environ["TF_CONFIG"] = config
    return tf.distribute.MultiWorkerMirroredStrategy()


class MultiWorkerRunner:
    """Steps of a compiled model built under ``strategy.scope()``."""

    def __init__(self, strategy: Any, model: Any) -> None:
        import tensorflow as tf

        self.strategy = strategy
        self.model = model
        self._tf = tf
        self._train = tf.function(self._distributed(model.train_step))
        self._test = tf.function(self._distributed(model.test_step))

    def _distributed(self, step: Any) -> Any:
        tf = self._tf
        strategy = self.strategy

        def run(batch: Any) -> dict[str, Any]:
            logs = strategy.run(step, args=(batch,))
            return {
                name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                for name, value in logs.items()
            }

        return run

    def steps_per_epoch(self, rows: int, batch_size: int) -> int:
        # Whole batches only: every worker must take the same number of steps.
        return max(rows // batch_size, 1)

    def _dataset(self, x: Mapping[str, np.ndarray], y: np.ndarray, batch_size: int) -> Any:
        tf = self._tf
        dataset = tf.data.Dataset.from_tensor_slices((dict(x), y)).batch(
            batch_size, drop_remainder=len(y) >= batch_size
        )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def run(
        self,
        x: Mapping[str, np.ndarray],
        y: np.ndarray,
        rows: np.ndarray,
        batch_size: int,
        tracker: StepTracker,
    ) -> dict[str, float]:
        self.model.reset_metrics()
        ordered = {k: v[rows] for k, v in x.items()}
        logs: dict[str, Any] = {}
        for batch in self._dataset(ordered, y[rows], batch_size):
            logs = self._train(batch)
            tracker.step(logs)
        return {name: float(value) for name, value in logs.items()}

    def evaluate(
        self, x: Mapping[str, np.ndarray], y: np.ndarray, batch_size: int
    ) -> dict[str, float]:
        self.model.reset_metrics()
        logs: dict[str, Any] = {}
        for batch in self._dataset(x, y, batch_size):
            logs = self._test(batch)
        return {name: float(value) for name, value in logs.items()}
