"""Distributed launch: the same ``regionreasoner sft|grpo`` command on a CPU, one GPU or many nodes.

On a CPU (the embedded default) training runs in-process. With ``gpus > 0`` and CUDA present, the
command re-executes itself under ``accelerate launch`` with the envs/accelerate config named in the
config (DDP, DeepSpeed ZeRO-2/3). Under SLURM, one task per node runs one launcher; the node count,
this node's rank and the main node's address come from the SLURM environment (docs/cluster.md).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence

import torch

from regionreasoner.config import TrainerCommon

LAUNCHED_MARKERS = ("ACCELERATE_LAUNCHED", "LOCAL_RANK")
DEFAULT_PORT = 29500


def first_host(nodelist: str) -> str:
    """The first host of a SLURM nodelist: ``gpu[03-05,07],cpu1`` -> ``gpu03``."""
    match = re.match(r"([^\[,]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise ValueError(f"cannot parse SLURM nodelist {nodelist!r}")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def launch_command(
    argv: Sequence[str], gpus_per_node: int, accelerate_config: str | None, env: Mapping[str, str]
) -> list[str]:
    """The ``accelerate launch`` command that runs ``argv`` (a regionreasoner command line)."""
    nodes = int(env.get("SLURM_NNODES", "1"))
    rank = int(env.get("SLURM_NODEID", "0"))
    main_host = first_host(env["SLURM_JOB_NODELIST"]) if nodes > 1 else "127.0.0.1"
    command = ["accelerate", "launch"]
    if accelerate_config:
        command += ["--config_file", accelerate_config]
    command += [
        "--num_processes", str(gpus_per_node * nodes),
        "--num_machines", str(nodes),
        "--machine_rank", str(rank),
        "--main_process_ip", main_host,
        "--main_process_port", env.get("MASTER_PORT", str(DEFAULT_PORT)),
        "-m", "regionreasoner.cli", *argv[1:],
    ]
    return command


def relaunch_if_distributed(section: TrainerCommon, argv: Sequence[str]) -> None:
    """Replace this process by ``accelerate launch`` when the stage asks for GPUs and has them."""
    if section.gpus == 0 or not torch.cuda.is_available() or any(m in os.environ for m in LAUNCHED_MARKERS):
        return
    command = launch_command(argv, section.gpus, section.accelerate_config, os.environ)
    executable = shutil.which(command[0]) or os.path.join(os.path.dirname(sys.executable), command[0])
    print("launching:", " ".join(command), flush=True)
    os.execv(executable, [executable, *command[1:]])
