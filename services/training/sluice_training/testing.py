"""Small generated datasets and specs for tests, examples and benchmarks (numpy and pyarrow only).

`tabular_span` draws rows of a made-up "will the customer buy" problem whose label depends on two
numeric features, a text category and an integer category, so every preprocessing path matters;
consecutive spans share the true relationship, which is what makes warm starts pay off.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from sluice_runtime.artifacts import ArtifactStore

from sluice_training.data import table_to_bytes_csv

COLORS = ("red", "green", "blue", "black")
COLOR_EFFECT = {"red": 1.6, "green": 0.0, "blue": -1.6, "black": 0.6, "violet": 1.0}
SIZE_EFFECT = {1: -1.0, 2: 0.0, 3: 1.0, 7: 0.3}

SCHEMA_PBTXT = """
feature { name: "age" type: FLOAT }
feature { name: "income" type: FLOAT }
feature { name: "color" type: BYTES }
feature { name: "size" type: INT int_domain { is_categorical: true } }
feature { name: "bought" type: INT }
"""

MULTICLASS_SCHEMA_PBTXT = """
feature { name: "age" type: FLOAT }
feature { name: "income" type: FLOAT }
feature { name: "color" type: BYTES }
feature { name: "size" type: INT int_domain { is_categorical: true } }
feature { name: "segment" type: BYTES string_domain { value: "low" value: "mid" value: "high" } }
"""


def tabular_span(
    rows: int, seed: int, *, colors: Sequence[str] = COLORS, missing: float = 0.05
) -> pa.Table:
    """Columns age, income (float, with NaN), color (text), size (int), bought (0/1) and
    segment (low/mid/high: a multi-class label)."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40.0, 12.0, rows)
    income = rng.lognormal(10.0, 0.5, rows)
    color = rng.choice(list(colors), rows)
    size = rng.choice(list(SIZE_EFFECT), rows)
    score = (
        0.08 * (age - 40.0)
        + 1.5 * np.log(income / 22_000.0)
        + np.array([COLOR_EFFECT[c] for c in color])
        + np.array([SIZE_EFFECT[int(s)] for s in size])
    )
    bought = (rng.random(rows) < 1.0 / (1.0 + np.exp(-2.0 * score))).astype(np.int64)
    segment = np.where(score < -0.7, "low", np.where(score < 0.7, "mid", "high"))
    age[rng.random(rows) < missing] = np.nan
    return pa.table(
        {
            "age": age,
            "income": income,
            "color": pa.array(color, pa.string()),
            "size": size.astype(np.int64),
            "bought": bought,
            "segment": pa.array(segment, pa.string()),
        }
    )


def put_csv(store: ArtifactStore, key: str, table: pa.Table) -> str:
    """Store ``table`` as CSV; its URI."""
    store.put(key, table_to_bytes_csv(table), content_type="text/csv")
    return store.uri_for(key)


def put_text(store: ArtifactStore, key: str, text: str) -> str:
    store.put(key, text.encode())
    return store.uri_for(key)


def reference_mlp_data(rows: int, seed: int = 0) -> pa.Table:
    """The benchmark's data: 32 float features f00..f31 and a 0/1 label."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 32)).astype(np.float32)
    weights = rng.normal(size=32)
    label = (features @ weights + rng.normal(size=rows) > 0).astype(np.int64)
    columns: dict[str, object] = {f"f{i:02d}": features[:, i] for i in range(32)}
    columns["label"] = label
    return pa.table(columns)


def reference_mlp_schema() -> str:
    lines = [f'feature {{ name: "f{i:02d}" type: FLOAT }}' for i in range(32)]
    lines.append('feature { name: "label" type: INT }')
    return "\n".join(lines) + "\n"
