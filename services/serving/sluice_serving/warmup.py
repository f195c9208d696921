"""Warm-up requests: run before a version takes traffic, so its first users pay no first-call cost.

Recorded requests come from ``assets.extra/tf_serving_warmup_requests`` in the model folder, as in
TF Serving: a TFRecord file of ``tensorflow.serving.PredictionLog`` (predict, classify and regress
logs are used; at most 1000 records). Without that file, one synthetic request per signature is
built from the signature: a batch of one row of zeros (empty strings for string inputs), unknown
inner dimensions set to 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sluice_serving.examples import examples_to_inputs, serialized_examples
from sluice_serving.signature import DEFAULT_SIGNATURE, Signature
from sluice_serving.tensors import STRING, tensor_proto_to_ndarray

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


@dataclass(frozen=True)
class WarmupRequest:
    signature: str
    inputs: Mapping[str, np.ndarray]


def warmup_requests(folder: Path, signatures: Mapping[str, Signature]) -> list[WarmupRequest]:
    """The recorded requests of the model folder, else synthetic ones from its signatures."""
    recorded = folder / WARMUP_FILE
    if recorded.is_file():
        return recorded_requests(recorded, signatures)
    return synthetic_requests(signatures)


def recorded_requests(path: Path, signatures: Mapping[str, Signature]) -> list[WarmupRequest]:
    """Parse a TF Serving warm-up file; ValueError when a record cannot be used."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests: list[WarmupRequest] = []
    for index, record in enumerate(_tfrecords(path)):
        if index >= MAX_WARMUP_RECORDS:
            raise ValueError(f"{WARMUP_FILE} holds more than {MAX_WARMUP_RECORDS} records")
        log = prediction_log_pb2.PredictionLog.FromString(record)
        kind = log.WhichOneof("log_type")
        where = f"{WARMUP_FILE} record {index}"
        if kind == "predict_log":
            request = log.predict_log.request
            inputs = {
                name: tensor_proto_to_ndarray(proto, f"{where} inputs['{name}']")
                for name, proto in request.inputs.items()
            }
            requests.append(
                WarmupRequest(request.model_spec.signature_name or DEFAULT_SIGNATURE, inputs)
            )
        elif kind in ("classify_log", "regress_log"):
            request = getattr(log, kind).request
            name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            signature = signatures.get(name)
            if signature is None:
                raise ValueError(f"{where}: the model has no signature '{name}'")
            examples = serialized_examples(request.input)
            requests.append(WarmupRequest(name, examples_to_inputs(examples, signature)))
        else:
            raise ValueError(
                f"{where}: {kind} logs cannot be replayed; use predict, classify or regress"
            )
    return requests


def synthetic_requests(signatures: Mapping[str, Signature]) -> list[WarmupRequest]:
    """One request per signature: one row of zeros shaped and typed as the signature says."""
    requests: list[WarmupRequest] = []
    for signature in signatures.values():
        inputs: dict[str, np.ndarray] = {}
        for name, spec in signature.inputs.items():
            shape = (1,) if spec.shape is None else tuple(1 if d < 0 else d for d in spec.shape)
            if spec.dtype == STRING:
                inputs[name] = np.full(shape, b"", dtype=STRING)
            else:
                inputs[name] = np.zeros(shape, dtype=spec.dtype)
        requests.append(WarmupRequest(signature.name, inputs))
    return requests


def _tfrecords(path: Path) -> list[bytes]:
    # TFRecord framing carries masked CRC32C checksums; TensorFlow's reader checks them.
    import tensorflow as tf

    try:
        return [bytes(record.numpy()) for record in tf.data.TFRecordDataset(str(path))]
    except tf.errors.OpError as error:
        raise ValueError(f"{WARMUP_FILE} is not a valid TFRecord file: {error.message}") from None
