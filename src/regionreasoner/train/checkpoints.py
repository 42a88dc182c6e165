"""Resume after preemption: find the newest checkpoint that was written completely.

HF Trainer writes ``checkpoint-N`` in place, so a job killed while saving leaves a directory that
looks like the newest checkpoint but cannot be loaded. The Trainer writes ``trainer_state.json``
last, and only after the optimizer state is saved (under DeepSpeed, after DeepSpeed's closing
barrier, so after every rank's shard). A checkpoint therefore counts when that file parses, names
the folder's step, and the optimizer state of its layout is present:

- plain (one process, DDP): weights (``*.safetensors`` or ``pytorch_model*.bin``) and ``optimizer.pt``;
- DeepSpeed: a ``latest`` file naming a ``global_stepN/`` folder that holds the model and optimizer
  state shards (``*model_states.pt``, ``*optim_states.pt``); top-level weights are optional there
  (ZeRO-3 writes them only when it gathers 16-bit weights on save).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"


def saved_step(checkpoint: Path) -> int | None:
    """The global step ``trainer_state.json`` records, or None when it is missing or half-written."""
    try:
        return int(json.loads((checkpoint / TRAINER_STATE).read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_deepspeed(checkpoint: Path) -> bool:
    """True for the DeepSpeed layout (``latest`` or ``global_step*/`` written by DeepSpeed)."""
    return (checkpoint / "latest").exists() or any(p.is_dir() for p in checkpoint.glob("global_step*"))


def _deepspeed_state_complete(checkpoint: Path) -> bool:
    tag_file = checkpoint / "latest"
    if not tag_file.is_file():
        return False
    shards = checkpoint / tag_file.read_text().strip()
    return any(shards.glob("*model_states.pt")) and any(shards.glob("*optim_states.pt"))


def _plain_state_complete(checkpoint: Path) -> bool:
    has_weights = any(checkpoint.glob("*.safetensors")) or any(checkpoint.glob("pytorch_model*.bin"))
    return has_weights and (checkpoint / "optimizer.pt").is_file()


def is_complete(checkpoint: Path) -> bool:
    """True when ``checkpoint-N`` holds a finished trainer state for step N and its optimizer state."""
    match = _CHECKPOINT.match(checkpoint.name)
    if not match or saved_step(checkpoint) != int(match.group(1)):
        return False
    return _deepspeed_state_complete(checkpoint) if is_deepspeed(checkpoint) else _plain_state_complete(checkpoint)


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step under ``work_dir``, or None."""
    if not work_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in work_dir.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir()]
    for _, path in sorted(found, reverse=True):
        if is_complete(path):
            return path
    return None
