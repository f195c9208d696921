"""ServerConfig.from_env: defaults, parsing, and errors that name the variable and the problem."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sluice_runtime.config import ConfigError, ServerConfig


class RecordingEnv(dict[str, str]):
    """An environment that remembers which variables were looked up."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        super().__init__(values or {})
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.append(key)
        return super().get(key, default)


@pytest.fixture
def pem(tmp_path: Path) -> Callable[[str], str]:
    def make(name: str) -> str:
        path = tmp_path / name
        path.write_text("-----BEGIN CERTIFICATE-----\n")
        return str(path)

    return make


def test_defaults_from_an_empty_environment() -> None:
    config = ServerConfig.from_env("metadata", default_port=50051, environ={})

    assert config == ServerConfig(service="metadata", port=50051)
    assert config.host == "127.0.0.1"
    assert config.max_message_bytes == 64 * 1024 * 1024
    assert config.max_workers == 16
    assert config.grace_seconds == 10
    assert config.metrics_port is None
    assert (config.tls_cert, config.tls_key, config.tls_client_ca) == (None, None, None)
    assert not config.tls_enabled and not config.mutual_tls
    assert config.auth_token is None
    assert (config.log_level, config.log_format) == ("INFO", "text")


def test_every_variable_is_read(pem: Callable[[str], str]) -> None:
    env = {
        "SLUICE_MODEL_REGISTRY_PORT": "0",
        "SLUICE_HOST": " 0.0.0.0 ",
        "SLUICE_MAX_MESSAGE_BYTES": "1048576",
        "SLUICE_MAX_WORKERS": "4",
        "SLUICE_GRACE_SECONDS": "2.5",
        "SLUICE_MODEL_REGISTRY_METRICS_PORT": "9464",
        "SLUICE_TLS_CERT": pem("server.pem"),
        "SLUICE_TLS_KEY": pem("server.key"),
        "SLUICE_TLS_CLIENT_CA": pem("ca.pem"),
        "SLUICE_AUTH_TOKEN": "s3cr3t-T0ken",
        "SLUICE_LOG_LEVEL": "debug",
        "SLUICE_LOG_FORMAT": "JSON",
    }

    config = ServerConfig.from_env("model-registry", default_port=50060, environ=env)

    assert config.port == 0
    assert config.host == "0.0.0.0"
    assert config.max_message_bytes == 1048576
    assert config.max_workers == 4
    assert config.grace_seconds == 2.5
    assert config.metrics_port == 9464
    assert config.tls_cert == Path(env["SLUICE_TLS_CERT"])
    assert config.tls_key == Path(env["SLUICE_TLS_KEY"])
    assert config.tls_client_ca == Path(env["SLUICE_TLS_CLIENT_CA"])
    assert config.tls_enabled and config.mutual_tls
    assert config.auth_token == "s3cr3t-T0ken"
    assert (config.log_level, config.log_format) == ("DEBUG", "json")


def test_metrics_port_zero_means_pick_a_free_port() -> None:
    config = ServerConfig.from_env("metadata", 50051, {"SLUICE_METADATA_METRICS_PORT": "0"})

    assert config.metrics_port == 0


def test_empty_variables_count_as_unset() -> None:
    env = {"SLUICE_METADATA_PORT": "", "SLUICE_MAX_WORKERS": "  ", "SLUICE_LOG_FORMAT": ""}

    assert ServerConfig.from_env("metadata", 50051, env) == ServerConfig("metadata", 50051)


def test_the_environment_is_read_once_and_only_for_the_documented_variables() -> None:
    env = RecordingEnv()

    ServerConfig.from_env("metadata", 50051, env)

    documented = [name for name, _, _ in ServerConfig.describe_env("metadata", 50051)]
    assert sorted(env.read) == sorted(documented)


def test_describe_env_rows() -> None:
    rows = ServerConfig.describe_env()
    by_name = {name: (default, meaning) for name, default, meaning in rows}

    assert by_name["SLUICE_<SERVICE>_PORT"][0] == "per service"
    assert by_name["SLUICE_HOST"][0] == "127.0.0.1"
    assert by_name["SLUICE_MAX_MESSAGE_BYTES"][0] == str(64 * 1024 * 1024)
    assert by_name["SLUICE_GRACE_SECONDS"][0] == "10"
    assert "mTLS" in by_name["SLUICE_TLS_CLIENT_CA"][1]
    assert all(meaning for _, _, meaning in rows)
    assert ServerConfig.describe_env("metadata", 50051)[0][:2] == ("SLUICE_METADATA_PORT", "50051")


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SLUICE_METADATA_PORT", "fifty", "must be a whole number, got 'fifty'"),
        ("SLUICE_METADATA_PORT", "70000", "must be a port between 0 and 65535, got 70000"),
        ("SLUICE_METADATA_PORT", "-1", "must be a port between 0 and 65535, got -1"),
        ("SLUICE_METADATA_METRICS_PORT", "x", "must be a whole number, got 'x'"),
        ("SLUICE_HOST", "local host", "must be a host name or an IP address, got 'local host'"),
        ("SLUICE_MAX_MESSAGE_BYTES", "64MiB", "must be a whole number, got '64MiB'"),
        ("SLUICE_MAX_MESSAGE_BYTES", "0", "must be at least 1, got 0"),
        ("SLUICE_MAX_WORKERS", "0", "must be at least 1, got 0"),
        ("SLUICE_GRACE_SECONDS", "soon", "must be a number of seconds, got 'soon'"),
        ("SLUICE_GRACE_SECONDS", "-1", "must be 0 or more seconds, got '-1'"),
        ("SLUICE_GRACE_SECONDS", "nan", "must be 0 or more seconds, got 'nan'"),
        ("SLUICE_LOG_LEVEL", "verbose", "must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("SLUICE_LOG_FORMAT", "xml", "must be json or text, got 'xml'"),
        ("SLUICE_AUTH_TOKEN", "", "is empty; unset it to turn authentication off"),
        ("SLUICE_AUTH_TOKEN", "two words", "must be printable ASCII without spaces"),
        ("SLUICE_TLS_CERT", "/no/such/cert.pem", "file '/no/such/cert.pem' does not exist"),
    ],
)
def test_invalid_values_name_the_variable_and_the_problem(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerConfig.from_env("metadata", 50051, {variable: value})

    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert problem in str(caught.value)


def test_tls_certificate_and_key_go_together(pem: Callable[[str], str]) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerConfig.from_env("metadata", 50051, {"SLUICE_TLS_CERT": pem("server.pem")})

    assert caught.value.variable == "SLUICE_TLS_KEY"
    assert "must be set together" in str(caught.value)


def test_a_client_ca_needs_a_server_certificate(pem: Callable[[str], str]) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerConfig.from_env("metadata", 50051, {"SLUICE_TLS_CLIENT_CA": pem("ca.pem")})

    assert caught.value.variable == "SLUICE_TLS_CLIENT_CA"
    assert "set SLUICE_TLS_CERT and SLUICE_TLS_KEY" in str(caught.value)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"^SLUICE_ECHO_PORT: must be a port"):
        ServerConfig(service="echo", port=65536)
    with pytest.raises(ConfigError, match=r"^SLUICE_MAX_WORKERS: must be at least 1"):
        ServerConfig(service="echo", port=0, max_workers=0)
    with pytest.raises(ConfigError, match=r"^service: must start with a letter"):
        ServerConfig(service="my service", port=0)


def test_config_is_frozen() -> None:
    config = ServerConfig(service="echo", port=0)

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
