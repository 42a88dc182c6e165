"""Checkpoint curves and the frozen rule that picks the checkpoint behind the tables.

Each trained model (``PipelineConfig.trained_models``) keeps its weights at the config's curve
steps (``sft.curve_steps``, ``grpo.curve_steps``); those and the final model are the points of its
curve. Each point is scored on the validation dialogues (built like the benchmark from the held-out
images, ``paths.validation_bench``: AP@0.5 over all turns, per benchmark) and by the held-out reward
probe. ``evaluate.checkpoint`` then chooses one point from the validation scores alone
(``choose``): ``last`` (the paper's rule) or ``best_validation``. The test benchmark is never an
input here (``curve_inputs``), so the step count cannot be tuned on it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from regionreasoner import paths
from regionreasoner.config import CHECKPOINT_RULES, PipelineConfig
from regionreasoner.io import atomic_path, atomic_write_json, read_json

VALIDATION_MODE = "val"  # run name of a validation evaluation: {bench}.val, like {bench}.multi


def is_final(cfg: PipelineConfig, model: str, step: int) -> bool:
    """Whether a curve point is the final model (the training's output) rather than a kept checkpoint."""
    return step == cfg.curve_steps(model)[-1]


def point_checkpoint(cfg: PipelineConfig, model: str, step: int) -> str:
    """The weights of one curve point: the final model at its last step, else a kept checkpoint."""
    if is_final(cfg, model, step):
        return paths.model_dir(cfg.results, model)
    return f"{paths.kept_checkpoints(cfg.results, model)}/step-{step}"


def point_input(cfg: PipelineConfig, model: str, step: int) -> str:
    """The output that holds a point's weights (the folder of kept checkpoints is one output)."""
    if is_final(cfg, model, step):
        return paths.model_dir(cfg.results, model)
    return paths.kept_checkpoints(cfg.results, model)


def validation_metrics(cfg: PipelineConfig, model: str, step: int, bench: str) -> str:
    """Validation metrics of one point on one benchmark (``evaluate`` writes ``{run}.json``)."""
    return f"{paths.curve_point(cfg.results, model, step)}/{paths.run_name(bench, VALIDATION_MODE)}.json"


def point_probe(cfg: PipelineConfig, model: str, step: int) -> str:
    """Held-out reward probe of one point. Under ``last`` the final model's is the probe the training
    table reads (the same job); otherwise that one probes the chosen checkpoint, so the final point
    has its own."""
    if is_final(cfg, model, step) and cfg.evaluate.checkpoint == "last":
        return paths.probe_metrics(cfg.results, model)
    return f"{paths.curve_point(cfg.results, model, step)}/probe.json"


def curve_inputs(cfg: PipelineConfig, model: str) -> list[str]:
    """Every file a curve reads: validation metrics and probe summaries of its points, nothing else."""
    steps = cfg.curve_steps(model)
    metrics = [validation_metrics(cfg, model, s, b) for s in steps for b in cfg.benchmarks]
    return metrics + [point_probe(cfg, model, s) for s in steps]


def evaluated_model_dir(cfg: PipelineConfig, model: str) -> str:
    """The folder the tables' evaluation and probe load for ``model``: the chosen checkpoint of a
    model with a curve under ``best_validation``; the model itself otherwise (``last``, or a model
    that keeps no checkpoint: the final one)."""
    if cfg.evaluate.checkpoint == "best_validation" and model in cfg.curve_models():
        return paths.selected_model(cfg.results, model)
    return paths.model_dir(cfg.results, model)


def choose(points: list[dict[str, Any]], rule: str) -> int:
    """The step ``rule`` picks from points ``{"step", "validation_ap50"}`` (validation scores only):
    ``last``, the final step; ``best_validation``, the best mean validation AP@0.5, earliest on ties."""
    if rule not in CHECKPOINT_RULES:
        raise ValueError(f"unknown checkpoint rule {rule!r}; choose one of {', '.join(CHECKPOINT_RULES)}")
    if rule == "last":
        return max(p["step"] for p in points)
    return max(points, key=lambda p: (p["validation_ap50"], -p["step"]))["step"]


def curve(cfg: PipelineConfig, model: str) -> dict[str, Any]:
    """The points of ``model``'s curve (read from ``curve_inputs`` only) and the chosen step."""
    points = []
    for step in cfg.curve_steps(model):
        per_bench = {b: read_json(validation_metrics(cfg, model, step, b))["ap50"] for b in cfg.benchmarks}
        probe = read_json(point_probe(cfg, model, step))
        points.append(
            {
                "step": step,
                "checkpoint": point_checkpoint(cfg, model, step),
                "validation": per_bench,
                "validation_ap50": sum(per_bench.values()) / len(per_bench),
                "probe_reward": probe["reward"],
                "probe_reward_se": probe["reward_se"],
            }
        )
    rule = cfg.evaluate.checkpoint
    return {"model": model, "rule": rule, "chosen_step": choose(points, rule), "points": points}


def write_curve(cfg: PipelineConfig, model: str, out: Path) -> dict[str, Any]:
    """Write ``curve`` as JSON (the figure's input and the selection's record)."""
    if model not in cfg.curve_models():
        raise ValueError(
            f"{model!r} has no checkpoint curve; choose one of: {', '.join(cfg.curve_models()) or 'none'} "
            f"(a trained model has one when it keeps a checkpoint: set sft.curve_steps or grpo.curve_steps)"
        )
    result = curve(cfg, model)
    atomic_write_json(out, result)
    return result


def _link_tree(source: Path, dest: Path) -> None:
    """``dest`` mirrors ``source`` with hard links (a copy where linking fails: another file system)."""
    for path in sorted(source.rglob("*")):
        target = dest / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def select_checkpoint(curve_file: Path, out: Path) -> Path:
    """Materialise the chosen checkpoint of a curve file as the model folder ``out`` (linked, not copied)."""
    data = read_json(curve_file)
    [chosen] = [p for p in data["points"] if p["step"] == data["chosen_step"]]
    with atomic_path(out, directory=True) as tmp:
        _link_tree(Path(chosen["checkpoint"]), tmp)
    return Path(chosen["checkpoint"])
