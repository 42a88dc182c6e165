"""What SFT and GRPO share: resume, atomic final save, training curves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from transformers import Trainer

from regionreasoner.io import atomic_path
from regionreasoner.train.checkpoints import latest_checkpoint
from regionreasoner.train.metrics import write_log_history

def work_dir_for(out_dir: Path) -> Path:
    """Checkpoints live beside the final model, outside any Snakemake output, so reruns keep them."""
    return out_dir.parent / f".{out_dir.name}.checkpoints"


def train_and_save(trainer: Trainer, processor, out_dir: Path, metrics: Path, card: dict) -> None:
    """Train (resuming from the newest complete checkpoint), then save model and curves atomically."""
    resume = latest_checkpoint(Path(trainer.args.output_dir))
    if resume is not None:
        print(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    write_log_history(trainer.state.log_history, metrics)
    with atomic_path(out_dir, directory=True) as tmp:
        trainer.model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        card = {**card, "global_step": trainer.state.global_step, "resumed_from": str(resume) if resume else None}
        (tmp / "model_card.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    # the final model is safe: drop the resume checkpoints (7B ones hold ~100 GB of optimizer state)
    shutil.rmtree(trainer.args.output_dir, ignore_errors=True)
    print(f"saved {out_dir} (step {trainer.state.global_step}); curves in {metrics}")
