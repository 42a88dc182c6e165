"""Held-out reward probe: the reward a checkpoint earns on fixed prompts it never trained on.

GRPO logs the reward of the prompts each step draws. On fresh training turns that curve mixes what
the policy learned with how hard each step's prompts happened to be, and on a small prompt pool it
measures fitting those prompts. The probe samples every checkpoint the way GRPO samples (its
temperature and completion length) on the same held-out turns (the benchmarks' ``probe_splits``,
one seeded draw) and scores the completions with one reward variant, so the training table's rows
compare like with like: SFT against each GRPO variant, on turns none of them saw.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from regionreasoner.config import PipelineConfig
from regionreasoner.evaluate.dialogue import Generator
from regionreasoner.io import TURN_KEYS, atomic_write_text, read_jsonl
from regionreasoner.models.prompts import training_prompt
from regionreasoner.preflight import torch_device
from regionreasoner.rewards.variants import reward_options, score_completions
from regionreasoner.runtime import limit_threads


def probe_turns(turns: list[dict[str, Any]], size: int, seed: int) -> list[dict[str, Any]]:
    """A seeded draw of at most ``size`` turns in file order: the same prompts for every checkpoint."""
    keep = sorted(random.Random(f"reward-probe/{seed}").sample(range(len(turns)), min(size, len(turns))))
    return [turns[i] for i in keep]


def summarise(scores: list[list[dict[str, Any]]], variant: str) -> dict[str, Any]:
    """Mean total reward and per-term means; the standard error is over prompts (each prompt's
    completions averaged first), since completions of one prompt are not independent draws."""
    per_prompt = [sum(s["total"] for s in group) / len(group) for group in scores]
    n = len(per_prompt)
    mean = sum(per_prompt) / n
    spread = sum((v - mean) ** 2 for v in per_prompt) / (n - 1) if n > 1 else 0.0
    flat = [s for group in scores for s in group]
    terms = {name: sum(s["terms"][name] for s in flat) / len(flat) for name in flat[0]["terms"]}
    return {
        "rewards": variant,
        "prompts": n,
        "generations": len(flat) // n,
        "reward": mean,
        "reward_se": math.sqrt(spread / n),
        "terms": terms,
    }


def probe_model(cfg: PipelineConfig, model_path: Path, turns_path: Path, out: Path) -> dict[str, Any]:
    """Sample ``probe.generations`` completions per held-out turn, score them, write ``out`` (JSON)."""
    limit_threads()
    turns = probe_turns(read_jsonl(turns_path, TURN_KEYS, allow_empty=False), cfg.probe.prompts, cfg.seed)
    if not turns:
        raise ValueError(f"{turns_path}: no held-out turns to probe (benchmarks' probe_splits are empty)")
    device = torch_device(cfg.evaluate.gpus, "evaluate.gpus")  # before any weights load
    generator = Generator.load(
        model_path,
        training_prompt(cfg),
        cfg.model.frame,
        cfg.grpo.max_completion_length,
        cfg.probe.batch_size,
        cfg.model.attn_implementation,
        device,
    )
    torch.manual_seed(cfg.seed)
    progress = tqdm(total=len(turns), desc="probe", unit="prompt")
    completions = generator.sample(
        [t["image_path"] for t in turns],
        [t["problem"] for t in turns],
        cfg.probe.generations,
        cfg.grpo.temperature,
        progress,
    )
    progress.close()
    rows = [
        {
            "completion": c,
            "problem": t["problem"],
            "solution": t["solution"],
            "reference_boxes": t.get("reference_boxes") or [],
        }
        for t, group in zip(turns, completions, strict=True)
        for c in group
    ]
    flat = score_completions(cfg.probe.rewards, rows, **reward_options(cfg.rewards))
    g = cfg.probe.generations
    summary = summarise([flat[i : i + g] for i in range(0, len(flat), g)], cfg.probe.rewards)
    atomic_write_text(out, json.dumps({"model": str(model_path), **summary}, indent=1) + "\n")
    return summary
