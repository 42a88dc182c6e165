"""Training curves written where the figures stage reads them (loss, per-term rewards, KL), and
per reward term, the share of GRPO groups in which it varies and whether the completions it prefers
are the accurate ones."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import torch

from regionreasoner.io import atomic_write_text
from regionreasoner.rewards.registry import TERMS


def write_log_history(history: list[dict[str, Any]], out: Path) -> None:
    """One CSV row per logged step; columns are the union of logged keys (step first)."""
    rows = [h for h in history if "step" in h and "train_runtime" not in h]
    columns = ["step"] + sorted({k for row in rows for k in row} - {"step"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    atomic_write_text(out, buffer.getvalue())


def varied_group_shares(rewards_per_term: torch.Tensor, group_size: int) -> list[float]:
    """Per reward term (column), the share of GRPO groups whose completions do not all score alike.

    A term that is constant within a group adds the same value to every completion of it, so it
    shifts no advantage: this share is how often the term can steer the update at all. Rows are
    completions, ``group_size`` consecutive rows per prompt (TRL's layout); NaN (a term that does not
    apply) counts as not varying.
    """
    groups = _grouped(rewards_per_term, group_size)
    varied = (groups.amax(dim=1) - groups.amin(dim=1)) > 1e-6
    return varied.float().mean(dim=0).tolist()


def _grouped(rewards_per_term: torch.Tensor, group_size: int) -> torch.Tensor:
    """(groups, completions, terms): ``group_size`` consecutive rows per prompt (TRL's layout), NaN
    (a term that does not apply) as 0."""
    if group_size < 1 or rewards_per_term.shape[0] % group_size:
        raise ValueError(f"{rewards_per_term.shape[0]} completions do not split into groups of {group_size}")
    return torch.nan_to_num(rewards_per_term, nan=0.0).reshape(-1, group_size, rewards_per_term.shape[1])


def preferred_accuracy(
    rewards_per_term: torch.Tensor, group_size: int, accuracy: torch.Tensor
) -> list[tuple[int, float, float]]:
    """Per reward term: in the groups where it varies, the mean accuracy of the completions it
    scores highest against that of the rest of the group.

    A term whose preferred completions are less accurate than the others pulls GRPO's update away
    from accuracy however often it varies; this is how a term's direction is told from its size.
    Returns (groups where the term varies, accuracy of its preferred, accuracy of the rest); the two
    means are NaN where the term never varies. Rows as in ``varied_group_shares``.
    """
    terms = _grouped(rewards_per_term, group_size)
    if accuracy.shape[0] != rewards_per_term.shape[0]:
        raise ValueError(f"{accuracy.shape[0]} accuracies for {rewards_per_term.shape[0]} completions")
    correct = accuracy.reshape(-1, group_size, 1)
    top = terms >= terms.amax(dim=1, keepdim=True) - 1e-6  # (groups, completions, terms)
    varied = ~top.all(dim=1)  # (groups, terms)
    preferred = (correct * top).sum(dim=1) / top.sum(dim=1)
    rest = (correct * ~top).sum(dim=1) / (~top).sum(dim=1).clamp(min=1)
    result = []
    for column in range(terms.shape[2]):
        groups = varied[:, column]
        count = int(groups.sum())
        if count == 0:
            result.append((0, math.nan, math.nan))
        else:
            result.append((count, preferred[groups, column].mean().item(), rest[groups, column].mean().item()))
    return result


def grounding_column(names: list[str]) -> int | None:
    """The column of the term that scores answers against the truth (accuracy), if one was scored."""
    return next((i for i, name in enumerate(names) if name in TERMS and TERMS[name].grounding), None)


def preferred_accuracy_gaps(names: list[str], rewards_per_term: torch.Tensor, group_size: int) -> dict[str, float]:
    """Per term other than the grounding one (accuracy), over the groups where it varies: accuracy of
    the completions it prefers minus that of the rest. Terms that never varied are left out, as are
    all terms when no grounding term was scored (nothing to measure them by)."""
    grounding = grounding_column(names)
    if grounding is None:
        return {}
    directions = preferred_accuracy(rewards_per_term, group_size, rewards_per_term[:, grounding])
    return {
        name: preferred - rest
        for column, (name, (varied, preferred, rest)) in enumerate(zip(names, directions))
        if varied and column != grounding
    }
