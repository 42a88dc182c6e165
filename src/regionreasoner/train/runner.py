"""What SFT and GRPO share: resume, one atomic final save, training curves, on every rank.

Under a launcher (accelerate launch, torchrun) every rank runs this code. The ranks agree on one
resume checkpoint (the main process picks it), every rank joins the final save (ZeRO-3 gathers the
sharded weights inside it), and only the main process writes the model folder, the model card and
the curves. The resume checkpoints are deleted once, after every rank has finished.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from accelerate.utils import broadcast_object_list
from transformers import Trainer

from regionreasoner.io import atomic_path
from regionreasoner.train.checkpoints import latest_checkpoint
from regionreasoner.train.metrics import write_log_history


class CheckpointWeightsMixin:
    """Resume a plain (one process, DDP) checkpoint's weights through ``from_pretrained``.

    ``save_pretrained`` writes Qwen2.5-VL's weights under the hub's key names (``model.layers.*``,
    ``visual.*``), while the live module names them ``model.language_model.layers.*``,
    ``model.visual.*``. Trainer's own resume loads the file with ``load_state_dict(strict=False)``,
    which matches none of those keys, warns, and trains on from the step count of the checkpoint
    with the weights it happened to have. ``from_pretrained`` applies the key conversion, so the
    weights are read that way and loaded strictly; DeepSpeed and FSDP restore their own shards."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        dtype = next(target.parameters()).dtype
        saved = type(target).from_pretrained(resume_from_checkpoint, dtype=dtype)
        target.load_state_dict(saved.state_dict(), strict=True)
        return None


def work_dir_for(out_dir: Path) -> Path:
    """Checkpoints live beside the final model, outside any Snakemake output, so reruns keep them."""
    return out_dir.parent / f".{out_dir.name}.checkpoints"


def agreed_resume(trainer: Trainer) -> Path | None:
    """The newest complete checkpoint as the main process sees it, the same on every rank."""
    found = latest_checkpoint(Path(trainer.args.output_dir)) if trainer.is_world_process_zero() else None
    [chosen] = broadcast_object_list([str(found) if found else None])
    return Path(chosen) if chosen else None


def save_final(trainer: Trainer, out_dir: Path, card: dict) -> None:
    """Save through the trainer (so ZeRO-3 gathers full weights) into a folder the main process
    renames into place when complete; the other ranks only take part in the gather."""
    main = trainer.is_world_process_zero()
    with atomic_path(out_dir, directory=True) if main else contextlib.nullcontext() as tmp:
        [staging] = broadcast_object_list([str(tmp) if main else None])
        trainer.save_model(staging)  # weights, config and the processor (the trainer's processing_class)
        if main:
            (tmp / "model_card.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")


def train_and_save(trainer: Trainer, out_dir: Path, metrics: Path, card: dict) -> None:
    """Train (resuming from the newest complete checkpoint), then save model and curves atomically."""
    args = trainer.args
    resume = agreed_resume(trainer)
    if resume is not None:
        print(f"[rank {args.process_index}/{args.world_size}] resuming from {resume}", flush=True)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    card = {
        **card,
        "global_step": trainer.state.global_step,
        "resumed_from": str(resume) if resume else None,
        "processes": args.world_size,
    }
    save_final(trainer, out_dir, card)
    if trainer.is_world_process_zero():
        write_log_history(trainer.state.log_history, metrics)
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        # every rank is done with the checkpoints (7B ones hold ~100 GB of optimizer state)
        shutil.rmtree(args.output_dir, ignore_errors=True)
        print(f"saved {out_dir} (step {trainer.state.global_step}); curves in {metrics}", flush=True)
