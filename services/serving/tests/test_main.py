"""Process start-up of `python -m sluice_serving`."""

from __future__ import annotations

import gc
import weakref

from sluice_serving.__main__ import default_trace_sampling, freeze_startup_objects


class _Node:
    def __init__(self) -> None:
        self.partner: _Node | None = None


def test_frozen_startup_objects_leave_later_cycles_collectable() -> None:
    survivor = _Node()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        frozen_before = gc.get_freeze_count()
        # A model loaded after start-up (here: a reference cycle) is still collected when dropped.
        first, second = _Node(), _Node()
        first.partner, second.partner = second, first
        dead = weakref.ref(first)
        del first, second
        gc.collect()
        assert dead() is None
        assert gc.get_freeze_count() == frozen_before
        assert survivor.partner is None
    finally:
        gc.unfreeze()


def test_predictions_are_sampled_for_tracing_unless_the_sampler_is_chosen() -> None:
    unset: dict[str, str] = {}
    default_trace_sampling(unset)
    assert unset == {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.01",
    }

    chosen = {"OTEL_TRACES_SAMPLER": "always_on"}
    default_trace_sampling(chosen)
    assert chosen == {"OTEL_TRACES_SAMPLER": "always_on"}
