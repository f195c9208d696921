"""Runs tritonclient.grpc calls in a process of their own and prints the results as JSON.

tritonclient ships its own copy of the `inference.*` protos, which cannot share a process with the
open-inference-grpc stubs the server uses (the descriptor pool refuses duplicate symbols). So the
tests run the unmodified client here: ``python tritonclient_calls.py <address> <calls.json>``.
Each call is {"op": ..., ...}; arrays travel as {"data": nested list, "dtype": numpy dtype}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException


def _array(spec: dict[str, Any]) -> np.ndarray:
    if spec["dtype"] == "bytes":
        return np.array([s.encode() for s in spec["data"]], dtype=object)
    return np.array(spec["data"], dtype=spec["dtype"])


def _datatype(array: np.ndarray) -> str:
    return "BYTES" if array.dtype == object else str(triton.np_to_triton_dtype(array.dtype))


def run(client: Any, call: dict[str, Any]) -> Any:
    op = call["op"]
    if op == "live":
        return client.is_server_live()
    if op == "ready":
        return client.is_server_ready()
    if op == "model_ready":
        return client.is_model_ready(call["model"], call.get("version", ""))
    if op == "server_metadata":
        meta = client.get_server_metadata()
        return {"name": meta.name, "version": meta.version}
    if op == "model_metadata":
        meta = client.get_model_metadata(call["model"], call.get("version", ""))
        return {
            "versions": list(meta.versions),
            "inputs": [[t.name, t.datatype, list(t.shape)] for t in meta.inputs],
            "outputs": [[t.name, t.datatype, list(t.shape)] for t in meta.outputs],
        }
    if op == "infer":
        inputs = []
        for name, spec in call["inputs"].items():
            array = _array(spec)
            tensor = triton.InferInput(name, list(array.shape), _datatype(array))
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput(name) for name in call.get("outputs", [])] or None
        result = client.infer(
            call["model"],
            inputs,
            model_version=call.get("version", ""),
            outputs=outputs,
            request_id=call.get("id", ""),
        )
        response = result.get_response()
        return {
            "version": response.model_version,
            "id": response.id,
            "outputs": {
                out.name: result.as_numpy(out.name).astype(float).tolist()
                if out.datatype != "BYTES"
                else [v.decode() for v in result.as_numpy(out.name).reshape(-1)]
                for out in response.outputs
            },
        }
    raise ValueError(f"unknown op {op}")


def main() -> None:
    address, calls_path = sys.argv[1], sys.argv[2]
    with open(calls_path) as source:
        calls = json.load(source)
    client = triton.InferenceServerClient(address)
    results = []
    for call in calls:
        try:
            results.append({"ok": run(client, call)})
        except InferenceServerException as error:
            results.append({"error": str(error.status()), "message": error.message()})
    client.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
