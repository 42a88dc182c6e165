"""The paired bootstrap that states the noise of a difference between two models."""

from __future__ import annotations

import pytest

from regionreasoner.evaluate.noise import TURN_FILTERS, paired_difference


def test_identical_models_differ_by_zero_with_a_zero_interval():
    outcomes = [{"hit": "10", "cited": "01"}, {"hit": "01", "cited": "01"}] * 10
    d = paired_difference([outcomes], [outcomes], TURN_FILTERS["all turns"])
    assert (d.value, d.low, d.high, d.turns) == (0.0, 0.0, 0.0, 40)


def test_difference_selects_turns_and_its_interval_contains_it():
    a = [{"hit": "11", "cited": "01"}] * 30 + [{"hit": "00", "cited": "01"}] * 30
    b = [{"hit": "01", "cited": "01"}] * 60
    round1 = paired_difference([a], [b], TURN_FILTERS["round 1"], seed=1)
    assert round1.value == pytest.approx(50.0) and round1.turns == 60
    assert 30.0 < round1.low < 50.0 < round1.high < 70.0
    cited = paired_difference([a], [b], TURN_FILTERS["cited turns"])
    assert cited.value == pytest.approx(-50.0) and cited.turns == 60


def test_different_benches_are_refused():
    with pytest.raises(ValueError, match="not the same bench"):
        paired_difference([[{"hit": "1", "cited": "0"}]], [[]], TURN_FILTERS["round 1"])
    with pytest.raises(ValueError, match="not the same bench"):
        paired_difference([[{"hit": "1", "cited": "0"}]], [[{"hit": "10", "cited": "01"}]], TURN_FILTERS["all turns"])
