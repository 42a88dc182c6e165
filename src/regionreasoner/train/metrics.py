"""Training curves written where the figures stage reads them (loss, per-term rewards, KL)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from regionreasoner.io import atomic_write_text


def write_log_history(history: list[dict[str, Any]], out: Path) -> None:
    """One CSV row per logged step; columns are the union of logged keys (step first)."""
    rows = [h for h in history if "step" in h and "train_runtime" not in h]
    columns = ["step"] + sorted({k for row in rows for k in row} - {"step"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    atomic_write_text(out, buffer.getvalue())
