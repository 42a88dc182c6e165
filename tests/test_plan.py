"""The cost plan: the cost model on hand-computed cases, measured figures replacing published ones,
profile limits turned into warnings, the node schedule, and jobs equal to Snakemake's dry run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import pytest
import yaml

from regionreasoner.config import load_config, validate_config
from regionreasoner.plan.cost import (
    Cost,
    EvalShape,
    TrainShape,
    checkpoint_gb,
    decode_s_per_step,
    download_cost,
    eval_cost,
    forward_s_per_token,
    train_cost,
)
from regionreasoner.plan.dag import Job, Profile, dry_run, parse_dry_run
from regionreasoner.plan.planner import Row, eval_shape, make_plan, render, schedule
from regionreasoner.plan.throughput import (
    Architecture,
    load_figures,
    load_published,
    read_measured,
    write_measured,
)
from regionreasoner.report.targets import purpose_inputs
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "gpu_throughput.json"
# a round-number device and model, so every figure below is arithmetic on the page
ARCH = Architecture(params=1e9, layers=2, hidden=8, kv_heads=1, head_dim=4, vocab=10)
KV_BYTES = 2 * 2 * 1 * 4 * 2  # keys + values x layers x kv heads x head dim x bf16 = 32


@pytest.fixture
def device():
    published = load_published().device
    return replace(
        published,
        peak_bf16_tflops=1000.0,
        train_mfu=0.5,
        hbm_tb_per_s=2.0,
        hf_generate_bandwidth_fraction=0.5,
        sam2_s_per_turn=0.1,
        sam2_memory_gb=3.0,
    )


@pytest.fixture
def workload():
    return replace(
        load_published().workload, host_overhead_gb_per_process=8.0, load_gb_per_s=1.0, checkpoint_write_gb_per_s=1.0
    )


def test_forward_and_decode_hand_computed(device):
    # forward: 2 P FLOPs per token at MFU x peak = 2e9 / (0.5 x 1e15) = 4e-6 s
    assert forward_s_per_token(device, ARCH) == pytest.approx(4e-6)
    # decode: (bf16 weights 2e9 B + 2 sequences x 100 tokens x 32 B) / 2e12 B/s / 0.5
    assert ARCH.kv_bytes_per_token() == KV_BYTES
    assert decode_s_per_step(device, ARCH, 2, 100) == pytest.approx((2e9 + 2 * 100 * 32) / 2e12 / 0.5)


def test_zero2_checkpoint_of_a_7b_model_is_133_gb():
    shape = TrainShape(
        gpus=4,
        steps=625,
        micro_batch=2,
        accumulation=16,
        prompt_tokens=1230,
        completion_tokens=400,
        generate_tokens=2000,
        reference=True,
        iterations=1,
        checkpointing=True,
        bf16=True,
        zero_stage=2,
        save_steps=50,
        save_total_limit=2,
    )
    # bf16 weights (2) + fp32 master, Adam m and v (12) + DeepSpeed bf16 module states (2) = 16 B/param
    assert checkpoint_gb(shape, 8.29e9) == pytest.approx(16 * 8.29)


def test_train_cost_hand_computed(device, workload):
    shape = TrainShape(
        gpus=4,
        steps=100,
        micro_batch=1,
        accumulation=2,
        prompt_tokens=10,
        completion_tokens=5,
        generate_tokens=0,
        reference=True,
        iterations=1,
        checkpointing=True,
        bf16=True,
        zero_stage=2,
        save_steps=10,
        save_total_limit=2,
    )
    cost = train_cost(shape, ARCH, device, workload)
    # per step: 2 sequences x 15 tokens x 4e-6 s x 5 passes (fwd, 2x bwd, recompute, reference) = 6e-4 s
    # 100 steps = 0.06 s; 10 saves x 16 GB at 1 GB/s = 160 s; loading policy + reference 2 x 2 GB = 4 s
    assert cost.hours == pytest.approx((0.06 + 160 + 4) / 3600)
    # per device: weights 2 GB + fp32 grads 4/4 GB + Adam 12/4 GB + reference 2 GB = 8 GB, plus activations:
    # 1 sequence x 15 tokens x (2 layers x 2 B x 8 + 34 x 8) B + logits 1 x 5 tokens x 10 x 2 B x 3 copies
    assert cost.gpu_memory_gb == pytest.approx(8 + (15 * (2 * 2 * 8 + 34 * 8) + 5 * 10 * 2 * 3) / 1e9)
    # four processes, each holding policy and reference in bf16 (2 x 2 GB) plus 8 GB overhead
    assert cost.host_memory_gb == pytest.approx(4 * (2 * 2 + 8))
    # three checkpoints exist for a moment (limit 2, plus the one just written) beside the 2 GB model
    assert (cost.disk_peak_gb, cost.disk_kept_gb) == pytest.approx((3 * 16 + 2, 2))


def test_fp32_loading_exceeds_the_host_memory_of_four_ranks(device, workload):
    shape = TrainShape(
        gpus=4,
        steps=1,
        micro_batch=8,
        accumulation=4,
        prompt_tokens=1230,
        completion_tokens=400,
        generate_tokens=2000,
        reference=True,
        iterations=1,
        checkpointing=True,
        bf16=False,
        zero_stage=2,
        save_steps=50,
        save_total_limit=2,
    )
    arch = load_published().architectures["Qwen/Qwen2.5-VL-7B-Instruct"]
    # 4 ranks x (policy + reference) x 8.29e9 x 4 B = 265 GB of weights, above a 256 GB node allocation
    assert train_cost(shape, arch, device, workload).host_memory_gb == pytest.approx(4 * (2 * 8.29 * 4 + 8))


def test_download_disk_counts_archives_and_their_extraction():
    # 1 GB + 0.5 GB of archives, kept beside what they extract to; an unpinned size counts nothing
    assert download_cost([1_000_000_000, None, 500_000_000]).disk_kept_gb == pytest.approx(2 * 1.5)


def test_dry_run_text_without_jobs_plans_nothing():
    assert parse_dry_run("Building DAG of jobs...\nNothing to be done (all requested files are present).") == []


def test_eval_cost_hand_computed(device, workload):
    shape = EvalShape(rounds=((3, 1),), batch=2, prompt_tokens=10, completion_tokens=4, max_new_tokens=6, sam2=True)
    cost = eval_cost(shape, ARCH, device, workload)

    def batch_s(n):  # prefill n x 10 tokens at 4e-6 s, then 4 steps at a context of 10 + 4 / 2 = 12 tokens
        return n * 10 * 4e-6 + 4 * (2e9 + n * 12 * 32) / 2e12 / 0.5

    # load 2 GB at 1 GB/s; round 1: a batch of 2 and one of 1; round 2: one of 1; SAM2 0.1 s on 4 turns
    assert cost.hours == pytest.approx((2 + batch_s(2) + 2 * batch_s(1) + 4 * 0.1) / 3600)
    # bf16 weights 2 GB + KV cache 2 x (10 + 6) x 32 B + SAM2 3 GB
    assert cost.gpu_memory_gb == pytest.approx(2 + 2 * 16 * 32 / 1e9 + 3)


def test_measured_figures_replace_published(tmp_path):
    measured = json.loads(FIXTURE.read_text())
    path = tmp_path / "gpu_throughput.json"
    write_measured(path, measured)
    assert read_measured(path) == measured
    figures = load_figures(path)
    assert figures.device.source == f"measured ({path})" and figures.device.memory_gb == 85.0
    arch = figures.architectures["Qwen/Qwen2.5-VL-7B-Instruct"]  # the measured model's 8.29e9 parameters
    # measured 20 ms at batch 16 and 24 ms at batch 32: batch 24 interpolates to 22 ms
    assert decode_s_per_step(figures.device, arch, 24, 1500) == pytest.approx(0.022)
    # 0.8 s per 1k tokens forward + backward with checkpointing = 4 forward passes: 0.2 ms a token
    assert forward_s_per_token(figures.device, arch) == pytest.approx(0.8 / 1000 / 4)
    del measured["sam2_s_per_turn"]
    path.write_text(json.dumps(measured))
    with pytest.raises(ValueError, match="sam2_s_per_turn"):
        read_measured(path)


def test_plan_prices_with_the_measured_file(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    raw = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    raw["results"] = str(tmp_path / "results")  # no built benchmark: turns from the paper's Table 6
    cfg = validate_config(raw)
    jobs = [Job("evaluate", 1, {"model": "base"}, resources={"gpu": "1"})]  # the rule requests evaluate.gpus
    profile = Profile(REPO / "workflow" / "profiles" / "slurm")
    slower = json.loads(FIXTURE.read_text())
    slower["sam2_s_per_turn"] += 1.0
    (tmp_path / "slower.json").write_text(json.dumps(slower))
    measured = make_plan(jobs, cfg, profile, load_figures(FIXTURE))
    slow_sam2 = make_plan(jobs, cfg, profile, load_figures(tmp_path / "slower.json"))
    assert "measured" in render(measured) and "published" in render(make_plan(jobs, cfg, profile, load_figures(None)))
    # one more second of SAM2 per turn on 2 x (2355 + 4405) turns (Table 6; multi- and single-round)
    extra_h = slow_sam2.rows[0].cost.hours - measured.rows[0].cost.hours
    assert extra_h == pytest.approx(2 * (2355 + 4405) * 1.0 / 3600)


def test_profile_limits_become_warnings(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    profile_file = tmp_path / "config.yaml"
    profile_file.write_text(
        yaml.safe_dump(
            {"retries": 2, "set-resources": {"grpo": {"gpu": 4, "mem_mb": 100000, "runtime": "60 * attempt"}}}
        )
    )
    plan = make_plan(
        [Job("grpo", 1, {"model": "grpo-full"})],
        load_config("config/paper.yaml"),
        Profile(tmp_path),
        load_figures(None),
    )
    warnings = " | ".join(plan.rows[0].warnings)
    assert "exceeds the profile's runtime of 1 h" in warnings and "3 h by attempt 3" in warnings
    assert "exceeds the profile's mem_mb 100000" in warnings


def test_schedule_on_one_node():
    def row(jobid, gpus, hours):
        return Row(Job("grpo", jobid), Cost(gpus, hours, 0, 0, 0, 0))

    rows = [row(1, 4, 10.0), row(2, 4, 10.0), row(3, 1, 1.0), row(4, 1, 2.0)]
    deps = {1: set(), 2: set(), 3: {1}, 4: {1}}
    # 4 GPUs: job 1 (0-10 h), then job 2 (10-20 h) needs all four; jobs 3 and 4 wait for job 2's GPUs
    assert schedule(rows, deps, 4) == pytest.approx(22.0)
    # 8 GPUs: jobs 1 and 2 together (0-10 h), then 3 and 4 side by side (10-12 h)
    assert schedule(rows, deps, 8) == pytest.approx(12.0)


def test_a_new_benchmark_is_priced_from_its_turns(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    raw = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    raw["results"] = str(tmp_path)
    raw["benchmarks"] = {
        "newbench": {"dataset": "refcoco", "split_by": "unc", "test_splits": ["test"], "train_splits": ["train"]}
    }
    (tmp_path / "bench").mkdir()
    dialogues = [{"conversational_turns": [{}] * n} for n in (1, 1, 2)]
    (tmp_path / "bench" / "newbench.json").write_text(json.dumps(dialogues))
    shape, notes = eval_shape(validate_config(raw), "base", load_figures(None))
    # multi-round: 3 turns in round 1, 1 in round 2; single-round: the 4 turns as one round
    assert shape.rounds == ((3, 1), (4,)) and not notes


def _snakemake_job_stats(text: str) -> Counter:
    """The `Job stats` table Snakemake prints with a dry run."""
    lines = text[text.index("Job stats:") :].splitlines()[3:]
    stats = Counter()
    for line in lines:
        name, _, count = line.rpartition(" ")
        if name.strip() == "total" or not line.strip():
            break
        stats[name.strip()] = int(count)
    return stats


@pytest.mark.parametrize("config", ["config/paper.yaml", "config/test.yaml"])
def test_planned_jobs_equal_snakemake_dry_run(config, monkeypatch):
    monkeypatch.chdir(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "1", "--configfile", config],
        capture_output=True,
        text=True,
        check=True,
    )
    text = done.stdout + done.stderr
    jobs = parse_dry_run(text)
    cfg = load_config(config)
    plan = make_plan(jobs, cfg, Profile(REPO / "workflow" / "profiles" / "slurm"), load_figures(None))
    assert Counter(row.job.rule for row in plan.rows) == _snakemake_job_stats(text)
    trained = {job.wildcards["model"] for job in jobs if job.rule == "grpo"}
    further = {f"grpo-{v}-seed{n}" for v, spec in cfg.grpo.variants.items() for n in (spec.seeds or [])[1:]}
    assert trained == {f"grpo-{v}" for v in cfg.grpo.variants} | further


def test_purpose_target_plan(monkeypatch):
    monkeypatch.chdir(REPO)
    jobs = dry_run(REPO / "config" / "paper.yaml", ["alpha_beta_sweep"])
    cfg = load_config("config/paper.yaml")
    swept = set(cfg.report.alpha_beta_rows.values())
    assert {job.wildcards["model"] for job in jobs if job.rule == "grpo"} == swept
    plan = make_plan(jobs, cfg, Profile(REPO / "workflow" / "profiles" / "slurm"), load_figures(None))
    grpo = [r for r in plan.rows if r.job.rule == "grpo"]
    assert plan.gpu_hours > sum(r.cost.gpus * r.cost.hours for r in grpo) > 0
    assert math.isfinite(plan.wall_hours) and plan.wall_hours > 0


def test_gpu_throughput_script_is_importable_and_refuses_a_cpu(tmp_path):
    from scripts import gpu_throughput

    config = gpu_throughput.text_config(2)
    assert (config.hidden_size, config.num_hidden_layers, config.num_key_value_heads) == (3584, 2, 4)
    out = tmp_path / "gpu_throughput.json"
    if gpu_throughput.torch.cuda.is_available():
        pytest.skip("a GPU is present: the measurement itself runs in scripts/gpu_smoke.sh")
    assert gpu_throughput.main(["--out", str(out)]) == 1
    assert not out.exists()


def test_no_training_target_needs_no_trained_model():
    cfg = load_config(REPO / "config" / "paper.yaml")
    released = purpose_inputs(cfg, "no_training")
    assert not [f for f in released if "grpo-" in f or "/sft/" in f]
    assert "results-paper/eval/released-regionreasoner/refcocog.multi.json" in released
    assert "results-paper/models/grpo-full" in purpose_inputs(cfg, "regionreasoner")
