"""Keeping the serving process's Python threads on one CPU.

A request passes through several Python threads (gRPC's poller, an RPC thread, the batch worker)
and each hand-over passes the GIL on. When the kernel spreads those threads over several CPUs,
every hand-over wakes a thread on another CPU and the GIL bounces between them: measured on a
2-core machine at 64 concurrent clients, the same server did 2,000 requests/s with 34 context
switches per request, and 4,550 with 12 once its Python threads shared one CPU. The GIL lets one
of them run Python at a time anyway, so one CPU takes nothing from them; TensorFlow's and gRPC's
own threads, which do their work without the GIL, keep every CPU.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Set

from sluice_runtime.config import ConfigError

AUTO = "auto"
OFF = "off"
VARIABLE = "SLUICE_SERVING_PYTHON_CPU"


def check_setting(setting: str) -> None:
    """ConfigError unless ``setting`` is ``auto``, ``off`` or a CPU number."""
    if setting in (AUTO, OFF) or (setting.isdigit() and setting.isascii()):
        return
    raise ConfigError(VARIABLE, f"must be 'auto', 'off' or a CPU number, got {setting!r}")


def choose_cpu(setting: str, allowed: Set[int]) -> int | None:
    """The CPU for the Python threads, or None: off, or only one CPU to run on anyway.

    ``auto`` takes the highest-numbered CPU the process may use (CPU 0 usually takes the most
    interrupts); a number must be one of ``allowed``.
    """
    check_setting(setting)
    if setting == OFF or len(allowed) <= 1:
        return None
    if setting == AUTO:
        return max(allowed)
    cpu = int(setting)
    if cpu not in allowed:
        raise ConfigError(
            VARIABLE, f"CPU {cpu} is not one this process may run on ({sorted(allowed)})"
        )
    return cpu


def allowed_cpus() -> set[int]:
    """The CPUs this thread may run on; empty where the platform cannot tell (not Linux)."""
    if not hasattr(os, "sched_getaffinity"):
        return set()
    return set(os.sched_getaffinity(0))


def pin_python_threads(cpu: int) -> list[int]:
    """Restrict every running Python thread to ``cpu`` and return their native ids.

    Threads those threads start later inherit the restriction (Linux copies a thread's CPU mask to
    the threads it creates), so call this after anything that must keep every CPU has started
    its threads: TensorFlow's runtime, gRPC's server.
    """
    pinned = []
    for thread in threading.enumerate():
        native_id = thread.native_id
        if native_id is None:
            continue
        try:
            os.sched_setaffinity(native_id, {cpu})
        except ProcessLookupError:  # the thread ended meanwhile
            continue
        pinned.append(native_id)
    return pinned
