"""A GRPO job killed with SIGKILL after a checkpoint resumes from it when the rule is re-run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from regionreasoner.train.checkpoints import latest_checkpoint
from tests.conftest import VENV_BIN, snakemake

pytestmark = pytest.mark.slow


def test_grpo_resumes_from_its_checkpoint_after_sigkill(built_pipeline, tmp_path):
    built_pipeline = Path(shutil.copytree(built_pipeline, tmp_path / "pipeline", symlinks=True))
    raw = yaml.safe_load((built_pipeline / "config" / "test.yaml").read_text())
    raw["grpo"].update(max_steps=8, save_steps=2)
    (built_pipeline / "resume.yaml").write_text(yaml.safe_dump(raw))
    target = "results-test/models/grpo-full"
    checkpoints = built_pipeline / "results-test" / "models" / ".grpo-full.checkpoints"
    command = [str(VENV_BIN / "snakemake"), target, "--cores", "2", "--configfile", "resume.yaml"]
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    job = subprocess.Popen(
        command,
        cwd=built_pipeline,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while latest_checkpoint(checkpoints) is None:
            assert job.poll() is None, "GRPO finished or failed before writing a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    killed_at = latest_checkpoint(checkpoints)
    step = json.loads((killed_at / "trainer_state.json").read_text())["global_step"]
    assert 2 <= step < 8

    # a SIGKILLed Snakemake leaves its lock behind: unlocking is what a user does next, too
    snakemake(built_pipeline, target, "--configfile", "resume.yaml", "--unlock")
    snakemake(built_pipeline, target, "--configfile", "resume.yaml", "--rerun-incomplete")
    card = json.loads((built_pipeline / target / "model_card.json").read_text())
    assert card["global_step"] == 8
    resumed = Path(card["resumed_from"])
    assert resumed.name.startswith("checkpoint-") and int(resumed.name.split("-")[1]) >= step
    log = (built_pipeline / "results-test" / "logs" / "grpo" / "grpo-full.log").read_text()
    assert f"resuming from {resumed}" in log
