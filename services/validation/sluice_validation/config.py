"""Settings of the validation service, read from the environment once.

Besides the server settings every service shares (`sluice_runtime.config`: SLUICE_HOST,
SLUICE_VALIDATION_PORT, TLS, auth, logging, ...):

==================================  ==========================  ====================================
variable                            default                     meaning
==================================  ==========================  ====================================
SLUICE_VALIDATION_PORT              50052                       gRPC port; 0 picks a free one
SLUICE_ARTIFACT_STORE_URI           file://<data dir>/artifacts where results are written
SLUICE_DATA_DIR                     ~/.sluice                   the local data directory
SLUICE_METADATA_ADDRESS             unset (no lineage)          metadata service host:port; when set
                                                                every result is recorded there
SLUICE_VALIDATION_RECORD_LINEAGE    true                        false: never record, even with an
                                                                address
SLUICE_VALIDATION_JOB_WORKERS       1                           statistics jobs run at once
SLUICE_VALIDATION_MAX_JOBS_KEPT     1000                        finished jobs kept (the oldest
                                                                go first, records too)
SLUICE_VALIDATION_DATABASE_URL      sqlite:///<data dir>/       job records (SQLAlchemy URL), so a
                                    validation/jobs.db          restart keeps the jobs; one
                                                                service process per database
SLUICE_VALIDATION_BEAM_ARGS         unset                       extra Beam options for jobs that
                                                                name a runner, space-separated
SLUICE_VALIDATION_BEAM_TEMP         unset (a local temp dir)    folder Beam workers write results to
==================================  ==========================  ====================================

The metadata client takes its other settings (TLS, token, deadline) from the SDK's own variables
(`sluice.client.config.ClientConfig.from_env("metadata")`).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sluice_runtime.config import ConfigError, ServerConfig

SERVICE = "validation"
DEFAULT_PORT = 50052
DEFAULT_JOB_WORKERS = 1
DEFAULT_MAX_JOBS_KEPT = 1000
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class ValidationConfig:
    """Everything the service needs; build it with `from_env`, or directly in tests.

    Attributes:
        server: the shared server settings (port, host, TLS, auth, logging).
        artifact_store_uri: the artifact store results are written to (file:// or s3://).
        metadata_address: host:port of the metadata service; None turns lineage recording off.
        job_workers: statistics jobs that run at the same time (each on its own thread).
        max_jobs_kept: finished jobs kept for Get/List/Watch (in memory and in the database).
        job_database_url: SQLAlchemy URL of the job records; None keeps jobs in memory only
            (from_env always sets it: by default a SQLite file in the data directory).
        beam_pipeline_args: extra Beam options (e.g. --flink_master=...), for jobs with a runner.
        beam_temp_location: where Beam workers write results; None: a local temporary folder.
    """

    server: ServerConfig
    artifact_store_uri: str
    metadata_address: str | None = None
    job_workers: int = DEFAULT_JOB_WORKERS
    max_jobs_kept: int = DEFAULT_MAX_JOBS_KEPT
    job_database_url: str | None = None
    beam_pipeline_args: tuple[str, ...] = field(default_factory=tuple)
    beam_temp_location: str | None = None

    def __post_init__(self) -> None:
        if self.job_workers < 1:
            raise ConfigError(
                "SLUICE_VALIDATION_JOB_WORKERS", f"must be at least 1, got {self.job_workers}"
            )
        if self.max_jobs_kept < 1:
            raise ConfigError(
                "SLUICE_VALIDATION_MAX_JOBS_KEPT", f"must be at least 1, got {self.max_jobs_kept}"
            )
        if not self.artifact_store_uri:
            raise ConfigError("SLUICE_ARTIFACT_STORE_URI", "must not be empty")
        if self.job_database_url is not None and "://" not in self.job_database_url:
            raise ConfigError(
                "SLUICE_VALIDATION_DATABASE_URL",
                f"must be an SQLAlchemy URL such as sqlite:////abs/jobs.db, got"
                f" {self.job_database_url!r}",
            )

    @property
    def records_lineage(self) -> bool:
        return self.metadata_address is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ValidationConfig:
        """Read every setting once; raises ConfigError naming the variable at fault."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        data_dir = Path(get("SLUICE_DATA_DIR") or "~/.sluice").expanduser().resolve()
        store_uri = get("SLUICE_ARTIFACT_STORE_URI") or (data_dir / "artifacts").resolve().as_uri()
        record = (get("SLUICE_VALIDATION_RECORD_LINEAGE") or "true").lower()
        if record not in _TRUE | _FALSE:
            raise ConfigError(
                "SLUICE_VALIDATION_RECORD_LINEAGE", f"must be true or false, got {record!r}"
            )
        address = get("SLUICE_METADATA_ADDRESS") if record in _TRUE else None
        beam_args = get("SLUICE_VALIDATION_BEAM_ARGS")
        return cls(
            server=ServerConfig.from_env(SERVICE, DEFAULT_PORT, env),
            artifact_store_uri=store_uri,
            metadata_address=address,
            job_workers=_int(env, "SLUICE_VALIDATION_JOB_WORKERS", DEFAULT_JOB_WORKERS),
            max_jobs_kept=_int(env, "SLUICE_VALIDATION_MAX_JOBS_KEPT", DEFAULT_MAX_JOBS_KEPT),
            job_database_url=get("SLUICE_VALIDATION_DATABASE_URL")
            or f"sqlite:///{data_dir / 'validation' / 'jobs.db'}",
            beam_pipeline_args=tuple(shlex.split(beam_args)) if beam_args else (),
            beam_temp_location=get("SLUICE_VALIDATION_BEAM_TEMP"),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw, 10)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
