"""TensorFlow Serving's gRPC API (PredictionService, ModelService): proto <-> core, nothing else.

Spoken from the published ``tensorflow-serving-api`` stubs, so the unmodified TF Serving clients
work. Every response names the version that answered in ``model_spec.version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
from google.protobuf import any_pb2
from sluice_runtime.errors import InvalidArgument
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from sluice_serving.core import (
    ListedModel,
    ServingCore,
    VersionInfo,
    VersionPolicy,
    VersionSelector,
    VersionState,
)
from sluice_serving.examples import Classes, serialized_examples
from sluice_serving.signature import CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD, Signature
from sluice_serving.tensors import fill_tensor_proto, tensor_proto_to_ndarray, tf_dtype_of

PROTOCOL = "tfserving"
PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
SCHEMA_FLAGS_METADATA = "x-sluice-schema-flags"

# Predict, Classify, Regress and MultiInference are coroutines: they run on the server's event
# loop and await the model (batched, on the batch workers); the other RPCs are plain functions on
# the RPC threads.
AioContext = grpc.aio.ServicerContext[Any, Any]

_STATE = {
    VersionState.LOADING: get_model_status_pb2.ModelVersionStatus.LOADING,
    VersionState.WARMING: get_model_status_pb2.ModelVersionStatus.LOADING,
    VersionState.AVAILABLE: get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    VersionState.UNLOADING: get_model_status_pb2.ModelVersionStatus.UNLOADING,
    VersionState.END: get_model_status_pb2.ModelVersionStatus.END,
    VersionState.FAILED: get_model_status_pb2.ModelVersionStatus.END,
}


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    def __init__(self, core: ServingCore) -> None:
        self._core = core

    async def Predict(
        self, request: predict_pb2.PredictRequest, context: AioContext
    ) -> predict_pb2.PredictResponse:
        spec = request.model_spec
        with self._core.recorded_request(spec.name, PROTOCOL) as record:
            selector = _selector(spec)
            inputs = {
                name: tensor_proto_to_ndarray(proto, f"inputs['{name}']")
                for name, proto in request.inputs.items()
            }
            prediction = await self._core.predict_async(
                spec.name,
                inputs,
                selector=selector,
                signature_name=spec.signature_name,
                output_filter=request.output_filter,
                protocol=PROTOCOL,
            )
            version = record.version = prediction.version
            response = predict_pb2.PredictResponse()
            _answer_spec(response.model_spec, spec.name, version, prediction.signature.name)
            for key, value in prediction.outputs.items():
                fill_tensor_proto(response.outputs[key], value)
            if prediction.schema_flags:
                context.set_trailing_metadata(
                    ((SCHEMA_FLAGS_METADATA, ",".join(prediction.schema_flags)),)
                )
            return response

    async def Classify(
        self, request: classification_pb2.ClassificationRequest, context: AioContext
    ) -> classification_pb2.ClassificationResponse:
        spec = request.model_spec
        with self._core.recorded_request(spec.name, PROTOCOL) as record:
            record.version, signature_name, result = await self._core.classify_async(
                spec.name,
                serialized_examples(request.input),
                selector=_selector(spec),
                signature_name=spec.signature_name,
            )
            response = classification_pb2.ClassificationResponse()
            _answer_spec(response.model_spec, spec.name, record.version, signature_name)
            _fill_classifications(response.result, result)
            return response

    async def Regress(
        self, request: regression_pb2.RegressionRequest, context: AioContext
    ) -> regression_pb2.RegressionResponse:
        spec = request.model_spec
        with self._core.recorded_request(spec.name, PROTOCOL) as record:
            record.version, signature_name, values = await self._core.regress_async(
                spec.name,
                serialized_examples(request.input),
                selector=_selector(spec),
                signature_name=spec.signature_name,
            )
            response = regression_pb2.RegressionResponse()
            _answer_spec(response.model_spec, spec.name, record.version, signature_name)
            _fill_regressions(response.result, values)
            return response

    async def MultiInference(
        self, request: inference_pb2.MultiInferenceRequest, context: AioContext
    ) -> inference_pb2.MultiInferenceResponse:
        """Several Classify/Regress tasks of one model on the same examples (as TF Serving: one
        model, each signature at most once)."""
        tasks = list(request.tasks)
        name = tasks[0].model_spec.name if tasks else ""
        with self._core.recorded_request(name, PROTOCOL) as record:
            _check_tasks(tasks)
            examples = serialized_examples(request.input)
            response = inference_pb2.MultiInferenceResponse()
            for index, task in enumerate(tasks):
                spec, result = task.model_spec, response.results.add()
                if task.method_name == CLASSIFY_METHOD:
                    record.version, signature_name, classes = await self._core.classify_async(
                        name, examples, selector=_selector(spec), signature_name=spec.signature_name
                    )
                    _fill_classifications(result.classification_result, classes)
                elif task.method_name == REGRESS_METHOD:
                    record.version, signature_name, values = await self._core.regress_async(
                        name, examples, selector=_selector(spec), signature_name=spec.signature_name
                    )
                    _fill_regressions(result.regression_result, values)
                else:
                    raise InvalidArgument(
                        f"tasks[{index}].method_name must be {CLASSIFY_METHOD} or "
                        f"{REGRESS_METHOD}, got {task.method_name!r}",
                        field=f"tasks[{index}].method_name",
                    )
                _answer_spec(result.model_spec, name, record.version, signature_name)
            return response

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise InvalidArgument(
                f"metadata_field must be ['signature_def'] (all there is to ask for); got {fields}",
                field="metadata_field",
            )
        spec = request.model_spec
        version, _, signatures, signature_defs = self._core.signature(spec.name, _selector(spec))
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in signatures.items():
            signature_map.signature_def[name].CopyFrom(
                _signature_def(signature, signature_defs.get(name))
            )
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = version
        packed = any_pb2.Any()
        packed.Pack(signature_map)
        response.metadata["signature_def"].CopyFrom(packed)
        return response


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    def __init__(self, core: ServingCore) -> None:
        self._core = core

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        if spec.version_label:
            raise InvalidArgument(
                "GetModelStatus takes a version number, not a label",
                field="model_spec.version_label",
            )
        version = spec.version.value if spec.HasField("version") else 0
        response = get_model_status_pb2.GetModelStatusResponse()
        for info in self._core.model_status(spec.name, version):
            _status(response.model_version_status.add(), info)
        return response

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        """Serve the models of a ``model_config_list`` (base_path: a folder in the serving
        artifact store holding numbered version folders); returns once they are available."""
        if request.config.WhichOneof("config") != "model_config_list":
            raise InvalidArgument(
                "config must hold a model_config_list (custom_model_config is not supported)",
                field="config",
            )
        listed = [
            _listed_model(config, index)
            for index, config in enumerate(request.config.model_config_list.config)
        ]
        self._core.serve_model_list(listed, field="config.model_config_list.config")
        return model_management_pb2.ReloadConfigResponse()


def _listed_model(config: Any, index: int) -> ListedModel:
    field = f"config.model_config_list.config[{index}]"
    if config.model_platform not in ("", "tensorflow"):
        raise InvalidArgument(
            f"model_platform must be 'tensorflow', got {config.model_platform!r}",
            field=f"{field}.model_platform",
        )
    policy = config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    try:
        if choice == "specific":
            version_policy = VersionPolicy("specific", versions=frozenset(policy.specific.versions))
        elif choice == "all":
            version_policy = VersionPolicy("all")
        else:  # latest, or nothing said: TF Serving's default is the latest one
            count = policy.latest.num_versions if choice == "latest" else 1
            version_policy = VersionPolicy("latest", num_versions=count)
    except ValueError as error:
        raise InvalidArgument(str(error), field=f"{field}.model_version_policy") from None
    return ListedModel(
        name=config.name,
        base_uri=config.base_path,
        policy=version_policy,
        labels=dict(config.version_labels),
    )


def _check_tasks(tasks: list[inference_pb2.InferenceTask]) -> None:
    if not tasks:
        raise InvalidArgument("tasks must name at least one task", field="tasks")
    name = tasks[0].model_spec.name
    signatures: set[str] = set()
    for index, task in enumerate(tasks):
        if task.model_spec.name != name:
            raise InvalidArgument(
                f"every task must use the same model: tasks[0] names {name!r}, tasks[{index}] "
                f"names {task.model_spec.name!r}",
                field=f"tasks[{index}].model_spec.name",
            )
        signature = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature in signatures:
            raise InvalidArgument(
                f"signature {signature!r} is asked for twice", field=f"tasks[{index}].model_spec"
            )
        signatures.add(signature)


def _fill_classifications(target: classification_pb2.ClassificationResult, result: Classes) -> None:
    rows = result.scores if result.scores is not None else result.classes
    assert rows is not None
    for row in range(rows.shape[0]):
        classifications = target.classifications.add()
        for column in range(rows.shape[1]):
            entry = classifications.classes.add()
            if result.classes is not None:
                label = result.classes[row, column]
                entry.label = label.decode() if isinstance(label, bytes) else str(label)
            if result.scores is not None:
                entry.score = float(result.scores[row, column])


def _fill_regressions(target: regression_pb2.RegressionResult, values: np.ndarray) -> None:
    for value in values.tolist():
        target.regressions.add(value=float(value))


def _selector(spec: model_pb2.ModelSpec) -> VersionSelector:
    if spec.HasField("version"):
        if spec.version.value < 1:
            raise InvalidArgument(
                f"model_spec.version must be positive, got {spec.version.value}",
                field="model_spec.version",
            )
        return VersionSelector(version=spec.version.value)
    return VersionSelector(label=spec.version_label)


def _answer_spec(answer: model_pb2.ModelSpec, name: str, version: int, signature: str) -> None:
    answer.name = name
    answer.version.value = version
    answer.signature_name = signature


def _signature_def(signature: Signature, serialized: bytes | None) -> meta_graph_pb2.SignatureDef:
    if serialized:
        return meta_graph_pb2.SignatureDef.FromString(serialized)
    signature_def = meta_graph_pb2.SignatureDef(method_name=signature.method_name)
    for target, specs in (
        (signature_def.inputs, signature.inputs),
        (signature_def.outputs, signature.outputs),
    ):
        _tensor_infos(target, specs)
    return signature_def


def _tensor_infos(target: Any, specs: Mapping[str, Any]) -> None:
    for key, spec in specs.items():
        info = target[key]
        info.name = f"{key}:0"
        info.dtype = tf_dtype_of(spec.dtype)
        if spec.shape is None:
            info.tensor_shape.unknown_rank = True
        else:
            for size in spec.shape:
                info.tensor_shape.dim.add(size=size)


def _status(status: get_model_status_pb2.ModelVersionStatus, info: VersionInfo) -> None:
    status.version = info.version
    status.state = _STATE[info.state]
    if info.error is not None:
        status.status.error_code = grpc.StatusCode[info.error.code].value[0]
        status.status.error_message = info.error.message
