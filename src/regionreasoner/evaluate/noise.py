"""How much of a difference between two models is noise: a paired bootstrap over dialogues.

Two models are evaluated on the same dialogues, so their difference is resampled by dialogue
(whole dialogues, because the turns of one dialogue share an image and cite each other's answers).
Each evaluation JSON carries its per-dialogue outcomes (``per_dialogue``: hit and cited strings,
written by ``evaluate.metrics.turn_outcomes``); the interval is the 2.5-97.5 percentile range of
the resampled difference in AP@0.5, in percentage points.

A model trained with several seeds (``grpo.variants.<v>.seeds``) is the mean over its seeds: the
bootstrap resamples the dialogues once for every seed, so the interval is the benchmark's noise of
that mean, and the spread of the per-seed values beside it is the training's noise, which the
interval does not contain. A difference pairs seed i of one model with seed i of the other: seeds
of two variants share the trainer's random stream and prompt order, so the pairing removes what
the two runs have in common.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DRAWS = 2000
"""Bootstrap resamples per interval."""

Outcomes = Sequence[dict[str, str]]
"""The ``per_dialogue`` list of one evaluation: per dialogue, ``hit`` and ``cited`` strings of 0/1 per turn."""

TurnFilter = Callable[[int, bool], bool]
"""Which turns count: ``(0-based turn index, cites an earlier turn) -> bool``."""

TURN_FILTERS: dict[str, TurnFilter] = {
    "round 1": lambda index, cited: index == 0,
    "all turns": lambda index, cited: True,
    "cited turns": lambda index, cited: cited,
}


@dataclass(frozen=True)
class Estimate:
    """AP@0.5 in points over the selected turns (or a difference a - b of two models): the mean over
    seeds (``per_seed``: each seed's, or each seed pair's, value), with the 95 % bootstrap interval
    of that mean over dialogues."""

    value: float
    low: float
    high: float
    turns: int
    per_seed: tuple[float, ...]

    @property
    def seeds(self) -> int:
        return len(self.per_seed)

    @property
    def seed_sd(self) -> float | None:
        """Sample standard deviation over seeds; None for one seed (no spread to estimate)."""
        return float(np.std(self.per_seed, ddof=1)) if self.seeds > 1 else None


def _counts(outcomes: Outcomes, keep: TurnFilter) -> tuple[np.ndarray, np.ndarray]:
    """Per dialogue: selected turns and selected hits."""
    selected, hits = [], []
    for outcome in outcomes:
        picked = [
            h == "1" for i, (h, c) in enumerate(zip(outcome["hit"], outcome["cited"], strict=True)) if keep(i, c == "1")
        ]
        selected.append(len(picked))
        hits.append(sum(picked))
    return np.array(selected, dtype=float), np.array(hits, dtype=float)


def _hits(runs: Sequence[Outcomes], keep: TurnFilter) -> tuple[np.ndarray, np.ndarray]:
    """Selected turns per dialogue (the same in every evaluation) and hits per evaluation and dialogue."""
    sizes = sorted({len(run) for run in runs})
    if len(sizes) > 1:
        raise ValueError(f"outcomes of {' and '.join(map(str, sizes))} dialogues: not the same bench")
    counts = [_counts(run, keep) for run in runs]
    selected = counts[0][0]
    if any(not np.array_equal(n, selected) for n, _ in counts):
        raise ValueError("the evaluations select different turns: not the same bench")
    if selected.sum() == 0:
        raise ValueError("no turn is selected")
    return selected, np.stack([hits for _, hits in counts])


def _estimate(selected: np.ndarray, hits: np.ndarray, draws: int, seed: int) -> Estimate:
    """The mean over rows of ``hits`` (seeds x dialogues: hits, or paired hit differences) in points,
    its interval resampling whole dialogues, the same draw for every seed."""
    total = selected.sum()
    mean = hits.mean(axis=0)
    picks = np.random.default_rng(seed).integers(0, len(selected), size=(draws, len(selected)))
    resampled = 100.0 * mean[picks].sum(axis=1) / np.maximum(selected[picks].sum(axis=1), 1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    per_seed = tuple(float(v) for v in 100.0 * hits.sum(axis=1) / total)
    return Estimate(float(100.0 * mean.sum() / total), float(low), float(high), int(total), per_seed)


def seed_mean(runs: Sequence[Outcomes], keep: TurnFilter, draws: int = DRAWS, seed: int = 0) -> Estimate:
    """AP@0.5 over the turns ``keep`` selects, the mean over ``runs`` (the ``per_dialogue`` lists of
    one model's seeds on one bench file), bootstrapped over dialogues."""
    selected, hits = _hits(runs, keep)
    return _estimate(selected, hits, draws, seed)


def paired_difference(
    a: Sequence[Outcomes], b: Sequence[Outcomes], keep: TurnFilter, draws: int = DRAWS, seed: int = 0
) -> Estimate:
    """AP@0.5 difference a - b over the turns ``keep`` selects, the mean over seed pairs,
    bootstrapped over dialogues.

    ``a`` and ``b`` are the ``per_dialogue`` lists of each model's seeds on the same bench file. Seed
    i of ``a`` is paired with seed i of ``b``; a side with one evaluation (the SFT warm-up, a model
    with one seed) is paired with every seed of the other. With one seed each this is the plain
    paired bootstrap; the mean over pairs equals mean(a) - mean(b), the pairs give its spread."""
    if len(a) != len(b) and 1 not in (len(a), len(b)):
        raise ValueError(f"{len(a)} and {len(b)} seeds cannot be paired: give both the same number of seeds")
    selected, hits = _hits([*a, *b], keep)
    return _estimate(selected, hits[: len(a)] - hits[len(a) :], draws, seed)
