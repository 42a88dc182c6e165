"""Checkpoint curves: the config keys, the validation split, the selection rule and its inputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from regionreasoner import paths
from regionreasoner.config import ConfigError, stage_params, validate_config
from regionreasoner.data.synth import write_synthetic_refer
from regionreasoner.dialogs.bench import build_bench
from regionreasoner.evaluate.curves import (
    choose,
    curve_inputs,
    evaluated_model_dir,
    point_probe,
    select_checkpoint,
    validation_metrics,
    write_curve,
)
from regionreasoner.plan.cost import TrainShape, train_cost
from regionreasoner.plan.planner import validation_rounds
from regionreasoner.plan.throughput import Architecture, load_published
from regionreasoner.report.figures import build_figure
from regionreasoner.report.tables import checkpoint_note
from regionreasoner.train.runner import move_kept
from tests.conftest import REPO


def _raw(tmp_path: Path, checkpoint: str = "last") -> dict:
    raw = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    raw["results"] = str(tmp_path / "results")
    raw["evaluate"]["checkpoint"] = checkpoint
    return raw


@pytest.mark.parametrize(
    ("section", "steps", "key", "problem"),
    [
        ("sft", [50, 20], "sft", "sft: Value error, curve_steps [50, 20]: must be strictly increasing"),
        ("sft", [100], "sft", "curve_steps [100]: every step must be below max_steps (100)"),
        ("sft", [0], "sft.curve_steps.0", "greater than 0"),
        ("variant", [2], "grpo", "variants.full.curve_steps [2]: every step must be below max_steps (2)"),
    ],
)
def test_curve_steps_must_be_positive_increasing_and_below_max_steps(tmp_path, section, steps, key, problem):
    raw = _raw(tmp_path)
    if section == "variant":
        raw["grpo"]["variants"]["full"]["curve_steps"] = steps
    else:
        raw[section]["curve_steps"] = steps
    with pytest.raises(ConfigError) as err:
        validate_config(raw, "test.yaml")
    first = str(err.value).splitlines()[0]
    assert f"invalid configuration: {key}" in first and problem in first


def test_held_out_split_may_not_be_a_test_split(tmp_path):
    raw = _raw(tmp_path)
    raw["benchmarks"]["refcocog"]["probe_splits"] = ["val", "test"]
    with pytest.raises(ConfigError, match=r"benchmarks.refcocog: .*probe_splits \['test'\] also in test_splits"):
        validate_config(raw, "test.yaml")


def test_curve_steps_rerun_no_training(tmp_path):
    raw = _raw(tmp_path)
    before = stage_params(raw, "grpo", variant="full"), stage_params(raw, "sft")
    raw["grpo"]["variants"]["full"]["curve_steps"] = [1]
    raw["grpo"]["curve_steps"] = [1]
    raw["sft"]["curve_steps"] = [10, 20]
    assert (stage_params(raw, "grpo", variant="full"), stage_params(raw, "sft")) == before


def test_a_variant_overrides_the_section_curve_steps(tmp_path):
    raw = _raw(tmp_path)
    raw["grpo"]["curve_steps"] = [1]
    raw["grpo"]["variants"]["base_only"]["curve_steps"] = []
    cfg = validate_config(raw)
    assert cfg.curve_steps("grpo-base_only") == [2]  # the final step only
    assert cfg.curve_steps("grpo-full") == [1, 2]
    assert cfg.curve_steps("grpo-a1.0_b0.5") == [1, 2]
    assert cfg.curve_steps("sft") == [50, 100]


def test_choose_last_takes_the_final_step_and_best_validation_the_best_earliest_on_ties():
    points = [
        {"step": 10, "validation_ap50": 30.0},
        {"step": 20, "validation_ap50": 40.0},
        {"step": 30, "validation_ap50": 40.0},
        {"step": 40, "validation_ap50": 35.0},
    ]
    assert choose(points, "last") == 40
    assert choose(points, "best_validation") == 20
    with pytest.raises(ValueError, match="unknown checkpoint rule 'best_test'"):
        choose(points, "best_test")


@pytest.mark.parametrize("rule", ["last", "best_validation"])
def test_selection_inputs_hold_no_test_benchmark_file(tmp_path, rule):
    cfg = validate_config(_raw(tmp_path, rule))
    results = cfg.results
    assert cfg.curve_models() == ["sft", "grpo-full", "grpo-full-seed43"]
    for model in cfg.curve_models():
        inputs = curve_inputs(cfg, model)
        allowed = [paths.curve_points(results, model), paths.probe_metrics(results, model)]
        assert inputs and all(p.startswith(tuple(allowed)) for p in inputs), inputs
        tests = {paths.bench_file(results, b, m) for b in cfg.benchmarks for m in paths.MODES}
        tests |= {paths.eval_metrics(results, model, b, m) for b in cfg.benchmarks for m in paths.MODES}
        assert not tests & set(inputs)
        # the final model's probe is the training table's only under `last`, where it probes the final model
        final = cfg.curve_steps(model)[-1]
        assert (point_probe(cfg, model, final) == paths.probe_metrics(results, model)) == (rule == "last")


def _write_point(cfg, model: str, step: int, ap50: dict[str, float], reward: float) -> None:
    for bench, value in ap50.items():
        path = Path(validation_metrics(cfg, model, step, bench))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"ap50": value, "turns": 10}))
    probe = Path(point_probe(cfg, model, step))
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text(json.dumps({"reward": reward, "reward_se": 0.1}))


def _write_test_results(cfg, model: str, ap50: float) -> None:
    for bench in cfg.benchmarks:
        for mode in paths.MODES:
            path = Path(paths.eval_metrics(cfg.results, model, bench, mode))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"ap50": ap50, "turns": 10}))


def test_choice_follows_validation_results_and_ignores_test_results(tmp_path):
    cfg = validate_config(_raw(tmp_path, "best_validation"))
    model = "sft"  # curve steps 50 and 100 (the final model)
    _write_point(cfg, model, 50, {"refcocoplus": 60.0, "refcocog": 50.0}, reward=3.0)
    _write_point(cfg, model, 100, {"refcocoplus": 40.0, "refcocog": 50.0}, reward=4.0)
    out = tmp_path / "curve.json"
    _write_test_results(cfg, model, 10.0)
    assert write_curve(cfg, model, out)["chosen_step"] == 50
    _write_test_results(cfg, model, 99.0)  # the test benchmark changes: the choice does not
    assert write_curve(cfg, model, out)["chosen_step"] == 50
    _write_point(cfg, model, 100, {"refcocoplus": 70.0, "refcocog": 50.0}, reward=4.0)  # validation changes
    curve = write_curve(cfg, model, out)
    assert curve["chosen_step"] == 100 and curve["rule"] == "best_validation"
    assert [p["validation_ap50"] for p in curve["points"]] == [55.0, 60.0]
    assert curve["points"][0]["checkpoint"] == f"{paths.kept_checkpoints(cfg.results, model)}/step-50"
    # under `last` the same validation results choose the final step
    last = validate_config(_raw(tmp_path, "last"))
    _write_point(last, model, 100, {"refcocoplus": 0.0, "refcocog": 0.0}, reward=4.0)
    assert write_curve(last, model, out)["chosen_step"] == 100


def test_best_validation_evaluates_the_selected_folder_of_models_with_a_curve_only(tmp_path):
    best, last = (validate_config(_raw(tmp_path, rule)) for rule in ("best_validation", "last"))
    assert evaluated_model_dir(best, "grpo-full") == paths.selected_model(best.results, "grpo-full")
    assert evaluated_model_dir(best, "base") == paths.model_dir(best.results, "base")
    # trained, but keeps no checkpoint: its final model is the only candidate, evaluated in place
    assert evaluated_model_dir(best, "grpo-base_only") == paths.model_dir(best.results, "grpo-base_only")
    assert evaluated_model_dir(last, "grpo-full") == paths.model_dir(last.results, "grpo-full")


def test_a_curve_of_a_model_that_keeps_no_checkpoint_is_refused_with_the_keys_to_set(tmp_path):
    cfg = validate_config(_raw(tmp_path))
    with pytest.raises(
        ValueError, match=r"'grpo-base_only' has no checkpoint curve; choose one of: sft, grpo-full, .*grpo.curve_steps"
    ):
        write_curve(cfg, "grpo-base_only", tmp_path / "curve.json")


def test_selected_checkpoint_is_the_chosen_folder_linked(tmp_path):
    kept = tmp_path / "checkpoints" / "step-50"
    kept.mkdir(parents=True)
    (kept / "model.safetensors").write_bytes(b"weights at 50")
    curve = tmp_path / "curve.json"
    points = [{"step": 50, "checkpoint": str(kept)}, {"step": 100, "checkpoint": str(tmp_path / "final")}]
    curve.write_text(json.dumps({"chosen_step": 50, "points": points}))
    assert select_checkpoint(curve, tmp_path / "selected") == kept
    linked = tmp_path / "selected" / "model.safetensors"
    assert linked.read_bytes() == b"weights at 50"
    assert linked.stat().st_ino == (kept / "model.safetensors").stat().st_ino  # a link, not a copy


def test_kept_steps_move_into_one_folder_and_a_missing_step_stops(tmp_path):
    staging = tmp_path / "work" / "kept"
    for step in (5, 10):
        (staging / f"step-{step}").mkdir(parents=True)
        (staging / f"step-{step}" / "model_card.json").write_text(json.dumps({"global_step": step}))
    with pytest.raises(RuntimeError, match=r"no checkpoint kept at curve steps \[15\]"):
        move_kept(staging, [5, 10, 15], tmp_path / "kept")
    move_kept(staging, [5, 10], tmp_path / "kept")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["step-10", "step-5"]
    move_kept(staging, [], tmp_path / "none")
    assert list((tmp_path / "none").iterdir()) == []


def test_validation_dialogues_are_the_first_of_the_held_out_images(tmp_path):
    root = tmp_path / "refer"
    write_synthetic_refer(root, images=60, seed=4, min_objects=2, max_objects=3)
    args = (root / "refs(unc).p", root / "instances.json", None, root / "images", ["val", "train"])
    build_bench(*args, tmp_path / "all.json", seed=1)
    build_bench(*args, tmp_path / "val.json", seed=1, max_dialogues=3)
    every = json.loads((tmp_path / "all.json").read_text())
    assert len(every) > 3 and json.loads((tmp_path / "val.json").read_text()) == every[:3]


def test_curve_figure_marks_the_chosen_step(tmp_path):
    cfg = validate_config(_raw(tmp_path, "best_validation"))
    points = [
        {"step": s, "validation": {"refcocoplus": v, "refcocog": v}, "validation_ap50": v}
        | {"probe_reward": r, "probe_reward_se": 0.1}
        for s, v, r in ((50, 30.0, 3.0), (100, 20.0, 3.5))
    ]
    curve = Path(paths.curve(cfg.results, "sft"))
    curve.parent.mkdir(parents=True)
    curve.write_text(json.dumps({"model": "sft", "rule": "best_validation", "chosen_step": 50, "points": points}))
    out = tmp_path / "fig.png"
    build_figure(cfg, "fig_curves_sft", out)
    assert out.stat().st_size > 10_000 and out.with_suffix(".pdf").read_bytes().startswith(b"%PDF")


def test_every_caption_names_the_rule(tmp_path):
    assert checkpoint_note(validate_config(_raw(tmp_path, "best_validation"))) == (
        "Checkpoint: best_validation (the kept or final checkpoint with the best validation AP@0.5)."
    )


def test_kept_checkpoints_are_priced_as_disk_and_validation_runs_as_turns(tmp_path):
    arch = Architecture(params=1e9, layers=2, hidden=8, kv_heads=1, head_dim=4, vocab=10)
    figures = load_published()
    shape = TrainShape(
        gpus=1,
        steps=10,
        micro_batch=1,
        accumulation=1,
        prompt_tokens=10,
        completion_tokens=5,
        generate_tokens=0,
        reference=False,
        iterations=1,
        checkpointing=False,
        bf16=True,
        zero_stage=None,
        save_steps=10,
        save_total_limit=1,
    )
    plain = train_cost(shape, arch, figures.device, figures.workload)
    kept = train_cost(replace(shape, kept_checkpoints=3), arch, figures.device, figures.workload)
    assert (plain.disk_kept_gb, kept.disk_kept_gb) == pytest.approx((2.0, 8.0))  # bf16 1e9 params: 2 GB each
    assert kept.disk_peak_gb - plain.disk_peak_gb == pytest.approx(6.0)
    cfg = validate_config(_raw(tmp_path))  # validation_dialogues: 4
    assert validation_rounds(cfg, (100, 80, 40, 5)) == (4, 4, 2, 1)
    assert validation_rounds(cfg, (2, 1)) == (2, 1)
