"""The whole DAG on the reduced embedded config: every stage runs for real and the outputs hold up."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from PIL import Image

from regionreasoner.config import load_config
from regionreasoner.report.figures import figure_inputs
from regionreasoner.report.tables import checkpoint_note, table_inputs
from regionreasoner.report.targets import TABLE_NAMES, curve_figure_names, figure_names
from system_deps import missing_system_dependency
from tests.conftest import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow


def _results(workdir: Path) -> Path:
    return workdir / "results-test"


def _newer_than_inputs(workdir: Path, output: Path, inputs: list[str]) -> bool:
    return all((workdir / p).stat().st_mtime <= output.stat().st_mtime for p in inputs)


def _reproduced_numbers(markdown: str) -> list[str]:
    """Number cells of the Markdown rows that are not the paper's (reported or difference rows)."""
    rows = [[c.strip() for c in line.strip("| ").split("|")] for line in markdown.splitlines() if line.startswith("|")]
    return [
        c
        for row in rows
        if not any(c.startswith(("reported", "difference")) for c in row)
        for c in row[1:]
        if re.fullmatch(r"-?\d+(\.\d+)?", c)
    ]


def test_every_table_and_figure_is_built_from_evaluation_outputs(built_pipeline):
    results = _results(built_pipeline)
    cfg = load_config(built_pipeline / "config" / "test.yaml")
    for name in TABLE_NAMES:
        md_path = results / "tables" / f"{name}.md"
        md, tex = md_path.read_text(), (results / "tables" / f"{name}.tex").read_text()
        inputs = table_inputs(cfg, name)
        assert _newer_than_inputs(built_pipeline, md_path, inputs), name
        assert cfg.report.synthetic_note in md and tex.count("\\toprule") == 1, name
        assert "Checkpoint: last (the final checkpoint, the paper's rule)." in md, name
        if any(p.startswith(f"{cfg.results}/") for p in inputs):  # else a table of reported rows only (V*Bench)
            numbers = _reproduced_numbers(md)
            assert numbers and numbers[0] in tex, name
    for name in figure_names(cfg):
        png = results / "figures" / f"{name}.png"
        assert _newer_than_inputs(built_pipeline, png, figure_inputs(cfg, name)), name
        with Image.open(png) as image:
            assert image.width >= 400 and image.height >= 200, name
            colors = image.convert("RGB").getcolors(maxcolors=256)  # None: more than 256
            assert colors is None or len(colors) > 8, name  # something is drawn, not a blank canvas
        assert (results / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF"), name
    metrics = json.loads((results / "eval" / "grpo-full" / "refcocog.multi.json").read_text())
    assert {"turns", "ap50", "giou", "ciou", "pass", "per_round", "format_rate"} <= set(metrics)
    assert metrics["turns"] == sum(r["turns"] for r in metrics["per_round"].values())
    ap = f"{metrics['ap50']:.1f}"
    assert ap in (results / "tables" / "table1_detection.md").read_text()


def test_every_model_that_keeps_checkpoints_has_a_curve_with_its_kept_steps_and_no_other(built_pipeline):
    results = _results(built_pipeline)
    cfg = load_config(built_pipeline / "config" / "test.yaml")
    curved = ["sft", "grpo-full", "grpo-full-seed43"]  # each seed of full keeps its step 1
    assert curve_figure_names(cfg) == [f"fig_curves_{m}" for m in curved]
    assert checkpoint_note(cfg) == "Checkpoint: last (the final checkpoint, the paper's rule)."
    for model in ("grpo-base_only", "grpo-a1.0_b0.5"):  # no kept step: no one-point curve, no extra job
        assert not (results / "curves" / f"{model}.json").exists(), model
        assert not (results / "figures" / f"fig_curves_{model}.png").exists(), model
        assert not list((results / "checkpoints" / model).glob("step-*")), model
    for model in curved:
        assert (results / "figures" / f"fig_curves_{model}.png").is_file(), model
        curve = json.loads((results / "curves" / f"{model}.json").read_text())
        steps = [p["step"] for p in curve["points"]]
        assert steps == cfg.curve_steps(model) and curve["chosen_step"] == steps[-1], model  # `last`
        assert all(set(p["validation"]) == set(cfg.benchmarks) for p in curve["points"]), model
        kept = sorted(p.name for p in (results / "checkpoints" / model).glob("step-*"))
        assert kept == [f"step-{s}" for s in steps[:-1]], model
        for step in steps[:-1]:
            card = json.loads((results / "checkpoints" / model / f"step-{step}" / "model_card.json").read_text())
            assert card["global_step"] == step, model
    # the kept weights differ from the final model's: the curve points are distinct checkpoints
    kept = (results / "checkpoints" / "sft" / "step-50" / "model.safetensors").read_bytes()
    assert kept != (results / "models" / "sft" / "model.safetensors").read_bytes()
    # validation dialogues come from the held-out images, never from the test benchmark's
    for bench in cfg.benchmarks:
        validation = json.loads((results / "bench" / f"{bench}.val.json").read_text())
        test = json.loads((results / "bench" / f"{bench}.json").read_text())
        assert 0 < len(validation) <= cfg.evaluate.validation_dialogues
        assert not {d["image_id"] for d in validation} & {d["image_id"] for d in test}


def test_grpo_ran_trl_steps_with_the_variant_reward_terms(built_pipeline):
    results = _results(built_pipeline)
    header = (results / "train_metrics" / "grpo-full.csv").read_text().splitlines()[0].split(",")
    assert {"rewards/citation_reward/mean", "rewards/consistency_reward/mean", "kl"} <= set(header)
    base_only = (results / "train_metrics" / "grpo-base_only.csv").read_text().splitlines()[0]
    assert "rewards/citation_reward/mean" not in base_only and "rewards/accuracy_reward/mean" in base_only
    card = json.loads((results / "models" / "grpo-full" / "model_card.json").read_text())
    assert card["global_step"] == 2 and card["stage"] == "grpo"


def _rows_under(markdown: str, title: str) -> list[list[str]]:
    """The body rows of the pipe table that follows the group title starting with ``title``."""
    part = markdown.split(f"*{title}", 1)[1].split("\n\n", 2)[1]
    return [[c.strip() for c in line.strip("| ").split("|")] for line in part.splitlines()[2:]]


def test_each_seed_trains_its_own_model_and_the_tables_average_the_seeds(built_pipeline):
    """grpo-full has seeds 42 and 43 (config/test.yaml): two GRPO jobs whose trainer got its seed, both
    evaluated and probed; the tables show the mean over the seeds with their sd, the spread beside the
    dialogue interval, and differences paired seed by seed."""
    results = _results(built_pipeline)
    seeds = {"grpo-full": 42, "grpo-full-seed43": 43}
    for model, seed in seeds.items():
        card = json.loads((results / "models" / model / "model_card.json").read_text())
        assert (card["variant"], card["seed"]) == ("full", seed)
        assert (results / "probe" / f"{model}.json").is_file()
    curves = [(results / "train_metrics" / f"{m}.csv").read_text() for m in seeds]
    assert curves[0] != curves[1]  # the seed reached the trainer: other samples, other rewards
    aps = {
        bench: [json.loads((results / "eval" / m / f"{bench}.multi.json").read_text())["ap50"] for m in seeds]
        for bench in ("refcocoplus", "refcocog")
    }
    training = (results / "tables" / "table_training.md").read_text()
    assert "| grpo-full (mean of 2 seeds) |" in training
    spread = {row[1]: row for row in _rows_under(training, "Across seeds")}
    for label, bench in (("RefCOCO+", "refcocoplus"), ("RefCOCOg", "refcocog")):
        a, b = aps[bench]
        row = spread[label]
        assert row[0] == "grpo-full" and row[2] == f"{(a + b) / 2:.1f}" and row[4] == f"{abs(a - b) / 2**0.5:.1f}"
        assert row[5] == "2" and row[6] == f"{a:.1f} / {b:.1f}"
        low, high = (float(v) for v in row[3].strip("[]").split(","))
        assert low <= float(row[2]) <= high
    differences = _rows_under(training, "Differences in AP@0.5 (points), seed-paired")
    assert differences and all(row[6] == "2" for row in differences)  # two pairs: each seed with the one model
    detection = (results / "tables" / "table1_detection.md").read_text()
    assert "reproduced: grpo-full, mean of 2 seeds" in detection and "sd over 2 seeds" in detection


def test_changing_one_seed_reruns_only_that_seeds_model(built_pipeline):
    raw = yaml.safe_load((built_pipeline / "config" / "test.yaml").read_text())
    raw["grpo"]["variants"]["full"]["seeds"] = [45, 43]  # grpo-full trains with 45; grpo-full-seed43 stays
    (built_pipeline / "seeds.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = snakemake(built_pipeline, "all", "--configfile", "seeds.yaml", "-n", "--quiet", "rules")
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.M))
    assert (planned.get("grpo"), planned.get("evaluate"), planned.get("probe")) == ("1", "1", "1"), proc.stdout
    assert not planned.keys() & {"sft", "build_model", "build_train"}, proc.stdout


def test_sft_moves_the_model(built_pipeline):
    """Training does something: the SFT loss falls from the first to the last fifth of its steps, and
    the SFT model writes well-formed answers more often than the random-init base on every benchmark."""
    results = _results(built_pipeline)
    losses = [float(r["loss"]) for r in csv.DictReader((results / "train_metrics" / "sft.csv").open()) if r.get("loss")]
    fifth = max(1, len(losses) // 5)
    assert sum(losses[-fifth:]) / fifth < sum(losses[:fifth]) / fifth, losses
    for bench in ("refcocoplus", "refcocog"):
        rates = {
            m: json.loads((results / "eval" / m / f"{bench}.multi.json").read_text())["format_rate"]
            for m in ("base", "sft")
        }
        assert rates["sft"] > rates["base"], (bench, rates)


def test_second_run_has_nothing_to_do(built_pipeline):
    proc = snakemake(built_pipeline, "--configfile", "config/test.yaml")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_html_report_shows_tables_and_figures(built_pipeline, tmp_path):
    report = built_pipeline / "report.html"
    snakemake(built_pipeline, "--configfile", "config/test.yaml", "--report", str(report))
    html = report.read_text(errors="replace")
    assert "table1_detection" in html and "fig_per_round" in html
    chromium = shutil.which("chromium")
    if chromium is None:
        missing_system_dependency("chromium not installed: report rendered but not screenshotted")
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,900",
            f"file://{report}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000


def _planned_rules(workdir: Path, target: str) -> set[str]:
    proc = snakemake(workdir, target, "--configfile", "config/test.yaml", "-n", "--quiet", "rules")
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", proc.stdout, re.M)} - {"total"}


def test_dry_run_of_one_table_plans_only_its_ancestors(tmp_path):
    workdir = copy_workflow(tmp_path)
    assert _planned_rules(workdir, "results-test/tables/table6_bench_stats.md") == {
        "synth_refcocoplus",
        "synth_refcocog",
        "build_bench",
        "table_table6_bench_stats",
    }
    planned = _planned_rules(workdir, "results-test/tables/table1_detection.md")
    assert {"sft", "grpo", "evaluate", "table_table1_detection"} <= planned
    assert not any(r.startswith(("figure_", "turns_per_round")) or r.startswith("table_table6") for r in planned)


def test_reward_probe_scores_each_trained_model_on_the_same_heldout_turns(built_pipeline):
    results = _results(built_pipeline)
    summaries = {m: json.loads((results / "probe" / f"{m}.json").read_text()) for m in ("sft", "grpo-full")}
    assert {s["prompts"] for s in summaries.values()} == {
        min(8, len((results / "train" / "heldout.jsonl").read_text().splitlines()))
    }
    assert all(s["rewards"] == "full" and s["generations"] == 8 for s in summaries.values())
    table = (results / "tables" / "table_training.md").read_text()
    assert "Held-out reward" in table and f"{summaries['grpo-full']['reward']:.3f}" in table


def test_lint_is_clean():
    proc = snakemake(REPO, "--lint")
    assert "Congratulations" in proc.stdout + proc.stderr


def test_changing_a_reward_weight_reruns_only_downstream_jobs(built_pipeline):
    raw = yaml.safe_load((built_pipeline / "config" / "test.yaml").read_text())
    raw["grpo"]["variants"]["full"]["alpha"] = 2.0
    (built_pipeline / "changed.yaml").write_text(yaml.safe_dump(raw))
    proc = snakemake(built_pipeline, "all", "--configfile", "changed.yaml", "-n", "--quiet", "rules")
    planned = {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+$", proc.stdout, re.M)} - {"total", "all"}
    assert {"grpo", "evaluate", "probe"} <= planned
    assert not planned & {"sft", "build_model", "build_bench", "build_train", "build_heldout", "synth_refcocog"}


def test_operational_keys_and_an_evaluation_prompt_plan_no_training_job(built_pipeline):
    """Threads, checkpoint frequency, accelerate config, a GPU count at the same global batch and
    an evaluation prompt: Snakemake plans no training; the prompt reruns only its model's evaluation."""
    raw = yaml.safe_load((built_pipeline / "config" / "test.yaml").read_text())
    for stage in ("sft", "grpo"):
        raw[stage].update(threads=3, save_steps=7, accelerate_config="envs/accelerate/ddp.yaml", gpus=1)
    raw["evaluate"]["threads"] = 2
    prompt = {"source": "test", "template": "Find {Question}.", "max_new_tokens": 8}
    raw["prompt"]["models"] = {**raw["prompt"].get("models", {}), "grpo-base_only": prompt}
    # unsorted: the benchmarks' order is the order of the evaluation runs (a params value)
    (built_pipeline / "operational.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = snakemake(built_pipeline, "all", "--configfile", "operational.yaml", "-n", "--quiet", "rules")
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.M))
    assert planned.get("evaluate") == "1", proc.stdout  # grpo-base_only's, with its new prompt
    assert not planned.keys() & {"sft", "grpo", "build_model", "probe"}, proc.stdout
