"""GRPO with TRL's GRPOTrainer and the paper's structured rewards (docs/method.md sections 5-6).

Each reward term is a plain TRL reward function from regionreasoner.rewards; the variant named in
config ``grpo.variants`` chooses the terms and their weights (alpha, beta), so each ablation row of
Tables 3, 4 and 11 is one Snakemake wildcard value, not a copied script.
"""

from __future__ import annotations

from pathlib import Path

from trl import GRPOTrainer

from regionreasoner.config import PipelineConfig
from regionreasoner.models.patch_embed import embed_patches_by_matmul
from regionreasoner.models.processor import load_processor
from regionreasoner.models.prompts import training_prompt
from regionreasoner.rewards.nouns import require_spacy_model
from regionreasoner.runtime import limit_threads
from regionreasoner.train.configs import grpo_config, variant_rewards
from regionreasoner.train.data import grpo_dataset
from regionreasoner.train.metrics import preferred_accuracy_gaps, varied_group_shares
from regionreasoner.train.runner import (
    CheckpointWeightsMixin,
    score_labelled_positions_only,
    train_and_save,
    work_dir_for,
)


class TermLoggingGRPOTrainer(CheckpointWeightsMixin, GRPOTrainer):
    """TRL's GRPOTrainer that also logs, per reward term, the share of groups in which the term
    varies (``rewards/<term>/groups_varied``): a term constant within every group never changes which
    completion is preferred, however large its mean; and, where it varies, the accuracy of the
    completions it prefers minus the rest's (``rewards/<term>/preferred_accuracy_gap``): below zero
    the term pulls the update away from grounding. The training table reports both."""

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        mode = "train" if self.model.training else "eval"
        group = self.num_generations if mode == "train" else self.num_generations_eval
        for name, share in zip(self.reward_func_names, varied_group_shares(rewards, group)):
            self._metrics[mode][f"rewards/{name}/groups_varied"].append(share)
        for name, gap in preferred_accuracy_gaps(self.reward_func_names, rewards, group).items():
            self._metrics[mode][f"rewards/{name}/preferred_accuracy_gap"].append(gap)
        return rewards


def grpo_trainer(
    cfg: PipelineConfig, variant: str, model_path: Path, turns: Path, work_dir: Path, seed: int | None = None
) -> TermLoggingGRPOTrainer:
    """The GRPO trainer of one variant and seed (None: the variant's first), also what
    scripts/profile_steps.py times step by step."""
    score_labelled_positions_only()
    embed_patches_by_matmul()
    frame = cfg.model.frame
    funcs, weights = variant_rewards(cfg, variant)
    dataset = grpo_dataset(turns, training_prompt(cfg), frame, cfg.grpo.prompts, cfg.seed)  # inputs checked first
    processor = load_processor(model_path, frame)
    return TermLoggingGRPOTrainer(
        model=str(model_path),
        reward_funcs=funcs,
        args=grpo_config(cfg, variant, work_dir, weights, seed),
        train_dataset=dataset,
        processing_class=processor,
    )


def run_grpo(
    cfg: PipelineConfig,
    variant: str,
    model_path: Path,
    turns: Path,
    out_dir: Path,
    metrics: Path,
    kept: Path,
    seed: int | None = None,
) -> None:
    """GRPO of ``variant`` with ``seed`` (None: the variant's first) from ``model_path`` (a saved
    folder: the KL reference model is rebuilt from it); the weights of the variant's curve steps go
    to ``kept``."""
    limit_threads()
    if cfg.rewards.spacy_model is not None:
        require_spacy_model(cfg.rewards.spacy_model)  # K(.) of R_cons: stop now, never switch to the lexicon
    trainer = grpo_trainer(cfg, variant, model_path, turns, work_dir_for(out_dir), seed)
    card = {
        "stage": "grpo",
        "variant": variant,
        "seed": trainer.args.seed,
        "rewards": cfg.grpo.variants[variant].model_dump(),
        "init": str(model_path),
        "prompt_pool": cfg.grpo.prompts,
    }
    train_and_save(trainer, out_dir, metrics, card, kept, cfg.curve_steps(f"grpo-{variant}")[:-1])
