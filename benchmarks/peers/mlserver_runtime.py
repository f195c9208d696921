"""An MLServer custom runtime serving a TensorFlow SavedModel's ``serving_default`` signature.

Run inside MLServer from its own virtual environment (see make_peer_venvs.sh), never from the
repository's .venv: it imports mlserver, which is not in our lock. benchmarks/serving_bench.py
copies this file into an MLServer model folder next to a ``model-settings.json`` naming
``mlserver_runtime.SavedModelRuntime`` and the SavedModel folder (``parameters.uri``). Server
settings are MLServer's defaults (no adaptive batching), apart from the ports.
"""

# mypy: ignore-errors
# (mlserver and TensorFlow's types are those of another environment; this file never runs in ours.)

from __future__ import annotations

import tensorflow as tf
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class SavedModelRuntime(MLModel):
    async def load(self) -> bool:
        folder = self.settings.parameters.uri
        self.function = tf.saved_model.load(folder).signatures["serving_default"]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {
            tensor.name: tf.convert_to_tensor(NumpyCodec.decode_input(tensor))
            for tensor in payload.inputs
        }
        outputs = [
            NumpyCodec.encode_output(key, value.numpy())
            for key, value in self.function(**inputs).items()
        ]
        return InferenceResponse(model_name=self.name, id=payload.id, outputs=outputs)
