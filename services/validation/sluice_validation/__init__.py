"""Sluice validation: the data gate (statistics, schema, anomalies, drift, skew) in TFDV formats.

The core is plain Python (no gRPC, no Beam):

    from sluice_validation import DataResolver, StatsOptions, compute_statistics, infer_schema
    files = DataResolver().list_files("file:///data/span-7/")
    statistics = compute_statistics(files, StatsOptions()).statistics
    schema = infer_schema(statistics)
    result = validate_statistics(statistics, schema)
"""

from .comparison import ComparisonKind, FeatureDistance, Measure, compare
from .inputs import DataFile, DataFormat, DataResolver
from .schema import infer_schema, schema_from_text, schema_to_text
from .statistics import StatisticsResult, StatsOptions, compute_statistics
from .validation import ValidationResult, validate_statistics

__all__ = [
    "ComparisonKind",
    "DataFile",
    "DataFormat",
    "DataResolver",
    "FeatureDistance",
    "Measure",
    "StatisticsResult",
    "StatsOptions",
    "ValidationResult",
    "compare",
    "compute_statistics",
    "infer_schema",
    "schema_from_text",
    "schema_to_text",
    "validate_statistics",
]
