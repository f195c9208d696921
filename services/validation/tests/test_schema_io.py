"""Schema inference as TFDV does it, schema.pbtxt round trips, environments."""

from __future__ import annotations

import pyarrow as pa
import pytest
from google.protobuf import text_format
from sluice_runtime.errors import InvalidArgument
from sluice_validation.schema import (
    exclude_from_environment,
    in_environment,
    infer_schema,
    schema_from_text,
    schema_to_text,
    string_domain_of,
)
from sluice_validation.testing import Writer, make_table, stats_of
from sluice_validation.validation import validate_statistics
from tensorflow_metadata.proto.v0 import schema_pb2

# A schema as TFDV writes it (tfdv.write_schema_text), then curated by hand as TFX users do.
TFDV_SCHEMA = """
feature {
  name: "price"
  value_count {
    min: 1
    max: 1
  }
  type: FLOAT
  float_domain {
    min: 0.0
    max: 1000.0
  }
  presence {
    min_count: 1
  }
  drift_comparator {
    jensen_shannon_divergence {
      threshold: 0.1
    }
  }
}
feature {
  name: "color"
  type: BYTES
  domain: "color"
  presence {
    min_fraction: 1.0
    min_count: 1
  }
  skew_comparator {
    infinity_norm {
      threshold: 0.05
    }
  }
  shape {
    dim {
      size: 1
    }
  }
}
feature {
  name: "label"
  type: INT
  bool_domain {
  }
  presence {
    min_fraction: 1.0
    min_count: 1
  }
  not_in_environment: "SERVING"
  shape {
    dim {
      size: 1
    }
  }
}
string_domain {
  name: "color"
  value: "black"
  value: "blue"
  value: "green"
  value: "red"
}
default_environment: "TRAINING"
default_environment: "SERVING"
dataset_constraints {
  min_examples_count: 10
}
"""


def domain_values(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> list[str]:
    domain = string_domain_of(schema, feature)
    assert domain is not None
    return list(domain.value)


def test_a_tfdv_schema_pbtxt_round_trips() -> None:
    schema = schema_from_text(TFDV_SCHEMA)
    assert [f.name for f in schema.feature] == ["price", "color", "label"]
    assert domain_values(schema, schema.feature[1]) == ["black", "blue", "green", "red"]
    again = schema_from_text(schema_to_text(schema))
    assert again == schema
    assert text_format.Parse(schema_to_text(schema), schema_pb2.Schema()) == schema
    assert schema_from_text(schema.SerializeToString()) == schema  # binary is accepted too


def test_a_broken_pbtxt_names_line_and_column() -> None:
    with pytest.raises(InvalidArgument, match=r"2:3") as error:
        schema_from_text('feature {\n  nmae: "x"\n}\n', what="schema")
    assert error.value.field == "schema"


def test_inference_follows_tfdv(write: Writer) -> None:
    statistics = stats_of(write(make_table(5_000, seed=1), "data.csv")).statistics
    schema = infer_schema(statistics)
    by_name = {f.name: f for f in schema.feature}
    assert list(by_name) == ["price", "quantity", "color", "country", "label"]

    price = by_name["price"]  # sometimes missing: a value count, no fraction
    assert price.type == schema_pb2.FLOAT
    assert (price.value_count.min, price.value_count.max) == (1, 1)
    assert price.presence.min_count == 1 and not price.presence.HasField("min_fraction")

    quantity = by_name["quantity"]  # always there, once: shape [1]
    assert quantity.type == schema_pb2.INT
    assert [d.size for d in quantity.shape.dim] == [1]
    assert quantity.presence.min_fraction == 1.0
    assert not quantity.HasField("int_domain")

    color = by_name["color"]
    assert color.type == schema_pb2.BYTES and color.domain == "color"
    assert domain_values(schema, color) == ["black", "blue", "green", "red"]

    # The inferred schema accepts the data it came from.
    assert not validate_statistics(statistics, schema).findings


def test_boolean_inference_follows_tfdv(write: Writer) -> None:
    table = pa.table(
        {
            "clicked": [0, 1, 1, 0],  # ints 0/1: bool_domain {}
            "always": [1, 1, 1, 1],  # max 1 and min >= 0 is enough
            "zeros": [0, 0, 0, 0],  # but not without a 1
            "count": [0, 1, 2, 1],
            "paid": ["true", "false", "false", "true"],  # TFDV's words: the spelling is kept
            "set": ["SET", "SET", "SET", "SET"],  # one word alone is enough
            "answer": ["yes", "no", "no", "yes"],  # other words: a string domain
        }
    )
    schema = infer_schema(stats_of(write(table, "flags.csv")).statistics)
    by_name = {f.name: f for f in schema.feature}
    kinds = {name: f.WhichOneof("domain_info") for name, f in by_name.items()}
    assert kinds == {
        "clicked": "bool_domain",
        "always": "bool_domain",
        "zeros": None,
        "count": None,
        "paid": "bool_domain",
        "set": "bool_domain",
        "answer": "domain",
    }
    paid = by_name["paid"].bool_domain
    assert (paid.true_value, paid.false_value) == ("true", "false")
    assert by_name["set"].bool_domain.true_value == "SET"
    assert not by_name["set"].bool_domain.HasField("false_value")
    assert [d.name for d in schema.string_domain] == ["answer"]


def test_inference_options(write: Writer) -> None:
    statistics = stats_of(write(make_table(2_000, seed=2), "data.parquet")).statistics
    small = infer_schema(statistics, max_string_domain_size=3)
    assert not small.feature[2].HasField("domain")  # color has 4 values
    assert [d.name for d in small.string_domain] == ["country"]
    ranged = infer_schema(statistics, infer_numeric_ranges=True)
    quantity = ranged.feature[1].int_domain
    assert (quantity.min, quantity.max) == (0, 49)
    assert ranged.feature[0].float_domain.HasField("min")


def test_list_features_get_a_value_count(write: Writer) -> None:
    table = pa.table({"tags": ["a|b", "a", "c|a|b"]})
    statistics = stats_of(write(table, "t.csv"), list_separators={"tags": "|"}).statistics
    tags = infer_schema(statistics).feature[0]
    assert tags.value_count.min == 1 and not tags.value_count.HasField("max")
    assert tags.presence.min_fraction == 1.0


def test_environments_follow_tfdv_rules() -> None:
    schema = schema_from_text(TFDV_SCHEMA)
    label = schema.feature[2]
    assert in_environment(schema, label, "TRAINING")
    assert not in_environment(schema, label, "SERVING")
    assert in_environment(schema, label, "")
    assert not in_environment(schema, schema.feature[0], "EVAL")  # not a default environment
    exclude_from_environment(schema, "price", "SERVING")
    assert list(schema.feature[0].not_in_environment) == ["SERVING"]
    with pytest.raises(InvalidArgument):
        exclude_from_environment(schema, "nope", "SERVING")


def test_the_label_may_be_absent_in_serving(write: Writer) -> None:
    schema = schema_from_text(TFDV_SCHEMA)
    serving = make_table(500, seed=3).drop_columns(["label", "quantity", "country"])
    statistics = stats_of(write(serving, "serving.csv")).statistics
    in_serving = validate_statistics(statistics, schema, environment="SERVING")
    assert not in_serving.findings
    in_training = validate_statistics(statistics, schema, environment="TRAINING")
    assert [(f.feature, f.kind) for f in in_training.findings] == [
        ("label", "SCHEMA_MISSING_COLUMN")
    ]
