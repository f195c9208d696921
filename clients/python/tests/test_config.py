"""ClientConfig: defaults, the environment, and clear errors for bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sluice.client import ClientConfig, RetryPolicy, TlsConfig, create_channel, default_port


def test_defaults_without_environment() -> None:
    config = ClientConfig.from_env("metadata", environ={})
    assert config.address == "127.0.0.1:50051"
    assert config.deadline_seconds == 30
    assert config.tls is None
    assert config.token is None
    assert config.retry == RetryPolicy(
        max_attempts=5, initial_backoff=0.1, max_backoff=5.0, multiplier=2.0, jitter=0.2
    )


def test_each_service_has_its_fixed_port() -> None:
    ports = {
        name: default_port(name)
        for name in ("metadata", "validation", "training", "evaluation", "serving", "pipeline")
    }
    assert ports == {
        "metadata": 50051,
        "validation": 50052,
        "training": 50053,
        "evaluation": 50054,
        "serving": 50055,
        "pipeline": 50056,
    }
    assert ClientConfig.from_env("pipeline", environ={}).address == "127.0.0.1:50056"


def test_token_defaults_to_the_servers_own_token() -> None:
    # A service whose server demands SLUICE_AUTH_TOKEN sends the same token on its own calls.
    assert ClientConfig.from_env("metadata", environ={"SLUICE_AUTH_TOKEN": "s"}).token == "s"
    both = {"SLUICE_AUTH_TOKEN": "s", "SLUICE_TOKEN": "c"}
    assert ClientConfig.from_env("metadata", environ=both).token == "c"
    assert ClientConfig.from_env("metadata", environ={}).token is None


def test_environment_overrides(tmp_path: Path) -> None:
    environ = {
        "SLUICE_TRAINING_ADDRESS": "training.sluice.svc:443",
        "SLUICE_METADATA_ADDRESS": "elsewhere:1",
        "SLUICE_TOKEN": "tok",
        "SLUICE_TLS_CA": str(tmp_path / "ca.pem"),
        "SLUICE_TLS_CLIENT_CERT": str(tmp_path / "client.pem"),
        "SLUICE_TLS_CLIENT_KEY": str(tmp_path / "client.key"),
        "SLUICE_TLS_SERVER_NAME": "training.internal",
        "SLUICE_DEADLINE_SECONDS": "2.5",
        "SLUICE_MAX_MESSAGE_BYTES": "1048576",
    }
    config = ClientConfig.from_env("training", environ=environ)
    assert config.address == "training.sluice.svc:443"
    assert config.token == "tok"
    assert config.deadline_seconds == 2.5
    assert config.max_message_bytes == 1048576
    assert config.tls == TlsConfig(
        root_ca_path=str(tmp_path / "ca.pem"),
        client_cert_path=str(tmp_path / "client.pem"),
        client_key_path=str(tmp_path / "client.key"),
        server_name_override="training.internal",
    )


def test_tls_with_the_system_trust_store() -> None:
    config = ClientConfig.from_env("serving", environ={"SLUICE_TLS": "true"})
    assert config.tls == TlsConfig()


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"SLUICE_DEADLINE_SECONDS": "soon"}, "SLUICE_DEADLINE_SECONDS"),
        ({"SLUICE_DEADLINE_SECONDS": "-1"}, "SLUICE_DEADLINE_SECONDS"),
        ({"SLUICE_METADATA_ADDRESS": "no-port"}, "address"),
        ({"SLUICE_TLS_CLIENT_CERT": "/c.pem"}, "SLUICE_TLS_CLIENT_KEY"),
        ({"SLUICE_TLS": "maybe"}, "SLUICE_TLS"),
        ({"SLUICE_MAX_MESSAGE_BYTES": "4MB"}, "SLUICE_MAX_MESSAGE_BYTES"),
    ],
)
def test_bad_settings_name_the_setting(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        ClientConfig.from_env("metadata", environ=environ)


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown service 'metadta'"):
        ClientConfig.from_env("metadta", environ={})


def test_bad_retry_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)


def test_unreadable_certificate_names_the_file(tmp_path: Path) -> None:
    config = ClientConfig("127.0.0.1:1", tls=TlsConfig(root_ca_path=str(tmp_path / "missing.pem")))
    with pytest.raises(ValueError, match=r"missing\.pem"):
        create_channel(config)


def test_secure_channel_is_built_from_pem_files(tmp_path: Path) -> None:
    # Any bytes will do: gRPC parses the certificates only when it connects.
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    config = ClientConfig(
        "127.0.0.1:1", tls=TlsConfig(root_ca_path=str(ca), server_name_override="sluice.test")
    )
    create_channel(config).close()
