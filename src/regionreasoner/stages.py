"""The pipeline's steps: which config keys each depends on and which Snakemake rules run it.

One table, read by the rules (each rule's ``params`` is its stage's config slice,
``config.stage_params``; the Snakefile checks that every rule belongs to a stage), by the DVC
generator (params per stage and the ``--until``/``--omit-from`` rule lists, dvcyaml.py) and by the
config. A new rule is one entry here; a rule missing from the table stops the workflow at parse time.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """``keys``: dotted config keys the stage's outputs depend on (``<section>.*``: a trainer section
    without its operational and batch keys; ``prompt:default|train|model``: the prompt the stage
    renders; both resolved by ``config.stage_keys``); ``rules``: rule names or ``fnmatch`` patterns
    (rules generated per benchmark, table or figure)."""

    keys: tuple[str, ...]
    rules: tuple[str, ...]


STAGES: dict[str, Stage] = {
    "data": Stage(("data", "seed"), ("synth_*", "download", "fetch_released_bench", "fetch_vstar")),
    "bench": Stage(("bench", "benchmarks"), ("build_bench", "build_single")),
    "validation": Stage(
        ("bench.max_rounds", "bench.relations", "benchmarks", "evaluate.validation_dialogues", "seed"),
        ("build_validation",),
    ),
    "train_data": Stage(
        ("train_data", "bench", "benchmarks", "model.frame"),
        ("build_train", "merge_train", "build_heldout", "merge_heldout"),
    ),
    "model": Stage(
        ("model.base", "model.tiny", "model.frame", "prompt:default", "seed"),
        ("build_model", "prepare_model", "fetch_released", "fetch_segmenter"),
    ),
    "sft": Stage(("sft.*", "prompt:default", "model.frame", "model.attn_implementation", "seed"), ("sft",)),
    "grpo": Stage(("grpo.*", "rewards", "prompt:train", "model.frame", "model.attn_implementation", "seed"), ("grpo",)),
    "evaluate": Stage(
        ("evaluate.segmenter", "evaluate.max_new_tokens", "prompt:model", "model.frame", "model.attn_implementation"),
        ("evaluate", "evaluate_random", "evaluate_vstar", "evaluate_checkpoint"),
    ),
    "probe": Stage(
        (
            "probe",
            "rewards",
            "grpo.temperature",
            "grpo.max_completion_length",
            "prompt:train",
            "model.frame",
            "model.attn_implementation",
            "seed",
        ),
        ("probe", "probe_checkpoint"),
    ),
    # the checkpoint curves and the checkpoint the tables evaluate (regionreasoner.report.curves)
    "curves": Stage(("evaluate.checkpoint",), ("curve", "select_checkpoint")),
    "report": Stage(
        ("report", "data.source", "evaluate.checkpoint"),
        ("table_*", "figure_*", "turns_per_round_figure", "paper_pdf", "all"),
    ),
    # targets that only gather other outputs, one per purpose (report.targets.PURPOSES)
    "targets": Stage((), ("no_training", "regionreasoner", "reward_ablation", "alpha_beta_sweep")),
}


def stage_of(rule: str) -> str:
    """The stage whose ``rules`` name ``rule``; ValueError when none does."""
    for name, stage in STAGES.items():
        if any(fnmatch.fnmatchcase(rule, pattern) for pattern in stage.rules):
            return name
    raise ValueError(f"rule {rule!r} belongs to no stage: add it to STAGES in src/regionreasoner/stages.py")


def check_rules(rules: Iterable[str]) -> None:
    """Every rule of the workflow has a stage (called by the Snakefile after the rules are read)."""
    for rule in rules:
        stage_of(rule)


def rules_of(*stages: str) -> list[str]:
    """The plain rule names of ``stages`` (patterns left out), in table order."""
    return [rule for name in stages for rule in STAGES[name].rules if not any(c in rule for c in "*?[")]
