"""Compatibility with TFDV both ways, on the same data: our statistics in TFDV, its schema in ours.

TFDV lives in its own virtual environment (make_tfdv_venv.sh), so this file plays two roles: run
with the repository's Python it computes our side and starts itself again under the TFDV Python
for TFDV's side; the two exchange files in a work folder.

    .venv/bin/python benchmarks/peers/tfdv_compat_check.py \\
        --tfdv-python /tmp/peers/tfdv-venv/bin/python

Checks (each printed PASS or FAIL; the exit status is 1 when any fails):

* TFDV reads our FeatureStats.pb (`tfdv.load_stats_binary`) and its text form
  (`tfdv.load_statistics`), finds every feature and slice through its own views, renders it with
  `tfdv.get_statistics_html` (alone and beside TFDV's own statistics), infers the same schema from
  it as from its own statistics, and validates it against its own schema without anomalies.
* Our numbers agree with TFDV's on the same CSV: counts exactly, moments to 1e-6, quantiles
  within 2% of the feature's range, the same slice names.
* We read TFDV's schema.pbtxt and its statistics: our validator finds no anomaly in either
  pairing, and our inferred schema equals TFDV's.
* On a broken span (a third label class, an unknown category, a dropped and an extra column) our
  validator and TFDV's report the same anomaly kinds per feature against TFDV's schema.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent.parent
SLICE_FEATURE = "cat_0"  # 3 values: slices "cat_0_c0_v000", ...
QUANTILE_TOLERANCE = 0.02  # of the feature's range: two different sketches, both about 1% off
MOMENT_TOLERANCE = 1e-6  # relative


# -- TFDV's side (runs under the TFDV Python; imports only TFDV and the standard library) ---------


def tfdv_side(work: Path) -> dict[str, Any]:
    import tensorflow_data_validation as tfdv
    from google.protobuf import text_format
    from tensorflow_data_validation.utils import slicing_util

    report: dict[str, Any] = {"tfdv_version": tfdv.__version__}
    ours = tfdv.load_stats_binary(str(work / "ours" / "FeatureStats.pb"))
    ours_sliced = tfdv.load_stats_binary(str(work / "ours" / "FeatureStats-sliced.pb"))
    report["load_stats_binary_features"] = len(ours.datasets[0].features)
    text_loaded = tfdv.load_statistics(str(work / "ours" / "FeatureStats.pbtxt"))
    report["load_statistics_text_equal"] = text_loaded == ours
    try:  # TFX's FeatureStats.pb is binary; load_statistics only reads TFRecord or text
        tfdv.load_statistics(str(work / "ours" / "FeatureStats.pb"))
        report["load_statistics_binary"] = "read"
    except Exception as error:  # report whatever TFDV raises
        report["load_statistics_binary"] = f"not read: {type(error).__name__}"

    # TFDV's own views of our proto: features by path, slices by name.
    view = tfdv.utils.stats_util.DatasetListView(ours_sliced)
    report["our_slices_seen_by_tfdv"] = sorted(view.list_slices())
    default = view.get_default_slice_or_die()
    report["features_seen_by_tfdv"] = sorted(str(path) for path in default.list_features())
    html = tfdv.get_statistics_html(ours)

    csv = str(work / "data.csv")
    # TFDV writes its result to output_path: inside the work folder, removed with it.
    theirs = tfdv.generate_statistics_from_csv(csv, output_path=str(work / "tfdv-stats.tfrecord"))
    sliced_options = tfdv.StatsOptions(
        experimental_slice_functions=[
            slicing_util.get_feature_value_slicer(features={SLICE_FEATURE: None})
        ]
    )
    theirs_sliced = tfdv.generate_statistics_from_csv(
        csv, stats_options=sliced_options, output_path=str(work / "tfdv-sliced.tfrecord")
    )
    report["tfdv_slices"] = sorted(d.name for d in theirs_sliced.datasets)
    side_by_side = tfdv.get_statistics_html(theirs, ours, lhs_name="TFDV", rhs_name="Sluice")
    report["html_bytes"] = len(html)
    report["html_features"] = _html_features(html)
    report["side_by_side_html_bytes"] = len(side_by_side)
    report["side_by_side_html_features"] = _html_features(side_by_side)

    (work / "tfdv").mkdir(exist_ok=True)
    (work / "tfdv" / "FeatureStats.pb").write_bytes(theirs.SerializeToString())
    their_schema = tfdv.infer_schema(theirs)
    tfdv.write_schema_text(their_schema, str(work / "tfdv" / "schema.pbtxt"))
    schema_from_ours = tfdv.infer_schema(ours)
    report["tfdv_infers_same_schema_from_ours"] = schema_from_ours == their_schema
    if schema_from_ours != their_schema:
        report["schema_from_ours"] = text_format.MessageToString(schema_from_ours)

    anomalies = tfdv.validate_statistics(ours, their_schema)
    report["tfdv_anomalies_ours_vs_tfdv_schema"] = _anomaly_list(anomalies)
    our_schema = tfdv.load_schema_text(str(work / "ours" / "schema.pbtxt"))
    anomalies = tfdv.validate_statistics(theirs, our_schema)
    report["tfdv_anomalies_tfdv_stats_vs_our_schema"] = _anomaly_list(anomalies)
    report["numbers"] = _numbers(theirs)

    # The same anomalies on a broken span (our statistics of it, TFDV's schema).
    dirty = tfdv.load_stats_binary(str(work / "ours" / "FeatureStats-dirty.pb"))
    report["tfdv_anomaly_kinds_dirty"] = _anomaly_kinds(
        tfdv.validate_statistics(dirty, their_schema)
    )
    return report


def _anomaly_kinds(anomalies: Any) -> dict[str, list[str]]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    kinds = {
        name: sorted(anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason)
        for name, info in anomalies.anomaly_info.items()
    }
    if anomalies.HasField("dataset_anomaly_info"):
        kinds[""] = sorted(
            anomalies_pb2.AnomalyInfo.Type.Name(r.type)
            for r in anomalies.dataset_anomaly_info.reason
        )
    return kinds


def _html_features(html: str) -> list[str]:
    """The features of the statistics embedded in the page: Facets gets them as a base64
    DatasetFeatureStatisticsList in the proto-input attribute, names and all."""
    import base64
    import re

    from tensorflow_metadata.proto.v0 import statistics_pb2

    found = re.search(r'proto-input="([A-Za-z0-9+/=]+)"', html)
    if found is None:
        return []
    embedded = statistics_pb2.DatasetFeatureStatisticsList.FromString(
        base64.b64decode(found.group(1))
    )
    return sorted(".".join(f.path.step) or f.name for d in embedded.datasets for f in d.features)


def _anomaly_list(anomalies: Any) -> list[str]:
    found = [f"{name}: {info.short_description}" for name, info in anomalies.anomaly_info.items()]
    if anomalies.HasField("dataset_anomaly_info"):
        found.append(f"(dataset): {anomalies.dataset_anomaly_info.short_description}")
    return sorted(found)


def _numbers(statistics: Any) -> dict[str, dict[str, Any]]:
    """The figures to compare, per feature, from the unsliced dataset."""
    dataset = statistics.datasets[0]
    out: dict[str, dict[str, Any]] = {"": {"num_examples": dataset.num_examples}}
    for feature in dataset.features:
        name = ".".join(feature.path.step) or feature.name
        figures: dict[str, Any] = {"type": feature.type}
        if feature.HasField("num_stats"):
            stats = feature.num_stats
            common = stats.common_stats
            figures.update(
                mean=stats.mean,
                std_dev=stats.std_dev,
                min=stats.min,
                max=stats.max,
                num_zeros=stats.num_zeros,
                median=stats.median,
                quantiles=[
                    bucket.high_value
                    for histogram in stats.histograms
                    if histogram.type == histogram.QUANTILES
                    for bucket in histogram.buckets
                ],
            )
        else:
            stats = feature.string_stats
            common = stats.common_stats
            figures.update(
                unique=stats.unique,
                avg_length=stats.avg_length,
                top_values=[(v.value, v.frequency) for v in stats.top_values[:5]],
            )
        figures.update(
            num_non_missing=common.num_non_missing,
            num_missing=common.num_missing,
            min_num_values=common.min_num_values,
            max_num_values=common.max_num_values,
        )
        out[name] = figures
    return out


# -- our side (runs under the repository's Python) ------------------------------------------------


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        print(f"{'PASS' if ok else 'FAIL'}  {what}" + (f"  ({detail})" if detail else ""))
        if not ok:
            self.failed.append(what)


def our_side_before(work: Path, rows: int) -> None:
    from sluice_validation.formats import statistics_to_bytes
    from sluice_validation.inputs import DataResolver
    from sluice_validation.schema import infer_schema, schema_to_text
    from sluice_validation.statistics import StatsOptions, compute_statistics

    sys.path.insert(0, str(BENCHMARKS))
    from google.protobuf import text_format
    from make_tabular_data import generate

    generate(work, rows, formats=("csv",), name="data")
    files = DataResolver().list_files((work / "data.csv").as_uri())
    statistics = compute_statistics(files, StatsOptions()).statistics
    sliced = compute_statistics(files, StatsOptions(slices=((SLICE_FEATURE,),))).statistics
    (work / "ours").mkdir()
    (work / "ours" / "FeatureStats.pb").write_bytes(statistics_to_bytes(statistics))
    (work / "ours" / "FeatureStats-sliced.pb").write_bytes(statistics_to_bytes(sliced))
    (work / "ours" / "FeatureStats.pbtxt").write_text(text_format.MessageToString(statistics))
    (work / "ours" / "schema.pbtxt").write_text(schema_to_text(infer_schema(statistics)))

    # A broken span: a third label class, an unknown category, a dropped and an extra column.
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    table = pa_csv.read_csv(work / "data.csv")
    labels = table["label"].to_numpy().copy()
    labels[:5] = 2
    categories = table["cat_1"].to_pylist()
    categories[:50] = ["c1_v999"] * 50
    table = (
        table.set_column(table.column_names.index("label"), "label", pa.array(labels))
        .set_column(table.column_names.index("cat_1"), "cat_1", pa.array(categories))
        .drop_columns(["num_9"])
        .append_column("extra", pa.array(np.arange(table.num_rows)))
    )
    pa_csv.write_csv(table, work / "dirty.csv")
    dirty = compute_statistics(DataResolver().list_files((work / "dirty.csv").as_uri()))
    (work / "ours" / "FeatureStats-dirty.pb").write_bytes(statistics_to_bytes(dirty.statistics))


def our_side_after(work: Path, report: dict[str, Any], checks: Checks) -> None:
    from sluice_validation.formats import statistics_from_bytes
    from sluice_validation.schema import infer_schema, schema_from_text
    from sluice_validation.validation import validate_statistics

    ours = statistics_from_bytes((work / "ours" / "FeatureStats.pb").read_bytes())
    theirs = statistics_from_bytes((work / "tfdv" / "FeatureStats.pb").read_bytes())
    their_schema = schema_from_text((work / "tfdv" / "schema.pbtxt").read_bytes())
    our_schema = schema_from_text((work / "ours" / "schema.pbtxt").read_bytes())
    mine = validate_statistics(ours, their_schema)
    checks.check(
        not mine.findings,
        "our validator: our statistics vs TFDV's schema.pbtxt, no anomaly",
        "; ".join(f"{f.feature}: {f.kind}" for f in mine.findings),
    )
    crossed = validate_statistics(theirs, our_schema)
    checks.check(
        not crossed.findings,
        "our validator: TFDV's statistics vs our schema.pbtxt, no anomaly",
        "; ".join(f"{f.feature}: {f.kind}" for f in crossed.findings),
    )
    dirty = statistics_from_bytes((work / "ours" / "FeatureStats-dirty.pb").read_bytes())
    kinds: dict[str, list[str]] = {}
    for finding in validate_statistics(dirty, their_schema).findings:
        kinds.setdefault(finding.feature, []).append(finding.kind)
    kinds = {name: sorted(found) for name, found in kinds.items()}
    checks.check(
        kinds == report["tfdv_anomaly_kinds_dirty"],
        "a broken span: our anomalies == TFDV's (same schema, same statistics)",
        f"ours {kinds}; TFDV {report['tfdv_anomaly_kinds_dirty']}",
    )
    same = infer_schema(ours) == their_schema
    checks.check(same, "our inferred schema == TFDV's inferred schema (same data)")
    from_theirs = infer_schema(theirs) == their_schema
    checks.check(from_theirs, "our inference from TFDV's statistics == TFDV's schema")


def compare_numbers(
    ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]], checks: Checks
) -> None:
    checks.check(
        set(ours) == set(theirs), "the same features", f"{sorted(set(ours) ^ set(theirs))}"
    )
    problems: list[str] = []
    worst_quantile = 0.0
    for name in sorted(set(ours) & set(theirs)):
        mine, yours = ours[name], theirs[name]
        for key, value in yours.items():
            if key not in mine:
                problems.append(f"{name}.{key} missing")
                continue
            if key == "quantiles":
                span = (yours["max"] - yours["min"]) or 1.0
                if len(value) != len(mine[key]):
                    problems.append(f"{name}.quantiles: {len(mine[key])} vs {len(value)} buckets")
                    continue
                gap = max(
                    (abs(a - b) / span for a, b in zip(mine[key], value, strict=True)), default=0.0
                )
                worst_quantile = max(worst_quantile, gap)
                if gap > QUANTILE_TOLERANCE:
                    problems.append(f"{name}.quantiles off by {gap:.1%} of the range")
            elif key == "median":
                span = (yours["max"] - yours["min"]) or 1.0
                if abs(mine[key] - value) / span > QUANTILE_TOLERANCE:
                    problems.append(f"{name}.median {mine[key]} vs {value}")
            elif isinstance(value, float):
                if not math.isclose(mine[key], value, rel_tol=MOMENT_TOLERANCE, abs_tol=1e-9):
                    problems.append(f"{name}.{key} {mine[key]!r} vs TFDV {value!r}")
            elif isinstance(value, list):
                if [tuple(v) for v in mine[key]] != [tuple(v) for v in value]:
                    problems.append(f"{name}.{key} {mine[key]} vs TFDV {value}")
            elif mine[key] != value:
                problems.append(f"{name}.{key} {mine[key]!r} vs TFDV {value!r}")
    checks.check(
        not problems,
        "our numbers == TFDV's (counts exact, moments 1e-6, quantiles 2% of range)",
        f"worst quantile gap {worst_quantile:.2%} of the range"
        + ("; " + "; ".join(problems[:12]) if problems else ""),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tfdv-python", help="a Python with tensorflow_data_validation")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--tfdv-side", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tfdv_side:
        print(json.dumps(tfdv_side(args.tfdv_side)))
        return
    if not args.tfdv_python:
        parser.error("--tfdv-python is required (build one with make_tfdv_venv.sh)")
    with tempfile.TemporaryDirectory(prefix="tfdv-compat-") as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        sys.exit(1 if run_checks(work, args.rows, args.tfdv_python) else 0)


def run_checks(work: Path, rows: int, tfdv_python: str) -> list[str]:
    """Run every check; returns the names of those that failed."""
    our_side_before(work, rows)
    done = subprocess.run(
        [tfdv_python, str(Path(__file__).resolve()), "--tfdv-side", str(work)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"the TFDV side failed (exit {done.returncode})")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])

    from sluice_validation.formats import statistics_from_bytes

    ours = statistics_from_bytes((work / "ours" / "FeatureStats.pb").read_bytes())
    sliced = statistics_from_bytes((work / "ours" / "FeatureStats-sliced.pb").read_bytes())
    checks = Checks()
    print(f"TFDV {report['tfdv_version']}, {rows:,} rows x 21 columns, work folder {work}")
    features = len(ours.datasets[0].features)
    checks.check(
        report["load_stats_binary_features"] == features,
        "tfdv.load_stats_binary reads our FeatureStats.pb",
        f"{report['load_stats_binary_features']} of {features} features",
    )
    checks.check(
        report["load_statistics_text_equal"],
        "tfdv.load_statistics reads our statistics in text form, equal to the binary",
    )
    print(
        "info  tfdv.load_statistics on the binary FeatureStats.pb:"
        f" {report['load_statistics_binary']} (it reads TFRecord or text only; TFX's binary"
        " FeatureStats.pb is read with tfdv.load_stats_binary)"
    )
    names = sorted(".".join(f.path.step) for f in ours.datasets[0].features)
    checks.check(
        report["features_seen_by_tfdv"] == names,
        "TFDV's DatasetListView finds every feature by path",
    )
    checks.check(
        report["our_slices_seen_by_tfdv"] == sorted(d.name for d in sliced.datasets),
        "TFDV's DatasetListView finds every slice of ours by name",
        ", ".join(report["our_slices_seen_by_tfdv"]),
    )
    checks.check(
        report["our_slices_seen_by_tfdv"] == report["tfdv_slices"],
        f"slice names == TFDV's slicing on {SLICE_FEATURE}",
        f"TFDV: {', '.join(report['tfdv_slices'])}",
    )
    checks.check(
        report["html_features"] == names,
        "tfdv.get_statistics_html renders ours (every feature in the Facets page)",
        f"{report['html_bytes']:,} bytes",
    )
    checks.check(
        report["side_by_side_html_features"] == sorted(names + names),
        "tfdv.get_statistics_html(TFDV's, ours) side by side",
        f"{report['side_by_side_html_bytes']:,} bytes",
    )
    checks.check(
        report["tfdv_infers_same_schema_from_ours"],
        "tfdv.infer_schema(ours) == tfdv.infer_schema(TFDV's statistics)",
        report.get("schema_from_ours", "")[:400],
    )
    checks.check(
        not report["tfdv_anomalies_ours_vs_tfdv_schema"],
        "tfdv.validate_statistics: ours vs TFDV's schema, no anomaly",
        "; ".join(report["tfdv_anomalies_ours_vs_tfdv_schema"]),
    )
    checks.check(
        not report["tfdv_anomalies_tfdv_stats_vs_our_schema"],
        "tfdv.validate_statistics: TFDV's statistics vs our schema.pbtxt, no anomaly",
        "; ".join(report["tfdv_anomalies_tfdv_stats_vs_our_schema"]),
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    compare_numbers(_ours_numbers(ours), report["numbers"], checks)
    our_side_after(work, report, checks)
    print(f"{len(checks.failed)} failed" if checks.failed else "all checks passed")
    return checks.failed


def _ours_numbers(statistics: Any) -> dict[str, dict[str, Any]]:
    # The same extraction as TFDV's side, on our proto, through a JSON round trip so that both
    # sides compare the same Python types.
    return dict(json.loads(json.dumps(_numbers(statistics))))


if __name__ == "__main__":
    main()
