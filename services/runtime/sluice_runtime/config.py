"""Server settings shared by every Sluice service, read from the environment once.

``<SERVICE>`` below is the service name upper-cased with ``-`` turned into ``_`` (``metadata`` ->
``SLUICE_METADATA_PORT``). An empty variable counts as unset, except ``SLUICE_AUTH_TOKEN``.

=============================  ===============  ====================================================
variable                       default          meaning
=============================  ===============  ====================================================
SLUICE_<SERVICE>_PORT          per service      gRPC port; 0 picks a free one
SLUICE_HOST                    127.0.0.1        address to listen on; 0.0.0.0 (or ::) in containers
SLUICE_MAX_MESSAGE_BYTES       67108864         largest gRPC message sent or received (64 MiB)
SLUICE_MAX_WORKERS             16               threads serving RPCs concurrently
SLUICE_GRACE_SECONDS           10               on SIGTERM, how long in-flight RPCs may still run
SLUICE_<SERVICE>_METRICS_PORT  unset (off)      Prometheus /metrics port; 0 picks a free one
SLUICE_TLS_CERT                unset            PEM server certificate chain; with the key: TLS
SLUICE_TLS_KEY                 unset            PEM private key of SLUICE_TLS_CERT
SLUICE_TLS_CLIENT_CA           unset            PEM CA bundle; when set, clients must present a
                                                certificate it signed (mutual TLS)
SLUICE_AUTH_TOKEN              unset (no auth)  bearer token every RPC must carry, except health
                                                and reflection
SLUICE_LOG_LEVEL               INFO             DEBUG, INFO, WARNING, ERROR or CRITICAL
SLUICE_LOG_FORMAT              text             text (for humans) or json (one object per line)
=============================  ===============  ====================================================

Tracing follows the standard OpenTelemetry variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ...); see
`sluice_runtime.telemetry`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

LogFormat = Literal["json", "text"]
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "text")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_WORKERS = 16
DEFAULT_GRACE_SECONDS = 10.0
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_LOG_FORMAT: LogFormat = "text"

_SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_T = TypeVar("_T")


class ConfigError(ValueError):
    """A setting is invalid; ``variable`` names the environment variable (or field) at fault."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def env_prefix(service: str) -> str:
    """``SLUICE_<SERVICE>_``: the prefix of a service's own variables (``metadata`` -> METADATA)."""
    if not _SERVICE_NAME.match(service):
        raise ConfigError(
            "service",
            f"must start with a letter and hold only letters, digits, - or _; got {service!r}",
        )
    return f"SLUICE_{service.upper().replace('-', '_')}_"


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one service process. Build it with `from_env`, or directly in tests.

    Attributes:
        service: short service name (``metadata``); names the service's own variables.
        port: gRPC port; 0 picks a free one (the bound port is reported by the server).
        host: listen address (default 127.0.0.1; containers set 0.0.0.0).
        max_message_bytes: largest message sent or received (default 64 MiB).
        max_workers: size of the RPC thread pool (default 16).
        grace_seconds: time in-flight RPCs get to finish on shutdown (default 10).
        metrics_port: Prometheus port; None disables the endpoint, 0 picks a free port.
        tls_cert: PEM certificate chain; TLS is on when this and ``tls_key`` are set.
        tls_key: PEM private key for ``tls_cert``.
        tls_client_ca: PEM CA bundle; when set clients must present a certificate (mutual TLS).
        auth_token: bearer token required on every RPC but health and reflection; None: no auth.
        log_level: DEBUG, INFO, WARNING, ERROR or CRITICAL (default INFO).
        log_format: ``text`` for humans (default) or ``json`` lines for collectors.
    """

    service: str
    port: int
    host: str = DEFAULT_HOST
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_workers: int = DEFAULT_MAX_WORKERS
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    metrics_port: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    auth_token: str | None = None
    log_level: str = DEFAULT_LOG_LEVEL
    log_format: LogFormat = DEFAULT_LOG_FORMAT

    def __post_init__(self) -> None:
        self._validate()

    @property
    def tls_enabled(self) -> bool:
        """True when the server listens with TLS."""
        return self.tls_cert is not None

    @property
    def mutual_tls(self) -> bool:
        """True when clients must present a certificate signed by ``tls_client_ca``."""
        return self.tls_client_ca is not None

    @classmethod
    def from_env(
        cls,
        service: str,
        default_port: int,
        environ: Mapping[str, str] | None = None,
    ) -> ServerConfig:
        """Read the settings from ``environ`` (default: ``os.environ``) once.

        Raises:
            ConfigError: a variable is malformed or out of range, or TLS settings are incomplete;
                the message names the variable and the problem.
        """
        env = os.environ if environ is None else environ
        prefix = env_prefix(service)

        def get(name: str) -> str | None:
            value = env.get(name)
            return None if value is None or value.strip() == "" else value.strip()

        def parse(name: str, convert: Callable[[str, str], _T], default: _T) -> _T:
            raw = get(name)
            return default if raw is None else convert(name, raw)

        port_var = f"{prefix}PORT"
        metrics_var = f"{prefix}METRICS_PORT"
        return cls(
            service=service,
            port=parse(port_var, _port, default_port),
            host=parse("SLUICE_HOST", _host, DEFAULT_HOST),
            max_message_bytes=parse(
                "SLUICE_MAX_MESSAGE_BYTES", _positive_int, DEFAULT_MAX_MESSAGE_BYTES
            ),
            max_workers=parse("SLUICE_MAX_WORKERS", _positive_int, DEFAULT_MAX_WORKERS),
            grace_seconds=parse("SLUICE_GRACE_SECONDS", _seconds, DEFAULT_GRACE_SECONDS),
            metrics_port=parse(metrics_var, _optional_port, None),
            tls_cert=parse("SLUICE_TLS_CERT", _pem_file, None),
            tls_key=parse("SLUICE_TLS_KEY", _pem_file, None),
            tls_client_ca=parse("SLUICE_TLS_CLIENT_CA", _pem_file, None),
            auth_token=_auth_token(env.get("SLUICE_AUTH_TOKEN")),
            log_level=parse("SLUICE_LOG_LEVEL", _log_level, DEFAULT_LOG_LEVEL),
            log_format=parse("SLUICE_LOG_FORMAT", _log_format, DEFAULT_LOG_FORMAT),
        )

    @classmethod
    def describe_env(
        cls, service: str = "<service>", default_port: int | None = None
    ) -> list[tuple[str, str, str]]:
        """Rows of (variable, default, meaning) for READMEs and ``--help`` output."""
        prefix = "SLUICE_<SERVICE>_" if service == "<service>" else env_prefix(service)
        port_default = "per service" if default_port is None else str(default_port)
        return [
            (f"{prefix}PORT", port_default, "gRPC port; 0 picks a free one"),
            ("SLUICE_HOST", DEFAULT_HOST, "address to listen on; 0.0.0.0 (or ::) in containers"),
            (
                "SLUICE_MAX_MESSAGE_BYTES",
                str(DEFAULT_MAX_MESSAGE_BYTES),
                "largest gRPC message sent or received, in bytes (64 MiB)",
            ),
            ("SLUICE_MAX_WORKERS", str(DEFAULT_MAX_WORKERS), "threads serving RPCs concurrently"),
            (
                "SLUICE_GRACE_SECONDS",
                f"{DEFAULT_GRACE_SECONDS:g}",
                "on SIGTERM/SIGINT, how long in-flight RPCs may still run",
            ),
            (
                f"{prefix}METRICS_PORT",
                "unset (off)",
                "Prometheus /metrics port; 0 picks a free one",
            ),
            ("SLUICE_TLS_CERT", "unset", "PEM server certificate chain; TLS when set with the key"),
            ("SLUICE_TLS_KEY", "unset", "PEM private key of SLUICE_TLS_CERT"),
            (
                "SLUICE_TLS_CLIENT_CA",
                "unset",
                "PEM CA bundle; when set clients must present a certificate it signed (mTLS)",
            ),
            (
                "SLUICE_AUTH_TOKEN",
                "unset (no auth)",
                "bearer token every RPC must carry, except health and reflection",
            ),
            ("SLUICE_LOG_LEVEL", DEFAULT_LOG_LEVEL, "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
            (
                "SLUICE_LOG_FORMAT",
                DEFAULT_LOG_FORMAT,
                "text (for humans) or json (one object per line)",
            ),
        ]

    def _validate(self) -> None:
        # Direct construction (tests, embedding) gets the same checks as from_env.
        prefix = env_prefix(self.service)
        _check_port(f"{prefix}PORT", self.port)
        if self.metrics_port is not None:
            _check_port(f"{prefix}METRICS_PORT", self.metrics_port)
        if not self.host:
            raise ConfigError("SLUICE_HOST", "must not be empty")
        if self.max_message_bytes < 1:
            raise ConfigError(
                "SLUICE_MAX_MESSAGE_BYTES", f"must be at least 1, got {self.max_message_bytes}"
            )
        if self.max_workers < 1:
            raise ConfigError("SLUICE_MAX_WORKERS", f"must be at least 1, got {self.max_workers}")
        if not self.grace_seconds >= 0:  # also rejects NaN
            raise ConfigError(
                "SLUICE_GRACE_SECONDS", f"must be 0 or more seconds, got {self.grace_seconds}"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "SLUICE_TLS_KEY" if self.tls_key is None else "SLUICE_TLS_CERT"
            raise ConfigError(missing, "SLUICE_TLS_CERT and SLUICE_TLS_KEY must be set together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError(
                "SLUICE_TLS_CLIENT_CA",
                "mutual TLS needs a server certificate too: set SLUICE_TLS_CERT and SLUICE_TLS_KEY",
            )
        if self.auth_token is not None:
            _auth_token(self.auth_token)
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(
                "SLUICE_LOG_LEVEL",
                f"must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}",
            )
        if self.log_format not in LOG_FORMATS:
            raise ConfigError("SLUICE_LOG_FORMAT", f"must be json or text, got {self.log_format!r}")


def _int(name: str, raw: str) -> int:
    try:
        return int(raw, 10)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None


def _check_port(name: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise ConfigError(name, f"must be a port between 0 and 65535, got {port}")


def _port(name: str, raw: str) -> int:
    port = _int(name, raw)
    _check_port(name, port)
    return port


def _optional_port(name: str, raw: str) -> int | None:
    return _port(name, raw)


def _positive_int(name: str, raw: str) -> int:
    value = _int(name, raw)
    if value < 1:
        raise ConfigError(name, f"must be at least 1, got {value}")
    return value


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ConfigError(name, f"must be 0 or more seconds, got {raw!r}")
    return value


def _host(name: str, raw: str) -> str:
    if any(ch.isspace() for ch in raw) or "/" in raw:
        raise ConfigError(name, f"must be a host name or an IP address, got {raw!r}")
    return raw


def _pem_file(name: str, raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(name, f"file {raw!r} does not exist or is not a regular file")
    return path


def _auth_token(raw: str | None) -> str | None:
    if raw is None:
        return None
    # An empty token would silently turn auth off; make the operator unset it instead.
    if raw == "":
        raise ConfigError("SLUICE_AUTH_TOKEN", "is empty; unset it to turn authentication off")
    if not all(33 <= ord(ch) <= 126 for ch in raw):
        raise ConfigError(
            "SLUICE_AUTH_TOKEN", "must be printable ASCII without spaces (it travels as metadata)"
        )
    return raw


def _log_level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ConfigError(name, f"must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


def _log_format(name: str, raw: str) -> LogFormat:
    fmt = raw.lower()
    if fmt not in LOG_FORMATS:
        raise ConfigError(name, f"must be json or text, got {raw!r}")
    return fmt
