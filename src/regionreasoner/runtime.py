"""Process-level settings every stage shares."""

from __future__ import annotations

import os

import torch


def limit_threads() -> None:
    """Use the cores Snakemake gave the job (it sets OMP_NUM_THREADS to ``threads``), not every core.

    On a CPU, two OpenMP threads on one free core spin against each other: measured here, an SFT step
    went from 0.4 s to 5 s when another process held the second core.
    """
    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
