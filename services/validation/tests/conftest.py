from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from sluice_validation.testing import write_table


@pytest.fixture()
def write(tmp_path: Path) -> Callable[[pa.Table, str], str]:
    """write(table, "name.csv" | "name.parquet") -> the file's file:// URI under tmp_path."""

    def _write(table: pa.Table, name: str) -> str:
        return write_table(table, tmp_path / name)

    return _write
