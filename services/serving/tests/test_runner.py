"""SavedModelRunner: the flat call of a signature's graph answers as the public call does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sluice_serving.runner import SavedModelRunner


def _inputs(name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    if name == "numeric":
        return {"features": rng.normal(size=(5, 4)).astype(np.float32)}
    if name == "dict":
        return {
            "age": np.array([30, 41, 19], np.int64),
            "income": np.array([1000.0, 52.5, 0.0], np.float32),
            "country": np.array([b"NL", b"DE", b"NL"], dtype=object),
        }
    return {"x": rng.normal(size=(3, 2)).astype(np.float32)}


@pytest.mark.parametrize("name", ["numeric", "dict", "linear2"])
def test_flat_call_matches_public_call(model_dirs: dict[str, Path], name: str) -> None:
    flat = SavedModelRunner(model_dirs[name])
    public = SavedModelRunner(model_dirs[name], flat_calls=False)
    # Fails when TensorFlow's internals change and serving silently falls back to the slow call.
    assert sorted(flat.flat_signatures) == sorted(flat.signatures)
    assert list(public.flat_signatures) == []
    inputs = _inputs(name)
    for signature in flat.signatures:
        got = flat.run(signature, inputs)
        want = public.run(signature, inputs)
        assert sorted(got) == sorted(want) == sorted(flat.signatures[signature].outputs)
        for key, value in want.items():
            assert got[key].dtype == value.dtype, key
            np.testing.assert_array_equal(got[key], value, err_msg=f"{signature}: {key}")
    flat.close()
    public.close()


def test_flat_call_rejects_wrong_dtype_like_the_public_call(model_dirs: dict[str, Path]) -> None:
    # The core checks dtypes before calling; a wrong one reaching the model still fails loudly.
    flat = SavedModelRunner(model_dirs["linear2"])
    with pytest.raises(Exception, match=r"(?i)float|double|type"):
        flat.run("serving_default", {"x": np.ones((2, 2), np.float64)})
    flat.close()
