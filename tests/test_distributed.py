"""The multi-process training path, run on the CPU: two ranks (torchrun, gloo) around the same
trainer code a multi-GPU ``accelerate launch`` runs. One rank writes the final model, a killed run
resumes on both ranks from the step it reached, checkpoints of both layouts (plain and DeepSpeed)
are recognised and half-written ones skipped, and two launches on one node get their own ports."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from regionreasoner.config import load_config, validate_config
from regionreasoner.train.checkpoints import latest_checkpoint
from regionreasoner.train.launch import launch_command, rendezvous_port
from tests.conftest import REPO, VENV_BIN, run

R = "results-test"
PAPER = load_config(REPO / "config" / "paper.yaml")
DEFAULT = load_config(REPO / "config" / "config.yaml")


# --- two CPU ranks, end to end (reduced config) -----------------------------------------------------


@pytest.fixture(scope="module")
def two_ranks(built_pipeline, tmp_path_factory) -> Path:
    """A workdir with the reduced run's scenes, training turns, base and SFT models (the turns name
    images by paths relative to it), and a config whose SFT and GRPO each start two CPU processes."""
    work = tmp_path_factory.mktemp("ranks")
    built = built_pipeline / "results-test"
    (work / "results-test" / "models").mkdir(parents=True)
    (work / "results-test" / "data").symlink_to(built / "data")  # read only
    shutil.copytree(built / "train", work / "results-test" / "train")
    for model in ("base", "sft"):
        shutil.copytree(built / "models" / model, work / "results-test" / "models" / model)
    raw = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    raw["sft"].update(cpu_processes=2, max_steps=6, save_steps=2, curve_steps=[])
    raw["grpo"].update(cpu_processes=2)
    validate_config(raw)
    (work / "ranks.yaml").write_text(yaml.safe_dump(raw))
    return work


def _train_command(stage: str, model: str, out: str) -> list[str]:
    variant = ["--variant", "full"] if stage == "grpo" else []
    return [
        str(VENV_BIN / "regionreasoner"),
        stage,
        "--configfile",
        "ranks.yaml",
        *variant,
        "--model",
        f"{R}/models/{model}",
        "--train",
        f"{R}/train/turns.jsonl",
        "--out",
        f"{R}/models/{out}",
        "--metrics",
        f"{R}/train_metrics/{out}.csv",
        "--kept",
        f"{R}/checkpoints/{out}",
    ]


def _assert_one_loadable_model(models: Path, name: str, step: int) -> dict:
    from transformers import AutoModelForImageTextToText

    card = json.loads((models / name / "model_card.json").read_text())
    assert card["processes"] == 2 and card["global_step"] == step
    AutoModelForImageTextToText.from_pretrained(models / name)
    leftovers = [p.name for p in models.iterdir() if p.name.startswith(f".{name}.")]
    assert not leftovers, f"temporary or checkpoint folders left behind: {leftovers}"
    return card


def _logged_steps(metrics: Path) -> list[str]:
    return [row.split(",")[0] for row in metrics.read_text().splitlines()[1:]]


@pytest.mark.slow
def test_grpo_on_two_cpu_processes_writes_one_loadable_model(two_ranks):
    proc = run(_train_command("grpo", "sft", "grpo-full"), two_ranks)
    assert "torchrun --nnodes 1 --nproc_per_node 2" in proc.stdout
    _assert_one_loadable_model(two_ranks / R / "models", "grpo-full", step=2)
    assert _logged_steps(two_ranks / R / "train_metrics" / "grpo-full.csv") == ["1", "2"]


@pytest.mark.slow
def test_sft_on_two_cpu_processes_killed_after_a_checkpoint_resumes_there_on_both_ranks(two_ranks):
    command = _train_command("sft", "base", "sft-ranks")
    checkpoints = two_ranks / R / "models" / ".sft-ranks.checkpoints"
    log = two_ranks / "sft-ranks.log"
    with log.open("w") as out:
        job = subprocess.Popen(command, cwd=two_ranks, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while latest_checkpoint(checkpoints) is None:
                assert job.poll() is None, f"SFT ended before a checkpoint:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
                time.sleep(0.2)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, signal.SIGKILL)  # the launcher and both ranks
            job.wait()
    reached = int(latest_checkpoint(checkpoints).name.split("-")[1])
    assert 2 <= reached < 6

    proc = run(command, two_ranks)
    resumed = {
        int(rank): int(step)
        for rank, step in re.findall(r"\[rank (\d)/2\] resuming from \S+checkpoint-(\d+)", proc.stdout)
    }
    assert set(resumed) == {0, 1} and len(set(resumed.values())) == 1, proc.stdout[-3000:]
    assert resumed[0] >= reached
    card = _assert_one_loadable_model(two_ranks / R / "models", "sft-ranks", step=6)
    assert card["resumed_from"].endswith(f"checkpoint-{resumed[0]}")
    assert _logged_steps(two_ranks / R / "train_metrics" / "sft-ranks.csv") == [str(s) for s in range(1, 7)]


# --- checkpoint layouts --------------------------------------------------------------------------


def _trainer_files(path: Path, step: int, ranks: int = 2) -> None:
    path.mkdir(parents=True)
    for name in (
        "config.json",
        "generation_config.json",
        "training_args.bin",
        "scheduler.pt",
        *(f"rng_state_{r}.pth" for r in range(ranks)),
    ):
        (path / name).write_bytes(b"x")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))


def _deepspeed_checkpoint(root: Path, step: int, ranks: int = 2) -> Path:
    """What HF Trainer + DeepSpeed ZeRO-2 (bf16) write at a save: top-level weights and trainer
    state, the ``global_stepN/`` shards of every rank and DeepSpeed's ``latest`` tag file."""
    path = root / f"checkpoint-{step}"
    _trainer_files(path, step, ranks)
    (path / "model.safetensors").write_bytes(b"x")
    (path / "zero_to_fp32.py").write_text("")
    shards = path / f"global_step{step}"
    shards.mkdir()
    (shards / "mp_rank_00_model_states.pt").write_bytes(b"x")
    for rank in range(ranks):
        (shards / f"bf16_zero_pp_rank_{rank}_mp_rank_00_optim_states.pt").write_bytes(b"x")
    (path / "latest").write_text(f"global_step{step}")
    return path


def test_deepspeed_checkpoint_is_found_and_an_incomplete_one_skipped(tmp_path):
    _deepspeed_checkpoint(tmp_path, 50)
    assert latest_checkpoint(tmp_path).name == "checkpoint-50"
    # killed before DeepSpeed wrote its tag file
    (_deepspeed_checkpoint(tmp_path, 100) / "latest").unlink()
    # killed before the trainer state (written last, after every rank's shards)
    (_deepspeed_checkpoint(tmp_path, 150) / "trainer_state.json").unlink()
    # killed while writing the trainer state
    (_deepspeed_checkpoint(tmp_path, 200) / "trainer_state.json").write_text('{"global_st')
    # killed before its optimizer shards
    for shard in (_deepspeed_checkpoint(tmp_path, 250) / "global_step250").glob("*optim_states.pt"):
        shard.unlink()
    assert latest_checkpoint(tmp_path).name == "checkpoint-50"


def test_plain_checkpoint_needs_its_optimizer_and_weights(tmp_path):
    plain = tmp_path / "checkpoint-10"
    _trainer_files(plain, 10)
    assert latest_checkpoint(tmp_path) is None
    (plain / "optimizer.pt").write_bytes(b"x")
    assert latest_checkpoint(tmp_path) is None
    (plain / "model.safetensors").write_bytes(b"x")
    assert latest_checkpoint(tmp_path) == plain


# --- launch --------------------------------------------------------------------------------------


def _port(command: list[str]) -> int:
    flag = "--master_port" if command[0] == "torchrun" else "--main_process_port"
    return int(command[command.index(flag) + 1])


@contextlib.contextmanager
def _held(port: int):
    """A listening socket on ``port``, as a running job's rendezvous store holds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def test_two_launches_on_one_node_get_different_ports():
    section = DEFAULT.sft.model_copy(update={"cpu_processes": 2})
    argv = ["regionreasoner", "sft", "--configfile", "c.yaml"]
    first = _port(launch_command(argv, section, {}, on_gpu=False))
    with _held(first):
        assert _port(launch_command(argv, section, {}, on_gpu=False)) != first
    # under SLURM the port follows the job id, unless something already holds it
    assert rendezvous_port({"SLURM_JOB_ID": "4101"}) != rendezvous_port({"SLURM_JOB_ID": "4102"})
    derived = rendezvous_port({"SLURM_JOB_ID": "4101"})
    with _held(derived):
        assert rendezvous_port({"SLURM_JOB_ID": "4101"}) != derived
    assert rendezvous_port({"MASTER_PORT": "29777", "SLURM_JOB_ID": "4101"}) == 29777


def test_gpu_launch_is_accelerate_on_one_node_with_threads_split_over_ranks():
    command = launch_command(
        ["regionreasoner", "grpo", "--variant", "full"],
        PAPER.grpo,
        {"OMP_NUM_THREADS": "32", "SLURM_JOB_ID": "7"},
        on_gpu=True,
    )
    joined = " ".join(command)
    assert command[:2] == ["accelerate", "launch"]
    assert "--config_file envs/accelerate/deepspeed_zero2.yaml --num_processes 4 --num_machines 1" in joined
    assert "--num_cpu_threads_per_process 8" in joined and "--main_process_ip 127.0.0.1" in joined
    assert joined.endswith("-m regionreasoner.cli grpo --variant full")


def test_cpu_run_in_process_unless_it_asks_for_more_ranks(monkeypatch):
    from regionreasoner.train import launch

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("ACCELERATE_LAUNCHED", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # what Snakemake granted the job
    started = []
    monkeypatch.setattr(launch.os, "execve", lambda exe, args, env: started.append((args, env)))
    cpu = PAPER.grpo.model_copy(update={"gpus": 0})
    launch.relaunch_if_distributed(cpu, ["regionreasoner", "grpo"], "grpo")
    assert not started
    launch.relaunch_if_distributed(cpu.model_copy(update={"cpu_processes": 2}), ["regionreasoner", "grpo"], "grpo")
    [(args, env)] = started
    assert Path(args[0]).name == "torchrun" and env["OMP_NUM_THREADS"] == "1"  # 2 threads over 2 ranks
    monkeypatch.setattr(launch, "die_with_launcher", lambda: None)
    monkeypatch.setenv("LOCAL_RANK", "0")  # inside a launched rank: train here
    launch.relaunch_if_distributed(cpu.model_copy(update={"cpu_processes": 2}), ["regionreasoner", "grpo"], "grpo")
    assert len(started) == 1


# --- what TRL receives at paper scale ---------------------------------------------------------------


def test_paper_trainer_configs_get_bf16_and_activation_checkpointing_on_gpus(monkeypatch, tmp_path):
    """Checked on the built TRL configs, the objects the trainers receive (GPUs faked present)."""
    import transformers.training_args

    from regionreasoner.train import configs

    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda: True)
    for args in (configs.sft_config(PAPER, tmp_path), configs.grpo_config(PAPER, "full", tmp_path, [1.0] * 5)):
        assert args.bf16 and not args.use_cpu
        assert args.activation_checkpointing and args.gradient_checkpointing
    cpu = configs.grpo_config(DEFAULT, "full", tmp_path, [1.0] * 5)
    assert cpu.use_cpu and not cpu.bf16 and not cpu.activation_checkpointing


def test_paper_evaluation_budget_covers_the_training_completions():
    assert PAPER.evaluate.max_new_tokens >= max(2048, PAPER.grpo.max_completion_length)
    assert PAPER.grpo.threads == PAPER.grpo.gpus * 8 and PAPER.evaluate.threads > 1


def test_zero3_config_gathers_full_weights_when_saving():
    """The final model is saved through the trainer; under ZeRO-3 that only writes loadable weights
    when accelerate's zero3_save_16bit_model (DeepSpeed's stage3_gather_16bit_weights_on_model_save)
    is on."""
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(REPO / "envs" / "accelerate" / "deepspeed_zero3.yaml"))
    assert cfg.deepspeed_config["zero_stage"] == 3 and cfg.deepspeed_config["zero3_save_16bit_model"]
