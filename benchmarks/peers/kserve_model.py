"""KServe's Python model server serving a TensorFlow SavedModel's ``serving_default`` signature.

Run by benchmarks/serving_bench.py with the python of the KServe virtual environment (see
make_peer_venvs.sh), never with the repository's .venv: it imports kserve, which is not in our lock.
The model is the plain custom-model form of KServe's docs (a ``kserve.Model`` subclass whose
``predict`` takes and returns Open Inference Protocol v2 objects); server settings are KServe's
defaults, apart from the ports.

    python kserve_model.py --model_name mlp --folder /path/to/saved_model --grpc_port 8081
"""

# mypy: ignore-errors
# (kserve and TensorFlow's types are those of another environment; this file never runs in ours.)

from __future__ import annotations

import argparse

import tensorflow as tf
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class SavedModel(Model):
    def __init__(self, name: str, folder: str) -> None:
        super().__init__(name)
        self.folder = folder
        self.load()

    def load(self) -> bool:
        self.function = tf.saved_model.load(self.folder).signatures["serving_default"]
        self.ready = True
        return self.ready

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        inputs = {tensor.name: tf.convert_to_tensor(tensor.as_numpy()) for tensor in payload.inputs}
        outputs = []
        for key, value in self.function(**inputs).items():
            array = value.numpy()
            output = InferOutput(name=key, shape=list(array.shape), datatype="FP32")
            output.set_data_from_numpy(array, binary_data=True)
            outputs.append(output)
        return InferResponse(response_id=payload.id, model_name=self.name, infer_outputs=outputs)


if __name__ == "__main__":
    # KServe's own flags (--grpc_port, --http_port, --workers, ...) are read by kserve itself.
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--folder", required=True)
    known, _ = parser.parse_known_args()
    ModelServer().start([SavedModel(known.model_name, known.folder)])
