"""The Beam path (DirectRunner) gives the in-process statistics; in-process needs no Beam."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sluice_validation.inputs import DataResolver
from sluice_validation.statistics import StatsOptions, compute_statistics
from sluice_validation.testing import Writer, make_table

pytest.importorskip("apache_beam")


def test_beam_matches_in_process(tmp_path: Path, write: Writer) -> None:
    table = make_table(3_000, seed=1)
    write(table.slice(0, 1_500), "span/a.csv")
    write(table.slice(1_500), "span/b.csv")
    files = DataResolver().list_files((tmp_path / "span").as_uri() + "/")
    options = StatsOptions(slices=(("country",),))

    from sluice_validation.beam_statistics import compute_statistics_beam

    on_beam = compute_statistics_beam(files, options, runner="DirectRunner")
    local = compute_statistics(files, options).statistics
    assert [d.name for d in on_beam.datasets] == [d.name for d in local.datasets]
    for left, right in zip(local.datasets, on_beam.datasets, strict=True):
        assert left.num_examples == right.num_examples
        for x, y in zip(left.features, right.features, strict=True):
            assert x.path == y.path and x.type == y.type
            if x.HasField("string_stats"):
                assert x.string_stats == y.string_stats
            else:
                assert x.num_stats.common_stats == y.num_stats.common_stats
                assert (x.num_stats.min, x.num_stats.max) == (y.num_stats.min, y.num_stats.max)
                assert x.num_stats.mean == pytest.approx(y.num_stats.mean, rel=1e-12)
                assert x.num_stats.std_dev == pytest.approx(y.num_stats.std_dev, rel=1e-12)


def test_the_in_process_path_does_not_import_beam() -> None:
    code = (
        "import sys, sluice_validation, sluice_validation.core, sluice_validation.statistics;"
        "print('apache_beam' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "False"
