"""The SLURM profile against a real scheduler: the reduced DAG runs through slurmctld/slurmd.

A single-node SLURM cluster is started on loopback by the ``slurm_cluster`` fixture (tests/slurm_cluster.py)
and stopped when the module ends, also on failure. Snakemake runs with the unmodified
``workflow/profiles/slurm`` plus test-only overrides: ``squeue`` for job status (the test cluster has
no accounting database), a 2 s first status check instead of 40 s, two jobs at a time (2 CPU cores).
Every run is wrapped in ``timeout -k``: without accounting, a misconfigured plugin polls forever.
Skipped with the reason when not root or when the SLURM/munge binaries are missing
(scripts/install_system_deps.sh installs them). About 6 minutes on 2 cores, 5.3 of them for the reduced DAG.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from regionreasoner.config import validate_config
from regionreasoner.report.targets import TABLE_NAMES
from slurm_cluster import SlurmCluster, lean_test_config, slurm_cluster  # noqa: F401  (the fixture)
from tests.conftest import REPO, VENV_BIN

pytestmark = pytest.mark.slow

SNAKEMAKE = str(VENV_BIN / "snakemake")
PROFILE = REPO / "workflow/profiles/slurm"
TEST_OVERRIDES = [
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--jobs",
    "2",
    "--latency-wait",
    "10",
]
DAG_TIMEOUT_S = 480  # the whole module must stay under 10 minutes in CI


def run_snakemake(args: list[str], cluster: SlurmCluster, cwd: Path, limit_s: int) -> subprocess.CompletedProcess:
    """Snakemake through the SLURM profile, killed (SIGTERM, then SIGKILL) after ``limit_s`` seconds."""
    cmd = ["timeout", "-k", "20", str(limit_s), SNAKEMAKE, "--workflow-profile", str(PROFILE), *TEST_OVERRIDES, *args]
    env = {**cluster.env, "PATH": f"{VENV_BIN}{os.pathsep}{cluster.env.get('PATH', '')}"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode == 124:
        pytest.fail(f"snakemake on SLURM hit the {limit_s} s limit:\n{proc.stderr[-6000:]}")
    return proc


def slurm_jobs(cluster: SlurmCluster, since: set[str] = frozenset()) -> list[dict[str, str]]:
    """Jobs the controller remembers (MinJobAge=600 keeps finished ones), except the ids in ``since``."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--Format=JobID:|,State:|,Partition:|,tres-per-job:|,Comment:|"],
        capture_output=True,
        text=True,
        env=cluster.env,
        check=True,
    ).stdout
    keys = ("id", "state", "partition", "tres", "comment")  # the plugin's comment: rule_<name>[_wildcards_...]
    jobs = [dict(zip(keys, (f.strip() for f in line.split("|")))) for line in out.splitlines() if line.strip()]
    return [job for job in jobs if job["id"] not in since]


def slurm_test_config(tmp_path: Path) -> tuple[Path, dict]:
    """The lean test config with its results under tmp_path."""
    config = lean_test_config(REPO / "config/test.yaml", results=tmp_path / "results")
    path = tmp_path / "slurm_test.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, config


def test_reduced_dag_runs_through_slurm_with_gpu_requests(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    config_path, config = slurm_test_config(tmp_path)
    results = Path(config["results"])
    tables = [f"{results}/tables/{name}.md" for name in TABLE_NAMES]
    before = {job["id"] for job in slurm_jobs(slurm_cluster)}
    proc = run_snakemake(
        ["--configfile", str(config_path), "--slurm-logdir", str(tmp_path / "slurm_logs"), "--", *tables],
        slurm_cluster,
        REPO,
        DAG_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]

    for name in TABLE_NAMES:
        assert (results / "tables" / f"{name}.md").stat().st_size > 0
        assert (results / "tables" / f"{name}.tex").stat().st_size > 0

    jobs = slurm_jobs(slurm_cluster, since=before)
    assert jobs and all(job["state"] == "COMPLETED" for job in jobs), jobs
    gpu_jobs = [job for job in jobs if job["partition"] == "gpu"]
    # The profile sends SFT, every GRPO training (each variant once per seed), every model evaluation
    # (each seed of a variant's row) and the held-out reward probe of every trained model (the
    # training table's) to the GPU partition.
    cfg = validate_config(config)
    trained = len(cfg.trained_models())
    evaluated = {seed for model in cfg.evaluate.models for seed in cfg.seed_models(model)}
    expected = trained + len(evaluated) + trained
    assert len(gpu_jobs) == expected, jobs
    # The GPU count of a job is the config's (test.yaml asks for none), never the profile's.
    assert not any("gres:gpu" in job["tres"] for job in gpu_jobs), gpu_jobs
    # Tables are local rules: they ran beside Snakemake, never as batch jobs.
    assert not [job for job in jobs if job["comment"].startswith("rule_table_")], jobs
    assert [job for job in jobs if job["comment"].startswith("rule_evaluate")], jobs


FLAKY_SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: "done.txt"

    rule flaky:
        \"\"\"Fails on its first attempt after writing a partial output, succeeds on the second.\"\"\"
        output: "done.txt"
        resources:
            attempt=lambda wildcards, attempt: attempt,
        shell:
            "echo partial > {output}; "
            "if [ {resources.attempt} -lt 2 ]; then echo 'attempt {resources.attempt} fails'; exit 1; fi; "
            "echo 'finished on attempt {resources.attempt}' > {output}"
    """
)


def test_failed_slurm_job_is_retried_and_leaves_no_finished_looking_output(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    (tmp_path / "Snakefile").write_text(FLAKY_SNAKEFILE)
    before = {job["id"] for job in slurm_jobs(slurm_cluster)}
    proc = run_snakemake(["--slurm-logdir", str(tmp_path / "slurm_logs")], slurm_cluster, tmp_path, 180)
    assert proc.returncode == 0, proc.stderr[-6000:]
    # The profile's `retries: 2` resubmitted the job; the partial output of attempt 1 was not kept.
    assert (tmp_path / "done.txt").read_text() == "finished on attempt 2\n"
    states = sorted(job["state"] for job in slurm_jobs(slurm_cluster, since=before))
    assert states == ["COMPLETED", "FAILED"], states
