"""docker-compose.yml against the code: what the Compose schema (make check-compose) cannot see.

No Docker engine runs here, so the stack is checked by reading it: every service package has its
container, on its own port, started as its module, health-checked on that port; every variable a
container gets is one the code reads, and the environment of each container parses into its
service's settings; every address names a container listening there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from sluice.client.config import default_port
from sluice_runtime.config import ServerConfig

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")]
SERVICES = sorted(name for name in PACKAGES if name != "runtime")  # the runtime is not a service

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CONTAINERS: dict[str, dict[str, Any]] = COMPOSE["services"]
# Containers of a service beside the one named after it (compose profile gpu).
VARIANTS = {"training-gpu": "training"}


def _interpolate(value: str) -> str:
    """Compose's ${NAME:-default} with nothing set: the default; `$$` is a literal `$`."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
    return value.replace("$$", "$")


def _environment(container: str) -> dict[str, str]:
    return {k: _interpolate(v) for k, v in CONTAINERS[container]["environment"].items()}


def _containers_of(service: str) -> list[str]:
    return [service, *(name for name, of in VARIANTS.items() if of == service)]


def test_every_service_package_has_its_container(
    settings_from_env: dict[str, Callable[[Mapping[str, str]], object]],
) -> None:
    assert settings_from_env.keys() == set(SERVICES), "a new service needs its settings row"
    for service in SERVICES:
        assert service in CONTAINERS, f"docker-compose.yml has no container for {service}"


@pytest.mark.parametrize("container", [*SERVICES, *VARIANTS])
def test_a_container_runs_its_service_on_its_port_and_checks_that_port(
    container: str, settings_from_env: dict[str, Callable[[Mapping[str, str]], object]]
) -> None:
    service = VARIANTS.get(container, container)
    spec = CONTAINERS[container]
    environment = _environment(container)
    server = ServerConfig.from_env(service, default_port(service), environment)
    if container == service:  # the SDK's default address reaches it from the host
        assert server.port == default_port(service)
    assert server.host == "0.0.0.0"
    assert spec["command"] == ["python", "-m", f"sluice_{service}"]
    published = {tuple(int(p) for p in mapping.split(":")) for mapping in spec["ports"]}
    assert (server.port, server.port) in published
    assert server.metrics_port is not None and (server.metrics_port,) * 2 in published
    probe = ["CMD", "python", "-m", "sluice_runtime.healthcheck", f"127.0.0.1:{server.port}"]
    assert spec["healthcheck"]["test"] == probe
    settings_from_env[service](environment)  # its own settings parse from this environment


def test_no_two_containers_publish_the_same_host_port() -> None:
    seen: dict[str, str] = {}
    for name, spec in CONTAINERS.items():
        for mapping in spec.get("ports", []):
            host_port = mapping.split(":")[0]
            assert host_port not in seen, f"{name} and {seen[host_port]} both publish {host_port}"
            seen[host_port] = name


def test_every_variable_is_one_the_code_reads(variables_the_code_reads: set[str]) -> None:
    for name in CONTAINERS:
        for variable in CONTAINERS[name].get("environment", {}):
            if variable.startswith("SLUICE_"):
                assert variable in variables_the_code_reads, f"{name}: no code reads {variable}"


def test_every_address_names_a_container_listening_there() -> None:
    for name in CONTAINERS:
        for variable, value in CONTAINERS[name].get("environment", {}).items():
            match = re.fullmatch(r"SLUICE_([A-Z]+)_ADDRESS", variable)
            if not match:
                continue
            host, port = str(value).rsplit(":", 1)
            target = match.group(1).lower()
            assert host == target, f"{name}: {variable} points at {host}, not at {target}"
            listening = ServerConfig.from_env(target, default_port(target), _environment(host))
            assert listening.port == int(port), f"{name}: {variable} port {port}"


def test_dependencies_exist_and_services_start_after_metadata() -> None:
    for name, spec in CONTAINERS.items():
        for dependency in spec.get("depends_on", {}):
            assert dependency in CONTAINERS, f"{name} depends on unknown {dependency}"
    for service in SERVICES:
        for container in _containers_of(service):
            if service != "metadata":
                condition = CONTAINERS[container]["depends_on"]["metadata"]["condition"]
                assert condition == "service_healthy"
