"""The serving service, except that loading a model folder holding a file named CRASH aborts the
whole process: a stand-in for a model that takes its server down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sluice_serving import __main__ as serving_main
from sluice_serving.runner import SavedModelRunner

_load = SavedModelRunner.__init__


def _crashing_load(self: Any, folder: Path, *args: Any, **kwargs: Any) -> None:
    if (folder / "CRASH").exists():
        os.abort()
    _load(self, folder, *args, **kwargs)


SavedModelRunner.__init__ = _crashing_load  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    serving_main.main()
