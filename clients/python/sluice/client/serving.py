"""Client of the serving service's management API (models, versions, labels, request log)."""

from __future__ import annotations

from collections.abc import Iterator

from sluice.client._rpc import ServiceClient, Unary, paginate
from sluice.serving.v1 import model_pb2, serving_service_pb2_grpc
from sluice.serving.v1 import serving_service_pb2 as pb


class ServingClient(ServiceClient):
    """The serving service; each RPC is a method named after it (see `ServiceClient`).

    Predictions go through the TensorFlow Serving or Open Inference Protocol APIs of the same
    server, with their own published clients.
    """

    service = "serving"
    stub_class = serving_service_pb2_grpc.ServingServiceStub

    load_model_version = Unary(
        "LoadModelVersion", pb.LoadModelVersionRequest, pb.LoadModelVersionResponse
    )
    unload_model_version = Unary(
        "UnloadModelVersion", pb.UnloadModelVersionRequest, pb.UnloadModelVersionResponse
    )
    get_model = Unary("GetModel", pb.GetModelRequest, pb.GetModelResponse)
    list_models = Unary("ListModels", pb.ListModelsRequest, pb.ListModelsResponse)
    update_model_config = Unary(
        "UpdateModelConfig", pb.UpdateModelConfigRequest, pb.UpdateModelConfigResponse
    )
    set_model_label = Unary("SetModelLabel", pb.SetModelLabelRequest, pb.SetModelLabelResponse)
    get_request_log_location = Unary(
        "GetRequestLogLocation", pb.GetRequestLogLocationRequest, pb.GetRequestLogLocationResponse
    )

    def iter_models(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[model_pb2.Model]:
        return paginate(
            lambda token: self.list_models(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.models,
        )
