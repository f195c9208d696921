"""deploy/kubernetes against the Kubernetes schema and against the code (no cluster runs here).

Each manifest passes kubernetes-validate (strict, Kubernetes 1.31); the kustomization lists every
file; every service has a Deployment that runs its module on its port with gRPC probes there, and
a Service of its name on that port, so the addresses in sluice-config resolve; every variable is
one the code reads, and each container's environment parses into its service's settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from sluice.client.config import default_port
from sluice_runtime.config import ServerConfig
from sluice_training.config import TrainingConfig

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")]
SERVICES = sorted(name for name in PACKAGES if name != "runtime")  # the runtime is not a service

KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"


def _documents(path_glob: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(BASE.glob(path_glob)):
        if path.name != "kustomization.yaml":
            found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


MANIFESTS = _documents("*.yaml")


def _one(kind: str, name: str) -> dict[str, Any]:
    matches = [m for m in MANIFESTS if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def _config() -> dict[str, str]:
    return dict(_one("ConfigMap", "sluice-config")["data"])


def _environment(container: Mapping[str, Any]) -> dict[str, str]:
    """What the container sees: the ConfigMap, then its own values (no secrets: all optional)."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == "sluice-config"
            environment |= _config()
        else:
            assert source["secretRef"].get("optional") is True
    for variable in container.get("env", []):
        environment[variable["name"]] = variable.get("value", "from-the-pod")
    return environment


def _label(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=_label)
def test_every_manifest_passes_the_kubernetes_schema(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, "1.31", strict=True)


def test_the_kustomization_lists_every_file_and_the_overlay_builds_on_it() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    files = sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    overlay = yaml.safe_load((KUBERNETES / "overlays" / "gpu" / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../../base"]
    # The patch replaces the worker image by its index in the training container's env.
    patch = yaml.safe_load(overlay["patches"][0]["patch"])[0]
    index = int(patch["path"].split("/")[-2])
    training = _one("Deployment", "training")["spec"]["template"]["spec"]["containers"][0]
    assert training["env"][index]["name"] == "SLUICE_TRAINING_K8S_IMAGE"
    assert patch["value"].endswith("-gpu")


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_runs_its_module_on_its_port_with_grpc_probes_and_a_service(
    service: str, settings_from_env: dict[str, Callable[[Mapping[str, str]], object]]
) -> None:
    pod = _one("Deployment", service)["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == service)
    environment = _environment(container)
    server = ServerConfig.from_env(service, default_port(service), environment)
    assert server.port == default_port(service) and server.host == "0.0.0.0"
    assert container["command"] == ["python", "-m", f"sluice_{service}"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": server.port, "metrics": server.metrics_port}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": server.port}
    data = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert data[environment["SLUICE_DATA_DIR"]] in {v["name"] for v in pod["volumes"]}
    service_ports = {p["name"]: p["port"] for p in _one("Service", service)["spec"]["ports"]}
    assert service_ports == ports
    settings_from_env[service](environment)


def test_every_variable_is_one_the_code_reads(variables_the_code_reads: set[str]) -> None:
    names = set(_config())
    for manifest in MANIFESTS:
        if manifest["kind"] == "Deployment":
            spec = manifest["spec"]["template"]["spec"]
            for container in [*spec["containers"], *spec.get("initContainers", [])]:
                names |= {variable["name"] for variable in container.get("env", [])}
    unknown = {name for name in names if name.startswith("SLUICE_")} - variables_the_code_reads
    assert not unknown, f"no code reads {sorted(unknown)}"


def test_every_address_names_a_service_on_that_port() -> None:
    for variable, value in _config().items():
        match = re.fullmatch(r"SLUICE_([A-Z]+)_ADDRESS", variable)
        if match:
            host, port = value.rsplit(":", 1)
            assert host == match.group(1).lower()
            grpc_port = {p["name"]: p["port"] for p in _one("Service", host)["spec"]["ports"]}
            assert grpc_port["grpc"] == int(port)


def test_the_training_service_may_run_its_attempts_as_jobs() -> None:
    pod = _one("Deployment", "training")["spec"]["template"]["spec"]
    account = pod["serviceAccountName"]
    rules = _one("Role", account)["rules"]
    allowed = {(group, resource, verb) for r in rules for group in r["apiGroups"]
               for resource in r["resources"] for verb in r["verbs"]}  # fmt: skip
    for group, resource in (("batch", "jobs"), ("", "services")):
        for verb in ("create", "get", "delete"):
            assert (group, resource, verb) in allowed
    binding = _one("RoleBinding", account)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]
    environment = _environment(pod["containers"][0])
    assert environment["SLUICE_TRAINING_K8S_SERVICE_ACCOUNT"] == account
    assert TrainingConfig.from_env(environment).kubernetes.enabled
