"""The export step (TensorFlow): the serving model as ``model.keras`` and a SavedModel.

From the trained core model and the feature plan it builds the serving model (raw features in,
`preprocessing.serving_model`), saves it as ``model.keras``, writes ``saved_model/`` with one
signature ``serving_default`` (one input per feature, shape [batch], named after the feature;
output ``predictions``) and checks that the SavedModel's predictions equal the Keras model's on
sample rows before anything is published.

Under the TensorFlow backend the worker calls `export_model` in-process. Under JAX or PyTorch the
worker saves the core as ``.keras`` and runs this module as a TensorFlow process::

    KERAS_BACKEND=tensorflow python -m sluice_training.export REQUEST.json

where the request names ``core`` (the .keras file), ``plan`` (the feature plan as JSON),
``sample`` (raw rows as JSON lists) and ``out`` (the folder to write); it writes
``<out>/export_result.json``: the signature, or a failure.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sluice_training.failures import TrainingFailure
from sluice_training.features import FeatureKind, FeaturePlan
from sluice_training.publish import KERAS_FILE, SAVED_MODEL_DIR

SIGNATURE_NAME = "serving_default"
OUTPUT_NAME = "predictions"
RESULT_FILE = "export_result.json"
TOLERANCE = 1e-5


def export_model(
    core: Any, plan: FeaturePlan, out_dir: Path, sample: Mapping[str, Any]
) -> dict[str, Any]:
    """Write ``model.keras`` and ``saved_model/`` under ``out_dir``; return the signature's
    description (inputs name -> dtype, output name).

    Raises:
        TrainingFailure: EXPORT_FAILED when the SavedModel disagrees with the Keras model.
    """
    import keras
    import tensorflow as tf

    from sluice_training.preprocessing import input_names, raw_dtype, serving_model

    if keras.backend.backend() != "tensorflow":
        raise TrainingFailure(
            "EXPORT_FAILED", "the SavedModel export must run under KERAS_BACKEND=tensorflow"
        )
    model = serving_model(core, plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / KERAS_FILE)

    names = input_names(model)
    features = {f.name: f for f in plan.features}
    specs = {
        name: tf.TensorSpec([None], _tf_dtype(tf, raw_dtype(features[name])), name=name)
        for name in names
    }

    def serve(inputs: dict[str, Any]) -> dict[str, Any]:
        return {OUTPUT_NAME: model(inputs, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name=SIGNATURE_NAME, fn=serve, input_signature=[specs])
    archive.write_out(str(out_dir / SAVED_MODEL_DIR), verbose=False)

    rows = {name: _as_input(sample[name], features[name].kind) for name in names}
    expected = np.asarray(model.predict(rows, verbose=0))
    loaded = tf.saved_model.load(str(out_dir / SAVED_MODEL_DIR))
    signature = loaded.signatures[SIGNATURE_NAME]
    actual = signature(**{name: tf.constant(value) for name, value in rows.items()})[OUTPUT_NAME]
    if not np.allclose(np.asarray(actual), expected, atol=TOLERANCE, rtol=TOLERANCE):
        raise TrainingFailure(
            "EXPORT_FAILED",
            "the SavedModel's predictions differ from the Keras model's on sample rows (max "
            f"difference {float(np.max(np.abs(np.asarray(actual) - expected)))})",
        )
    return {
        "name": SIGNATURE_NAME,
        "inputs": {name: raw_dtype(features[name]) for name in names},
        "output": OUTPUT_NAME,
        "output_shape": list(expected.shape[1:]),
    }


def sample_rows(raw: Mapping[str, np.ndarray], rows: int = 64) -> dict[str, list[Any]]:
    """The first ``rows`` raw rows as JSON-ready lists (NaN becomes None)."""
    sample: dict[str, list[Any]] = {}
    for name, values in raw.items():
        head = values[:rows]
        if head.dtype.kind == "f":
            sample[name] = [None if np.isnan(v) else float(v) for v in head]
        elif head.dtype.kind in "iu":
            sample[name] = [int(v) for v in head]
        else:
            sample[name] = [str(v) for v in head]
    return sample


def _as_input(values: Any, kind: FeatureKind) -> np.ndarray:
    if kind is FeatureKind.NUMERIC:
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float32)
    if kind is FeatureKind.INTEGER:
        return np.asarray(values, dtype=np.int64)
    return np.asarray([str(v) for v in values], dtype=object)


def _tf_dtype(tf: Any, name: str) -> Any:
    return {"float32": tf.float32, "int64": tf.int64, "string": tf.string}[name]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sluice_training.export REQUEST.json", file=sys.stderr)
        return 2
    request = json.loads(Path(args[0]).read_text())
    out_dir = Path(request["out"])
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        try:
            import tensorflow  # noqa: F401 - only to fail early and clearly
        except ImportError:
            raise TrainingFailure(
                "TENSORFLOW_REQUIRED",
                "the SavedModel export needs TensorFlow, which is not installed where the worker "
                "runs; install tensorflow next to the worker",
            ) from None
        import keras

        import sluice_training.preprocessing  # noqa: F401 - registers the custom layers

        core = keras.saving.load_model(request["core"], compile=False)
        plan = FeaturePlan.from_json(json.loads(Path(request["plan"]).read_text()))
        sample = json.loads(Path(request["sample"]).read_text())
        signature = export_model(core, plan, out_dir, sample)
        outcome: dict[str, Any] = {"signature": signature}
    except TrainingFailure as failure:
        outcome = {"failure": failure.to_failure().to_json()}
    except Exception as error:  # the worker turns this into EXPORT_FAILED with the message
        traceback.print_exc()
        outcome = {
            "failure": TrainingFailure(
                "EXPORT_FAILED", f"export failed: {type(error).__name__}: {error}"
            )
            .to_failure()
            .to_json()
        }
    (out_dir / RESULT_FILE).write_text(json.dumps(outcome))
    return 0 if "signature" in outcome else 1


if __name__ == "__main__":
    sys.exit(main())
