"""How a client reaches a service: address, deadline, retries, TLS and credentials.

Every setting has a documented default and can be read from the environment once with
`ClientConfig.from_env`, so the same code runs against `sluice up` on a laptop and against a
cluster behind TLS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

# The six services, in the order of their default ports (50051, 50052, ...).
SERVICE_NAMES: tuple[str, ...] = (
    "metadata",
    "validation",
    "training",
    "evaluation",
    "serving",
    "pipeline",
)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 50051
DEFAULT_DEADLINE_SECONDS = 30.0
# gRPC's own default receive limit is 4 MiB; statistics and anomaly protos can be larger.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def default_port(service: str) -> int:
    """The fixed local port of a service: metadata 50051, validation 50052, ... pipeline 50056."""
    return DEFAULT_BASE_PORT + SERVICE_NAMES.index(_check_service(service))


def default_address(service: str) -> str:
    return f"{DEFAULT_HOST}:{default_port(service)}"


def env_prefix(service: str) -> str:
    """`SLUICE_<SERVICE>_`, the prefix of a service's environment variables."""
    return f"SLUICE_{_check_service(service).upper()}_"


def _check_service(service: str) -> str:
    if service not in SERVICE_NAMES:
        raise ValueError(f"service: unknown service {service!r}; expected one of {SERVICE_NAMES}")
    return service


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for calls that failed before the server did anything.

    The n-th retry waits ``min(max_backoff, initial_backoff * multiplier ** (n - 1))`` seconds,
    less a random share of up to ``jitter`` of that (so ``jitter=1`` is "full jitter"), and never
    past the call's deadline.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be at least 1, got {self.max_attempts}")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("initial_backoff, max_backoff: must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier: must be at least 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter: must be between 0 and 1, got {self.jitter}")

    def backoff(self, retry: int, random_fraction: float) -> float:
        """Seconds to wait before retry number `retry` (1-based); `random_fraction` in [0, 1)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return base * (1 - self.jitter * random_fraction)


@dataclass(frozen=True)
class TlsConfig:
    """TLS to the server; a client certificate and key together turn on mutual TLS.

    Paths point at PEM files. Without `root_ca_path` the system's trust store is used.
    """

    root_ca_path: str | None = None
    client_cert_path: str | None = None
    client_key_path: str | None = None
    # Checked against the server certificate instead of the host in the address (tests, proxies).
    server_name_override: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert_path is None) != (self.client_key_path is None):
            raise ValueError(
                "client_cert_path, client_key_path: mutual TLS needs both the client certificate "
                "and its key (SLUICE_TLS_CLIENT_CERT and SLUICE_TLS_CLIENT_KEY)"
            )


@dataclass(frozen=True)
class ClientConfig:
    """Settings of one client channel. Frozen: derive variants with `dataclasses.replace`."""

    address: str
    # Overall deadline of one unary call, retries included; a call may pass its own.
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # None: plaintext (the local default). Set it for any non-local deployment.
    tls: TlsConfig | None = None
    # Sent as `authorization: Bearer <token>` on every call.
    token: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # Propagate trace context when opentelemetry-instrumentation-grpc is installed.
    tracing: bool = True

    def __post_init__(self) -> None:
        host, sep, port = self.address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"address: expected 'host:port', got {self.address!r}")
        if not self.deadline_seconds > 0:
            raise ValueError(
                f"deadline_seconds: must be a positive number, got {self.deadline_seconds}"
            )
        if self.max_message_bytes <= 0:
            raise ValueError(f"max_message_bytes: must be positive, got {self.max_message_bytes}")
        if self.token is not None and ("\n" in self.token or not self.token.strip()):
            raise ValueError("token: must be a non-empty single line")

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> ClientConfig:
        """Reads the settings of one service's client from the environment.

        ==========================  ==================================================
        SLUICE_<SERVICE>_ADDRESS    host:port; default 127.0.0.1:5005x (see default_port)
        SLUICE_TOKEN                bearer token sent on every call; default SLUICE_AUTH_TOKEN,
                                    so a service's own outgoing calls carry the token it demands
        SLUICE_TLS                  "1"/"true" to use TLS with the system trust store
        SLUICE_TLS_CA               root CA PEM file (turns TLS on)
        SLUICE_TLS_CLIENT_CERT      client certificate PEM (mutual TLS; with the key)
        SLUICE_TLS_CLIENT_KEY       client private key PEM
        SLUICE_TLS_SERVER_NAME      expected server name, overriding the address host
        SLUICE_DEADLINE_SECONDS     default deadline of a call; default 30
        SLUICE_MAX_MESSAGE_BYTES    largest message sent or received; default 64 MiB
        ==========================  ==================================================
        """
        env = os.environ if environ is None else environ
        address = env.get(env_prefix(service) + "ADDRESS") or default_address(service)

        def setting(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        tls: TlsConfig | None = None
        ca, cert, key = (
            setting("SLUICE_TLS_CA"),
            setting("SLUICE_TLS_CLIENT_CERT"),
            setting("SLUICE_TLS_CLIENT_KEY"),
        )
        tls_flag = (setting("SLUICE_TLS") or "").lower()
        if tls_flag not in ("", "0", "1", "false", "true"):
            raise ValueError(f"SLUICE_TLS: expected 1, 0, true or false, got {tls_flag!r}")
        if ca or cert or key or tls_flag in ("1", "true"):
            tls = TlsConfig(
                root_ca_path=ca,
                client_cert_path=cert,
                client_key_path=key,
                server_name_override=setting("SLUICE_TLS_SERVER_NAME"),
            )

        deadline = DEFAULT_DEADLINE_SECONDS
        raw_deadline = setting("SLUICE_DEADLINE_SECONDS")
        if raw_deadline is not None:
            try:
                deadline = float(raw_deadline)
            except ValueError:
                raise ValueError(
                    f"SLUICE_DEADLINE_SECONDS: expected a number of seconds, got {raw_deadline!r}"
                ) from None
            if not deadline > 0:
                raise ValueError(f"SLUICE_DEADLINE_SECONDS: must be positive, got {raw_deadline}")

        max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES
        raw_size = setting("SLUICE_MAX_MESSAGE_BYTES")
        if raw_size is not None:
            if not raw_size.isdigit() or int(raw_size) == 0:
                raise ValueError(
                    "SLUICE_MAX_MESSAGE_BYTES: expected a positive number of bytes, "
                    f"got {raw_size!r}"
                )
            max_message_bytes = int(raw_size)

        return cls(
            address=address,
            deadline_seconds=deadline,
            tls=tls,
            token=setting("SLUICE_TOKEN") or setting("SLUICE_AUTH_TOKEN"),
            max_message_bytes=max_message_bytes,
        )
