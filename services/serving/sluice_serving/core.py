"""The serving data plane: models, versions, hot swap, labels, predictions. No gRPC here.

A version goes LOADING (fetched and loaded on the loader pool) -> WARMING (answering warm-up
requests) -> AVAILABLE, and only then can it become current, in one step under the model's lock.
A version that fails on the way ends FAILED and never serves; the versions serving before keep
serving. Every request holds its version (a counted reference) from the moment it is routed until
its answer is built, so an unloaded version first leaves the routing table (UNLOADING), then waits
for its in-flight requests, then drops its model (END) and its memory is collected. The last
available version of a model is never unloaded.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import gc
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import numpy as np
from sluice_runtime.artifacts.digest import check_digest
from sluice_runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    grpc_code_name_of,
)

from sluice_serving import examples as example_inputs
from sluice_serving.batching import Batcher, BatchingSettings
from sluice_serving.fetch import ModelFetcher
from sluice_serving.gil import giving_way, lowest_priority
from sluice_serving.metrics import UNKNOWN_MODEL, ServingMetrics
from sluice_serving.request_log import LogRecord, RequestLogger, RequestLogSettings
from sluice_serving.runner import ModelRunner, RunnerFactory
from sluice_serving.schema import DataSchema, SchemaAction, SchemaPolicy, check_signature
from sluice_serving.settings import ServingSettings
from sluice_serving.signature import DEFAULT_SIGNATURE, Signature
from sluice_serving.warmup import warmup_requests

logger = logging.getLogger(__name__)

MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
LABEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
SCHEMA_FILES = ("schema.pbtxt", "assets.extra/schema.pbtxt")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Finished (END or FAILED) versions kept in a model's listing for operators to see.
KEPT_FINISHED_VERSIONS = 10


class VersionState(enum.Enum):
    LOADING = "LOADING"
    WARMING = "WARMING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"
    FAILED = "FAILED"


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions stay loaded: the latest N, a specific set, or all that were loaded."""

    kind: Literal["latest", "specific", "all"] = "latest"
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.kind == "latest" and self.num_versions < 1:
            raise ValueError(f"latest.num_versions must be at least 1, got {self.num_versions}")
        if self.kind == "specific" and (
            not self.versions or any(version < 1 for version in self.versions)
        ):
            raise ValueError("specific.versions must list one or more positive versions")

    def allows(self, version: int) -> bool:
        return self.kind != "specific" or version in self.versions

    def pick(self, versions: Iterable[int]) -> set[int]:
        """Those of ``versions`` the policy keeps: the newest N, the named ones, or all."""
        if self.kind == "latest":
            return set(sorted(set(versions), reverse=True)[: self.num_versions])
        return {version for version in versions if self.allows(version)}


@dataclass(frozen=True)
class ListedModel:
    """A model of a TF Serving style model list: numbered version folders under ``base_uri``."""

    name: str
    base_uri: str
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    batching: BatchingSettings = field(default_factory=BatchingSettings)
    request_log: RequestLogSettings = field(default_factory=RequestLogSettings)
    schema_uri: str = ""
    schema_policy: SchemaPolicy = field(default_factory=SchemaPolicy)


@dataclass(frozen=True)
class VersionError:
    code: str  # a gRPC status code name
    message: str
    reason: str = ""
    field: str = ""


@dataclass(frozen=True)
class VersionInfo:
    version: int
    uri: str
    digest: str
    artifact_id: int
    state: VersionState
    error: VersionError | None = None
    load_seconds: float = 0.0
    load_time: datetime | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    config: ModelConfig
    labels: Mapping[str, int]
    versions: Sequence[VersionInfo]
    current_version: int


@dataclass(frozen=True)
class VersionSelector:
    """Which version answers: a number, a label, or (neither) the current one."""

    version: int = 0
    label: str = ""


@dataclass(frozen=True)
class Prediction:
    model: str
    version: int
    signature: Signature
    outputs: Mapping[str, np.ndarray]
    schema_flags: tuple[str, ...] = ()


class ArtifactResolver(Protocol):
    """Finds the uri and digest of a model artifact recorded in the metadata service."""

    def resolve(self, artifact_id: int) -> tuple[str, str]: ...


class _Version:
    def __init__(self, model: str, number: int, uri: str, digest: str, artifact_id: int) -> None:
        self.model = model
        self.number = number
        self.uri = uri
        self.digest = digest
        self.artifact_id = artifact_id
        self.state = VersionState.LOADING
        self.error: VersionError | None = None
        self.load_seconds = 0.0
        self.load_time: datetime | None = None
        self.runner: ModelRunner | None = None
        self.schema: DataSchema | None = None
        self.batchers: dict[str, Batcher] = {}
        self.inflight = 0
        self.loaded = threading.Event()  # set once AVAILABLE or FAILED

    def info(self) -> VersionInfo:
        return VersionInfo(
            self.number,
            self.uri,
            self.digest,
            self.artifact_id,
            self.state,
            self.error,
            self.load_seconds,
            self.load_time,
        )


class _Model:
    def __init__(self, name: str, config: ModelConfig) -> None:
        self.name = name
        self.config = config
        self.versions: dict[int, _Version] = {}
        self.labels: dict[str, int] = {}
        self.current: _Version | None = None
        self.schema: DataSchema | None = None  # from config.schema_uri
        self.lock = threading.Condition()

    def available(self) -> list[_Version]:
        return sorted(
            (v for v in self.versions.values() if v.state is VersionState.AVAILABLE),
            key=lambda v: v.number,
            reverse=True,
        )

    def info(self) -> ModelInfo:
        return ModelInfo(
            self.name,
            self.config,
            dict(self.labels),
            [self.versions[number].info() for number in sorted(self.versions)],
            self.current.number if self.current is not None else 0,
        )


@dataclass
class RequestRecord:
    """What a servicer learns while answering: the version that answered (0 until known)."""

    version: int = 0


class ServingCore:
    """Every model of the server and the work around them.

    Args:
        settings: the data plane settings.
        fetcher: pulls model folders from the artifact store.
        runner_factory: loads a local model folder (`SavedModelRunner` in production).
        metrics: where counters and histograms go.
        request_logger: the background request log writer.
        artifact_resolver: resolves ``artifact_id`` when a load names no uri or digest.
    """

    def __init__(
        self,
        settings: ServingSettings,
        *,
        fetcher: ModelFetcher,
        runner_factory: RunnerFactory,
        metrics: ServingMetrics | None = None,
        request_logger: RequestLogger | None = None,
        artifact_resolver: ArtifactResolver | None = None,
        on_close: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self._on_close = on_close  # releases what the runner factory holds (model processes)
        self.fetcher = fetcher
        self.metrics = metrics or ServingMetrics()
        self.request_logger = request_logger
        self._runner_factory = runner_factory
        self._resolver = artifact_resolver
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()
        # Loader and unload threads run at the lowest CPU priority (sluice_serving/gil.py).
        self._loader = ThreadPoolExecutor(
            settings.loader_threads, thread_name_prefix="model-loader", initializer=lowest_priority
        )
        self._unloaders: set[threading.Thread] = set()
        self._closed = False

    # --- control plane -------------------------------------------------------------------------

    def load_version(
        self,
        model_name: str,
        version: int,
        uri: str = "",
        *,
        digest: str = "",
        artifact_id: int = 0,
        wait: bool = False,
    ) -> VersionInfo:
        """Start loading a version (or find it loading or loaded); see the module docstring.

        With ``wait`` the call returns once the version is AVAILABLE or FAILED.
        """
        _check_model_name(model_name)
        if version < 1:
            raise InvalidArgument(f"version must be positive, got {version}", field="version")
        if artifact_id < 0:
            raise InvalidArgument("artifact_id must not be negative", field="artifact_id")
        if digest:
            try:
                check_digest(digest)
            except ValueError as error:
                raise InvalidArgument(f"digest {error}", field="digest") from None
        if not uri and not artifact_id:
            raise InvalidArgument("give the model folder's uri (or its artifact_id)", field="uri")
        if uri:
            self.fetcher.key_prefix(uri)  # reject a malformed uri now, not on the loader
        with self._lock:
            if self._closed:
                raise Unavailable("the server is shutting down")
            model = self._models.get(model_name)
            if model is None:
                model = self._models[model_name] = _Model(model_name, ModelConfig())
        with model.lock:
            if not model.config.version_policy.allows(version):
                allowed = sorted(model.config.version_policy.versions)
                raise FailedPrecondition(
                    f"model {model_name} serves only versions {allowed} (its version policy); "
                    f"change the policy to load version {version}",
                    field="version",
                )
            existing = model.versions.get(version)
            if existing is not None and existing.state in (
                VersionState.LOADING,
                VersionState.WARMING,
                VersionState.AVAILABLE,
            ):
                same = (not uri or uri == existing.uri) and (
                    not digest or digest == existing.digest
                )
                if not same:
                    raise AlreadyExists(
                        f"version {version} of model {model_name} is already loaded from "
                        f"{existing.uri!r}; unload it before loading other files under that number",
                        field="version",
                    )
                entry = existing
                start = False
            elif existing is not None and existing.state is VersionState.UNLOADING:
                raise FailedPrecondition(
                    f"version {version} of model {model_name} is being unloaded; retry once it "
                    "has ended",
                    field="version",
                )
            else:
                entry = _Version(model_name, version, uri, digest, artifact_id)
                model.versions[version] = entry
                self._prune_finished(model)
                start = True
        if start:
            self._loader.submit(self._load, model, entry)
        if wait:
            entry.loaded.wait()
        with model.lock:
            return entry.info()

    def unload_version(self, model_name: str, version: int) -> VersionInfo:
        """Take a version out of service; it ends once its in-flight requests have finished."""
        model = self._model(model_name)
        with model.lock:
            entry = model.versions.get(version)
            if entry is None:
                raise NotFound(f"model {model_name} has no version {version}", field="version")
            if entry.state in (VersionState.UNLOADING, VersionState.END):
                return entry.info()
            if entry.state is VersionState.FAILED:
                entry.state = VersionState.END
                return entry.info()
            if entry.state is not VersionState.AVAILABLE:
                raise FailedPrecondition(
                    f"version {version} of model {model_name} is still {entry.state.value}; "
                    "unload it once it is available",
                    field="version",
                )
            labels = sorted(label for label, number in model.labels.items() if number == version)
            if labels:
                raise FailedPrecondition(
                    f"label '{labels[0]}' of model {model_name} points at version {version}; "
                    "move or remove the label first",
                    field="version",
                )
            if len(model.available()) == 1:
                raise FailedPrecondition(
                    f"version {version} is the last available version of model {model_name}; "
                    "load another before unloading it",
                    field="version",
                )
            self._begin_unload(model, [entry])
            return entry.info()

    def get_model(self, model_name: str) -> ModelInfo:
        model = self._model(model_name)
        with model.lock:
            return model.info()

    def list_models(self, page_size: int = 0, page_token: str = "") -> tuple[list[ModelInfo], str]:
        """Models ordered by name, a page at a time; the token continues after the last one."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"page_size must be between 0 and {MAX_PAGE_SIZE}, got {page_size}",
                field="page_size",
            )
        size = page_size or DEFAULT_PAGE_SIZE
        after = _decode_token(page_token)
        with self._lock:
            names = sorted(name for name in self._models if name > after)
        page = names[:size]
        infos = []
        for name in page:
            model = self._models[name]
            with model.lock:
                infos.append(model.info())
        next_token = _encode_token(page[-1]) if len(names) > size else ""
        return infos, next_token

    def update_model_config(
        self,
        model_name: str,
        *,
        version_policy: VersionPolicy | None = None,
        batching: BatchingSettings | None = None,
        request_log: RequestLogSettings | None = None,
        schema_uri: str | None = None,
        schema_policy: SchemaPolicy | None = None,
        clear_schema: bool = False,
    ) -> ModelInfo:
        """Change parts of a model's configuration (None: unchanged). Creates the model when it
        does not exist yet, so it can be configured before its first version loads.
        ``clear_schema`` drops the schema set by ``schema_uri``."""
        _check_model_name(model_name)
        if clear_schema and schema_uri:
            raise InvalidArgument(
                "clear_schema and schema_uri contradict each other: give one", field="clear_schema"
            )
        schema = self._read_schema(schema_uri) if schema_uri else None
        if request_log is not None and request_log.uri_prefix and self.request_logger is not None:
            try:
                self.request_logger.location(model_name, request_log)
            except ValueError as error:
                raise InvalidArgument(
                    f"request_log.uri_prefix: {error}", field="request_log.uri_prefix"
                ) from None
        with self._lock:
            model = self._models.get(model_name)
            if model is None:
                model = self._models[model_name] = _Model(model_name, ModelConfig())
        with model.lock:
            config = model.config
            if version_policy is not None:
                config = replace(config, version_policy=version_policy)
            if batching is not None:
                config = replace(config, batching=batching)
            if request_log is not None:
                config = replace(config, request_log=request_log)
            if schema_uri:
                config = replace(config, schema_uri=schema_uri)
                model.schema = schema
            elif clear_schema:
                config = replace(config, schema_uri="")
                model.schema = None
            if schema_policy is not None:
                config = replace(config, schema_policy=schema_policy)
            model.config = config
            self._apply_policy(model)
            return model.info()

    def serve_model_list(self, models: Sequence[ListedModel], *, field: str = "models") -> None:
        """Serve each model from the numbered version folders under its base folder, as TF
        Serving's model config list does: set its policy, load the versions the policy picks,
        wait for them, then set its labels (replacing the ones it had). Returns once all are
        AVAILABLE; raises for the first that failed. Models not listed keep serving (Sluice
        never drops a model by omission: unload its versions through the control plane)."""
        names = [model.name for model in models]
        for index, model in enumerate(models):
            _check_model_name(model.name)
            if names.index(model.name) != index:
                raise InvalidArgument(
                    f"model {model.name!r} is listed twice", field=f"{field}[{index}].name"
                )
        plans = [
            (model, self._listed_versions(model, f"{field}[{index}]"))
            for index, model in enumerate(models)
        ]
        for model, (prefix, versions) in plans:
            self.update_model_config(model.name, version_policy=model.policy)
            for version in versions:
                self.load_version(model.name, version, f"{prefix}{version}")
        for index, (model, (prefix, versions)) in enumerate(plans):
            for version in versions:
                info = self.load_version(model.name, version, f"{prefix}{version}", wait=True)
                if info.state is not VersionState.AVAILABLE:
                    message = info.error.message if info.error else info.state.value
                    raise FailedPrecondition(
                        f"version {version} of model {model.name} did not load: {message}",
                        field=f"{field}[{index}]",
                        reason=info.error.reason if info.error and info.error.reason else None,
                    )
            # The listed labels replace the model's labels (TF Serving's version_labels).
            for label, version in sorted(model.labels.items()):
                self.set_label(model.name, label, version)
            for label in set(self.get_model(model.name).labels) - set(model.labels):
                self.set_label(model.name, label, 0)

    def _listed_versions(self, model: ListedModel, field: str) -> tuple[str, list[int]]:
        """(base folder prefix, the versions under it that the model's policy picks)."""
        prefix = self.fetcher.key_prefix(model.base_uri, field=f"{field}.base_path")
        found = sorted(
            {
                int(head)
                for info in self.fetcher.store.list(prefix)
                if (head := info.key[len(prefix) :].split("/", 1)[0]).isdigit() and int(head) > 0
            }
        )
        if not found:
            raise FailedPrecondition(
                f"no numbered version folder under base_path {model.base_uri!r}",
                field=f"{field}.base_path",
            )
        missing = sorted(model.policy.versions - set(found))
        if missing:
            raise FailedPrecondition(
                f"base_path {model.base_uri!r} has no version {missing[0]} "
                f"(it has {', '.join(map(str, found))})",
                field=f"{field}.model_version_policy",
            )
        return prefix, sorted(model.policy.pick(found))

    def set_label(self, model_name: str, label: str, version: int) -> ModelInfo:
        """Point ``label`` at an available version; version 0 removes the label."""
        if not LABEL_NAME.match(label):
            raise InvalidArgument(
                f"label must start with a letter and hold up to 64 letters, digits, '-' or '_'; "
                f"got {label!r}",
                field="label",
            )
        if label.isdigit():
            raise InvalidArgument("a label cannot be a number", field="label")
        model = self._model(model_name)
        with model.lock:
            if version == 0:
                if model.labels.pop(label, None) is not None:
                    self._apply_policy(model)  # the version it kept may be one the policy drops
            else:
                entry = model.versions.get(version)
                if entry is None or entry.state is not VersionState.AVAILABLE:
                    state = "does not exist" if entry is None else f"is {entry.state.value}"
                    raise FailedPrecondition(
                        f"version {version} of model {model_name} {state}; labels can point only "
                        "at available versions",
                        field="version",
                    )
                model.labels[label] = version
            return model.info()

    def request_log_location(self, model_name: str) -> tuple[str, float]:
        """(URI prefix of the model's request log, its sample rate)."""
        model = self._model(model_name)
        settings = model.config.request_log
        if self.request_logger is None:
            return "", settings.sample_rate
        return self.request_logger.location(model_name, settings).uri, settings.sample_rate

    # --- data plane ----------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def is_ready(self) -> bool:
        """Every model that was asked for serves a version (or has finished failing)."""
        with self._lock:
            models = list(self._models.values())
        for model in models:
            with model.lock:
                if model.current is None and any(
                    v.state in (VersionState.LOADING, VersionState.WARMING)
                    for v in model.versions.values()
                ):
                    return False
        return True

    def version_ready(self, model_name: str, version: int = 0) -> bool:
        model = self._models.get(model_name)
        if model is None:
            return False
        with model.lock:
            if version == 0:
                return model.current is not None
            entry = model.versions.get(version)
            return entry is not None and entry.state is VersionState.AVAILABLE

    def signature(
        self, model_name: str, selector: VersionSelector, signature_name: str = ""
    ) -> tuple[int, Signature, Mapping[str, Signature], Mapping[str, bytes]]:
        """(version, the named signature, all signatures, serialized SignatureDefs)."""
        model = self._model(model_name)
        entry = self._acquire(model, selector)
        try:
            assert entry.runner is not None
            signature = _signature_of(entry, signature_name or DEFAULT_SIGNATURE)
            return entry.number, signature, entry.runner.signatures, entry.runner.signature_defs()
        finally:
            self._release(model, entry)

    # A prediction is written once, as steps: the generator yields the one model call it needs
    # and is sent the outputs. `predict` makes that call on the calling thread, `predict_async`
    # awaits it on the event loop; routing, checks, logging and the version's reference are
    # shared (the reference is released when the generator ends, whatever way it ends).

    def predict(
        self,
        model_name: str,
        inputs: Mapping[str, np.ndarray],
        *,
        selector: VersionSelector = VersionSelector(),
        signature_name: str = "",
        output_filter: Iterable[str] = (),
        protocol: str = "inprocess",
        request_id: str = "",
    ) -> Prediction:
        """Run the signature on checked inputs, batched with concurrent requests if configured."""
        return self._drive(
            self._predict_steps(
                model_name, inputs, selector, signature_name, output_filter, protocol, request_id
            )
        )

    async def predict_async(
        self,
        model_name: str,
        inputs: Mapping[str, np.ndarray],
        *,
        selector: VersionSelector = VersionSelector(),
        signature_name: str = "",
        output_filter: Iterable[str] = (),
        protocol: str = "inprocess",
        request_id: str = "",
    ) -> Prediction:
        """`predict` for an event loop: the model runs off the loop (batched)."""
        return await self._drive_async(
            self._predict_steps(
                model_name, inputs, selector, signature_name, output_filter, protocol, request_id
            )
        )

    def classify(
        self,
        model_name: str,
        examples: Sequence[bytes],
        *,
        selector: VersionSelector = VersionSelector(),
        signature_name: str = "",
        protocol: str = "tfserving",
    ) -> tuple[int, str, example_inputs.Classes]:
        """(version, signature name, classes) for serialized tf.Examples."""
        return self._drive(
            self._classify_steps(model_name, examples, selector, signature_name, protocol)
        )

    async def classify_async(
        self,
        model_name: str,
        examples: Sequence[bytes],
        *,
        selector: VersionSelector = VersionSelector(),
        signature_name: str = "",
        protocol: str = "tfserving",
    ) -> tuple[int, str, example_inputs.Classes]:
        return await self._drive_async(
            self._classify_steps(model_name, examples, selector, signature_name, protocol)
        )

    def regress(
        self,
        model_name: str,
        examples: Sequence[bytes],
        *,
        selector: VersionSelector = VersionSelector(),
        signature_name: str = "",
        protocol: str = "tfserving",
    ) -> tuple[int, str, np.ndarray]:
        """(version, signature name, one value per example) for serialized tf.Examples."""
        return self._drive(
            self._regress_steps(model_name, examples, selector, signature_name, protocol)
        )

    async def regress_async(
        self,
        model_name: str,
        examples: Sequence[bytes],
        *,
        selector: VersionSelector = VersionSelector(),
        signature_name: str = "",
        protocol: str = "tfserving",
    ) -> tuple[int, str, np.ndarray]:
        return await self._drive_async(
            self._regress_steps(model_name, examples, selector, signature_name, protocol)
        )

    def _predict_steps(
        self,
        model_name: str,
        inputs: Mapping[str, np.ndarray],
        selector: VersionSelector,
        signature_name: str,
        output_filter: Iterable[str],
        protocol: str,
        request_id: str,
    ) -> _Steps[Prediction]:
        model = self._model(model_name)
        entry = self._acquire(model, selector)
        try:
            signature = _signature_of(entry, signature_name or DEFAULT_SIGNATURE)
            wanted = list(output_filter)
            for key in wanted:
                if key not in signature.outputs:
                    raise InvalidArgument(
                        f"output '{key}' is not an output of signature '{signature.name}' "
                        f"({', '.join(signature.outputs)})",
                        field="output_filter",
                    )
            rows, flags = self._check(model, entry, signature, inputs)
            outputs = yield _ModelCall(model, entry, signature, inputs, rows)
            if wanted:
                outputs = {key: outputs[key] for key in wanted}
            self._maybe_log(
                model, entry, signature, inputs, outputs, rows, flags, protocol, request_id
            )
            return Prediction(model.name, entry.number, signature, outputs, flags)
        finally:
            self._release(model, entry)

    def _classify_steps(
        self,
        model_name: str,
        examples: Sequence[bytes],
        selector: VersionSelector,
        signature_name: str,
        protocol: str,
    ) -> _Steps[tuple[int, str, example_inputs.Classes]]:
        model = self._model(model_name)
        entry = self._acquire(model, selector)
        try:
            signature = _signature_of(entry, signature_name or DEFAULT_SIGNATURE)
            scores, classes = example_inputs.classify_outputs(signature)
            inputs = example_inputs.examples_to_inputs(examples, signature)
            rows, flags = self._check(model, entry, signature, inputs)
            outputs = yield _ModelCall(model, entry, signature, inputs, rows)
            self._maybe_log(model, entry, signature, inputs, outputs, rows, flags, protocol, "")
            return entry.number, signature.name, example_inputs.to_classes(outputs, scores, classes)
        finally:
            self._release(model, entry)

    def _regress_steps(
        self,
        model_name: str,
        examples: Sequence[bytes],
        selector: VersionSelector,
        signature_name: str,
        protocol: str,
    ) -> _Steps[tuple[int, str, np.ndarray]]:
        model = self._model(model_name)
        entry = self._acquire(model, selector)
        try:
            signature = _signature_of(entry, signature_name or DEFAULT_SIGNATURE)
            key = example_inputs.regress_output(signature)
            inputs = example_inputs.examples_to_inputs(examples, signature)
            rows, flags = self._check(model, entry, signature, inputs)
            outputs = yield _ModelCall(model, entry, signature, inputs, rows)
            self._maybe_log(model, entry, signature, inputs, outputs, rows, flags, protocol, "")
            return entry.number, signature.name, example_inputs.to_values(outputs, key)
        finally:
            self._release(model, entry)

    def _drive(self, steps: _Steps[T]) -> T:
        call = next(steps)
        try:
            outputs = self._run(call)
        except BaseException as error:
            steps.throw(error)  # ends the steps (releasing the version) and raises
            raise
        return _finish(steps, outputs)

    async def _drive_async(self, steps: _Steps[T]) -> T:
        call = next(steps)
        try:
            outputs = await self._run_async(call)
        except BaseException as error:  # CancelledError included: the caller went away
            steps.throw(error)
            raise
        return _finish(steps, outputs)

    def model_status(self, model_name: str, version: int = 0) -> list[VersionInfo]:
        """The versions of a model (one when ``version`` is set); NotFound when unknown."""
        model = self._model(model_name)
        with model.lock:
            if version:
                entry = model.versions.get(version)
                if entry is None:
                    raise NotFound(f"model {model_name} has no version {version}", field="version")
                return [entry.info()]
            return [model.versions[number].info() for number in sorted(model.versions)]

    @contextmanager
    def recorded_request(self, model_name: str, protocol: str) -> Iterator[RequestRecord]:
        """Count the request in the metrics when the block ends: its status code and latency, and
        the version that answered once the servicer sets ``record.version``."""
        started = time.perf_counter()
        record = RequestRecord()
        error: BaseException | None = None
        try:
            yield record
        except BaseException as caught:
            error = caught
            raise
        finally:
            self.record_request(
                model_name, record.version, protocol, error, time.perf_counter() - started
            )

    def record_request(
        self,
        model_name: str,
        version: int,
        protocol: str,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        """Count a finished prediction request in the metrics (servicers call it)."""
        name = model_name if model_name in self._models else UNKNOWN_MODEL
        version_label = str(version) if version else ""
        code = "OK" if error is None else (grpc_code_name_of(error) or "INTERNAL")
        self.metrics.count_request(name, version_label, protocol, code, seconds)

    def close(self) -> None:
        """Stop loading, stop the batchers and the request log; models are dropped."""
        with self._lock:
            self._closed = True
            models = list(self._models.values())
        self._loader.shutdown(wait=True, cancel_futures=True)
        for thread in list(self._unloaders):
            thread.join()
        for model in models:
            with model.lock:
                entries = list(model.versions.values())
                model.current = None
            for entry in entries:
                for batcher in entry.batchers.values():
                    batcher.close()
                entry.batchers.clear()
                if entry.runner is not None:
                    entry.runner.close()
                    entry.runner = None
        if self.request_logger is not None:
            self.request_logger.close()
        if self._on_close is not None:
            self._on_close()

    # --- internals -----------------------------------------------------------------------------

    def _model(self, model_name: str) -> _Model:
        model = self._models.get(model_name)
        if model is None:
            raise NotFound(f"model {model_name!r} is not served here", field="model_spec.name")
        return model

    def _acquire(self, model: _Model, selector: VersionSelector) -> _Version:
        with model.lock:
            if selector.version:
                entry = model.versions.get(selector.version)
                if entry is None or entry.state is not VersionState.AVAILABLE:
                    state = "does not exist" if entry is None else f"is {entry.state.value}"
                    raise NotFound(
                        f"version {selector.version} of model {model.name} {state}",
                        field="model_spec.version",
                    )
            elif selector.label:
                number = model.labels.get(selector.label)
                if number is None:
                    raise NotFound(
                        f"model {model.name} has no label '{selector.label}'",
                        field="model_spec.version_label",
                    )
                entry = model.versions[number]
            else:
                if model.current is None:
                    raise Unavailable(
                        f"model {model.name} has no available version yet",
                        reason="NO_AVAILABLE_VERSION",
                    )
                entry = model.current
            entry.inflight += 1
            return entry

    def _release(self, model: _Model, entry: _Version) -> None:
        with model.lock:
            entry.inflight -= 1
            if entry.inflight == 0 and entry.state is VersionState.UNLOADING:
                model.lock.notify_all()

    def _check(
        self,
        model: _Model,
        entry: _Version,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
    ) -> tuple[int, tuple[str, ...]]:
        rows = check_signature(signature, inputs)
        limit = self.settings.max_request_rows
        if rows > limit:
            raise ResourceExhausted(
                f"request has {rows} rows; the limit is max_request_rows={limit} "
                "(SLUICE_SERVING_MAX_REQUEST_ROWS)",
                reason="REQUEST_TOO_LARGE",
                metadata={"limit": "max_request_rows", "value": str(limit)},
            )
        size = sum(_nbytes(array) for array in inputs.values())
        byte_limit = self.settings.max_request_bytes
        if size > byte_limit:
            raise ResourceExhausted(
                f"request tensors hold {size} bytes; the limit is max_request_bytes={byte_limit} "
                "(SLUICE_SERVING_MAX_REQUEST_BYTES)",
                reason="REQUEST_TOO_LARGE",
                metadata={"limit": "max_request_bytes", "value": str(byte_limit)},
            )
        schema = model.schema or entry.schema
        if schema is None:
            return rows, ()
        try:
            violations = schema.check(inputs, model.config.schema_policy)
        except InvalidArgument as error:
            self.metrics.schema_violations.labels(
                model.name,
                error.metadata.get("feature", ""),
                error.metadata.get("problem", ""),
                SchemaAction.REJECT.value,
            ).inc()
            raise
        for violation in violations:
            self.metrics.schema_violations.labels(
                model.name, violation.feature, violation.problem, SchemaAction.FLAG.value
            ).inc()
        return rows, tuple(f"{v.feature}:{v.problem}" for v in violations)

    def _run(self, call: _ModelCall) -> dict[str, np.ndarray]:
        if call.model.config.batching.enabled and call.signature.batchable:
            return self._batcher(call.model, call.entry, call.signature).submit(
                call.inputs, call.rows
            )
        return self._run_unbatched(call)

    async def _run_async(self, call: _ModelCall) -> dict[str, np.ndarray]:
        if call.model.config.batching.enabled and call.signature.batchable:
            batcher = self._batcher(call.model, call.entry, call.signature)
            return await batcher.submit_async(call.inputs, call.rows)
        # Off the loop, so a slow model call does not hold up every other request.
        return await asyncio.to_thread(self._run_unbatched, call)

    def _run_unbatched(self, call: _ModelCall) -> dict[str, np.ndarray]:
        runner = call.entry.runner
        assert runner is not None  # an acquired version stays loaded
        outputs = runner.run(call.signature.name, call.inputs)
        self.metrics.batch_size.labels(call.model.name, str(call.entry.number)).observe(call.rows)
        return outputs

    def _batcher(self, model: _Model, entry: _Version, signature: Signature) -> Batcher:
        batcher = entry.batchers.get(signature.name)
        if batcher is not None:
            return batcher
        with model.lock:
            batcher = entry.batchers.get(signature.name)
            if batcher is None:
                runner = entry.runner
                assert runner is not None
                histogram = self.metrics.batch_size.labels(model.name, str(entry.number))
                name = signature.name
                batcher = Batcher(
                    lambda inputs: runner.run(name, inputs),
                    lambda: model.config.batching,
                    max_queued_rows=self.settings.max_queued_rows,
                    on_batch=histogram.observe,
                    name=f"{model.name}/{entry.number}/{name}",
                    threads=self.settings.batch_threads,
                )
                entry.batchers[signature.name] = batcher
            return batcher

    def _maybe_log(
        self,
        model: _Model,
        entry: _Version,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        rows: int,
        flags: tuple[str, ...],
        protocol: str,
        request_id: str,
    ) -> None:
        settings = model.config.request_log
        if self.request_logger is None or settings.sample_rate <= 0:
            return
        if settings.sample_rate < 1 and random.random() >= settings.sample_rate:
            return
        record = LogRecord(
            model=model.name,
            version=entry.number,
            signature=signature.name,
            protocol=protocol,
            inputs=inputs,
            outputs=outputs,
            rows=rows,
            request_id=request_id or uuid.uuid4().hex,
            schema_flags=flags,
        )
        if not self.request_logger.offer(record, settings):
            self.metrics.log_dropped.labels(model.name).inc()

    def _load(self, model: _Model, entry: _Version) -> None:
        started = time.monotonic()
        runner: ModelRunner | None = None
        try:
            if entry.artifact_id and (not entry.uri or not entry.digest):
                self._resolve_artifact(entry)
            # A load is mostly Python, and the requests meanwhile wait for the GIL behind it
            # unless it gives way (sluice_serving/gil.py).
            with giving_way():
                folder, digest = self.fetcher.fetch(
                    model.name, entry.number, entry.uri, entry.digest
                )
                entry.digest = digest
                runner = self._runner_factory(folder)
                schema = _folder_schema(folder)
                with model.lock:
                    entry.state = VersionState.WARMING
                self._warm_up(runner, folder)
            with model.lock:
                if entry.state is not VersionState.WARMING:  # the server closed meanwhile
                    raise RuntimeError("loading was abandoned")
                entry.runner, entry.schema = runner, schema
                entry.state = VersionState.AVAILABLE
                entry.load_seconds = time.monotonic() - started
                entry.load_time = datetime.now(UTC)
                self._apply_policy(model)
            entry.loaded.set()
            self.metrics.loads.labels(model.name, "available").inc()
            self.metrics.load_seconds.labels(model.name, str(entry.number)).set(entry.load_seconds)
            logger.info(
                "model %s version %d available after %.2f s",
                model.name,
                entry.number,
                entry.load_seconds,
                extra={"model": model.name, "version": entry.number},
            )
        except Exception as error:
            if runner is not None:
                runner.close()
            self.fetcher.forget(model.name, entry.number)
            with model.lock:
                entry.state = VersionState.FAILED
                entry.error = _version_error(error)
                entry.load_seconds = time.monotonic() - started
            entry.loaded.set()
            self.metrics.loads.labels(model.name, "failed").inc()
            logger.warning(
                "model %s version %d failed to load: %s",
                model.name,
                entry.number,
                entry.error.message,
                extra={"model": model.name, "version": entry.number},
            )

    def _resolve_artifact(self, entry: _Version) -> None:
        if self._resolver is None:
            raise FailedPrecondition(
                f"artifact {entry.artifact_id} cannot be looked up: no metadata service is "
                "configured (SLUICE_METADATA_ADDRESS); give uri and digest",
                field="artifact_id",
            )
        uri, digest = self._resolver.resolve(entry.artifact_id)
        entry.uri = entry.uri or uri
        entry.digest = entry.digest or digest

    def _warm_up(self, runner: ModelRunner, folder: Path) -> None:
        try:
            requests = warmup_requests(folder, runner.signatures)
        except Exception as error:
            raise _WarmupFailed(f"cannot read the warm-up requests: {_describe(error)}") from error
        for index, request in enumerate(requests):
            signature = runner.signatures.get(request.signature)
            try:
                if signature is None:
                    raise ValueError(f"the model has no signature '{request.signature}'")
                check_signature(signature, request.inputs)
                runner.run(signature.name, request.inputs)
            except Exception as error:
                raise _WarmupFailed(
                    f"warm-up request {index} (signature '{request.signature}') failed: "
                    f"{_describe(error)}"
                ) from error

    def _apply_policy(self, model: _Model) -> None:
        # Called with model.lock held: choose the current version and retire what the policy drops.
        available = model.available()
        if not available:
            model.current = None
            return
        keep = model.config.version_policy.pick(v.number for v in available)
        if not keep:
            # Never unload the last good version, even when the policy no longer names it.
            keep = {model.current.number if model.current is not None else available[0].number}
        keep |= set(model.labels.values())
        model.current = next(v for v in available if v.number in keep)
        retired = [v for v in available if v.number not in keep]
        if retired:
            self._begin_unload(model, retired)

    def _begin_unload(self, model: _Model, entries: list[_Version]) -> None:
        # Called with model.lock held: out of routing now, memory released once drained.
        for entry in entries:
            entry.state = VersionState.UNLOADING
        if model.current is not None and model.current.state is not VersionState.AVAILABLE:
            available = model.available()
            model.current = available[0] if available else None
        for entry in entries:
            thread = threading.Thread(
                target=self._finish_unload,
                args=(model, entry),
                name=f"unload-{model.name}-{entry.number}",
                daemon=True,
            )
            self._unloaders.add(thread)
            thread.start()

    def _finish_unload(self, model: _Model, entry: _Version) -> None:
        lowest_priority()
        try:
            with model.lock:
                while entry.inflight > 0:
                    model.lock.wait()
                batchers = list(entry.batchers.values())
                entry.batchers.clear()
                runner, entry.runner, entry.schema = entry.runner, None, None
            with giving_way():
                for batcher in batchers:
                    batcher.close()
                if runner is not None:
                    runner.close()
                del runner, batchers
                gc.collect()  # TensorFlow objects hold reference cycles
            self.fetcher.forget(model.name, entry.number)
            self.metrics.forget_version(model.name, entry.number)
            with model.lock:
                entry.state = VersionState.END
            logger.info("model %s version %d unloaded", model.name, entry.number)
        finally:
            self._unloaders.discard(threading.current_thread())

    def _prune_finished(self, model: _Model) -> None:
        finished = sorted(
            (
                v
                for v in model.versions.values()
                if v.state in (VersionState.END, VersionState.FAILED)
            ),
            key=lambda v: v.number,
        )
        for entry in finished[:-KEPT_FINISHED_VERSIONS]:
            del model.versions[entry.number]

    def _read_schema(self, schema_uri: str) -> DataSchema:
        prefix = self.fetcher.key_prefix(schema_uri, field="schema_uri").rstrip("/")
        try:
            text = self.fetcher.store.get_bytes(prefix).decode()
        except UnicodeDecodeError:
            raise InvalidArgument(
                f"schema_uri {schema_uri!r} is not text", field="schema_uri"
            ) from None
        except Exception as error:
            if grpc_code_name_of(error) == "NOT_FOUND":
                raise NotFound(
                    f"schema_uri {schema_uri!r} does not exist", field="schema_uri"
                ) from None
            raise
        try:
            return DataSchema.from_text(text, source=f"schema_uri {schema_uri!r}")
        except ValueError as error:
            raise InvalidArgument(str(error), field="schema_uri") from None


@dataclass(frozen=True)
class _ModelCall:
    """The one model call a prediction needs: checked inputs of a routed version."""

    model: _Model
    entry: _Version
    signature: Signature
    inputs: Mapping[str, np.ndarray]
    rows: int


T = TypeVar("T")
_Steps = Generator[_ModelCall, dict[str, np.ndarray], T]


def _finish(steps: _Steps[T], outputs: dict[str, np.ndarray]) -> T:
    try:
        steps.send(outputs)
    except StopIteration as done:
        result: T = done.value
        return result
    raise RuntimeError("a prediction calls its model once")


class _WarmupFailed(Exception):
    grpc_code_name = "FAILED_PRECONDITION"
    reason = "WARMUP_FAILED"


def _signature_of(entry: _Version, name: str) -> Signature:
    assert entry.runner is not None
    signature = entry.runner.signatures.get(name)
    if signature is None:
        raise InvalidArgument(
            f"version {entry.number} of model {entry.model} has no signature '{name}' "
            f"(it has {', '.join(sorted(entry.runner.signatures))})",
            field="model_spec.signature_name",
        )
    return signature


def _folder_schema(folder: Path) -> DataSchema | None:
    for relative in SCHEMA_FILES:
        path = folder / relative
        if path.is_file():
            return DataSchema.from_text(path.read_text(), source=relative)
    return None


def _nbytes(array: np.ndarray) -> int:
    if array.dtype == object:
        return sum(
            len(value) if isinstance(value, bytes | str) else 8 for value in array.reshape(-1)
        )
    return int(array.nbytes)


def _check_model_name(name: str) -> None:
    if not MODEL_NAME.match(name):
        raise InvalidArgument(
            f"model name must be 1 to 128 letters, digits, '-', '_' or '.'; got {name!r}",
            field="model_name",
        )


def _describe(error: BaseException) -> str:
    message = getattr(error, "message", None)
    text = _first_meaningful_line(message if isinstance(message, str) else str(error))
    # An error raised in a model process names the exception type it had there.
    kind = getattr(error, "error_type", None) or type(error).__name__
    return f"{kind}: {text}" if text else kind


# TensorFlow wraps the one useful line of an op error in boilerplate and stack lines.
_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[", "File ")


def _first_meaningful_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_NOISE)]
    return (useful or lines or [""])[0]


def _version_error(error: BaseException) -> VersionError:
    code = grpc_code_name_of(error) or "INTERNAL"
    reason = getattr(error, "reason", None)
    field_name = getattr(error, "field", None)
    return VersionError(
        code=code,
        message=_describe(error)
        if code == "INTERNAL"
        else getattr(error, "message", None) or str(error),
        reason=reason if isinstance(reason, str) else "",
        field=field_name if isinstance(field_name, str) else "",
    )


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_token(token: str) -> str:
    if not token:
        return ""
    try:
        name = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(
            "page_token is not one this server issued", field="page_token"
        ) from None
    return name
