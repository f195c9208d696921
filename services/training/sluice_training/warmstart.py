"""Warm start: a new model starts from the weights of a base model where they fit.

Layers with trainable weights are matched by name (nested models by their path of names). A layer
whose weights all have the base's shapes takes them as they are. Categorical embeddings
(``embed_<feature>`` and ``wide_<feature>``) are remapped by token when the feature's vocabulary
changed between the base's plan and the new one: each token seen by both keeps its row, new
tokens keep their fresh initialisation, out-of-vocabulary rows are kept when the bucket counts
agree. Normalisation constants are not copied: they come from the new data's statistics.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from sluice_runtime.artifacts import ArtifactStore, ArtifactStoreError

from sluice_training.failures import TrainingFailure
from sluice_training.features import Feature, FeaturePlan
from sluice_training.locations import key_of
from sluice_training.preprocessing import core_of
from sluice_training.publish import KERAS_FILE, fetch_files, read_manifest

EMBEDDING_PREFIXES = ("embed_", "wide_")


@dataclass
class WarmStartReport:
    """What a warm start did, layer by layer (recorded in the job's events and the manifest)."""

    base_model_uri: str = ""
    copied: list[str] = field(default_factory=list)
    remapped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "base_model_uri": self.base_model_uri,
            "copied": self.copied,
            "remapped": self.remapped,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class BaseModel:
    model: keras.Model
    plan: FeaturePlan | None
    uri: str


def load_base_model(uri: str, store: ArtifactStore, work_dir: Path) -> BaseModel:
    """The base model's core (loaded from its ``model.keras``) and its feature plan.

    Raises:
        TrainingFailure: BASE_MODEL_NOT_FOUND, BASE_MODEL_UNREADABLE.
    """
    field_name = "spec.warm_start.base_model.uri"
    prefix = key_of(uri, store, field_name).rstrip("/")
    try:
        manifest = read_manifest(store, prefix)
        if manifest is None and not store.exists(f"{prefix}/{KERAS_FILE}"):
            raise TrainingFailure(
                "BASE_MODEL_NOT_FOUND",
                f"no model at {uri} (no {KERAS_FILE}); check the warm-start base model",
                field=field_name,
            )
        folder = Path(tempfile.mkdtemp(prefix="base-model-", dir=work_dir))
        fetch_files(store, prefix, [KERAS_FILE], folder)
    except ArtifactStoreError as error:
        raise TrainingFailure(
            "BASE_MODEL_UNREADABLE",
            f"cannot read the base model at {uri}: {error}",
            field=field_name,
        ) from None
    try:
        loaded = keras.saving.load_model(folder / KERAS_FILE, compile=False)
    except Exception as error:
        raise TrainingFailure(
            "BASE_MODEL_UNREADABLE",
            f"cannot load {uri}/{KERAS_FILE}: {type(error).__name__}: {error}",
            field=field_name,
        ) from None
    plan = None
    if manifest is not None and "feature_plan" in manifest:
        plan = FeaturePlan.from_json(manifest["feature_plan"])
    return BaseModel(model=core_of(loaded), plan=plan, uri=uri)


def warm_start(model: keras.Model, plan: FeaturePlan, base: BaseModel) -> WarmStartReport:
    """Copy the base's compatible weights into ``model`` (see the module docstring)."""
    report = WarmStartReport(base_model_uri=base.uri)
    base_layers = dict(_layers(base.model))
    features = {f.layer_name: f for f in plan.features}
    base_features = {f.layer_name: f for f in base.plan.features} if base.plan else {}
    for path, layer in _layers(model):
        if not layer.trainable_weights:
            continue
        source = base_layers.get(path)
        if source is None:
            report.skipped.append(f"{path}: not in the base model")
            continue
        new_weights = [np.asarray(w) for w in layer.get_weights()]
        old_weights = [np.asarray(w) for w in source.get_weights()]
        feature_key = _embedding_feature(path)
        new_feature = features.get(feature_key) if feature_key else None
        old_feature = base_features.get(feature_key) if feature_key else None
        if new_feature is not None and old_feature is not None and len(new_weights) == 1:
            remapped = _remap_rows(new_weights[0], old_weights[0], new_feature, old_feature)
            if remapped is None:
                report.skipped.append(f"{path}: incompatible encodings of {new_feature.name}")
                continue
            layer.set_weights([remapped])
            if new_feature.vocabulary == old_feature.vocabulary:
                report.copied.append(path)
            else:
                report.remapped.append(path)
            continue
        if len(new_weights) != len(old_weights) or any(
            n.shape != o.shape for n, o in zip(new_weights, old_weights, strict=True)
        ):
            report.skipped.append(f"{path}: weight shapes differ")
            continue
        layer.set_weights(old_weights)
        report.copied.append(path)
    return report


def _remap_rows(
    fresh: np.ndarray, old: np.ndarray, new: Feature, previous: Feature
) -> np.ndarray | None:
    if fresh.ndim != 2 or old.ndim != 2 or fresh.shape[1] != old.shape[1]:
        return None
    if new.hash_bins or previous.hash_bins:
        # Hash bins carry no tokens: only the very same hashing can keep its rows.
        return old.copy() if new.hash_bins == previous.hash_bins else None
    if old.shape[0] != previous.cardinality:
        return None
    rows = fresh.copy()
    for bucket in range(min(new.num_oov_buckets, previous.num_oov_buckets)):
        rows[bucket] = old[bucket]
    for token in new.vocabulary:
        new_index = new.index_of(token)
        old_index = previous.index_of(token)
        if new_index is not None and old_index is not None:
            rows[new_index] = old[old_index]
    return rows


def _embedding_feature(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    for prefix in EMBEDDING_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return None


def _layers(model: keras.Model, prefix: str = "") -> list[tuple[str, keras.layers.Layer]]:
    found: list[tuple[str, keras.layers.Layer]] = []
    for layer in model.layers:
        path = prefix + layer.name
        if isinstance(layer, keras.Model):
            found.extend(_layers(layer, path + "/"))
        else:
            found.append((path, layer))
    return found
