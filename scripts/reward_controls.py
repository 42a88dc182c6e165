"""Controls for reading a GRPO result: does each reward term point towards accuracy, and how much does
a GRPO run move the model with no reward signal at all?

Usage: python scripts/reward_controls.py terms --model results/models/sft
           [--config config/config.yaml] [--turns results/train/turns.jsonl] [--variant full]
           [--steps 12]
       python scripts/reward_controls.py permuted --model results/models/sft
           --out results/models/grpo-full-permuted [--config ...] [--turns ...] [--variant full]
           [--seed N]

``terms`` builds the GRPO trainer exactly as ``regionreasoner grpo`` does and lets it sample and
score ``steps`` batches without training. Per reward term it prints the share of groups in which
the term varies and, in those groups, the mean accuracy reward of the completions the term scores
highest against the rest: a term whose preferred completions are the less accurate ones pulls the
update away from grounding, whatever its weight.

``permuted`` trains that variant with every group's rewards shuffled among its completions: the
same reward values, group statistics and step sizes, but no link between a completion and its
reward. Evaluate the saved model with ``regionreasoner evaluate`` beside the real GRPO model: what
the permuted run loses against SFT is the cost of the update's noise alone, and the real run's
difference from it is what the rewards bought. One process (``grpo.cpu_processes: 1``, the
default), as the permutation is drawn per process. Not a test: the figures depend on the model
and the draw.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import types
from pathlib import Path

import torch

from regionreasoner.config import load_config
from regionreasoner.runtime import limit_threads
from regionreasoner.train.grpo import grpo_trainer
from regionreasoner.train.metrics import grounding_column, preferred_accuracy
from regionreasoner.train.runner import train_and_save, work_dir_for


def permute_within_groups(rewards: torch.Tensor, group_size: int, generator: torch.Generator) -> torch.Tensor:
    """Rows (completions) shuffled inside each run of ``group_size`` consecutive rows (one prompt's
    group in TRL's layout); every row keeps all of its terms, so the terms stay paired as scored."""
    if rewards.shape[0] % group_size:
        raise ValueError(f"{rewards.shape[0]} completions do not split into groups of {group_size}")
    order = torch.cat(
        [start + torch.randperm(group_size, generator=generator) for start in range(0, rewards.shape[0], group_size)]
    )
    return rewards[order]


def _scored_groups(trainer, steps: int) -> torch.Tensor:
    """The per-term rewards of ``steps`` batches as the trainer samples and scores them."""
    scored = []
    calculate = trainer._calculate_rewards

    def recording(self, *args):
        rewards = calculate(*args)
        scored.append(rewards.detach().clone())
        return rewards

    trainer._calculate_rewards = types.MethodType(recording, trainer)
    batches = iter(trainer.get_train_dataloader())
    for step in range(steps):
        torch.manual_seed(step)
        trainer._generate_and_score_completions(next(batches))
    return torch.cat(scored)


def terms(args: argparse.Namespace) -> None:
    cfg = load_config(args.config)
    with tempfile.TemporaryDirectory() as work_dir:
        trainer = grpo_trainer(cfg, args.variant, Path(args.model), Path(args.turns), Path(work_dir))
        names = list(trainer.reward_func_names)
        accuracy = grounding_column(names)
        if accuracy is None:
            raise SystemExit(f"variant {args.variant} scores no accuracy to compare the terms with")
        rewards = _scored_groups(trainer, args.steps)
    group = trainer.num_generations
    groups = rewards.shape[0] // group
    directions = preferred_accuracy(rewards, group, rewards[:, accuracy])
    print(f"{args.model}: {groups} groups of {group} completions, variant {args.variant}")
    print(f"mean {names[accuracy]} {rewards[:, accuracy].mean().item():.3f}")
    print(f"{'term':<22}{'varies in':>10}{'acc. of preferred':>19}{'acc. of rest':>14}")
    for name, (varied, preferred, rest) in zip(names, directions):
        gap = "" if math.isnan(preferred) else f"{preferred:>19.3f}{rest:>14.3f}"
        print(f"{name:<22}{varied / groups:>9.1%}{gap}  ({varied} groups)")


def permuted(args: argparse.Namespace) -> None:
    limit_threads()
    cfg = load_config(args.config)
    out = Path(args.out)
    trainer = grpo_trainer(cfg, args.variant, Path(args.model), Path(args.turns), work_dir_for(out), args.seed)
    calculate = trainer._calculate_rewards
    generator = torch.Generator().manual_seed(trainer.args.seed)

    def shuffled(self, *call):
        return permute_within_groups(calculate(*call), self.num_generations, generator)

    trainer._calculate_rewards = types.MethodType(shuffled, trainer)
    card = {
        "stage": "grpo",
        "variant": args.variant,
        "seed": trainer.args.seed,
        "control": "rewards permuted within groups",
    }
    with tempfile.TemporaryDirectory() as no_curve_steps:
        train_and_save(trainer, out, out.parent / f"{out.name}.csv", card, Path(no_curve_steps) / "kept", [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler in (("terms", terms), ("permuted", permuted)):
        sub = commands.add_parser(name)
        sub.set_defaults(handler=handler)
        sub.add_argument("--model", required=True)
        sub.add_argument("--config", default="config/config.yaml")
        sub.add_argument("--turns", default="results/train/turns.jsonl")
        sub.add_argument("--variant", default="full")
    commands.choices["terms"].add_argument("--steps", type=int, default=12)
    commands.choices["permuted"].add_argument("--out", required=True)
    commands.choices["permuted"].add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
