"""Shorter turns on the GIL while a model version loads.

Loading a SavedModel is mostly Python (restoring its functions and objects) on a loader thread.
Python hands the GIL to a waiting thread only every switch interval (5 ms by default), and with
several RPC threads waiting each may wait a few turns: measured here, 5-10 ms stalls of every
request during a load, which set the p99 of a hot swap. At 1 ms they shrink to 1-3 ms. The
interval is process-wide and a short one costs about a seventh of the throughput of a busy
server (more forced hand-overs), so it is only short while some version is loading.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

LOADING_SWITCH_INTERVAL = 0.001  # seconds


class _ShortTurns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved = 0.0

    @contextmanager
    def __call__(self, interval: float = LOADING_SWITCH_INTERVAL) -> Iterator[None]:
        with self._lock:
            if self._active == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(interval, self._saved))
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    sys.setswitchinterval(self._saved)


short_turns = _ShortTurns()
"""``with short_turns():`` - the GIL switch interval is short until the last such block ends."""
