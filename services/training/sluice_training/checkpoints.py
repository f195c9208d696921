"""Checkpoints of a job in the artifact store, shared by all its attempts.

Layout under ``<checkpoint_prefix>/``: ``step-<step>.weights.h5`` (model and optimizer variables,
as Keras saves them) and ``latest.json``, written after the weights and naming them: the commit
point. A worker killed while saving leaves at most an unreferenced weights file, and the next
attempt resumes from the previous ``latest.json``; it loses at most one checkpoint interval.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice_runtime.artifacts import ArtifactNotFound, ArtifactStore

LATEST = "latest.json"


@dataclass(frozen=True)
class CheckpointInfo:
    """A committed checkpoint: the global ``step`` it was taken after, and the feature plan the
    model was built with (so a resumed attempt rebuilds exactly the same model)."""

    step: int
    key: str
    feature_plan: dict[str, Any]
    warm_start: dict[str, Any]


class Checkpoints:
    def __init__(self, store: ArtifactStore, prefix: str, work_dir: Path) -> None:
        self.store = store
        self.prefix = prefix.rstrip("/")
        self.work_dir = work_dir

    def latest(self) -> CheckpointInfo | None:
        try:
            data = json.loads(self.store.get_bytes(f"{self.prefix}/{LATEST}"))
        except ArtifactNotFound:
            return None
        return CheckpointInfo(
            step=int(data["step"]),
            key=str(data["key"]),
            feature_plan=dict(data["feature_plan"]),
            warm_start=dict(data.get("warm_start") or {}),
        )

    def save(
        self, model: Any, step: int, feature_plan: dict[str, Any], warm_start: dict[str, Any]
    ) -> CheckpointInfo:
        """Write the model's weights (optimizer included) and commit them as the latest."""
        previous = self.latest()
        key = f"{self.prefix}/step-{step:012d}.weights.h5"
        with tempfile.TemporaryDirectory(dir=self.work_dir) as folder:
            local = Path(folder) / "checkpoint.weights.h5"
            model.save_weights(str(local))
            self.store.put_file(key, local)
        info = CheckpointInfo(step=step, key=key, feature_plan=feature_plan, warm_start=warm_start)
        document = {
            "step": step,
            "key": key,
            "feature_plan": feature_plan,
            "warm_start": warm_start,
        }
        self.store.put(f"{self.prefix}/{LATEST}", json.dumps(document).encode())
        if previous is not None and previous.key != key:
            with contextlib.suppress(ArtifactNotFound):
                self.store.delete(previous.key)
        return info

    def restore(self, model: Any, info: CheckpointInfo) -> None:
        """Load the checkpoint's weights and optimizer state into ``model`` (built the same way;
        its optimizer must be built)."""
        with tempfile.TemporaryDirectory(dir=self.work_dir) as folder:
            local = Path(folder) / "checkpoint.weights.h5"
            self.store.get_file(info.key, local)
            model.load_weights(str(local))

    def clear(self) -> int:
        return self.store.delete_prefix(self.prefix + "/")
