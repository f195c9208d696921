"""The control plane ``sluice.serving.v1.ServingService``: proto <-> core, and the conversions."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from sluice.common.v1 import job_pb2
from sluice.serving.v1 import model_pb2, serving_service_pb2, serving_service_pb2_grpc
from sluice_runtime.errors import InvalidArgument

from sluice_serving.batching import (
    DEFAULT_MAX_WAIT_SECONDS,
    BatchingSettings,
)
from sluice_serving.core import (
    ModelInfo,
    ServingCore,
    VersionInfo,
    VersionPolicy,
    VersionState,
)
from sluice_serving.request_log import DEFAULT_ROWS_PER_FILE, RequestLogSettings
from sluice_serving.schema import SchemaAction, SchemaPolicy

SERVICE = "sluice.serving.v1.ServingService"

_STATES = {
    VersionState.LOADING: model_pb2.VERSION_STATE_LOADING,
    VersionState.WARMING: model_pb2.VERSION_STATE_WARMING,
    VersionState.AVAILABLE: model_pb2.VERSION_STATE_AVAILABLE,
    VersionState.UNLOADING: model_pb2.VERSION_STATE_UNLOADING,
    VersionState.END: model_pb2.VERSION_STATE_END,
    VersionState.FAILED: model_pb2.VERSION_STATE_FAILED,
}
_ACTIONS = {
    model_pb2.SCHEMA_VIOLATION_ACTION_UNSPECIFIED: SchemaAction.REJECT,
    model_pb2.SCHEMA_VIOLATION_ACTION_REJECT: SchemaAction.REJECT,
    model_pb2.SCHEMA_VIOLATION_ACTION_FLAG: SchemaAction.FLAG,
}
_ACTION_PROTOS = {
    SchemaAction.REJECT: model_pb2.SCHEMA_VIOLATION_ACTION_REJECT,
    SchemaAction.FLAG: model_pb2.SCHEMA_VIOLATION_ACTION_FLAG,
}


class ServingControlServicer(serving_service_pb2_grpc.ServingServiceServicer):  # type: ignore[misc]
    def __init__(self, core: ServingCore) -> None:
        self._core = core

    def LoadModelVersion(
        self, request: serving_service_pb2.LoadModelVersionRequest, context: grpc.ServicerContext
    ) -> serving_service_pb2.LoadModelVersionResponse:
        info = self._core.load_version(
            request.model_name,
            request.version,
            request.uri,
            digest=request.digest,
            artifact_id=request.artifact_id,
            wait=request.wait,
        )
        return serving_service_pb2.LoadModelVersionResponse(version=version_to_proto(info))

    def UnloadModelVersion(
        self, request: serving_service_pb2.UnloadModelVersionRequest, context: grpc.ServicerContext
    ) -> serving_service_pb2.UnloadModelVersionResponse:
        info = self._core.unload_version(_model_name(request.model_name), request.version)
        return serving_service_pb2.UnloadModelVersionResponse(version=version_to_proto(info))

    def GetModel(
        self, request: serving_service_pb2.GetModelRequest, context: grpc.ServicerContext
    ) -> serving_service_pb2.GetModelResponse:
        info = self._core.get_model(_model_name(request.model_name))
        return serving_service_pb2.GetModelResponse(model=model_to_proto(info))

    def ListModels(
        self, request: serving_service_pb2.ListModelsRequest, context: grpc.ServicerContext
    ) -> serving_service_pb2.ListModelsResponse:
        infos, token = self._core.list_models(request.page_size, request.page_token)
        return serving_service_pb2.ListModelsResponse(
            models=[model_to_proto(info) for info in infos], next_page_token=token
        )

    def UpdateModelConfig(
        self, request: serving_service_pb2.UpdateModelConfigRequest, context: grpc.ServicerContext
    ) -> serving_service_pb2.UpdateModelConfigResponse:
        info = self._core.update_model_config(
            request.model_name,
            version_policy=(
                policy_from_proto(request.version_policy)
                if request.HasField("version_policy")
                else None
            ),
            batching=batching_from_proto(request.batching)
            if request.HasField("batching")
            else None,
            request_log=(
                request_log_from_proto(request.request_log)
                if request.HasField("request_log")
                else None
            ),
            schema_uri=request.schema_uri or None,
            clear_schema=request.clear_schema,
            schema_policy=(
                schema_policy_from_proto(request.schema_policy)
                if request.HasField("schema_policy")
                else None
            ),
        )
        return serving_service_pb2.UpdateModelConfigResponse(model=model_to_proto(info))

    def SetModelLabel(
        self, request: serving_service_pb2.SetModelLabelRequest, context: grpc.ServicerContext
    ) -> serving_service_pb2.SetModelLabelResponse:
        if request.version < 0:
            raise InvalidArgument(
                "version must be positive, or 0 to remove the label", field="version"
            )
        info = self._core.set_label(_model_name(request.model_name), request.label, request.version)
        return serving_service_pb2.SetModelLabelResponse(model=model_to_proto(info))

    def GetRequestLogLocation(
        self,
        request: serving_service_pb2.GetRequestLogLocationRequest,
        context: grpc.ServicerContext,
    ) -> serving_service_pb2.GetRequestLogLocationResponse:
        uri, rate = self._core.request_log_location(_model_name(request.model_name))
        return serving_service_pb2.GetRequestLogLocationResponse(uri_prefix=uri, sample_rate=rate)


def _model_name(name: str) -> str:
    if not name:
        raise InvalidArgument("model_name is required", field="model_name")
    return name


# --- conversions ------------------------------------------------------------------------------


def policy_from_proto(proto: model_pb2.VersionPolicy) -> VersionPolicy:
    kind = proto.WhichOneof("policy")
    try:
        if kind == "specific":
            return VersionPolicy("specific", versions=frozenset(proto.specific.versions))
        if kind == "all":
            return VersionPolicy("all")
        if kind == "latest":
            return VersionPolicy("latest", num_versions=proto.latest.num_versions)
    except ValueError as error:
        raise InvalidArgument(
            f"version_policy.{kind}: {error}", field=f"version_policy.{kind}"
        ) from None
    return VersionPolicy()


def policy_to_proto(policy: VersionPolicy) -> model_pb2.VersionPolicy:
    proto = model_pb2.VersionPolicy()
    if policy.kind == "specific":
        proto.specific.versions.extend(sorted(policy.versions))
    elif policy.kind == "all":
        proto.all.SetInParent()
    else:
        proto.latest.num_versions = policy.num_versions
    return proto


def batching_from_proto(proto: model_pb2.BatchingConfig) -> BatchingSettings:
    wait = (
        proto.max_wait.seconds + proto.max_wait.nanos / 1e9
        if proto.HasField("max_wait")
        else DEFAULT_MAX_WAIT_SECONDS
    )
    try:
        return BatchingSettings(max_batch_size=proto.max_batch_size, max_wait=wait)
    except ValueError as error:
        raise InvalidArgument(f"batching: {error}", field="batching") from None


def batching_to_proto(settings: BatchingSettings) -> model_pb2.BatchingConfig:
    wait = duration_pb2.Duration()
    wait.FromNanoseconds(round(settings.max_wait * 1e9))
    return model_pb2.BatchingConfig(max_batch_size=settings.max_batch_size, max_wait=wait)


def request_log_from_proto(proto: model_pb2.RequestLogConfig) -> RequestLogSettings:
    try:
        return RequestLogSettings(
            sample_rate=proto.sample_rate,
            rows_per_file=proto.rows_per_file or DEFAULT_ROWS_PER_FILE,
            uri_prefix=proto.uri_prefix,
        )
    except ValueError as error:
        raise InvalidArgument(f"request_log: {error}", field="request_log") from None


def request_log_to_proto(settings: RequestLogSettings) -> model_pb2.RequestLogConfig:
    return model_pb2.RequestLogConfig(
        sample_rate=settings.sample_rate,
        rows_per_file=settings.rows_per_file,
        uri_prefix=settings.uri_prefix,
    )


def schema_policy_from_proto(proto: model_pb2.SchemaPolicy) -> SchemaPolicy:
    for feature, action in proto.feature_actions.items():
        if action not in _ACTIONS:
            raise InvalidArgument(
                f"schema_policy.feature_actions[{feature}]: unknown action {action}",
                field=f"schema_policy.feature_actions[{feature}]",
            )
    if proto.default_action not in _ACTIONS:
        raise InvalidArgument(
            f"schema_policy.default_action: unknown action {proto.default_action}",
            field="schema_policy.default_action",
        )
    return SchemaPolicy(
        default_action=_ACTIONS[proto.default_action],
        feature_actions={name: _ACTIONS[action] for name, action in proto.feature_actions.items()},
    )


def schema_policy_to_proto(policy: SchemaPolicy) -> model_pb2.SchemaPolicy:
    return model_pb2.SchemaPolicy(
        default_action=_ACTION_PROTOS[policy.default_action],
        feature_actions={name: _ACTION_PROTOS[a] for name, a in policy.feature_actions.items()},
    )


def version_to_proto(info: VersionInfo) -> model_pb2.ModelVersion:
    proto = model_pb2.ModelVersion(
        version=info.version,
        uri=info.uri,
        digest=info.digest,
        artifact_id=info.artifact_id,
        state=_STATES[info.state],
        load_seconds=info.load_seconds,
    )
    if info.error is not None:
        proto.error.CopyFrom(
            job_pb2.JobError(
                code=grpc.StatusCode[info.error.code].value[0],
                message=info.error.message,
                reason=info.error.reason or info.error.code,
                field=info.error.field,
            )
        )
    if info.load_time is not None:
        proto.load_time.FromDatetime(info.load_time)
    return proto


def model_to_proto(info: ModelInfo) -> model_pb2.Model:
    return model_pb2.Model(
        name=info.name,
        version_policy=policy_to_proto(info.config.version_policy),
        batching=batching_to_proto(info.config.batching),
        request_log=request_log_to_proto(info.config.request_log),
        labels=dict(info.labels),
        versions=[version_to_proto(version) for version in info.versions],
        current_version=info.current_version,
        schema_uri=info.config.schema_uri,
        schema_policy=schema_policy_to_proto(info.config.schema_policy),
    )


def model_from_proto_config(proto: model_pb2.Model) -> dict[str, object]:
    """The keyword arguments of `ServingCore.update_model_config` that a Model message sets."""
    return {
        "version_policy": (
            policy_from_proto(proto.version_policy) if proto.HasField("version_policy") else None
        ),
        "batching": batching_from_proto(proto.batching) if proto.HasField("batching") else None,
        "request_log": (
            request_log_from_proto(proto.request_log) if proto.HasField("request_log") else None
        ),
        "schema_uri": proto.schema_uri or None,
        "schema_policy": (
            schema_policy_from_proto(proto.schema_policy)
            if proto.HasField("schema_policy")
            else None
        ),
    }
