"""Top-level shortcuts for the commands people type most: `sluice stats`, `schema`, `validate`,
`drift`, `train`, `jobs`, `models` and `predict`.

Each is the same function as its command in a service group (`sluice validation stats` ...), so the
two never drift apart; `predict` is the one new command: it speaks the Open Inference Protocol v2
to the serving service through the published open-inference-grpc stubs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
import typer

from sluice.cli import serving, training, validation
from sluice.cli.output import console, fail
from sluice.client.config import ClientConfig
from sluice.client.errors import from_rpc_error

# OIP datatype -> the InferTensorContents field that carries it.
_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP16": "fp32_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def register(app: typer.Typer) -> None:
    app.command("stats")(validation.stats)
    app.command("schema")(validation.infer_schema)
    app.command("validate")(validation.validate)
    app.command("drift")(validation.compare)
    app.command("train")(training.create)
    app.command("jobs")(training.list_jobs)
    app.command("models")(serving.list_models)
    app.command("predict")(predict)


def predict(
    model: str = typer.Argument(..., help="The served model's name."),
    json_input: str = typer.Option(
        ..., "--json", help='Inputs as a JSON object: {"feature": value or [rows...], ...}.'
    ),
    version: str = typer.Option("", "--version", help="A version number; default: current."),
    address: str | None = typer.Option(None, "--address", help="host:port of serving."),
) -> None:
    """Ask a served model for predictions (Open Inference Protocol v2)."""
    try:
        from open_inference.grpc import protocol as oip
        from open_inference.grpc import service as oip_service
    except ImportError:
        fail(
            "sluice predict needs the open-inference-grpc package: pip install open-inference-grpc"
        )
    try:
        features = json.loads(json_input)
    except json.JSONDecodeError as error:
        fail(f"--json: not valid JSON ({error})")
    if not isinstance(features, dict) or not features:
        fail('--json: expected a non-empty object such as {"age": 42}')

    config = ClientConfig(address) if address else ClientConfig.from_env("serving")
    with grpc.insecure_channel(config.address) as channel:
        stub = oip_service.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            metadata = stub.ModelMetadata(
                oip.ModelMetadataRequest(name=model, version=version),
                timeout=config.deadline_seconds,
            )
            request = oip.ModelInferRequest(model_name=model, model_version=version)
            known = {tensor.name: tensor for tensor in metadata.inputs}
            for name, value in features.items():
                if name not in known:
                    fail(f"--json: {model} has no input {name!r}; inputs: {', '.join(known)}")
                request.inputs.append(_input_tensor(oip, name, value, known[name]))
            reply = stub.ModelInfer(request, timeout=config.deadline_seconds)
        except grpc.RpcError as error:
            fail(str(from_rpc_error(error)))
    result = {
        "model": reply.model_name,
        "version": reply.model_version,
        "outputs": {
            output.name: {"shape": list(output.shape), "values": _values(output)}
            for output in reply.outputs
        },
    }
    console.print_json(json.dumps(result))


def _input_tensor(oip: Any, name: str, value: Any, spec: Any) -> Any:
    """One input tensor: a scalar or one row gets the batch dimension the model expects."""
    shape = _shape(name, value)
    if len(shape) < len(spec.shape):
        value, shape = [value], [1, *shape]
    field = _CONTENTS_FIELD.get(spec.datatype)
    if field is None:
        fail(f"--json: input {name!r} has datatype {spec.datatype}, which predict cannot send")
    flat = _flatten(value)
    if field == "bytes_contents":
        flat = [str(item).encode() for item in flat]
    tensor = oip.ModelInferRequest.InferInputTensor(name=name, datatype=spec.datatype, shape=shape)
    getattr(tensor.contents, field).extend(flat)
    return tensor


def _shape(name: str, value: Any) -> list[int]:
    if not isinstance(value, list):
        return []
    if not value:
        fail(f"--json: input {name!r} is an empty list")
    inner = [_shape(name, item) for item in value]
    if any(shape != inner[0] for shape in inner):
        fail(f"--json: input {name!r} is ragged (rows of different lengths)")
    return [len(value), *inner[0]]


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for element in value for item in _flatten(element)]
    return [value]


def _values(output: Any) -> Sequence[Any]:
    for field in _CONTENTS_FIELD.values():
        values = list(getattr(output.contents, field))
        if values:
            return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    return []
