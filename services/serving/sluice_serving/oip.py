"""The Open Inference Protocol v2 (``inference.GRPCInferenceService``): proto <-> core only.

Spoken from the published ``open-inference-grpc`` stubs. ``model_version`` may be a version number,
a label (``stable``) or empty for the current version; responses always name the version that
answered. Inputs may come as typed contents or as ``raw_input_contents``; outputs go back raw when
the request came raw (as tritonclient expects), typed otherwise. Request parameter
``signature_name`` picks a signature other than ``serving_default``.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import grpc
from open_inference.grpc import protocol as oip
from open_inference.grpc import service as oip_service
from sluice_runtime.errors import InvalidArgument, SluiceError

from sluice_serving.core import ServingCore, VersionSelector
from sluice_serving.tensors import (
    fill_oip_contents,
    has_typed_oip_contents,
    ndarray_to_raw,
    oip_datatype_of,
    oip_input_to_ndarray,
)
from sluice_serving.tfserving import SCHEMA_FLAGS_METADATA

PROTOCOL = "oip"
SERVICE = "inference.GRPCInferenceService"
SERVER_NAME = "sluice-serving"
PLATFORM = "tensorflow_savedmodel"


class InferenceServicer(oip_service.GRPCInferenceServiceServicer):  # type: ignore[misc]
    def __init__(self, core: ServingCore) -> None:
        self._core = core
        try:
            self._version = metadata.version("sluice-serving")
        except metadata.PackageNotFoundError:
            self._version = "0"

    def ServerLive(
        self, request: oip.ServerLiveRequest, context: grpc.ServicerContext
    ) -> oip.ServerLiveResponse:
        return oip.ServerLiveResponse(live=True)

    def ServerReady(
        self, request: oip.ServerReadyRequest, context: grpc.ServicerContext
    ) -> oip.ServerReadyResponse:
        return oip.ServerReadyResponse(ready=self._core.is_ready())

    def ModelReady(
        self, request: oip.ModelReadyRequest, context: grpc.ServicerContext
    ) -> oip.ModelReadyResponse:
        selector = _selector(request.version)
        if selector.label:
            try:
                self._core.signature(request.name, selector)
            except Exception:
                return oip.ModelReadyResponse(ready=False)
            return oip.ModelReadyResponse(ready=True)
        return oip.ModelReadyResponse(
            ready=self._core.version_ready(request.name, selector.version)
        )

    def ServerMetadata(
        self, request: oip.ServerMetadataRequest, context: grpc.ServicerContext
    ) -> oip.ServerMetadataResponse:
        return oip.ServerMetadataResponse(name=SERVER_NAME, version=self._version, extensions=[])

    def ModelMetadata(
        self, request: oip.ModelMetadataRequest, context: grpc.ServicerContext
    ) -> oip.ModelMetadataResponse:
        try:
            version, signature, _, _ = self._core.signature(
                request.name, _selector(request.version)
            )
        except SluiceError as error:
            _rename_field(error)
            raise
        response = oip.ModelMetadataResponse(name=request.name, platform=PLATFORM)
        response.versions.extend(
            str(info.version)
            for info in self._core.model_status(request.name)
            if info.state.value == "AVAILABLE"
        )
        response.properties["version"] = str(version)
        response.properties["signature_name"] = signature.name
        for specs, target in (
            (signature.inputs, response.inputs),
            (signature.outputs, response.outputs),
        ):
            for name, spec in specs.items():
                tensor = target.add(name=name, datatype=oip_datatype_of(spec.dtype))
                tensor.shape.extend([-1] if spec.shape is None else spec.shape)
        return response

    async def ModelInfer(
        self, request: oip.ModelInferRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> oip.ModelInferResponse:
        # A coroutine: it runs on the server's event loop, the model on the batch workers.
        with self._core.recorded_request(request.model_name, PROTOCOL) as record:
            try:
                raw = request.raw_input_contents
                if raw and len(raw) != len(request.inputs):
                    raise InvalidArgument(
                        f"raw_input_contents has {len(raw)} entries"
                        f" for {len(request.inputs)} inputs",
                        field="raw_input_contents",
                    )
                inputs = {}
                for index, tensor in enumerate(request.inputs):
                    if tensor.name in inputs:
                        raise InvalidArgument(
                            f"input '{tensor.name}' is given twice", field=f"inputs[{index}].name"
                        )
                    inputs[tensor.name] = oip_input_to_ndarray(
                        tensor, raw[index] if raw else None, f"inputs[{index}] ('{tensor.name}')"
                    )
                signature_name = ""
                if "signature_name" in request.parameters:
                    signature_name = request.parameters["signature_name"].string_param
                prediction = await self._core.predict_async(
                    request.model_name,
                    inputs,
                    selector=_selector(request.model_version),
                    signature_name=signature_name,
                    output_filter=[output.name for output in request.outputs],
                    protocol=PROTOCOL,
                    request_id=request.id,
                )
                version = record.version = prediction.version
                response = oip.ModelInferResponse(
                    model_name=request.model_name, model_version=str(version), id=request.id
                )
                send_raw = bool(raw) or not all(
                    has_typed_oip_contents(value.dtype) for value in prediction.outputs.values()
                )
                for key, value in prediction.outputs.items():
                    output = response.outputs.add(name=key, datatype=oip_datatype_of(value.dtype))
                    output.shape.extend(value.shape)
                    if send_raw:
                        response.raw_output_contents.append(ndarray_to_raw(value))
                    else:
                        fill_oip_contents(output.contents, value)
                if prediction.schema_flags:
                    flags = ",".join(prediction.schema_flags)
                    response.parameters["schema_flags"].string_param = flags
                    context.set_trailing_metadata(((SCHEMA_FLAGS_METADATA, flags),))
                return response
            except BaseException as caught:
                _rename_field(caught)
                raise


# The core names fields as TF Serving requests do; OIP callers know them by these names.
_FIELDS = {
    "model_spec.name": "model_name",
    "model_spec.version": "model_version",
    "model_spec.version_label": "model_version",
    "model_spec.signature_name": "parameters[signature_name]",
    "output_filter": "outputs",
}


def _rename_field(error: BaseException) -> None:
    if isinstance(error, SluiceError) and error.field in _FIELDS:
        error.field = _FIELDS[error.field]


def _selector(version: str) -> VersionSelector:
    if not version:
        return VersionSelector()
    if version.isdigit():
        number = int(version)
        if number < 1:
            raise InvalidArgument("model_version must be positive", field="model_version")
        return VersionSelector(version=number)
    return VersionSelector(label=version)
