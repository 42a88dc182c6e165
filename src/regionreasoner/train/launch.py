"""Distributed launch: the same ``regionreasoner sft|grpo`` command in one process or several.

On a CPU with ``cpu_processes: 1`` (the embedded default) training runs in-process. With
``gpus > 0`` the command stops before loading anything when CUDA is unusable (no CPU fallback), else
re-executes itself under ``accelerate launch`` with the envs/accelerate config named in the config
(DDP, DeepSpeed ZeRO-2/3), one process per GPU of one node. On a CPU with ``cpu_processes > 1`` it
re-executes itself under ``torchrun``, which gives the Trainer a gloo process group around the same
code: this is how the multi-rank path (one writer, resume on every rank) runs without GPUs.
``accelerate launch --cpu --num_processes N`` starts a single process, and a MULTI_GPU accelerate
config with ``use_cpu: true`` aborts, so torchrun it is.

Every launch gets its own rendezvous port, so two trainings on one node never collide.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import sys
from collections.abc import Mapping, Sequence

from regionreasoner.config import TrainerCommon
from regionreasoner.preflight import require_cuda

# set by accelerate launch / torchrun in the processes they start
LAUNCHED_MARKERS = ("ACCELERATE_LAUNCHED", "LOCAL_RANK")
# ports derived from a SLURM job id lie in [PORT_BASE, PORT_BASE + PORT_SPAN): above the common
# service ports and below Linux's ephemeral range (32768+), which free_port draws from
PORT_BASE, PORT_SPAN = 20000, 12000
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def port_is_free(port: int) -> bool:
    """True when nothing on this host listens on ``port`` (so a rendezvous can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the kernel reports free right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendezvous_port(env: Mapping[str, str]) -> int:
    """The port of this job's process group: ``MASTER_PORT`` if the user set one; else one derived
    from ``SLURM_JOB_ID`` (concurrent jobs have different ids), unless something holds it; else a
    free port. A fixed port (torch's 29500) makes the second training on a node fail to start."""
    if env.get("MASTER_PORT"):
        return int(env["MASTER_PORT"])
    job = env.get("SLURM_JOB_ID", "")
    if job.isdigit():
        port = PORT_BASE + int(job) % PORT_SPAN
        if port_is_free(port):
            return port
    return free_port()


def threads_per_process(section: TrainerCommon, processes: int, env: Mapping[str, str]) -> int:
    """The job's CPU threads split over its processes. Snakemake exports the threads it granted as
    ``OMP_NUM_THREADS`` (fewer than ``section.threads`` when ``--cores`` is smaller); both launchers
    would otherwise give every process the whole grant."""
    granted = int(env.get("OMP_NUM_THREADS") or section.threads)
    return max(1, granted // processes)


def uses_gpus(section: TrainerCommon) -> bool:
    """The stage trains on GPUs: the config's target, whatever the machine that reads it (a GPU job
    on a machine without usable CUDA stops in ``relaunch_if_distributed``, never falls back)."""
    return section.gpus > 0


def launch_command(argv: Sequence[str], section: TrainerCommon, env: Mapping[str, str], on_gpu: bool) -> list[str]:
    """The launcher command line that runs ``argv`` (a regionreasoner command line) on every rank."""
    port = str(rendezvous_port(env))
    if on_gpu:
        command = ["accelerate", "launch"]
        if section.accelerate_config:
            command += ["--config_file", section.accelerate_config]
        command += [
            "--num_processes",
            str(section.gpus),
            "--num_machines",
            "1",
            "--num_cpu_threads_per_process",
            str(threads_per_process(section, section.gpus, env)),
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            port,
        ]
    else:
        command = [
            "torchrun",
            "--nnodes",
            "1",
            "--nproc_per_node",
            str(section.cpu_processes),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            port,
        ]
    return [*command, "-m", "regionreasoner.cli", *argv[1:]]


def die_with_launcher() -> None:
    """Make this rank die when its launcher does (Linux).

    torchrun (also inside ``accelerate launch``) starts every rank in a session of its own, so a
    launcher killed with SIGKILL (a local job killed by hand; SLURM kills the whole job step itself)
    would leave its ranks training and writing checkpoints and the final model on their own, under
    the rerun that follows.
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the launcher died before the line above
        sys.exit("regionreasoner: the launcher of this rank has exited; not training on alone")


def relaunch_if_distributed(section: TrainerCommon, argv: Sequence[str], name: str) -> None:
    """Replace this process by a launcher when the stage asks for several processes.

    GPU: ``gpus > 0`` (stopping first when CUDA is unusable). CPU: ``cpu_processes > 1``. Inside a
    launched process (or for a one-process run) this returns and training runs here.
    """
    require_cuda(section.gpus, f"{name}.gpus")
    if any(marker in os.environ for marker in LAUNCHED_MARKERS):
        die_with_launcher()
        return
    on_gpu = uses_gpus(section)
    processes = section.gpus if on_gpu else section.cpu_processes
    if processes <= 1 and not on_gpu:
        return
    command = launch_command(argv, section, os.environ, on_gpu)
    env = dict(os.environ)
    if not on_gpu:  # torchrun passes OMP_NUM_THREADS on to every rank
        env["OMP_NUM_THREADS"] = str(threads_per_process(section, processes, os.environ))
    executable = shutil.which(command[0]) or os.path.join(os.path.dirname(sys.executable), command[0])
    print("launching:", " ".join(command), flush=True)
    os.execve(executable, [executable, *command[1:]], env)
