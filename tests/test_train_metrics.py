"""The share of GRPO groups in which a reward term varies (logged per step, read by the training table)."""

from __future__ import annotations

import math

import pytest
import torch

from regionreasoner.train.metrics import varied_group_shares


def test_a_term_counts_only_groups_whose_completions_score_differently():
    # two groups of three completions; columns: constant everywhere, varies in group 2, varies in both
    rewards = torch.tensor(
        [[1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [1.0, 0.0, 2.0], [1.0, 0.0, 1.0], [1.0, 2.0, 0.0], [1.0, 0.0, 1.0]]
    )
    assert varied_group_shares(rewards, 3) == [0.0, 0.5, 1.0]


def test_a_term_that_does_not_apply_counts_as_not_varying():
    rewards = torch.tensor([[math.nan], [math.nan], [0.0], [1.0]])
    assert varied_group_shares(rewards, 2) == [0.5]


def test_completions_that_do_not_split_into_groups_are_refused():
    with pytest.raises(ValueError, match="groups of 4"):
        varied_group_shares(torch.zeros(6, 2), 4)
