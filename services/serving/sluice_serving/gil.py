"""Background work in the serving process - loading and unloading versions - that gives way to
the requests.

A version loads on a loader thread of the process that answers requests: `tf.saved_model.load`
and the warm-up are ~50-100 ms of Python and some TensorFlow work. A thread that holds the GIL
keeps it until the switch interval (5 ms) makes it hand over, and a request needs the GIL many
times on its way through gRPC's poller, the event loop and the batch worker; behind a busy
Python thread each of those waits a turn. Measured on the development machine (2 vCPUs) with
an open loop of 500 requests/s: a Python thread spinning 0.3 s in the server raised the p50 of the
requests sent meanwhile from 1.5 to 44 ms, a process spinning beside it changed nothing, and a
load raised their p99 from ~5 to 21-40 ms. So a background thread here

- gives way (`giving_way`): it naps 2 ms after every 0.5 ms of Python, through a profile
  function of its own thread (`sys.setprofile`), so that the serving threads find the GIL free;
  under that load, napping 1 ms, the p99 beside a load fell to 7-11 ms against 5-7 ms steady,
  while the load took 0.45 s instead of 0.2 s; at half of the peak (~1,300 requests/s) 2 ms naps
  gave hot-swap/steady p99 of 1.09-1.37 against 1.38-1.94 with 1 ms (3 paired runs);
- runs at the lowest CPU priority (`lowest_priority`), for its work outside the GIL (restoring
  variables, TensorFlow optimizing the new functions at warm-up): it mattered near saturation.

A shorter switch interval during loads (1 ms, then 0.2 ms) was tried before and is not needed:
a thread that naps every 0.5 ms never holds the GIL for a whole interval.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

RUN_FOR = 0.0005  # seconds of Python a background thread runs between two naps
NAP = 0.002  # seconds it then leaves the GIL to the others
CHECK_EVERY = 64  # profile events between two looks at the clock (each look costs a call)
LOWEST_PRIORITY = 19  # nice value


@contextmanager
def giving_way(
    run_for: float = RUN_FOR,
    nap: float = NAP,
    *,
    check_every: int = CHECK_EVERY,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """In the calling thread only: sleep ``nap`` seconds after every ``run_for`` seconds of Python.

    Long calls into C that release the GIL (TensorFlow running the warm-up) are not cut; those
    that keep it cannot be. Another profile function of the thread is put back at the end.
    """
    events = 0
    slice_ends = clock() + run_for

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal events, slice_ends
        events += 1
        if events < check_every:
            return
        events = 0
        if clock() >= slice_ends:
            sleep(nap)
            slice_ends = clock() + run_for

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)


def lowest_priority() -> None:
    """Put the calling thread, and it alone, at the lowest CPU priority (Linux; elsewhere the
    call would renice the whole process, so it does nothing)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
