"""How much of a difference between two models is noise: a paired bootstrap over dialogues.

Two models are evaluated on the same dialogues, so their difference is resampled by dialogue
(whole dialogues, because the turns of one dialogue share an image and cite each other's answers).
Each evaluation JSON carries its per-dialogue outcomes (``per_dialogue``: hit and cited strings,
written by ``evaluate.metrics.turn_outcomes``); the interval is the 2.5-97.5 percentile range of
the resampled difference in AP@0.5, in percentage points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DRAWS = 2000
"""Bootstrap resamples per interval."""

TurnFilter = Callable[[int, bool], bool]
"""Which turns count: ``(0-based turn index, cites an earlier turn) -> bool``."""

TURN_FILTERS: dict[str, TurnFilter] = {
    "round 1": lambda index, cited: index == 0,
    "all turns": lambda index, cited: True,
    "cited turns": lambda index, cited: cited,
}


@dataclass(frozen=True)
class Difference:
    """AP@0.5 of ``a`` minus ``b`` in points over the selected turns, with its 95 % interval."""

    diff: float
    low: float
    high: float
    turns: int


def _counts(outcomes: Sequence[dict[str, str]], keep: TurnFilter) -> tuple[np.ndarray, np.ndarray]:
    """Per dialogue: selected turns and selected hits."""
    selected, hits = [], []
    for outcome in outcomes:
        picked = [
            h == "1" for i, (h, c) in enumerate(zip(outcome["hit"], outcome["cited"], strict=True)) if keep(i, c == "1")
        ]
        selected.append(len(picked))
        hits.append(sum(picked))
    return np.array(selected, dtype=float), np.array(hits, dtype=float)


def paired_difference(
    a: Sequence[dict[str, str]], b: Sequence[dict[str, str]], keep: TurnFilter, draws: int = DRAWS, seed: int = 0
) -> Difference:
    """AP@0.5 difference a - b over the turns ``keep`` selects, bootstrapped over dialogues.

    ``a`` and ``b`` are the ``per_dialogue`` lists of two evaluations of the same bench file.
    """
    if len(a) != len(b):
        raise ValueError(f"outcomes of {len(a)} and {len(b)} dialogues: not the same bench")
    n_a, hits_a = _counts(a, keep)
    n_b, hits_b = _counts(b, keep)
    if not np.array_equal(n_a, n_b):
        raise ValueError("the two evaluations select different turns: not the same bench")
    total = n_a.sum()
    if total == 0:
        raise ValueError("no turn is selected")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(a), size=(draws, len(a)))
    resampled = 100.0 * (hits_a[picks].sum(axis=1) - hits_b[picks].sum(axis=1)) / np.maximum(n_a[picks].sum(axis=1), 1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return Difference(100.0 * (hits_a.sum() - hits_b.sum()) / total, float(low), float(high), int(total))
