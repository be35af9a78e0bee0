"""Phase lengths and the progressive freezing schedule."""

import dataclasses

import pytest

from sswp.config.load import load_params
from sswp.engine.phases import build_schedule
from sswp.errors import SswpError


@pytest.fixture
def search_params():
    return load_params("params/cifar10.yaml").search


def test_paper_phases_take_the_minimum_warmup_from_search(search_params):
    schedule = build_schedule(search_params)
    assert (schedule.warmup, schedule.search, schedule.prune, schedule.stabilise) == (
        60,
        120,
        120,
        0,
    )
    short = dataclasses.replace(search_params, epochs=100)
    s = build_schedule(short)
    assert (s.warmup, s.search, s.prune, s.stabilise) == (40, 20, 40, 0)


def test_cells_freeze_forward_at_evenly_spaced_epochs_over_the_prune_phase(search_params):
    schedule = build_schedule(search_params)
    epochs = [e for e, _ in schedule.freeze_epochs]
    cells = [c for _, c in schedule.freeze_epochs]
    assert cells == list(range(20))
    assert epochs[0] == 180 and epochs[-1] == 299
    gaps = {b - a for a, b in zip(epochs, epochs[1:], strict=False)}
    assert gaps <= {6, 7}
    assert schedule.cells_to_freeze(180) == [0]
    assert schedule.phase(179) == "search" and schedule.phase(180) == "prune"


def test_backward_order_freezes_last_cell_first(search_params):
    schedule = build_schedule(dataclasses.replace(search_params, prune_order="backward"))
    assert [c for _, c in schedule.freeze_epochs] == list(range(19, -1, -1))


def test_too_few_epochs_is_a_clear_error(search_params):
    with pytest.raises(SswpError, match="too few"):
        build_schedule(dataclasses.replace(search_params, epochs=50))


def test_arch_steps_start_after_the_warmup_plus_the_delay(search_params):
    assert search_params.arch_delay_epochs == 1  # the original's boundary
    schedule = build_schedule(search_params)
    assert schedule.arch_start == 61
    assert schedule.warm(60) and not schedule.warm(61)
    assert schedule.phase(60) == "search"
    at_boundary = build_schedule(dataclasses.replace(search_params, arch_delay_epochs=0))
    assert at_boundary.arch_start == 60 and not at_boundary.warm(60)
