"""The Kubernetes Job of a training attempt, without a cluster."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from sluice.training.v1 import training_job_pb2 as pb
from sluice_runtime.artifacts import ArtifactStore
from sluice_training.config import KubernetesSettings
from sluice_training.distributed import tf_config_from_env
from sluice_training.kubernetes import (
    GPU_RESOURCE,
    HttpKubernetesApi,
    KubernetesLauncher,
    job_manifests,
)
from sluice_training.plan import DataRef, JobPlan, ModelFamily, ModelPlan, Task

EXAMPLE = (
    Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "training-job.example.yaml"
)
SETTINGS = KubernetesSettings(
    image="registry.example.com/sluice:0.1.0",
    namespace="ml",
    secret="sluice-artifact-store",
    service_account="sluice-training-worker",
)


def example_plan(workers: int = 2) -> JobPlan:
    return JobPlan(
        job_id="4f2a9c0d1e3b5a67",
        attempt=1,
        store_uri="s3://sluice/artifacts",
        train_data=DataRef("s3://sluice/artifacts/spans/12/train.parquet"),
        schema_uri="s3://sluice/artifacts/schemas/3/schema.pbtxt",
        label="bought",
        model=ModelPlan(ModelFamily.WIDE_AND_DEEP, Task.BINARY),
        output_prefix="models/4f2a9c0d1e3b5a67",
        checkpoint_prefix="training-jobs/4f2a9c0d1e3b5a67/checkpoints",
        num_workers=workers,
    )


def example_manifests(workers: int = 2) -> list[dict[str, Any]]:
    return job_manifests(
        example_plan(workers),
        SETTINGS,
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
        gpus_per_worker=1,
    )


def test_two_gpu_workers_make_an_indexed_job_and_a_headless_service() -> None:
    service, job = example_manifests()
    name = "sluice-train-4f2a9c0d1e3b5a67-a1"
    assert (service["kind"], service["spec"]["clusterIP"], service["metadata"]["name"]) == (
        "Service",
        "None",
        name,
    )
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == name and pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {GPU_RESOURCE: "1"}
    assert container["envFrom"] == [{"secretRef": {"name": "sluice-artifact-store"}}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KERAS_BACKEND"] == "tensorflow"
    hosts = env["SLUICE_TRAINING_WORKER_HOSTS"]
    assert hosts == f"{name}-0.{name}:2222,{name}-1.{name}:2222"
    # Each pod turns the hosts and its completion index into TF_CONFIG.
    config = json.loads(
        tf_config_from_env({"SLUICE_TRAINING_WORKER_HOSTS": hosts, "JOB_COMPLETION_INDEX": "1"})
        or "{}"
    )
    assert config == {
        "cluster": {"worker": hosts.split(",")},
        "task": {"type": "worker", "index": 1},
    }
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    assert "$(JOB_COMPLETION_INDEX)" in container["command"][-1]


def test_one_cpu_worker_needs_no_service_and_no_gpu() -> None:
    (job,) = job_manifests(example_plan(workers=1), KubernetesSettings(image="sluice:dev"))
    pod = job["spec"]["template"]["spec"]
    assert "subdomain" not in pod and "tolerations" not in pod
    assert "resources" not in pod["containers"][0]
    assert job["metadata"]["namespace"] == "default"


def test_the_static_example_is_what_the_code_generates() -> None:
    assert list(yaml.safe_load_all(EXAMPLE.read_text())) == example_manifests()


def test_job_manifests_pass_kubernetes_schema_validation() -> None:
    # Needs the PyPI package kubernetes-validate, not yet in requirements/dev.lock: this test is
    # reported as SKIPPED with this reason until it is added, then runs for real.
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed: add it to requirements/dev.lock to validate "
        "the training Job manifests against the Kubernetes schema",
    )
    for manifest in [*example_manifests(), *job_manifests(example_plan(1), SETTINGS)]:
        kubernetes_validate.validate(manifest, "1.31", strict=True)


class FakeApi:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        key = (manifest["kind"], manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        self.objects[key] = dict(manifest)
        return dict(manifest)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.objects.pop((kind, namespace, name), None)


def test_launcher_creates_stops_and_follows_the_job(store: ArtifactStore, tmp_path: Path) -> None:
    api = FakeApi()
    launcher = KubernetesLauncher(api, SETTINGS, store)
    placement = pb.Placement(kind=pb.Placement.KIND_KUBERNETES, num_workers=2, gpus_per_worker=1)
    launch = launcher.launch(example_plan(), tmp_path, placement)

    assert set(api.objects) == {
        ("Service", "ml", "sluice-train-4f2a9c0d1e3b5a67-a1"),
        ("Job", "ml", "sluice-train-4f2a9c0d1e3b5a67-a1"),
    }
    stored_plan = json.loads(store.get_bytes("training-jobs/4f2a9c0d1e3b5a67/attempt-1/plan.json"))
    assert stored_plan["num_workers"] == 2
    assert not launcher.status(launch).all_exited
    job = api.objects[("Job", "ml", launch["name"])]
    job["status"] = {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}
    assert launcher.status(launch).any_failed
    launcher.stop(launch, 0)
    assert api.objects == {}
    assert launcher.survives_restart(launch)


@pytest.fixture
def api_server() -> Iterator[tuple[str, list[tuple[str, str, Any]]]]:
    seen: list[tuple[str, str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def do_POST(self) -> None:
            seen.append(("POST", self.path, self.headers["Authorization"]))
            self._reply(201, self._body())

        def do_GET(self) -> None:
            seen.append(("GET", self.path, None))
            self._reply(404, {"kind": "Status", "code": 404})

        def do_DELETE(self) -> None:
            seen.append(("DELETE", self.path, self._body()))
            self._reply(200, {"kind": "Status"})

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_http_api_speaks_the_kubernetes_rest_paths(
    api_server: tuple[str, list[tuple[str, str, Any]]],
) -> None:
    url, seen = api_server
    api = HttpKubernetesApi(url, token="t0ken")
    service, job = example_manifests()
    api.create(service)
    assert api.create(job)["kind"] == "Job"
    assert api.get("batch/v1", "Job", "ml", "gone") is None
    api.delete("batch/v1", "Job", "ml", job["metadata"]["name"])
    assert seen[0] == ("POST", "/api/v1/namespaces/ml/services", "Bearer t0ken")
    assert seen[1][:2] == ("POST", "/apis/batch/v1/namespaces/ml/jobs")
    assert seen[2][:2] == ("GET", "/apis/batch/v1/namespaces/ml/jobs/gone")
    assert seen[3][2]["propagationPolicy"] == "Foreground"
