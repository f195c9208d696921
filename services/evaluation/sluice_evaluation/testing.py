"""Fakes and helpers for tests of the evaluation service and of the services around it.

- `FakeModel` / `fake_loader`: "models" that are a model.json file (logistic, linear or softmax
  over named features), so evaluations run without TensorFlow;
- `FakeLineage`: an in-memory `Lineage` with a settable serving baseline;
- `tabular`, `put_frame`, `put_fake_model`, `upload_folder`: data and model folders in a store;
- `export_saved_models`: tiny real SavedModels (a tf.Module and an exported Keras model).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.errors import NotFound

from sluice_evaluation.lineage import ArtifactRecord, EvaluationRecord, Recorded
from sluice_evaluation.model import InputSpec, ModelUnloadable

FEATURES = ("x1", "x2")


def put_frame(store: ArtifactStore, key: str, frame: pd.DataFrame) -> str:
    """Store a CSV or Parquet file (by the key's extension); returns its URI."""
    buffer = io.BytesIO()
    if key.endswith(".parquet"):
        frame.to_parquet(buffer, index=False)
    else:
        frame.to_csv(buffer, index=False)
    return store.put(key, buffer.getvalue()).uri


def tabular(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Two numeric features, a country, an age and a binary label that x1 and x2 predict."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    probability = 1 / (1 + np.exp(-(1.5 * x1 - 1.0 * x2)))
    return pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "country": rng.choice(["BR", "DE", "US"], size=n, p=[0.2, 0.3, 0.5]),
            "age": rng.integers(18, 80, size=n),
            "weight": rng.uniform(0.5, 2.0, size=n),
            "label": (rng.random(n) < probability).astype(int),
        }
    )


# -- fake models: a JSON file in the model folder, no TensorFlow ----------------------------------


def put_fake_model(store: ArtifactStore, key: str, model: Mapping[str, Any]) -> str:
    """A "model folder" holding model.json: {"kind": "logistic"|"linear"|"softmax", ...}."""
    store.put(f"{key}/model.json", json.dumps(model).encode())
    return store.uri_for(key)


class FakeModel:
    """``logistic``: sigmoid(w . x + b) (with per-country shifts); ``linear``: w . x + b;
    ``softmax``: one weight row per class."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        inputs = spec.get("inputs", list(FEATURES))
        self._inputs = {name: InputSpec(name, "float", (-1,), "float32") for name in inputs}
        if spec.get("country_shift"):
            self._inputs["country"] = InputSpec("country", "string", (-1,))

    @property
    def inputs(self) -> Mapping[str, InputSpec]:
        return self._inputs

    def predict_batch(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        x = np.stack(
            [features[name].astype(np.float64) for name in self.spec.get("inputs", FEATURES)], 1
        )
        if self.spec["kind"] == "softmax":
            logits = x @ np.asarray(self.spec["weights"], dtype=np.float64).T
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return np.asarray(e / e.sum(axis=1, keepdims=True))
        z = x @ np.asarray(self.spec["weights"], dtype=np.float64) + self.spec.get("bias", 0.0)
        for country, shift in self.spec.get("country_shift", {}).items():
            z = z + shift * (features["country"] == country)
        if self.spec["kind"] == "linear":
            return np.asarray(z)
        return np.asarray(1 / (1 + np.exp(-z)))


def fake_loader(folder: Path) -> FakeModel:
    try:
        return FakeModel(json.loads((folder / "model.json").read_text()))
    except (OSError, ValueError, KeyError) as error:
        raise ModelUnloadable(f"not a fake model: {error}") from None


# The model the data of `tabular` was drawn from.
GOOD = {"kind": "logistic", "weights": [1.5, -1.0]}


# -- metadata fake --------------------------------------------------------------------------------


@dataclass
class FakeLineage:
    """In-memory `Lineage`: artifacts by id, a settable serving baseline, recorded calls."""

    artifacts: dict[int, ArtifactRecord] = field(default_factory=dict)
    baseline: ArtifactRecord | None = None
    evaluations: list[EvaluationRecord] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    infra: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1000

    def add(self, uri: str, type_name: str = "Model", **properties: Any) -> ArtifactRecord:
        self.next_id += 1
        record = ArtifactRecord(self.next_id, uri, type_name, "", properties)
        self.artifacts[record.id] = record
        return record

    def artifact(self, artifact_id: int, field: str) -> ArtifactRecord:
        if artifact_id not in self.artifacts:
            raise NotFound(f"{field}: artifact {artifact_id} does not exist", field=field)
        return self.artifacts[artifact_id]

    def model_by_uri(self, uri: str) -> ArtifactRecord:
        found = [a for a in self.artifacts.values() if a.uri == uri and a.type == "Model"]
        return found[-1] if found else ArtifactRecord(0, uri, "Model")

    def serving_baseline(self, candidate: ArtifactRecord, context_id: int) -> ArtifactRecord | None:
        return self.baseline

    def record_evaluation(self, record: EvaluationRecord) -> Recorded:
        self.evaluations.append(record)
        self.next_id += 3
        return Recorded(self.next_id, (self.next_id - 2, self.next_id - 1))

    def record_failure(
        self, execution_type: str, name: str, model: ArtifactRecord, context_id: int, message: str
    ) -> None:
        self.failures.append((execution_type, name, message))

    def record_override(
        self,
        name: str,
        model: ArtifactRecord,
        evaluation_artifact_id: int,
        blessing_uri: str,
        blessed: bool,
        reason: str,
        actor: str,
    ) -> Recorded:
        self.overrides.append(
            {
                "name": name,
                "blessed": blessed,
                "reason": reason,
                "actor": actor,
                "uri": blessing_uri,
            }
        )
        self.next_id += 2
        return Recorded(self.next_id - 1, (self.next_id,))

    def record_infra_validation(
        self, name: str, model: ArtifactRecord, blessing_uri: str, blessed: bool, summary: str
    ) -> Recorded:
        self.infra.append({"name": name, "blessed": blessed, "summary": summary})
        self.next_id += 2
        return Recorded(self.next_id - 1, (self.next_id,))


def export_saved_models(root: Path) -> dict[str, Path]:
    """Tiny SavedModels with a serving_default on raw features x1, x2 (float32, [batch]):
    ``logistic`` (a tf.Module, output ``probabilities``) and ``keras`` (a Keras model exported with
    model.export into ``saved_model/`` beside ``model.keras``, as the training service lays out)."""
    import tensorflow as tf

    class Logistic(tf.Module):  # type: ignore[misc]
        @tf.function(  # type: ignore[untyped-decorator]
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="x1"),
                tf.TensorSpec([None], tf.float32, name="x2"),
            ]
        )
        def serve(self, x1: Any, x2: Any) -> dict[str, Any]:
            return {"probabilities": tf.sigmoid(1.5 * x1 - 1.0 * x2)}

    module = Logistic()
    tf.saved_model.save(
        module, str(root / "logistic"), signatures={"serving_default": module.serve}
    )

    import keras

    x1 = keras.Input(shape=(), name="x1", dtype="float32")
    x2 = keras.Input(shape=(), name="x2", dtype="float32")
    stacked = keras.layers.Concatenate()([keras.layers.Reshape((1,))(x) for x in (x1, x2)])
    output = keras.layers.Dense(1, activation="sigmoid", name="probabilities")(stacked)
    model = keras.Model({"x1": x1, "x2": x2}, output)
    model.layers[-1].set_weights([np.array([[1.5], [-1.0]], np.float32), np.zeros(1, np.float32)])
    model.export(str(root / "keras" / "saved_model"), verbose=False)
    model.save(root / "keras" / "model.keras")
    return {"logistic": root / "logistic", "keras": root / "keras"}


def upload_folder(store: ArtifactStore, folder: Path, key: str) -> str:
    """Put every file under ``folder`` into the store under ``key``; returns the folder's URI."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            store.put_file(f"{key}/{path.relative_to(folder).as_posix()}", path)
    return store.uri_for(key)
