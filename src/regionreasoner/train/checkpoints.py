"""Resume after preemption: find the newest checkpoint that was written completely.

HF Trainer writes ``checkpoint-N`` in place, so a job killed while saving leaves a directory that
looks like the newest checkpoint but cannot be loaded. Only a folder holding the trainer state and
the weights counts; training resumes from its global step, never from step 0 when one exists.
"""

from __future__ import annotations

import re
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_REQUIRED = ("trainer_state.json", "optimizer.pt")


def is_complete(checkpoint: Path) -> bool:
    """True when the checkpoint has its trainer state, optimizer and weights."""
    has_weights = any(checkpoint.glob("*.safetensors")) or any(checkpoint.glob("pytorch_model*.bin"))
    return has_weights and all((checkpoint / name).is_file() for name in _REQUIRED)


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step under ``work_dir``, or None."""
    if not work_dir.is_dir():
        return None
    found = [
        (int(m.group(1)), p) for p in work_dir.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir()
    ]
    for _, path in sorted(found, reverse=True):
        if is_complete(path):
            return path
    return None
