"""Training in this process (TensorFlow backend): quality, export, warm start, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.artifacts.digest import model_digest
from sluice_training.failures import TrainingFailure
from sluice_training.features import feature_arrays
from sluice_training.loop import permutation
from sluice_training.plan import DataRef, JobPlan, ModelFamily, ModelPlan, Task
from sluice_training.preprocessing import encode
from sluice_training.publish import KERAS_FILE, MANIFEST_NAME, SAVED_MODEL_DIR
from sluice_training.testing import MULTICLASS_SCHEMA_PBTXT, put_csv, put_text, tabular_span
from sluice_training.trainer import build_model, prepare_data, run_attempt
from sluice_training.warmstart import load_base_model, warm_start


def download(store: ArtifactStore, prefix: str, target: Path) -> Path:
    for info in store.list(prefix + "/"):
        path = target / info.key[len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(info.key, path)
    return target


def test_builtin_dnn_learns_the_binary_problem_and_publishes_a_committed_folder(
    make_plan: Callable[..., JobPlan], store: ArtifactStore, sink: Any, tmp_path: Path
) -> None:
    result = run_attempt(make_plan(), sink, tmp_path)

    assert result is not None
    assert result.eval_metrics["auc"] > 0.8  # chance is 0.5; the generating model reaches ~0.9
    keys = sorted(info.key for info in store.list("models/0123456789abcdef/"))
    assert "models/0123456789abcdef/model.keras" in keys
    assert "models/0123456789abcdef/saved_model/saved_model.pb" in keys
    manifest = json.loads(store.get_bytes(f"models/0123456789abcdef/{MANIFEST_NAME}"))
    assert manifest["job"] == "trainingJobs/0123456789abcdef"
    assert set(manifest["files"]) == {k.split("/", 2)[2] for k in keys} - {MANIFEST_NAME}
    # The digest serving verifies: every file of the folder, manifest included.
    assert result.digest == model_digest(download(store, "models/0123456789abcdef", tmp_path / "m"))
    assert sink.events[0]["event"] == "started"
    last = sink.of("progress")[-1]["progress"]
    assert last["step"] == last["total_steps"] == 3 * 24  # 3000 rows / 128 = 24 steps an epoch
    assert last["examples_per_second"] > 0


def test_exported_saved_model_predicts_what_the_keras_model_predicts_on_raw_rows(
    make_plan: Callable[..., JobPlan], store: ArtifactStore, sink: Any, tmp_path: Path
) -> None:
    plan = make_plan(model=ModelPlan(ModelFamily.WIDE_AND_DEEP, Task.BINARY, hidden_units=(16,)))
    run_attempt(plan, sink, tmp_path / "work")
    folder = download(store, "models/0123456789abcdef", tmp_path / "model")

    rows = {
        "age": np.array([35.0, np.nan, 61.5, 20.0], dtype=np.float32),
        "income": np.array([30_000.0, 12_000.0, 90_000.0, 25_000.0], dtype=np.float32),
        "color": np.array(["red", "blue", "never-seen", ""], dtype=object),
        "size": np.array([1, 3, 99, -1], dtype=np.int64),
    }
    model = keras.saving.load_model(folder / KERAS_FILE)
    expected = np.asarray(model.predict(rows, verbose=0))
    signature = tf.saved_model.load(str(folder / SAVED_MODEL_DIR)).signatures["serving_default"]
    actual = signature(**{k: tf.constant(v) for k, v in rows.items()})["predictions"].numpy()

    np.testing.assert_allclose(actual, expected, atol=1e-5)
    assert expected.shape == (4, 1)
    assert np.all((expected > 0) & (expected < 1))
    assert set(signature.structured_input_signature[1]) == set(rows)


def test_auc_of_the_exported_model_on_fresh_raw_data(
    make_plan: Callable[..., JobPlan], store: ArtifactStore, sink: Any, tmp_path: Path
) -> None:
    run_attempt(make_plan(), sink, tmp_path / "work")
    folder = download(store, "models/0123456789abcdef", tmp_path / "model")
    fresh = tabular_span(2000, seed=99)
    signature = tf.saved_model.load(str(folder / SAVED_MODEL_DIR)).signatures["serving_default"]
    rows = {
        "age": fresh.column("age").to_numpy().astype(np.float32),
        "income": fresh.column("income").to_numpy().astype(np.float32),
        "color": np.asarray(fresh.column("color").to_pylist(), dtype=object),
        "size": fresh.column("size").to_numpy(),
    }
    scores = signature(**{k: tf.constant(v) for k, v in rows.items()})["predictions"].numpy()
    assert roc_auc_score(fresh.column("bought").to_numpy(), scores[:, 0]) > 0.8


def test_multiclass_with_text_labels_from_the_schema_domain(
    make_plan: Callable[..., JobPlan], store: ArtifactStore, sink: Any, tmp_path: Path
) -> None:
    put_text(store, "data/multiclass.pbtxt", MULTICLASS_SCHEMA_PBTXT)
    plan = make_plan(
        schema_uri="data/multiclass.pbtxt",
        label="segment",
        model=ModelPlan(ModelFamily.WIDE_AND_DEEP, Task.MULTICLASS, hidden_units=(32,)),
    )
    result = run_attempt(plan, sink, tmp_path)
    assert result is not None
    assert result.eval_metrics["accuracy"] > 0.6  # three classes: chance is about 0.36
    manifest = json.loads(store.get_bytes(f"models/0123456789abcdef/{MANIFEST_NAME}"))
    assert manifest["feature_plan"]["label"]["vocabulary"] == ["low", "mid", "high"]
    assert manifest["signature"]["output_shape"] == [3]


def test_regression(
    make_plan: Callable[..., JobPlan], store: ArtifactStore, sink: Any, tmp_path: Path
) -> None:
    table = tabular_span(2000, seed=5)
    age = np.nan_to_num(table.column("age").to_numpy(), nan=40.0)
    target = 0.5 * age + np.random.default_rng(0).normal(0, 1, len(age))
    put_csv(store, "data/regression.csv", table.append_column("spend", [target]))
    put_text(store, "data/regression.pbtxt", 'feature { name: "age" type: FLOAT }\n')
    plan = make_plan(
        train_data=DataRef("data/regression.csv"),
        eval_data=None,
        schema_uri="data/regression.pbtxt",
        label="spend",
        model=ModelPlan(ModelFamily.DNN, Task.REGRESSION, hidden_units=(16,)),
        hyperparameters={"learning_rate": 0.05},
        epochs=8,
    )
    result = run_attempt(plan, sink, tmp_path)
    assert result is not None
    assert result.eval_metrics["rmse"] < 2.0  # the target's own spread is about 6


def loss_curve(
    model: Any, x: dict[str, np.ndarray], y: np.ndarray, eval_x: Any, eval_y: Any, steps: int = 120
) -> list[float]:
    """Eval loss before every 4th step of batch-128 training."""
    order = permutation(0, 0, len(y))
    curve = []
    for step in range(steps):
        if step % 4 == 0:
            logs = model.evaluate(eval_x, eval_y, batch_size=1024, verbose=0, return_dict=True)
            curve.append(logs["loss"])
        rows = order[(step * 128) % len(y) :][:128]
        model.train_on_batch({k: v[rows] for k, v in x.items()}, y[rows])
    return curve


def steps_to(curve: list[float], target: float) -> int:
    return 4 * next((i for i, loss in enumerate(curve) if loss <= target), len(curve))


def test_warm_start_converges_in_fewer_steps_than_a_cold_start_on_the_next_span(
    make_plan: Callable[..., JobPlan],
    span_data: dict[str, str],
    store: ArtifactStore,
    sink: Any,
    tmp_path: Path,
) -> None:
    base_result = run_attempt(make_plan(job_id="aaaaaaaaaaaaaaaa", epochs=4), sink, tmp_path)
    assert base_result is not None
    next_span = make_plan(
        job_id="bbbbbbbbbbbbbbbb",
        train_data=DataRef(span_data["train2"]),
        eval_data=DataRef(span_data["eval2"]),
        hyperparameters={"learning_rate": 0.003},
    )
    data = prepare_data(next_span, store)
    x, ex = encode(data.plan, data.x), encode(data.plan, data.eval_x or {})
    assert "violet" in data.plan.feature("color").vocabulary  # span 2 brings a new token
    base = load_base_model(base_result.model_uri, store, tmp_path)

    keras.utils.set_random_seed(1)
    cold = build_model(next_span, data, store, tmp_path)
    keras.utils.set_random_seed(1)
    warm = build_model(next_span, data, store, tmp_path)
    report = warm_start(warm, data.plan, base)

    assert "embed_color" in report.remapped  # vocabulary changed: rows moved by token
    assert "hidden_0" in report.copied and "predictions" in report.copied
    cold_curve = loss_curve(cold, x, data.y, ex, data.eval_y)
    warm_curve = loss_curve(warm, x, data.y, ex, data.eval_y)
    # "Converged": within 5% of the best eval loss a cold start reaches in 120 steps.
    target = 1.05 * min(cold_curve)
    assert steps_to(warm_curve, target) < steps_to(cold_curve, target) / 2
    assert warm_curve[0] < cold_curve[0]


def test_a_warm_start_remaps_embedding_rows_by_token_and_records_the_base_model(
    make_plan: Callable[..., JobPlan],
    span_data: dict[str, str],
    store: ArtifactStore,
    sink: Any,
    tmp_path: Path,
) -> None:
    base_result = run_attempt(make_plan(job_id="aaaaaaaaaaaaaaaa", epochs=1), sink, tmp_path)
    assert base_result is not None
    base = load_base_model(base_result.model_uri, store, tmp_path)
    plan = make_plan(
        job_id="bbbbbbbbbbbbbbbb",
        train_data=DataRef(span_data["train2"]),
        base_model_uri=base_result.model_uri,
        max_steps=5,
    )
    data = prepare_data(plan, store)
    model = build_model(plan, data, store, tmp_path)
    fresh = model.get_layer("embed_color").get_weights()[0].copy()
    warm_start(model, data.plan, base)

    old_rows = base.model.get_layer("embed_color").get_weights()[0]
    new_rows = model.get_layer("embed_color").get_weights()[0]
    assert base.plan is not None
    old_feature, new_feature = base.plan.feature("color"), data.plan.feature("color")
    for token in ("red", "green", "blue", "black"):
        np.testing.assert_array_equal(
            new_rows[new_feature.index_of(token)], old_rows[old_feature.index_of(token)]
        )
    violet = new_feature.index_of("violet")
    np.testing.assert_array_equal(new_rows[violet], fresh[violet])  # new token: fresh weights

    # The same through a job: the base is reported and recorded with the new model.
    result = run_attempt(plan, sink, tmp_path)
    assert result is not None and result.base_model_uri == base_result.model_uri
    assert "embed_color" in sink.of("started")[-1]["warm_start"]["remapped"]
    manifest = json.loads(store.get_bytes(f"models/bbbbbbbbbbbbbbbb/{MANIFEST_NAME}"))
    assert manifest["base_model_uri"] == base_result.model_uri


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"label": "clicked"}, "LABEL_MISSING", "spec.label"),
        ({"schema_uri": "data/bad-schema.pbtxt"}, "SCHEMA_DATA_MISMATCH", "loyalty"),
        ({"schema_uri": "data/missing.pbtxt"}, "SCHEMA_NOT_FOUND", "spec.schema"),
        ({"train_data": DataRef("data/none/")}, "DATA_NOT_FOUND", "spec.train_data.data.uri"),
        (
            {"base_model_uri": "models/never-trained"},
            "BASE_MODEL_NOT_FOUND",
            "spec.warm_start.base_model.uri",
        ),
    ],
)
def test_bad_input_fails_with_a_reason_and_publishes_nothing(
    make_plan: Callable[..., JobPlan],
    store: ArtifactStore,
    sink: Any,
    tmp_path: Path,
    change: dict[str, Any],
    reason: str,
    field: str,
) -> None:
    put_text(store, "data/bad-schema.pbtxt", 'feature { name: "loyalty" type: FLOAT }\n')
    with pytest.raises(TrainingFailure) as failure:
        run_attempt(make_plan(**change), sink, tmp_path)
    assert (failure.value.reason, failure.value.field) == (reason, field)
    assert list(store.list("models/")) == []


def test_text_in_a_float_column_names_the_feature(
    make_plan: Callable[..., JobPlan], store: ArtifactStore, sink: Any, tmp_path: Path
) -> None:
    table = tabular_span(100, seed=1)
    income = [
        "unknown" if i == 3 else str(v) for i, v in enumerate(table.column("income").to_pylist())
    ]
    broken = table.set_column(1, "income", [income])
    put_csv(store, "data/broken.csv", broken)
    with pytest.raises(TrainingFailure) as failure:
        run_attempt(
            make_plan(train_data=DataRef("data/broken.csv"), eval_data=None), sink, tmp_path
        )
    assert failure.value.reason == "SCHEMA_DATA_MISMATCH"
    assert failure.value.field == "income"
    assert "'unknown'" in failure.value.message


def test_nan_loss_fails_the_job(
    make_plan: Callable[..., JobPlan], store: ArtifactStore, sink: Any, tmp_path: Path
) -> None:
    table = tabular_span(500, seed=1)
    put_csv(store, "data/huge.csv", table.append_column("spend", [np.full(500, 3e38)]))
    plan = make_plan(
        train_data=DataRef("data/huge.csv"),
        eval_data=None,
        label="spend",
        model=ModelPlan(ModelFamily.DNN, Task.REGRESSION, hidden_units=(8,)),
    )
    with pytest.raises(TrainingFailure) as failure:
        run_attempt(plan, sink, tmp_path)
    assert failure.value.reason == "NAN_LOSS"
    assert list(store.list("models/")) == []


USER_MODULE = """
import keras

def build_model(schema, hparams):
    inputs = schema.inputs()
    parts = [schema.numeric(inputs)]
    parts += [schema.embedding(name, 4)(inputs[name]) for name in schema.categorical_features]
    hidden = keras.layers.Dense(int(hparams.get("width", 8)), activation="relu")(
        keras.layers.Concatenate()(parts)
    )
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))

def not_a_model(schema, hparams):
    return "a string"

def broken(schema, hparams):
    raise ValueError("width must be even")
"""


@pytest.mark.parametrize(
    ("module", "function", "reason"),
    [
        ("user_models_ok", "build_model", None),
        ("user_models_ok", "not_a_model", "USER_MODEL_INVALID"),
        ("user_models_ok", "broken", "USER_MODEL_INVALID"),
        ("user_models_ok", "missing", "USER_MODULE_IMPORT_FAILED"),
        ("no_such_module_here", "build_model", "USER_MODULE_IMPORT_FAILED"),
    ],
)
def test_user_module(
    make_plan: Callable[..., JobPlan],
    store: ArtifactStore,
    sink: Any,
    tmp_path: Path,
    module: str,
    function: str,
    reason: str | None,
) -> None:
    put_text(store, "code/user_models_ok.py", USER_MODULE)
    source = "code/user_models_ok.py" if module == "user_models_ok" else ""
    plan = make_plan(
        model=ModelPlan(
            ModelFamily.USER_MODULE,
            Task.BINARY,
            module=module,
            source_uri=source,
            function=function,
        ),
        hyperparameters={"width": 8, "learning_rate": 0.01},
        epochs=1,
    )
    if reason is None:
        result = run_attempt(plan, sink, tmp_path)
        assert result is not None and result.eval_metrics["auc"] > 0.7
        return
    with pytest.raises(TrainingFailure) as failure:
        run_attempt(plan, sink, tmp_path)
    assert failure.value.reason == reason
    assert failure.value.field.startswith("spec.user_module")


def test_a_retried_attempt_resumes_from_the_last_checkpoint_with_the_same_plan(
    make_plan: Callable[..., JobPlan], store: ArtifactStore, sink: Any, tmp_path: Path
) -> None:
    class Killed(Exception):
        pass

    plan = make_plan(checkpoint_every_steps=10, epochs=2)

    class DieAfterFirstCheckpoint:
        def __init__(self) -> None:
            self.events: list[dict[str, Any]] = []

        def emit(self, kind: str, **payload: Any) -> None:
            self.events.append({"event": kind, **payload})
            if kind == "checkpoint" and payload["step"] == 20:
                raise Killed()

        def close(self) -> None:
            return None

    with pytest.raises(Killed):
        run_attempt(plan, DieAfterFirstCheckpoint(), tmp_path)
    assert list(store.list("models/")) == []
    result = run_attempt(replace(plan, attempt=2), sink, tmp_path)
    assert result is not None
    assert sink.of("started")[0]["resumed_from_step"] == 20
    assert sink.of("progress")[-1]["progress"]["step"] == 48
    assert len([i for i in store.list("training-jobs/") if i.key.endswith(".h5")]) == 1


def test_feature_arrays_of_eval_data_follow_the_training_plan(
    make_plan: Callable[..., JobPlan], store: ArtifactStore
) -> None:
    data = prepare_data(make_plan(), store)
    assert data.eval_x is not None
    assert set(data.eval_x) == {"age", "income", "color", "size"}
    assert np.isnan(data.x["age"]).any()  # missing values stay NaN until the model fills them
    again = feature_arrays(tabular_span(10, seed=1), data.plan)
    assert again["color"].dtype == object
