"""Infra validation: is the model safe to serve? Load it where it would run, and ask it.

As TFX's InfraValidator, with the serving service's own code as the sandbox: a fresh
``python -m sluice_serving`` process on a free port of 127.0.0.1, in its own session, with its own
scratch folder and cache, no metadata service and no auth (only this process can reach it). The
model is loaded there through the serving control API (``LoadModelVersion``, waiting), then canary
requests built from rows of the canary data go through TensorFlow Serving's ``Predict``, one row
each. Whatever the model does to that process - fail to load, hang, crash it - the evaluation
service only sees a child process fail, and the sandbox is always killed at the end.

The model is INFRA-BLESSED when it loads within ``load_timeout_seconds``, answers every canary
request, and the 99th percentile of their latencies (as the client measures them) is within
``latency_budget_ms``. A model that fails a test is NOT_BLESSED and the validation SUCCEEDS with
the reasons; the validation FAILS (also NOT_BLESSED) when it cannot run at all, for example when
the sandbox does not start or the canary data cannot be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import numpy as np
import pandas as pd
from sluice.client import ClientConfig, ServingClient, is_serving
from sluice.client.errors import DeadlineExceededError, SluiceRpcError
from sluice.serving.v1 import model_pb2 as serving_model_pb2
from sluice_runtime.artifacts import ArtifactStore
from sluice_runtime.errors import InvalidArgument, Unavailable

from sluice_evaluation.data import read_frame, saved_model_uri, write_json
from sluice_evaluation.jobs import Cancelled, JobControl
from sluice_evaluation.lineage import (
    INFRA_VALIDATOR,
    ArtifactRecord,
    Lineage,
    resolve_data,
    resolve_model,
)
from sluice_evaluation.model import DEFAULT_SIGNATURE, InputSpec, SignatureMismatch, feature_array
from sluice_evaluation.spec import ArtifactRef, InfraValidationResult, InfraValidationSpec, Problem
from sluice_evaluation.thresholds import Verdict

SANDBOX_MODEL_NAME = "candidate"
DEFAULT_START_TIMEOUT_SECONDS = 120.0
_STOP_GRACE_SECONDS = 5.0
_LOG_TAIL_BYTES = 2000


class SandboxError(Exception):
    """The sandboxed serving process could not be started or died; the message says how."""


@dataclass(frozen=True)
class SandboxSettings:
    """How to start the sandbox.

    Attributes:
        artifact_store_uri: the store the sandbox pulls the model from (the service's own).
        command: the serving process; the default runs the installed serving service.
        start_timeout_seconds: how long the process may take to answer health checks (importing
            TensorFlow takes seconds; this is not the model's load time).
        environment: extra variables for the process (e.g. TensorFlow thread counts).
    """

    artifact_store_uri: str
    command: tuple[str, ...] = (sys.executable, "-m", "sluice_serving")
    start_timeout_seconds: float = DEFAULT_START_TIMEOUT_SECONDS
    environment: Mapping[str, str] = field(default_factory=dict)


class ServingSandbox:
    """One serving process for one validation; use it as a context manager (always stopped)."""

    def __init__(self, settings: SandboxSettings, scratch: Path) -> None:
        self.settings = settings
        self.scratch = scratch
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> ServingSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the process and wait until it answers health checks as SERVING."""
        self._log = open(self.scratch / "sandbox.log", "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            self.settings.command,
            env=self._environment(),
            cwd=self.scratch,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole, signals kept apart
        )
        deadline = time.monotonic() + self.settings.start_timeout_seconds
        while not is_serving(self.address, timeout=1.0):
            if self.exit_code is not None:
                raise SandboxError(
                    f"the sandboxed serving process exited with {self.describe_exit()} before it "
                    f"served: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise SandboxError(
                    "the sandboxed serving process did not serve within "
                    f"{self.settings.start_timeout_seconds:g} s: {self.log_tail()}"
                )
            time.sleep(0.2)

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def describe_exit(self) -> str:
        code = self.exit_code
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"signal {signal.Signals(-code).name}"
        return f"code {code}"

    def log_tail(self) -> str:
        path = self.scratch / "sandbox.log"
        try:
            data = path.read_bytes()[-_LOG_TAIL_BYTES:]
        except OSError:
            return "(no log)"
        lines = data.decode("utf-8", "replace").strip().splitlines()
        return " | ".join(lines[-5:]) or "(empty log)"

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after a grace period; safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _environment(self) -> dict[str, str]:
        # The sandbox inherits storage credentials, but none of this service's own identity or
        # the serving settings of a real deployment.
        dropped = ("SLUICE_SERVING_", "SLUICE_TLS", "SLUICE_AUTH_TOKEN", "SLUICE_TOKEN")
        env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        env.update(
            {
                "SLUICE_HOST": "127.0.0.1",
                "SLUICE_SERVING_PORT": str(self.port),
                "SLUICE_ARTIFACT_STORE_URI": self.settings.artifact_store_uri,
                "SLUICE_DATA_DIR": str(self.scratch),
                "SLUICE_SERVING_CACHE_DIR": str(self.scratch / "cache"),
                # Nothing to ask the metadata service: the model is loaded by URI.
                "SLUICE_METADATA_ADDRESS": "127.0.0.1:1",
            }
        )
        env.update(self.settings.environment)
        return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class InfraValidator:
    """Runs infra validations: the work function of the infraValidations `JobRunner`."""

    def __init__(
        self,
        store: ArtifactStore,
        lineage: Lineage,
        scratch_dir: Path,
        settings: SandboxSettings,
    ) -> None:
        self.store = store
        self.lineage = lineage
        self.scratch_dir = scratch_dir
        self.settings = settings

    def __call__(
        self, name: str, spec: InfraValidationSpec, control: JobControl
    ) -> InfraValidationResult:
        model = resolve_model(self.lineage, spec.model, "model")
        try:
            return self._run(name, spec, model, control)
        except Cancelled:
            raise
        except Exception as error:
            self.lineage.record_failure(INFRA_VALIDATOR, name, model, 0, str(error))
            raise

    def _run(
        self, name: str, spec: InfraValidationSpec, model: ArtifactRecord, control: JobControl
    ) -> InfraValidationResult:
        control.report(0.0, "reading the canary data")
        canary_uri, _ = resolve_data(self.lineage, spec.canary_data.data, "canary_data.data")
        canary = read_frame(self.store, canary_uri, spec.canary_data.format, "canary_data")
        if canary.empty:
            raise InvalidArgument(
                "canary_data: no rows to build canary requests from",
                field="canary_data",
                reason="DATA_EMPTY",
            )
        model_uri = saved_model_uri(self.store, model.uri, "model")
        with tempfile.TemporaryDirectory(dir=self.scratch_dir, prefix="sandbox-") as scratch:
            control.report(0.05, "starting the sandboxed serving process")
            sandbox = ServingSandbox(self.settings, Path(scratch))
            try:
                try:
                    sandbox.start()
                except SandboxError as error:
                    raise Unavailable(str(error), reason="SANDBOX_UNAVAILABLE") from None
                probe = _probe(sandbox, model_uri, canary, spec, control)
            finally:
                sandbox.stop()
        verdict = Verdict.NOT_BLESSED if probe.problems else Verdict.BLESSED
        summary = "; ".join(p.message for p in probe.problems) or (
            f"loaded in {probe.load_seconds:.2f} s; p99 latency {probe.p99_ms:.1f} ms over "
            f"{spec.canary_requests} requests"
        )
        control.report(0.95, "recording the infra blessing")
        blessing_uri = write_json(
            self.store,
            f"{name}/infra_blessing.json",
            _blessing_json(name, model, verdict, probe),
        )
        recorded = self.lineage.record_infra_validation(
            name, model, blessing_uri, verdict is Verdict.BLESSED, summary
        )
        control.report(1.0, f"{verdict.name}: {summary}")
        return InfraValidationResult(
            verdict=verdict,
            model=ArtifactRef(model.id, model.uri),
            load_seconds=probe.load_seconds,
            p99_latency_ms=probe.p99_ms,
            failed_requests=probe.failed_requests,
            problems=tuple(probe.problems),
            blessing=ArtifactRef(
                recorded.output_ids[0] if recorded.output_ids else 0, blessing_uri
            ),
            execution_id=recorded.execution_id,
        )


@dataclass(frozen=True)
class _Probe:
    """What the sandbox showed: load time, canary latencies and failures, and the problems."""

    load_seconds: float = 0.0
    p99_ms: float = 0.0
    failed_requests: int = 0
    problems: tuple[Problem, ...] = ()


def _probe(
    sandbox: ServingSandbox,
    model_uri: str,
    canary: pd.DataFrame,
    spec: InfraValidationSpec,
    control: JobControl,
) -> _Probe:
    control.report(0.3, "loading the model in the sandbox")
    # A plain local channel: the sandbox has no TLS and no token, whatever this service uses.
    with ServingClient(ClientConfig(address=sandbox.address)) as client:
        load_seconds, problem = _load(client, sandbox, model_uri, spec)
    if problem is not None:
        return _Probe(load_seconds, problems=(problem,))
    control.report(0.6, f"sending {spec.canary_requests} canary requests")
    latencies, failures = _canaries(sandbox, canary, spec, control)
    p99 = float(np.percentile(latencies, 99, method="higher")) if latencies else 0.0
    problems = failures[:1]
    if len(failures) > 1:
        problems.append(
            Problem(
                "CANARY_FAILED",
                f"{len(failures)} of {spec.canary_requests} canary requests failed in all",
            )
        )
    if not failures and p99 > spec.latency_budget_ms:
        problems.append(
            Problem(
                "LATENCY_BUDGET_EXCEEDED",
                f"p99 latency {p99:.1f} ms of {spec.canary_requests} canary requests is over "
                f"the budget of {spec.latency_budget_ms:g} ms",
            )
        )
    return _Probe(load_seconds, p99, len(failures), tuple(problems))


def _load(
    client: ServingClient, sandbox: ServingSandbox, uri: str, spec: InfraValidationSpec
) -> tuple[float, Problem | None]:
    """Load the model in the sandbox, waiting; (seconds, why it failed or None)."""
    began = time.perf_counter()
    try:
        response = client.load_model_version(
            model_name=SANDBOX_MODEL_NAME,
            version=1,
            uri=uri,
            wait=True,
            timeout=spec.load_timeout_seconds,
        )
    except DeadlineExceededError:
        return spec.load_timeout_seconds, Problem(
            "LOAD_TIMEOUT",
            f"the model did not load within the limit of {spec.load_timeout_seconds:g} s",
        )
    except SluiceRpcError as error:
        seconds = time.perf_counter() - began
        if sandbox.exit_code is not None or not _wait_alive(sandbox):
            return seconds, Problem(
                "SANDBOX_CRASHED",
                f"loading the model killed the serving process ({sandbox.describe_exit()}): "
                f"{sandbox.log_tail()}",
            )
        return seconds, Problem(
            "MODEL_LOAD_FAILED", f"the serving process refused the model: {error}"
        )
    seconds = time.perf_counter() - began
    version = response.version
    if version.state != serving_model_pb2.VERSION_STATE_AVAILABLE:
        reason = version.error.message or serving_model_pb2.VersionState.Name(version.state)
        return seconds, Problem("MODEL_LOAD_FAILED", f"the model failed to load: {reason}")
    if seconds > spec.load_timeout_seconds:
        return seconds, Problem(
            "LOAD_TIMEOUT",
            f"the model took {seconds:.2f} s to load, over the limit of "
            f"{spec.load_timeout_seconds:g} s",
        )
    return seconds, None


def _wait_alive(sandbox: ServingSandbox) -> bool:
    # A dying process may still hold its port for a moment.
    time.sleep(0.5)
    return sandbox.exit_code is None


def _canaries(
    sandbox: ServingSandbox, canary: pd.DataFrame, spec: InfraValidationSpec, control: JobControl
) -> tuple[list[float], list[Problem]]:
    """Send the canary requests; (latency of each answered one in ms, problems)."""
    import tensorflow as tf
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        model_pb2,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    with grpc.insecure_channel(sandbox.address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        model_spec = model_pb2.ModelSpec(name=SANDBOX_MODEL_NAME, signature_name=DEFAULT_SIGNATURE)
        try:
            metadata = stub.GetModelMetadata(
                get_model_metadata_pb2.GetModelMetadataRequest(
                    model_spec=model_spec, metadata_field=["signature_def"]
                ),
                timeout=10.0,
            )
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            metadata.metadata["signature_def"].Unpack(signature_map)
            signature = signature_map.signature_def[DEFAULT_SIGNATURE]
            inputs = {key: _input_spec(tf, key, info) for key, info in signature.inputs.items()}
            features = {key: feature_array(canary, spec_) for key, spec_ in inputs.items()}
        except grpc.RpcError as error:
            return [], [
                Problem(
                    "CANARY_FAILED", f"the sandbox did not describe the model: {error.details()}"
                )
            ]
        except (SignatureMismatch, KeyError) as error:
            return [], [Problem("CANARY_FAILED", f"no canary request can be built: {error}")]

        latencies: list[float] = []
        failures: list[Problem] = []
        deadline = max(5.0, 10 * spec.latency_budget_ms / 1000)
        rows = len(canary)
        for i in range(spec.canary_requests):
            control.check()
            row = i % rows
            request = predict_pb2.PredictRequest(model_spec=model_spec)
            for key, values in features.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(values[row : row + 1]))
            began = time.perf_counter()
            try:
                response = stub.Predict(request, timeout=deadline)
            except grpc.RpcError as error:
                crashed = sandbox.exit_code is not None
                failures.append(
                    Problem(
                        "SANDBOX_CRASHED" if crashed else "CANARY_FAILED",
                        f"canary request {i + 1} (data row {row}) failed: "
                        + (
                            f"the serving process died ({sandbox.describe_exit()})"
                            if crashed
                            else f"{error.code().name}: {error.details()}"
                        ),
                    )
                )
                if crashed:
                    break
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            if not response.outputs:
                failures.append(Problem("CANARY_FAILED", f"canary request {i + 1} got no outputs"))
    return latencies, failures


def _input_spec(tf: Any, name: str, info: Any) -> InputSpec:
    dtype = tf.dtypes.as_dtype(info.dtype)
    shape = (
        None
        if info.tensor_shape.unknown_rank
        else tuple(int(d.size) for d in info.tensor_shape.dim)
    )
    if dtype == tf.string:
        return InputSpec(name, "string", shape)
    kind = "bool" if dtype == tf.bool else "int" if dtype.is_integer else "float"
    return InputSpec(name, kind, shape, np.dtype(dtype.as_numpy_dtype).name)


def _blessing_json(name: str, model: ArtifactRecord, verdict: Verdict, probe: _Probe) -> str:
    return json.dumps(
        {
            "blessed": verdict is Verdict.BLESSED,
            "verdict": verdict.name,
            "infra_validation": name,
            "model": {"artifact_id": model.id, "uri": model.uri},
            "load_seconds": probe.load_seconds,
            "p99_latency_ms": probe.p99_ms,
            "failed_requests": probe.failed_requests,
            "problems": [{"reason": p.reason, "message": p.message} for p in probe.problems],
        },
        indent=1,
    )
