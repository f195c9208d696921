"""`Sluice`: one object with a client for every service, sharing settings."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Self, TypeVar, cast

from sluice.client._rpc import ServiceClient
from sluice.client.config import SERVICE_NAMES, ClientConfig
from sluice.client.evaluation import EvaluationClient
from sluice.client.metadata import MetadataClient
from sluice.client.pipeline import PipelineClient
from sluice.client.serving import ServingClient
from sluice.client.training import TrainingClient
from sluice.client.validation import ValidationClient

C = TypeVar("C", bound=ServiceClient)


class Sluice:
    """Clients of all six services; each connects on first use and `close` closes them all.

    By default every setting comes from the environment (`ClientConfig.from_env`).

    Args:
        addresses: service name -> "host:port", overriding the environment for those services.
        settings: deadline, retries, TLS and token to share; its address is replaced by each
            service's own. None: read them from the environment.
        environ: the environment to read instead of os.environ (tests).

    Example::

        with Sluice() as sluice:
            model = sluice.metadata.get_artifact(42)
    """

    def __init__(
        self,
        addresses: Mapping[str, str] | None = None,
        *,
        settings: ClientConfig | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        unknown = set(addresses or {}) - set(SERVICE_NAMES)
        if unknown:
            raise ValueError(
                f"addresses: unknown services {sorted(unknown)}; expected some of {SERVICE_NAMES}"
            )
        self.configs: dict[str, ClientConfig] = {}
        for service in SERVICE_NAMES:
            config = ClientConfig.from_env(service, environ)
            if settings is not None:
                config = dataclasses.replace(settings, address=config.address)
            if addresses and service in addresses:
                config = dataclasses.replace(config, address=addresses[service])
            self.configs[service] = config
        self._clients: dict[str, ServiceClient] = {}
        self._lock = threading.Lock()

    def _client(self, cls: type[C]) -> C:
        with self._lock:
            client = self._clients.get(cls.service)
            if client is None:
                client = self._clients[cls.service] = cls(self.configs[cls.service])
            return cast(C, client)

    @property
    def metadata(self) -> MetadataClient:
        return self._client(MetadataClient)

    @property
    def validation(self) -> ValidationClient:
        return self._client(ValidationClient)

    @property
    def training(self) -> TrainingClient:
        return self._client(TrainingClient)

    @property
    def evaluation(self) -> EvaluationClient:
        return self._client(EvaluationClient)

    @property
    def serving(self) -> ServingClient:
        return self._client(ServingClient)

    @property
    def pipeline(self) -> PipelineClient:
        return self._client(PipelineClient)

    def close(self) -> None:
        """Closes every client opened so far; a later attribute access opens a new one."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
