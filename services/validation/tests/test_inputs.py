"""Inputs: prefixes, the artifact store, the request log, and every kind of bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sluice_runtime.artifacts import LocalArtifactStore
from sluice_runtime.errors import DataLoss, InvalidArgument, NotFound
from sluice_validation.inputs import DataFormat, DataResolver
from sluice_validation.statistics import StatsOptions, compute_statistics
from sluice_validation.testing import Writer, feature, make_table, stats_of


def test_a_prefix_reads_every_file_in_key_order_and_skips_markers(
    tmp_path: Path, write: Writer
) -> None:
    table = make_table(3_000, seed=1)
    for i in range(3):
        write(table.slice(i * 1_000, 1_000), f"span/part-{i}.csv")
    (tmp_path / "span" / "_SUCCESS").write_text("")
    (tmp_path / "span" / ".part-0.csv.crc").write_bytes(b"\x00")
    files = DataResolver().list_files((tmp_path / "span").as_uri() + "/")
    assert [f.uri.rsplit("/", 1)[1] for f in files] == ["part-0.csv", "part-1.csv", "part-2.csv"]
    assert compute_statistics(files).num_examples == 3_000


def test_data_in_the_artifact_store_is_read_verified(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    table = make_table(2_000, seed=2)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    store.put("spans/1/data.parquet", sink.getvalue().to_pybytes())
    store.put("spans/1/data.csv", b"a,b\n1,x\n2,y\n")
    resolver = DataResolver(store, open_store=lambda uri: store)

    parquet = resolver.list_files("s3://bucket/spans/1/data.parquet")  # through the store
    assert compute_statistics(parquet).num_examples == 2_000
    csv = resolver.list_files(store.uri_for("spans/1/data.csv"))
    assert compute_statistics(csv).num_examples == 2
    assert len(resolver.list_files("s3://bucket/spans/1/")) == 2

    (tmp_path / "store" / "spans" / "1" / "data.csv").write_bytes(b"a,b\n1,x\n9,y\n")
    with pytest.raises(DataLoss):
        compute_statistics(resolver.list_files("s3://bucket/spans/1/data.csv"))


def test_request_log_features_leave_outputs_and_bookkeeping_out(write: Writer) -> None:
    log = pa.table(
        {
            "age": [31, 40, None],
            "city": pa.array([b"Paris", b"Lyon", b"Nice"], pa.binary()),
            "output.score": [0.1, 0.9, 0.5],
            "sluice.model_version": [3, 3, 3],
            "sluice.request_id": ["a", "b", "c"],
        }
    )
    uri = write(log, "log.parquet")
    files = DataResolver().list_files(uri, DataFormat.REQUEST_LOG)
    statistics = compute_statistics(files).statistics
    names = [".".join(f.path.step) for f in statistics.datasets[0].features]
    assert names == ["age", "city"]
    assert feature(statistics, "city").string_stats.unique == 3


def test_missing_data_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        DataResolver().list_files((tmp_path / "nothing.csv").as_uri())
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound):
        DataResolver().list_files((tmp_path / "empty").as_uri() + "/")


def test_unknown_extension_needs_a_format(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("a\n1\n")
    with pytest.raises(InvalidArgument) as error:
        DataResolver().list_files((tmp_path / "data.txt").as_uri())
    assert error.value.field == "source.format"
    files = DataResolver().list_files((tmp_path / "data.txt").as_uri(), DataFormat.CSV)
    assert compute_statistics(files).num_examples == 1


def test_truncated_parquet_names_the_file(tmp_path: Path, write: Writer) -> None:
    uri = write(make_table(1_000), "data.parquet")
    path = tmp_path / "data.parquet"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InvalidArgument, match=r"data\.parquet") as error:
        stats_of(uri)
    assert error.value.reason == "UNREADABLE_INPUT"


def test_truncated_csv_row_names_the_file_and_the_row(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n7,8")
    with pytest.raises(InvalidArgument, match=r"data\.csv.*cannot parse") as error:
        stats_of(path.as_uri())
    assert error.value.reason == "UNREADABLE_INPUT"
    path.write_text("a,b,c\n" + "1,2,3\n" * 10_000 + "7,8")
    with pytest.raises(InvalidArgument, match=r"data\.csv: cannot parse the CSV after row"):
        stats_of(path.as_uri(), csv_block_size=1 << 14)


def test_headers_must_match_across_files(tmp_path: Path, write: Writer) -> None:
    write(pa.table({"a": [1], "b": [2]}), "span/1.csv")
    write(pa.table({"a": [1], "c": [2]}), "span/2.csv")
    with pytest.raises(InvalidArgument, match=r"2\.csv.*missing \['b'\].*unexpected \['c'\]") as e:
        stats_of((tmp_path / "span").as_uri() + "/")
    assert e.value.reason == "HEADER_MISMATCH"


def test_duplicate_header_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("a,a\n1,2\n")
    with pytest.raises(InvalidArgument, match="'a' appears twice"):
        stats_of((tmp_path / "dup.csv").as_uri())


def test_a_column_that_turns_to_text_is_read_again_as_text(tmp_path: Path) -> None:
    rows = [str(i) for i in range(30_000)] + ["n/a", "7"]
    (tmp_path / "mixed.csv").write_text("x,y\n" + "\n".join(f"{r},{i}" for i, r in enumerate(rows)))
    files = DataResolver().list_files((tmp_path / "mixed.csv").as_uri())
    result = compute_statistics(files, StatsOptions(csv_block_size=1 << 14))
    assert result.restarts == 1
    assert result.num_examples == len(rows)  # nothing lost to the restart
    x = feature(result.statistics, "x")
    assert x.WhichOneof("stats") == "string_stats"
    assert x.string_stats.common_stats.num_non_missing == len(rows)
    assert feature(result.statistics, "y").num_stats.common_stats.num_non_missing == len(rows)


def test_ints_then_floats_widen_to_float(tmp_path: Path, write: Writer) -> None:
    write(pa.table({"x": [1, 2, 3]}), "span/1.parquet")
    write(pa.table({"x": [0.5, 1.5]}), "span/2.parquet")
    result = stats_of((tmp_path / "span").as_uri() + "/")
    x = feature(result.statistics, "x")
    assert x.type == x.FLOAT and x.num_stats.mean == pytest.approx(8.0 / 5)


def test_numbers_in_one_file_and_text_in_another_become_text(tmp_path: Path, write: Writer) -> None:
    write(pa.table({"x": [1, 2, 3]}), "span/1.parquet")
    write(pa.table({"x": ["a", "b"]}), "span/2.parquet")
    result = stats_of((tmp_path / "span").as_uri() + "/")
    assert result.restarts == 1
    strings = feature(result.statistics, "x").string_stats
    assert strings.unique == 5 and strings.common_stats.num_non_missing == 5


def test_empty_files(tmp_path: Path, write: Writer) -> None:
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(InvalidArgument, match=r"zero\.csv.*empty") as error:
        stats_of((tmp_path / "zero.csv").as_uri())
    assert error.value.reason == "EMPTY_FILE"
    (tmp_path / "header.csv").write_text("a,b\n")
    statistics = stats_of((tmp_path / "header.csv").as_uri()).statistics
    assert statistics.datasets[0].num_examples == 0
    assert [".".join(f.path.step) for f in statistics.datasets[0].features] == ["a", "b"]
    write(pa.table({"a": pa.array([], pa.int64())}), "none.parquet")
    statistics = stats_of((tmp_path / "none.parquet").as_uri()).statistics
    assert statistics.datasets[0].num_examples == 0
    assert feature(statistics, "a").num_stats.common_stats.num_non_missing == 0


def test_invalid_utf8_names_file_and_column(tmp_path: Path) -> None:
    (tmp_path / "latin1.csv").write_bytes(b"id,city\n1,Paris\n2,S\xe3o Paulo\n")
    with pytest.raises(InvalidArgument, match=r"latin1\.csv: column 'city'") as error:
        stats_of((tmp_path / "latin1.csv").as_uri())
    assert error.value.reason == "INVALID_UTF8"
    late = b"id,city\n" + b"1,Paris\n" * 20_000 + b"2,S\xe3o Paulo\n"
    (tmp_path / "late.csv").write_bytes(late)
    with pytest.raises(InvalidArgument, match=r"late\.csv: column 'city'"):
        stats_of((tmp_path / "late.csv").as_uri(), csv_block_size=1 << 14)


def test_row_counts_are_checked_against_the_parquet_footer(
    tmp_path: Path, write: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = write(make_table(5_000), "data.parquet")
    real = pq.ParquetFile.iter_batches

    def lossy(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Iterator[pa.RecordBatch]:
        for index, batch in enumerate(real(self, *args, **kwargs)):
            if index != 1:
                yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lossy)
    with pytest.raises(DataLoss, match="footer records 5000") as error:
        stats_of(uri, parquet_batch_rows=1_000)
    assert error.value.reason == "ROW_COUNT_MISMATCH"


def test_a_huge_vocabulary_is_summarised_not_kept(write: Writer) -> None:
    ids = np.array([f"user-{i}" for i in range(60_000)])
    statistics = stats_of(write(pa.table({"user": ids}), "ids.parquet")).statistics
    strings = feature(statistics, "user").string_stats
    assert abs(strings.unique - 60_000) < 0.03 * 60_000
    assert len(strings.rank_histogram.buckets) <= 1_000
    assert strings.common_stats.num_non_missing == 60_000


def test_too_many_slices_is_an_error_not_a_cut(write: Writer) -> None:
    uri = write(pa.table({"id": [str(i) for i in range(50)], "x": list(range(50))}), "s.csv")
    with pytest.raises(InvalidArgument, match="more than 10 slices") as error:
        stats_of(uri, slices=(("id",),), max_slices=10)
    assert error.value.field == "slices"
    with pytest.raises(InvalidArgument, match="'nope' is not a column"):
        stats_of(uri, slices=(("nope",),))


def test_a_column_empty_at_first_takes_the_type_of_its_later_values(tmp_path: Path) -> None:
    lines = ["a,b"] + [f"{i}," for i in range(20_000)] + ["1,7", "2,8.5"]
    (tmp_path / "late.csv").write_text("\n".join(lines) + "\n")
    result = stats_of((tmp_path / "late.csv").as_uri(), csv_block_size=1 << 14)
    b = feature(result.statistics, "b")
    assert b.type == b.FLOAT and result.restarts == 2  # null -> int -> float
    assert b.num_stats.common_stats.num_non_missing == 2
    assert b.num_stats.mean == pytest.approx(7.75)
