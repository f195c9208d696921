"""Where workers run: the `Launcher` interface and local worker processes.

A launcher starts the worker processes of one attempt and returns a JSON-able *launch* record
(kept in the job record, so a restarted service can find or stop them), reports whether they are
still running, gives readers of their events (the chief's first), and stops them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sluice_training.distributed import tf_config
from sluice_training.events import EventReader, FileEventReader
from sluice_training.plan import JobPlan

LOCAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class WorkerStatus:
    """``exit_codes[i]`` is None while worker i runs (or when its code is unknown after a restart:
    see ``exited``)."""

    exited: tuple[bool, ...]
    exit_codes: tuple[int | None, ...]

    @property
    def all_exited(self) -> bool:
        return all(self.exited)

    @property
    def any_failed(self) -> bool:
        """A worker ended badly (non-zero, killed, or gone without a code)."""
        return any(
            done and code != 0 for done, code in zip(self.exited, self.exit_codes, strict=True)
        )


class Launcher(Protocol):
    kind: str

    def launch(self, plan: JobPlan, folder: Path, placement: Any) -> dict[str, Any]:
        """Start the attempt's workers; the launch record."""

    def readers(self, launch: Mapping[str, Any]) -> list[EventReader]:
        """Event readers, one per worker, the chief first."""

    def status(self, launch: Mapping[str, Any]) -> WorkerStatus: ...

    def stop(self, launch: Mapping[str, Any], grace_seconds: float) -> None:
        """Stop every worker: SIGTERM (or its equivalent), then SIGKILL after the grace period."""

    def survives_restart(self, launch: Mapping[str, Any]) -> bool:
        """Whether the workers keep running when the service restarts (then it re-attaches)."""


class LocalLauncher:
    """Worker processes on this machine: ``python -m sluice_training.worker`` per worker, each in
    its own process group, logging to ``<attempt folder>/worker-<i>.log``. Several workers get a
    ``TF_CONFIG`` naming free ports on 127.0.0.1."""

    kind = "local"

    def __init__(
        self, python: str = sys.executable, extra_env: Mapping[str, str] | None = None
    ) -> None:
        self.python = python
        self.extra_env = dict(extra_env or {})
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    def launch(self, plan: JobPlan, folder: Path, placement: Any = None) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        plan_path = folder / "plan.json"
        plan_path.write_text(plan.to_json())
        hosts = [f"{LOCAL_HOST}:{port}" for port in _free_ports(plan.num_workers)]
        pids, events, logs = [], [], []
        for index in range(plan.num_workers):
            env = {
                **os.environ,
                **self.extra_env,
                "KERAS_BACKEND": plan.keras_backend,
                "PYTHONUNBUFFERED": "1",
            }
            env.pop("TF_CONFIG", None)
            if plan.num_workers > 1:
                env["TF_CONFIG"] = tf_config(hosts, index)
            event_path = folder / f"events-{index}.jsonl"
            log_path = folder / f"worker-{index}.log"
            command = [
                self.python,
                "-m",
                "sluice_training.worker",
                "--plan",
                str(plan_path),
                "--events",
                str(event_path),
                "--work-dir",
                str(folder / f"work-{index}"),
                "--parent-pid",
                str(os.getpid()),
            ]
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    command,
                    env=env,
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: stop() also ends its children
                )
            self._processes[process.pid] = process
            pids.append(process.pid)
            events.append(str(event_path))
            logs.append(str(log_path))
        return {
            "kind": self.kind,
            "folder": str(folder),
            "plan": str(plan_path),
            "pids": pids,
            "events": events,
            "logs": logs,
        }

    def readers(self, launch: Mapping[str, Any]) -> list[EventReader]:
        return [FileEventReader(path) for path in launch["events"]]

    def status(self, launch: Mapping[str, Any]) -> WorkerStatus:
        exited, codes = [], []
        for pid in launch["pids"]:
            process = self._processes.get(pid)
            if process is not None:
                code = process.poll()
                exited.append(code is not None)
                codes.append(code)
            else:  # started by an earlier service process: alive only if it is still ours
                alive = _is_worker(pid, launch["plan"])
                exited.append(not alive)
                codes.append(None)
        return WorkerStatus(exited=tuple(exited), exit_codes=tuple(codes))

    def stop(self, launch: Mapping[str, Any], grace_seconds: float) -> None:
        pids = [pid for pid in launch["pids"] if self._owned_or_ours(pid, launch["plan"])]
        for pid in pids:
            _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if self._running(pid, launch["plan"])]
            time.sleep(0.05)
        for pid in pids:
            _signal_group(pid, signal.SIGKILL)
        for pid in launch["pids"]:
            process = self._processes.pop(pid, None)
            if process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)

    def survives_restart(self, launch: Mapping[str, Any]) -> bool:
        return False  # workers watch their parent and exit with it

    def _owned_or_ours(self, pid: int, plan: str) -> bool:
        return pid in self._processes or _is_worker(pid, plan)

    def _running(self, pid: int, plan: str) -> bool:
        process = self._processes.get(pid)
        if process is not None:
            return process.poll() is None
        return _is_worker(pid, plan)


def _is_worker(pid: int, plan_path: str) -> bool:
    """Whether ``pid`` is a live worker of this plan (a recycled pid is someone else's)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"sluice_training.worker" in command and plan_path.encode() in command


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _free_ports(count: int) -> list[int]:
    if count < 2:
        return [0] * count
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOCAL_HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def describe(launch: Mapping[str, Any]) -> str:
    """One line for logs and error messages."""
    return json.dumps({k: launch[k] for k in ("kind", "logs") if k in launch})
