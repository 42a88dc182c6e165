"""The permuted-reward control of scripts/reward_controls.py: rewards move only inside their group."""

from __future__ import annotations

import pytest
import torch
from scripts.reward_controls import permute_within_groups


def test_each_group_keeps_its_own_rows_whole_in_a_new_order():
    # 50 groups of 4; row r holds (r, 10 r) so a row's terms can be seen to stay together
    rows = torch.arange(200, dtype=torch.float32)
    rewards = torch.stack([rows, 10 * rows], dim=1)
    shuffled = permute_within_groups(rewards, 4, torch.Generator().manual_seed(0))
    assert torch.equal(shuffled[:, 1], 10 * shuffled[:, 0])
    for start in range(0, 200, 4):
        assert sorted(shuffled[start : start + 4, 0].tolist()) == list(range(start, start + 4))
    assert not torch.equal(shuffled, rewards)


def test_completions_that_do_not_split_into_groups_are_refused():
    with pytest.raises(ValueError, match="groups of 4"):
        permute_within_groups(torch.zeros(6, 2), 4, torch.Generator())
