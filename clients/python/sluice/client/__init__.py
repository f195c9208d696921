"""The Sluice Python SDK: typed clients of the six services.

    from sluice.client import Sluice, NotFoundError

    with Sluice() as sluice:                       # addresses etc. from SLUICE_* variables
        artifact_id = sluice.metadata.put_artifact("Model", "s3://models/m1", name="m1")
        for step in sluice.metadata.provenance(artifact_id).steps:
            ...

Every RPC is a method named after it in snake_case, taking the request message or its fields
as keywords plus an optional ``timeout=``; failures raise `SluiceRpcError` subclasses.
"""

from sluice.client._rpc import ServiceClient, paginate
from sluice.client.channel import create_channel
from sluice.client.config import (
    SERVICE_NAMES,
    ClientConfig,
    RetryPolicy,
    TlsConfig,
    default_address,
    default_port,
)
from sluice.client.errors import (
    AbortedError,
    AlreadyExistsError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SluiceCancelledError,
    SluiceRpcError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    from_rpc_error,
)
from sluice.client.evaluation import EvaluationClient
from sluice.client.facade import Sluice
from sluice.client.health import check_health, is_serving
from sluice.client.interceptors import HeaderInterceptor, RetryInterceptor
from sluice.client.metadata import MetadataClient
from sluice.client.pipeline import PipelineClient
from sluice.client.serving import ServingClient
from sluice.client.training import TrainingClient
from sluice.client.validation import ValidationClient
from sluice.client.values import from_value, to_value

__all__ = [
    "SERVICE_NAMES",
    "AbortedError",
    "AlreadyExistsError",
    "ClientConfig",
    "DataLossError",
    "DeadlineExceededError",
    "EvaluationClient",
    "FailedPreconditionError",
    "HeaderInterceptor",
    "InternalError",
    "InvalidArgumentError",
    "MetadataClient",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "PipelineClient",
    "ResourceExhaustedError",
    "RetryInterceptor",
    "RetryPolicy",
    "ServiceClient",
    "ServingClient",
    "Sluice",
    "SluiceCancelledError",
    "SluiceRpcError",
    "TlsConfig",
    "TrainingClient",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "ValidationClient",
    "check_health",
    "create_channel",
    "default_address",
    "default_port",
    "from_rpc_error",
    "from_value",
    "is_serving",
    "paginate",
    "to_value",
]
