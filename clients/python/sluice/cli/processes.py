"""Runs the services as local background processes: the engine behind `sluice up/down/status`.

Plain Python (no typer, no rich) so it can be tested and reused. Each service runs as
``python -m <module>`` in its own session, logging to ``<data>/logs/<name>.log``, with its pid in
``<data>/run/<name>.pid`` and its address in ``<data>/run/<name>.json``. What a service reads from
its environment:

==============================  ====================================================
SLUICE_DATA_DIR                 the data directory (default ~/.sluice)
SLUICE_ARTIFACT_STORE_URI       file://<data>/artifacts unless already set
SLUICE_METADATA_DATABASE_URL    sqlite:///<data>/metadata.db unless already set
SLUICE_<NAME>_PORT              its gRPC port
SLUICE_<NAME>_METRICS_PORT      its Prometheus metrics port
SLUICE_<OTHER>_ADDRESS          127.0.0.1:<port> of every service in the table
==============================  ====================================================
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice.client.config import DEFAULT_BASE_PORT, SERVICE_NAMES
from sluice.client.errors import SluiceRpcError
from sluice.client.health import check_health

DEFAULT_METRICS_BASE_PORT = 9151
DEFAULT_DATA_DIR = Path("~/.sluice")
LOCAL_HOST = "127.0.0.1"

# Popen handles of the children this process started: kept so they are reaped (no zombies that
# look alive) and so Python does not warn about a child still running when its handle is dropped.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServiceSpec:
    """One service to run locally."""

    name: str
    module: str  # run as `python -m <module>`
    port: int
    metrics_port: int

    @property
    def address(self) -> str:
        return f"{LOCAL_HOST}:{self.port}"

    @property
    def env_prefix(self) -> str:
        return f"SLUICE_{self.name.upper()}_"


def service_table(
    base_port: int = DEFAULT_BASE_PORT, metrics_base_port: int = DEFAULT_METRICS_BASE_PORT
) -> list[ServiceSpec]:
    """All six services on their fixed ports: metadata base_port, validation base_port + 1, ...

    The offsets never change, so a service keeps its port whichever others are installed.
    """
    return [
        ServiceSpec(name, f"sluice_{name}", base_port + offset, metrics_base_port + offset)
        for offset, name in enumerate(SERVICE_NAMES)
    ]


def installed(
    specs: Iterable[ServiceSpec],
    find_spec: Callable[[str], Any] = importlib.util.find_spec,
) -> list[ServiceSpec]:
    """The services whose module can be imported here (the others are not built yet)."""
    return [spec for spec in specs if find_spec(spec.module) is not None]


@dataclass(frozen=True)
class LocalLayout:
    """Where a local installation keeps its data, logs and run state."""

    data_dir: Path

    @classmethod
    def at(cls, data_dir: str | Path | None) -> LocalLayout:
        return cls(Path(data_dir or DEFAULT_DATA_DIR).expanduser().resolve())

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def state_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def create(self) -> None:
        for directory in (self.data_dir, self.logs_dir, self.run_dir, self.data_dir / "artifacts"):
            directory.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class RunState:
    """What `up` recorded about a service it started."""

    name: str
    pid: int
    address: str
    module: str
    metrics_port: int


def service_environment(
    spec: ServiceSpec,
    specs: Sequence[ServiceSpec],
    layout: LocalLayout,
    base_env: Mapping[str, str],
) -> dict[str, str]:
    """The environment of one service process (see the module docstring)."""
    env = dict(base_env)
    env["SLUICE_DATA_DIR"] = str(layout.data_dir)
    defaults = {
        "SLUICE_ARTIFACT_STORE_URI": (layout.data_dir / "artifacts").as_uri(),
        "SLUICE_METADATA_DATABASE_URL": f"sqlite:///{layout.data_dir / 'metadata.db'}",
    }
    for key, default in defaults.items():
        # A database or store the user configured (PostgreSQL, MinIO) wins over the local
        # default; an empty variable counts as unset, as in the services' own settings.
        if not env.get(key) and default:
            env[key] = default
    for other in specs:
        env[other.env_prefix + "ADDRESS"] = other.address
    env[spec.env_prefix + "PORT"] = str(spec.port)
    env[spec.env_prefix + "METRICS_PORT"] = str(spec.metrics_port)
    env["PYTHONUNBUFFERED"] = "1"  # so the log shows what happened right up to a crash
    return env


def start_service(
    spec: ServiceSpec,
    specs: Sequence[ServiceSpec],
    layout: LocalLayout,
    *,
    base_env: Mapping[str, str] | None = None,
    python: str = sys.executable,
) -> RunState:
    """Starts one service in the background and records its pid; does not wait for it."""
    layout.create()
    env = service_environment(spec, specs, layout, os.environ if base_env is None else base_env)
    with layout.log_file(spec.name).open("ab") as log:
        process = subprocess.Popen(
            [python, "-m", spec.module],
            env=env,
            cwd=layout.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the terminal does not reach it, and `down` can signal
            # the whole group (the service and any worker processes it started).
            start_new_session=True,
        )
    _children[process.pid] = process
    state = RunState(spec.name, process.pid, spec.address, spec.module, spec.metrics_port)
    _write_state(layout, state)
    return state


def _write_state(layout: LocalLayout, state: RunState) -> None:
    layout.pid_file(state.name).write_text(f"{state.pid}\n")
    layout.state_file(state.name).write_text(json.dumps(state.__dict__, indent=2) + "\n")


def read_state(layout: LocalLayout, name: str) -> RunState | None:
    """The recorded run state of a service, or None when `up` did not start it."""
    try:
        pid = int(layout.pid_file(name).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        recorded = json.loads(layout.state_file(name).read_text())
        return RunState(
            name=name,
            pid=pid,
            address=str(recorded["address"]),
            module=str(recorded["module"]),
            metrics_port=int(recorded["metrics_port"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return RunState(name=name, pid=pid, address="", module="", metrics_port=0)


def recorded_names(layout: LocalLayout) -> list[str]:
    """Names of the services that have a pid file."""
    if not layout.run_dir.is_dir():
        return []
    return sorted(path.stem for path in layout.run_dir.glob("*.pid"))


def forget(layout: LocalLayout, name: str) -> None:
    for path in (layout.pid_file(name), layout.state_file(name)):
        path.unlink(missing_ok=True)


def is_alive(pid: int, module: str = "") -> bool:
    """Whether `pid` is a live process (and, when `module` is given and /proc can tell, runs it).

    The module check keeps `down` from signalling an unrelated process that got a stale pid.
    """
    child = _children.get(pid)
    if child is not None:
        if child.poll() is not None:
            del _children[pid]
            return False
    else:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False  # someone else's process: not one of ours
    if module:
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc here: trust the pid
        return module.encode() in arguments
    return True


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file ("" when there is none)."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def health_of(address: str, timeout: float = 1.0) -> str:
    """The health status name at `address`, or "DOWN" when nothing answers."""
    try:
        return check_health(address, timeout=timeout)
    except SluiceRpcError:
        return "DOWN"


class StartError(RuntimeError):
    """A service did not become healthy; everything `start_stack` started was stopped again."""

    def __init__(self, name: str, problem: str, log: Path, tail: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem
        self.log = log
        self.tail = tail


def start_stack(
    specs: Sequence[ServiceSpec],
    layout: LocalLayout,
    *,
    timeout: float = 60.0,
    base_env: Mapping[str, str] | None = None,
    grace: float = 10.0,
) -> list[RunState]:
    """Starts every service of `specs` that is not running yet and waits until all are SERVING.

    Idempotent: a service already running (per its pid file) is left as it is.

    Raises:
        StartError: a service exited or was not SERVING within `timeout` seconds; the services
            started by this call are stopped before it is raised.
    """
    layout.create()
    states: list[RunState] = []
    started: list[str] = []
    try:
        for spec in specs:
            existing = read_state(layout, spec.name)
            if existing is not None and is_alive(existing.pid, existing.module):
                states.append(existing)
                continue
            forget(layout, spec.name)
            states.append(start_service(spec, specs, layout, base_env=base_env))
            started.append(spec.name)
        _wait_until_serving(states, layout, timeout)
    except BaseException:
        stop_stack(layout, names=started, grace=grace)
        raise
    return states


def _wait_until_serving(states: Sequence[RunState], layout: LocalLayout, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = {state.name: state for state in states}
    while waiting:
        for name, state in list(waiting.items()):
            if not is_alive(state.pid):
                raise StartError(
                    name,
                    "exited during startup",
                    layout.log_file(name),
                    log_tail(layout.log_file(name)),
                )
            if health_of(state.address, timeout=1.0) == "SERVING":
                del waiting[name]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            name = sorted(waiting)[0]
            raise StartError(
                name,
                f"not SERVING at {waiting[name].address} after {timeout:g}s",
                layout.log_file(name),
                log_tail(layout.log_file(name)),
            )
        time.sleep(0.2)


@dataclass(frozen=True)
class StopResult:
    name: str
    pid: int
    outcome: str  # "stopped" (SIGTERM), "killed" (SIGKILL), "not running" (stale pid file)


def stop_stack(
    layout: LocalLayout, *, names: Iterable[str] | None = None, grace: float = 10.0
) -> list[StopResult]:
    """Stops the recorded services (all, or `names`): SIGTERM, then SIGKILL after `grace` seconds.

    Removes their pid files. Idempotent: nothing recorded means nothing to do.
    """
    wanted = recorded_names(layout) if names is None else list(names)
    running: dict[str, RunState] = {}
    results: list[StopResult] = []
    for name in wanted:
        state = read_state(layout, name)
        if state is None:
            continue
        if is_alive(state.pid, state.module):
            _signal(state.pid, signal.SIGTERM)
            running[name] = state
        else:
            forget(layout, name)
            results.append(StopResult(name, state.pid, "not running"))

    deadline = time.monotonic() + grace
    outcome = "stopped"
    while running:
        for name, state in list(running.items()):
            if not is_alive(state.pid):
                forget(layout, name)
                results.append(StopResult(name, state.pid, outcome))
                del running[name]
        if not running:
            break
        if time.monotonic() >= deadline:
            if outcome == "killed":
                # SIGKILL cannot be ignored; a process still there is stuck in the kernel.
                for name, state in running.items():
                    results.append(StopResult(name, state.pid, "did not exit"))
                break
            for state in running.values():
                _signal(state.pid, signal.SIGKILL)
            outcome = "killed"
            deadline = time.monotonic() + 5.0
        time.sleep(0.05)
    return results


def _signal(pid: int, signum: signal.Signals) -> None:
    """Signals the process group the service leads (its workers too), else the process alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass  # gone already


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None  # None when not started by `sluice up`
    running: bool
    health: str  # SERVING, NOT_SERVING, UNKNOWN, SERVICE_UNKNOWN or DOWN


def stack_status(specs: Sequence[ServiceSpec], layout: LocalLayout) -> list[ServiceStatus]:
    """The health of each service: at the address `up` recorded, else at its spec's address."""
    statuses = []
    names = [spec.name for spec in specs]
    names += [name for name in recorded_names(layout) if name not in names]
    by_name = {spec.name: spec for spec in specs}
    for name in names:
        state = read_state(layout, name)
        spec = by_name.get(name)
        address = (state.address if state else "") or (spec.address if spec else "")
        running = state is not None and is_alive(state.pid, state.module)
        health = health_of(address) if address else "UNKNOWN"
        statuses.append(ServiceStatus(name, address, state.pid if state else None, running, health))
    return statuses
