"""SFT warm-up with TRL's SFTTrainer.

The paper trains GRPO straight from Qwen2.5-VL-7B-Instruct (docs/method.md section 6), which already
answers in boxes; a random-init tiny model must first learn the four-part output format, so the
warm-up is ON in the embedded default and OFF in config/paper.yaml (an optional ablation there).
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoModelForImageTextToText
from trl import SFTTrainer

from regionreasoner.config import PipelineConfig
from regionreasoner.models.patch_embed import embed_patches_by_matmul
from regionreasoner.models.processor import load_processor
from regionreasoner.models.prompts import PromptConfig
from regionreasoner.runtime import limit_threads
from regionreasoner.train.configs import sft_config
from regionreasoner.train.data import sft_dataset
from regionreasoner.train.runner import (
    CheckpointWeightsMixin,
    score_labelled_positions_only,
    train_and_save,
    work_dir_for,
)


class ResumableSFTTrainer(CheckpointWeightsMixin, SFTTrainer):
    """TRL's SFTTrainer whose resume restores the checkpoint's weights (``CheckpointWeightsMixin``)."""


def sft_trainer(cfg: PipelineConfig, model_path: Path, turns: Path, work_dir: Path) -> ResumableSFTTrainer:
    """The SFT trainer of the pipeline (also what scripts/profile_steps.py times step by step)."""
    score_labelled_positions_only()
    embed_patches_by_matmul()
    frame = cfg.model.frame
    dataset = sft_dataset(turns, PromptConfig.from_config(cfg), frame, cfg.sft.target_style)  # inputs checked first
    processor = load_processor(model_path, frame)
    args = sft_config(cfg, work_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_path, **args.model_init_kwargs)
    return ResumableSFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=processor,
    )


def run_sft(cfg: PipelineConfig, model_path: Path, turns: Path, out_dir: Path, metrics: Path, kept: Path) -> None:
    """Fine-tune ``model_path`` on the rendered targets of ``turns``; save to ``out_dir`` (the curve
    steps' weights to ``kept``)."""
    limit_threads()
    trainer = sft_trainer(cfg, model_path, turns, work_dir_for(out_dir))
    card = {"stage": "sft", "base": str(model_path), "turns": str(turns)}
    train_and_save(trainer, out_dir, metrics, card, kept, cfg.curve_steps("sft")[:-1])
