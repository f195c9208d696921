"""Settings of the metadata service, read from the environment once.

- SLUICE_METADATA_DATABASE_URL (default sqlite:///$SLUICE_DATA_DIR/metadata.db): the SQLAlchemy
  URL of the store; PostgreSQL as postgresql+psycopg://user:password@host:5432/db.
- SLUICE_DATA_DIR (default ~/.sluice): where the SQLite default lives.
- SLUICE_METADATA_PORT (default 50051): the gRPC port; 0 picks a free one.
- SLUICE_METADATA_DB_POOL_SIZE (default 10): pooled connections, plus as many overflow.
- SLUICE_METADATA_SQLITE_BUSY_TIMEOUT (default 30): seconds a SQLite writer waits for the lock.
- SLUICE_METADATA_CREATE_SCHEMA (default true): create the schema at start in an EMPTY database.

The runtime's shared server settings (SLUICE_HOST, SLUICE_MAX_WORKERS, TLS, auth, logging, ...)
come from `sluice_runtime.config.ServerConfig`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sluice_runtime.config import ConfigError, ServerConfig

SERVICE = "metadata"
DEFAULT_PORT = 50051
DEFAULT_POOL_SIZE = 10
DEFAULT_SQLITE_BUSY_TIMEOUT_S = 30.0

Getter = Callable[[str], str | None]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'metadata.db'}"


@dataclass(frozen=True)
class MetadataConfig:
    """Attributes:
    database_url: the SQLAlchemy URL of the store.
    server: the runtime's server settings (port, host, workers, TLS, auth, logging).
    pool_size: pooled database connections (as many again may overflow).
    sqlite_busy_timeout_s: how long a SQLite writer waits for the write lock.
    create_schema: create the schema at start when the database is EMPTY (never touches a
        database with tables: that takes `sluice-metadata migrate`).
    """

    database_url: str
    server: ServerConfig = field(
        default_factory=lambda: ServerConfig(service=SERVICE, port=DEFAULT_PORT)
    )
    pool_size: int = DEFAULT_POOL_SIZE
    sqlite_busy_timeout_s: float = DEFAULT_SQLITE_BUSY_TIMEOUT_S
    create_schema: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MetadataConfig:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        data_dir = Path(get("SLUICE_DATA_DIR") or "~/.sluice").expanduser()
        return cls(
            database_url=get("SLUICE_METADATA_DATABASE_URL") or default_database_url(data_dir),
            server=ServerConfig.from_env(SERVICE, DEFAULT_PORT, env),
            pool_size=_positive_int("SLUICE_METADATA_DB_POOL_SIZE", get, DEFAULT_POOL_SIZE),
            sqlite_busy_timeout_s=_seconds(
                "SLUICE_METADATA_SQLITE_BUSY_TIMEOUT", get, DEFAULT_SQLITE_BUSY_TIMEOUT_S
            ),
            create_schema=_flag("SLUICE_METADATA_CREATE_SCHEMA", get, True),
        )


def _positive_int(name: str, get: Getter, default: int) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(name, f"must be at least 1, got {value}")
    return value


def _seconds(name: str, get: Getter, default: float) -> float:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ConfigError(name, f"must be 0 or more seconds, got {raw!r}")
    return value


def _flag(name: str, get: Getter, default: bool) -> bool:
    raw = get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")
