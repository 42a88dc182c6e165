"""The share of GRPO groups in which a reward term varies (logged per step, read by the training table),
and whether the completions a term prefers are the accurate ones."""

from __future__ import annotations

import math

import pytest
import torch

from regionreasoner.train.metrics import preferred_accuracy, preferred_accuracy_gaps, varied_group_shares


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


def test_a_term_that_prefers_the_wrong_completions_shows_lower_accuracy_for_them():
    # two groups of two; column 0 prefers the inaccurate completion, column 1 the accurate one,
    # column 2 is constant (never varies)
    rewards = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 2.0, 1.0]])
    accuracy = torch.tensor([0.0, 3.0, 1.0, 2.0])
    against, towards, constant = preferred_accuracy(rewards, 2, accuracy)
    assert against == (2, 0.5, 2.5)
    assert towards == (2, 2.5, 0.5)
    assert constant[0] == 0 and math.isnan(constant[1]) and math.isnan(constant[2])


def test_ties_at_the_top_share_the_preferred_side():
    rewards = torch.tensor([[1.0], [1.0], [0.0]])
    assert preferred_accuracy(rewards, 3, torch.tensor([3.0, 1.0, 0.0])) == [(1, 2.0, 0.0)]


def test_accuracies_must_match_the_completions():
    with pytest.raises(ValueError, match="3 accuracies for 4 completions"):
        preferred_accuracy(torch.zeros(4, 1), 2, torch.zeros(3))


def test_each_term_is_measured_against_the_accuracy_term_and_unvaried_terms_are_left_out():
    names = ["format_reward", "accuracy_reward", "citation_reward", "consistency_reward"]
    # one group of three: format constant, citation prefers the inaccurate completion, consistency
    # the accurate one
    rewards = torch.tensor([[3.0, 3.0, 0.0, 2.0], [3.0, 0.0, 2.0, 0.0], [3.0, 0.0, 2.0, 1.0]])
    gaps = preferred_accuracy_gaps(names, rewards, 3)
    assert gaps == {"citation_reward": -3.0, "consistency_reward": 3.0}


def test_without_an_accuracy_term_no_direction_is_measured():
    rewards = torch.tensor([[0.0], [2.0]])
    assert preferred_accuracy_gaps(["citation_reward"], rewards, 2) == {}
