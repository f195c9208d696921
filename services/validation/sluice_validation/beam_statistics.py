"""Statistics on Apache Beam: the same accumulators as the in-process path, as a CombineFn.

    statistics = compute_statistics_beam(files, StatsOptions(), runner="DirectRunner")

Each input file is read by a worker (so parallelism is per file: split big inputs into several
files), its batches feed `StatisticsCombineFn`, and the merged accumulator becomes the
DatasetFeatureStatisticsList, identical (up to sketch error) to `compute_statistics`. The runner
is any Beam runner name (DirectRunner in tests; FlinkRunner, SparkRunner, DataflowRunner with
their options in `pipeline_args`).

Only this module imports Beam; the in-process path never does.
"""

from __future__ import annotations

import re
import tempfile
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from sluice_runtime.errors import InvalidArgument
from tensorflow_metadata.proto.v0 import statistics_pb2

from .inputs import ColumnTypeChange, DataFile, DataFormat, DataResolver, ValueKind, read_batches
from .statistics import MAX_TYPE_RESTARTS, RowSampler, StatisticsAccumulator, StatsOptions

RUNNERS = ("DirectRunner", "FlinkRunner", "SparkRunner", "DataflowRunner", "PortableRunner")
_TYPE_CHANGE = re.compile(r"column '([^']*)' is read as (\w+)")


class StatisticsCombineFn(beam.CombineFn):  # type: ignore[misc]
    """Record batches -> one StatisticsAccumulator -> serialized DatasetFeatureStatisticsList."""

    def __init__(self, options: StatsOptions) -> None:
        self._options = options

    def create_accumulator(self) -> StatisticsAccumulator:
        return StatisticsAccumulator(self._options)

    def add_input(
        self, accumulator: StatisticsAccumulator, batch: pa.RecordBatch
    ) -> StatisticsAccumulator:
        accumulator.add(batch)
        return accumulator

    def merge_accumulators(
        self, accumulators: Iterable[StatisticsAccumulator]
    ) -> StatisticsAccumulator:
        merged: StatisticsAccumulator | None = None
        for accumulator in accumulators:
            merged = accumulator if merged is None else merged.merge(accumulator)
        return merged if merged is not None else self.create_accumulator()

    def extract_output(self, accumulator: StatisticsAccumulator) -> bytes:
        return bytes(accumulator.to_proto().SerializeToString(deterministic=True))


class _ReadFile(beam.DoFn):  # type: ignore[misc]
    """(uri, format) -> the file's normalized, sampled record batches."""

    def __init__(self, options: StatsOptions, forced: dict[str, ValueKind]) -> None:
        self._options = options
        self._forced = forced

    def process(self, element: tuple[str, str]) -> Iterator[pa.RecordBatch]:
        uri, format_name = element
        (data_file,) = DataResolver().list_files(uri, DataFormat(format_name))
        sampler = RowSampler(self._options.sample_rate, self._options.seed + _stable_hash(uri))
        for item in read_batches([data_file], self._options.read_settings(self._forced)):
            yield sampler.sample(item.batch)


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def build_pipeline(
    pipeline: beam.Pipeline,
    files: Sequence[DataFile],
    options: StatsOptions,
    output_path: str,
    forced: dict[str, ValueKind] | None = None,
) -> None:
    """Add the statistics steps to `pipeline`; the result is written to `output_path`."""
    steps: Any = beam  # Beam ships no type hints
    _ = (
        pipeline
        | "Files" >> steps.Create([(f.uri, f.format.value) for f in files])
        # Each file on whichever worker picks it up.
        | "Spread" >> steps.Reshuffle()
        | "Read" >> steps.ParDo(_ReadFile(options, dict(forced or {})))
        | "Statistics" >> steps.CombineGlobally(StatisticsCombineFn(options))
        | "Write" >> steps.Map(_write, output_path)
    )


def _write(data: bytes, path: str) -> None:
    with FileSystems.create(path) as sink:
        sink.write(data)


def compute_statistics_beam(
    files: Sequence[DataFile],
    options: StatsOptions | None = None,
    *,
    runner: str = "DirectRunner",
    pipeline_args: Sequence[str] = (),
    temp_location: str | None = None,
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Statistics of `files` computed by a Beam pipeline on `runner`.

    Args:
        pipeline_args: extra Beam options (e.g. "--flink_master=host:8081", "--project=...").
        temp_location: where the workers write the result (a folder every worker and this
            process can reach: a local folder for DirectRunner, gs:// or s3:// for clusters);
            default: a local temporary folder.
    """
    options = options or StatsOptions()
    if runner not in RUNNERS:
        raise InvalidArgument(
            f"unknown Beam runner {runner!r}; use one of {', '.join(RUNNERS)}",
            field="options.beam_runner",
        )
    forced: dict[str, ValueKind] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-beam-") as local:
        folder = temp_location or local
        for _ in range(MAX_TYPE_RESTARTS + 1):
            output = FileSystems.join(folder, f"statistics-{uuid.uuid4().hex}.pb")
            try:
                _run(files, options, runner, pipeline_args, output, forced)
            except Exception as error:
                change = _type_change_in(error)
                if change is None:
                    raise _domain_error_in(error) from error
                column, kind = change
                previous = forced.get(column, ValueKind.NULL)
                if previous.widen(kind) is previous:
                    raise
                forced[column] = previous.widen(kind)
                continue
            with FileSystems.open(output) as source:
                data = source.read()
            FileSystems.delete([output])  # type: ignore[no-untyped-call]
            result = statistics_pb2.DatasetFeatureStatisticsList()
            result.ParseFromString(data)
            return result
    raise InvalidArgument(
        f"column types kept changing across files ({forced}); give the data consistent types",
        field="source.data.uri",
        reason="MIXED_TYPES",
    )


def _run(
    files: Sequence[DataFile],
    options: StatsOptions,
    runner: str,
    pipeline_args: Sequence[str],
    output: str,
    forced: dict[str, ValueKind],
) -> None:
    pipeline_options = PipelineOptions([*pipeline_args], runner=runner)
    with beam.Pipeline(options=pipeline_options) as pipeline:
        build_pipeline(pipeline, files, options, output, forced)


def _type_change_in(error: BaseException) -> tuple[str, ValueKind] | None:
    for cause in _chain(error):
        if isinstance(cause, ColumnTypeChange):
            return cause.column, cause.kind
    match = _TYPE_CHANGE.search(str(error))
    if match and match.group(2).upper() in ValueKind.__members__:
        return match.group(1), ValueKind[match.group(2).upper()]
    return None


def _domain_error_in(error: BaseException) -> BaseException:
    """The Sluice domain error a runner wrapped, when there is one (so the code survives)."""
    for cause in _chain(error):
        if getattr(type(cause), "grpc_code_name", None):
            return cause
    return error


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: Any = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
