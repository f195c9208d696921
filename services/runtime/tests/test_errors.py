"""Domain errors and their translation into google.rpc statuses, without a server."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from sluice_runtime import errors
from sluice_runtime.interceptors import rich_status, status_from_error

DOMAIN_ERRORS = [
    errors.NotFound,
    errors.AlreadyExists,
    errors.InvalidArgument,
    errors.FailedPrecondition,
    errors.Aborted,
    errors.OutOfRange,
    errors.ResourceExhausted,
    errors.Unavailable,
    errors.PermissionDenied,
    errors.Unauthenticated,
    errors.DataLoss,
    errors.Internal,
]


def unpack(status: grpc.Status) -> tuple[status_pb2.Status, list[object]]:
    """The google.rpc.Status in a grpc.Status's trailing metadata, with its unpacked details."""
    (payload,) = [v for k, v in status.trailing_metadata if k == "grpc-status-details-bin"]
    proto = status_pb2.Status.FromString(payload)
    details: list[object] = []
    for detail in proto.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                details.append(message)
    return proto, details


@pytest.mark.parametrize("error_class", DOMAIN_ERRORS)
def test_every_error_names_a_distinct_real_status_code(
    error_class: type[errors.SluiceError],
) -> None:
    assert grpc.StatusCode[error_class.grpc_code_name] is not grpc.StatusCode.OK
    names = [cls.grpc_code_name for cls in DOMAIN_ERRORS]
    assert names.count(error_class.grpc_code_name) == 1
    assert issubclass(error_class, errors.SluiceError)


def test_status_carries_error_info_and_bad_request_naming_the_field() -> None:
    error = errors.InvalidArgument(
        "page_size must be between 1 and 1000, got 0",
        field="page_size",
        reason="PAGE_SIZE_OUT_OF_RANGE",
        metadata={"max": "1000"},
    )

    status = status_from_error(error)

    assert status is not None
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "page_size must be between 1 and 1000, got 0"
    proto, (info, bad_request) = unpack(status)
    assert proto.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert proto.message == status.details
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "PAGE_SIZE_OUT_OF_RANGE"
    assert info.domain == "sluice.dev"
    assert dict(info.metadata) == {"max": "1000", "field": "page_size"}
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("page_size", "page_size must be between 1 and 1000, got 0")
    ]


def test_without_a_field_only_error_info_with_the_code_name_as_reason() -> None:
    status = status_from_error(errors.Unavailable("the artifact store is down"))

    assert status is not None
    assert status.code is grpc.StatusCode.UNAVAILABLE
    _, details = unpack(status)
    assert len(details) == 1
    (info,) = details
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, dict(info.metadata)) == ("UNAVAILABLE", {})


def test_any_exception_class_with_a_code_name_is_a_domain_error() -> None:
    class QuotaExceeded(Exception):
        grpc_code_name = "RESOURCE_EXHAUSTED"
        field = "bucket"

    status = status_from_error(QuotaExceeded("bucket models is full"))

    assert status is not None
    assert (status.code, status.details) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "bucket models is full",
    )
    _, (info, _bad_request) = unpack(status)
    assert info.metadata["field"] == "bucket"  # type: ignore[attr-defined]


@pytest.mark.parametrize("code_name", ["NOTFOUND", "OK", 5, None])
def test_an_unusable_code_name_is_not_a_domain_error(code_name: object) -> None:
    class Odd(Exception):
        grpc_code_name = code_name

    assert errors.grpc_code_name_of(Odd("x")) is None
    assert status_from_error(Odd("x")) is None
    assert status_from_error(ValueError("x")) is None


def test_rich_status_stringifies_metadata_values() -> None:
    status = rich_status(grpc.StatusCode.ABORTED, "etag is stale", metadata={"etag": 7})

    _, (info,) = unpack(status)
    assert dict(info.metadata) == {"etag": "7"}  # type: ignore[attr-defined]


def test_errors_survive_pickling_with_every_attribute() -> None:
    error = errors.NotFound("no such run", field="run_id", reason="RUN_GONE", metadata={"a": "b"})

    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is errors.NotFound
    assert (copy.message, copy.field, copy.reason, copy.metadata) == (
        "no such run",
        "run_id",
        "RUN_GONE",
        {"a": "b"},
    )
    assert str(copy) == "no such run"
    assert repr(copy) == (
        "NotFound('no such run', field='run_id', reason='RUN_GONE', metadata={'a': 'b'})"
    )


def test_the_errors_module_does_not_import_grpc() -> None:
    # Loaded from its file, so only errors.py itself is judged (not the package __init__).
    path = Path(errors.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('standalone_errors', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert module.NotFound('x').grpc_code_name == 'NOT_FOUND'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
