"""What SFT and GRPO share: resume, one atomic final save, training curves, on every rank.

Under a launcher (accelerate launch, torchrun) every rank runs this code. The ranks agree on one
resume checkpoint (the main process picks it), every rank joins the final save (ZeRO-3 gathers the
sharded weights inside it), and only the main process writes the model folder, the model card and
the curves. The resume checkpoints are deleted once, after every rank has finished.

The weights at the config's curve steps are kept (``KeepCurveSteps``): saved like the final model
into the work folder as the steps pass (so a resumed job keeps those it saved before), then moved
into one folder beside the final model, ``step-N`` each, without optimizer state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import torch
import trl.trainer.utils as trl_utils
from accelerate.utils import broadcast_object_list
from transformers import Trainer, TrainerCallback

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


_TRL_COMPACTS = trl_utils._use_triton  # TRL's own choice: compact where its Triton kernel runs


def _compact_on_cpu(device: torch.device) -> bool:
    return device.type == "cpu" or _TRL_COMPACTS(device)


def score_labelled_positions_only() -> None:
    """Let TRL's fused LM head score only the positions that carry a label, on CPUs too.

    TRL projects only the labelled positions where its Triton kernel runs (CUDA, XPU); elsewhere it
    projects every position (prompt, image and padding included) and masks afterwards, so that tile
    shapes stay fixed for graph compilers. Nothing is compiled on a CPU, and the full projection was
    a fifth of an SFT step of the tiny model (docs/benchmarks.md). Both paths give the same
    log-probabilities, loss and gradients up to the order of floating-point sums (enough to move the
    tiny model's SFT trajectory, as a change of CPU or BLAS build may)."""
    trl_utils._use_triton = _compact_on_cpu


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


def kept_step(folder: Path, step: int) -> Path:
    """``step-N`` of a folder of kept checkpoints (paths.kept_checkpoints)."""
    return folder / f"step-{step}"


class KeepCurveSteps(TrainerCallback):
    """Save the weights at each curve step on every rank (ZeRO-3 gathers them), like the final model."""

    def __init__(self, trainer: Trainer, steps: list[int], staging: Path, card: dict) -> None:
        self.trainer, self.steps, self.staging, self.card = trainer, set(steps), staging, card

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.steps:
            card = {**self.card, "global_step": state.global_step, "kept": "curve step"}
            save_final(self.trainer, kept_step(self.staging, state.global_step), card)
        return control


def move_kept(staging: Path, steps: list[int], kept: Path) -> None:
    """Move the staged curve-step checkpoints into ``kept`` in one rename (empty without curve steps)."""
    missing = [s for s in steps if not kept_step(staging, s).is_dir()]
    if missing:
        raise RuntimeError(f"{staging}: no checkpoint kept at curve steps {missing}; the run ended before them")
    with atomic_path(kept, directory=True) as tmp:
        for step in steps:
            os.replace(kept_step(staging, step), kept_step(tmp, step))


def train_and_save(
    trainer: Trainer, out_dir: Path, metrics: Path, card: dict, kept: Path, curve_steps: list[int]
) -> None:
    """Train (resuming from the newest complete checkpoint), keeping the weights of ``curve_steps``
    in ``kept``, then save model and curves atomically."""
    args = trainer.args
    staging = Path(args.output_dir) / "kept"
    trainer.add_callback(KeepCurveSteps(trainer, curve_steps, staging, card))
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
        move_kept(staging, curve_steps, kept)
        # every rank is done with the checkpoints (7B ones hold ~100 GB of optimizer state)
        shutil.rmtree(args.output_dir, ignore_errors=True)
        print(f"saved {out_dir} (step {trainer.state.global_step}); curves in {metrics}", flush=True)
    # Left to interpreter shutdown, gloo's worker threads can still hold tensors while Python is
    # torn down, and a rank aborts (SIGABRT) after the model was saved, failing a job that succeeded.
    trainer.accelerator.end_training()
