"""How a worker tells the service what happens: one JSON object per event.

Events: ``started`` (attempt, resumed_from_step, warm_start), ``progress`` (a `Progress`),
``checkpoint`` (step), ``result`` (a `Result`), ``failed`` (a `JobFailure`). ``result`` and
``failed`` are final.

Two channels, chosen by where the worker runs:

* `FileEventSink` / `FileEventReader`: a JSON-lines file per worker in the job's folder on the
  service's machine (local workers). Lines are appended and flushed, so the service can read them
  while the worker runs and again after a restart.
* `StoreEventSink` / `StoreEventReader`: one JSON document in the artifact store, replaced as
  events come (Kubernetes pods, which share nothing else with the service). Progress is throttled.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sluice_runtime.artifacts import ArtifactNotFound, ArtifactStore

FINAL_EVENTS = ("result", "failed")


class EventSink(Protocol):
    def emit(self, kind: str, **payload: Any) -> None: ...

    def close(self) -> None: ...


class FileEventSink:
    """Appends events to a JSON-lines file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()

    def emit(self, kind: str, **payload: Any) -> None:
        line = json.dumps({"event": kind, "time": time.time(), **payload}, allow_nan=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class StoreEventSink:
    """Keeps the events in one document in the artifact store, rewritten on every event (progress
    at most every ``progress_interval`` seconds)."""

    def __init__(
        self,
        store: ArtifactStore,
        key: str,
        progress_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._key = key
        self._events: list[dict[str, Any]] = []
        self._progress_interval = progress_interval
        self._clock = clock
        self._last_write = -float("inf")
        self._dirty = False
        self._lock = threading.Lock()

    def emit(self, kind: str, **payload: Any) -> None:
        event = {"event": kind, "time": time.time(), **payload}
        with self._lock:
            if kind == "progress" and self._events and self._events[-1]["event"] == "progress":
                self._events[-1] = event  # only the newest progress matters
            else:
                self._events.append(event)
            self._dirty = True
            if kind != "progress" or self._clock() - self._last_write >= self._progress_interval:
                self._flush()

    def _flush(self) -> None:
        document = json.dumps({"events": self._events}, allow_nan=False).encode()
        self._store.put(self._key, document, content_type="application/json")
        self._last_write = self._clock()
        self._dirty = False

    def close(self) -> None:
        with self._lock:
            if self._dirty:
                self._flush()


class EventReader(Protocol):
    def read_new(self) -> list[dict[str, Any]]:
        """Events not returned before, in order."""
        ...


class FileEventReader:
    """Reads the events appended to a JSON-lines file since the last call."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as source:
                source.seek(self._offset)
                chunk = source.read()
        except FileNotFoundError:
            return []
        complete = chunk.rfind(b"\n") + 1  # a line still being written waits for next time
        self._offset += complete
        events = []
        for line in chunk[:complete].splitlines():
            if line.strip():
                events.append(json.loads(line))
        return events


class StoreEventReader:
    """Reads a `StoreEventSink` document and returns the events it did not return before."""

    def __init__(self, store: ArtifactStore, key: str) -> None:
        self._store = store
        self._key = key
        self._seen = 0
        self._last_progress_time = 0.0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            events: list[dict[str, Any]] = json.loads(self._store.get_bytes(self._key))["events"]
        except ArtifactNotFound:
            return []
        fresh = events[self._seen :]
        # The sink replaces a trailing progress event in place: report it again when it changed.
        if self._seen and events[self._seen - 1]["event"] == "progress":
            last = events[self._seen - 1]
            if last["time"] != self._last_progress_time:
                fresh = [last, *fresh]
        if events and events[-1]["event"] == "progress":
            self._last_progress_time = events[-1]["time"]
        self._seen = len(events)
        return fresh
