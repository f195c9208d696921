"""A failed call becomes the right typed exception, with the server's error details."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from sluice.client import (
    AlreadyExistsError,
    ClientConfig,
    InvalidArgumentError,
    MetadataClient,
    NotFoundError,
    RetryPolicy,
    SluiceRpcError,
    UnavailableError,
    from_rpc_error,
)
from sluice.metadata.v1 import metadata_service_pb2 as pb

SERVICE = "sluice.metadata.v1.MetadataService"
StartServer = Callable[..., str]


def rich_status(
    code: int,
    message: str,
    *,
    reason: str,
    field: str | None,
    violations: Sequence[tuple[str, str]] = (),
) -> Any:
    """A status as the Sluice servers build it: ErrorInfo, plus BadRequest when a field is named."""
    status = status_pb2.Status(code=code, message=message)
    metadata = {"field": field} if field else {}
    info = error_details_pb2.ErrorInfo(reason=reason, domain="sluice.dev", metadata=metadata)
    status.details.add().Pack(info)
    if field:
        bad_request = error_details_pb2.BadRequest()
        for violation_field, description in violations or [(field, message)]:
            bad_request.field_violations.add(field=violation_field, description=description)
        status.details.add().Pack(bad_request)
    return status


def failing_handler(
    method: str,
    status: Any,
    plain_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
) -> grpc.GenericRpcHandler[Any, Any]:
    """A generic handler whose `method` always fails, with a rich status or a plain code."""

    def fail(request: Message, context: grpc.ServicerContext) -> Message:
        if status is not None:
            context.abort_with_status(rpc_status.to_status(status))
        context.abort(plain_code, "plain failure")

    request_type = getattr(pb, f"{method}Request")
    response_type = getattr(pb, f"{method}Response")
    handler = grpc.unary_unary_rpc_method_handler(
        fail,
        request_deserializer=request_type.FromString,
        response_serializer=response_type.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE, {method: handler})


def client_for(address: str) -> MetadataClient:
    return MetadataClient(ClientConfig(address, retry=RetryPolicy(max_attempts=1)))


def test_not_found_carries_reason_field_and_violations(grpc_server: StartServer) -> None:
    status = rich_status(
        code_pb2.NOT_FOUND,
        "artifact 42 not found",
        reason="ARTIFACT_NOT_FOUND",
        field="artifact_id",
    )
    address = grpc_server(failing_handler("BatchGetArtifacts", status))

    with client_for(address) as client, pytest.raises(NotFoundError) as caught:
        client.get_artifact(42)

    error = caught.value
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.message == "artifact 42 not found"
    assert error.reason == "ARTIFACT_NOT_FOUND"
    assert error.field == "artifact_id"
    assert error.metadata == {"field": "artifact_id"}
    assert error.violations == [("artifact_id", "artifact 42 not found")]
    assert len(error.details) == 2
    assert str(error) == "NOT_FOUND: artifact 42 not found (field: artifact_id)"


def test_invalid_argument_lists_every_violation_on_one_line(grpc_server: StartServer) -> None:
    status = rich_status(
        code_pb2.INVALID_ARGUMENT,
        "2 problems in the request",
        reason="INVALID_ARTIFACT",
        field="artifacts[0].uri",
        violations=[
            ("artifacts[0].uri", "must be a file:// or s3:// URI"),
            ("artifacts[1].type", "unknown type 'Modle'"),
        ],
    )
    address = grpc_server(failing_handler("PutArtifacts", status))

    with client_for(address) as client, pytest.raises(InvalidArgumentError) as caught:
        client.put_artifacts(artifacts=[])

    error = caught.value
    assert error.field == "artifacts[0].uri"
    assert [field for field, _ in error.violations] == ["artifacts[0].uri", "artifacts[1].type"]
    text = str(error)
    assert "\n" not in text
    assert text.startswith("INVALID_ARGUMENT: 2 problems in the request (field: artifacts[0].uri)")
    assert "artifacts[1].type: unknown type 'Modle'" in text


def test_error_without_details_still_maps_to_its_class(grpc_server: StartServer) -> None:
    address = grpc_server(
        failing_handler("PutType", None, plain_code=grpc.StatusCode.ALREADY_EXISTS)
    )

    with client_for(address) as client, pytest.raises(AlreadyExistsError) as caught:
        client.put_type("Model", properties={"span": "int"})

    error = caught.value
    assert error.reason == "ALREADY_EXISTS"
    assert error.field is None
    assert error.violations == []
    assert str(error) == "ALREADY_EXISTS: plain failure"


def test_unreachable_server_is_unavailable() -> None:
    with client_for("127.0.0.1:1") as client, pytest.raises(UnavailableError):
        client.get_artifact(1, timeout=5)


def test_plain_rpc_error_without_call_information() -> None:
    error = from_rpc_error(grpc.RpcError("no call"))
    assert type(error) is SluiceRpcError
    assert error.code == grpc.StatusCode.UNKNOWN


def test_errors_survive_pickling() -> None:
    error = NotFoundError(
        grpc.StatusCode.NOT_FOUND, "gone", reason="GONE", field="id", violations=[("id", "gone")]
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is NotFoundError
    assert (copy.code, copy.message, copy.reason, copy.field) == (
        grpc.StatusCode.NOT_FOUND,
        "gone",
        "GONE",
        "id",
    )
    assert copy.violations == [("id", "gone")]
