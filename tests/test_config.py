"""The config schema: every shipped config validates; a bad value names its key before any job.
An overlay config (``extends``) resolves to its base with the overlay's settings written over it."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from regionreasoner.config import (
    ConfigError,
    json_schema,
    load_config,
    merge_overlay,
    read_config_file,
    resolve_extends,
    stage_params,
    validate_config,
    write_resolved,
)
from tests.conftest import REPO, copy_workflow, snakemake


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "paper.yaml", "learning.yaml"])
def test_shipped_configs_validate(name, monkeypatch):
    monkeypatch.chdir(REPO)  # an overlay names its base relative to the working directory
    cfg = load_config(REPO / "config" / name)
    assert cfg.evaluate.models


def _raw() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_negative_learning_rate_names_the_key():
    raw = _raw()
    raw["grpo"]["learning_rate"] = -1e-4
    with pytest.raises(ConfigError, match=r"grpo\.learning_rate: Input should be greater than 0"):
        validate_config(raw, "config.yaml")


def test_unknown_reward_variant_lists_allowed_values():
    raw = _raw()
    raw["grpo"]["variants"]["full"]["rewards"] = "fancy"
    with pytest.raises(ConfigError, match=r"grpo\.variants\.full\.rewards: .*'paper'"):
        validate_config(raw)


def test_unknown_model_id_in_report_is_rejected():
    raw = _raw()
    raw["report"]["ablation_rows"]["base_only"] = "grpo-nonexistent"
    with pytest.raises(ConfigError, match=r"report\.ablation_rows\.base_only: unknown model id 'grpo-nonexistent'"):
        validate_config(raw)


def test_unknown_model_id_in_a_difference_is_rejected():
    raw = _raw()
    raw["report"]["differences"] = [{"a": "grpo-full", "b": "grpo-nonexistent", "turns": "round 1"}]
    with pytest.raises(ConfigError, match=r"report\.differences\[0\]\.b: unknown model id 'grpo-nonexistent'"):
        validate_config(raw)


def test_misspelt_key_is_rejected():
    raw = _raw()
    raw["sft"]["learnign_rate"] = 1e-3
    with pytest.raises(ConfigError, match=r"sft\.learnign_rate: unknown key; did you mean 'learning_rate'"):
        validate_config(raw)


def test_committed_json_schema_is_current():
    committed = (REPO / "workflow" / "schemas" / "config.schema.json").read_text()
    assert committed == json_schema(), "run: regionreasoner schema --out workflow/schemas/config.schema.json"


def test_reward_weight_changes_only_grpo_params():
    raw = _raw()
    before = {
        s: stage_params(raw, s, variant="full") if s == "grpo" else stage_params(raw, s)
        for s in ("data", "bench", "sft", "grpo", "evaluate")
    }
    raw["grpo"]["variants"]["full"]["alpha"] = 2.0
    after = {s: stage_params(raw, s, variant="full") if s == "grpo" else stage_params(raw, s) for s in before}
    assert [s for s in before if before[s] != after[s]] == ["grpo"]
    assert stage_params(raw, "grpo", variant="base_only") == stage_params(_raw(), "grpo", variant="base_only")


def test_snakemake_refuses_invalid_config_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path)
    raw = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    raw["sft"]["learning_rate"] = -0.5
    raw["results"] = str(tmp_path / "results")
    (workdir / "bad.yaml").write_text(yaml.safe_dump(raw))
    proc = snakemake(workdir, "--configfile", "bad.yaml", check=False, timeout=120)
    assert proc.returncode != 0
    assert "sft.learning_rate" in proc.stdout + proc.stderr
    assert not (tmp_path / "results" / "data").exists()


def test_show_config_prints_what_trl_receives_on_the_target_gpus(capsys):
    """Resolved for the config's 4 GPUs, also on a machine without any (this one, in CI)."""
    from regionreasoner.cli import main

    assert (
        main(
            ["show-config", "--configfile", str(REPO / "config" / "paper.yaml"), "--stage", "grpo", "--variant", "full"]
        )
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["beta"] == 0.01 and shown["loss_type"] == "bnpo"
    assert shown["bf16"] and not shown["use_cpu"]
    assert shown["model_init_kwargs"] == {"dtype": "bfloat16", "attn_implementation": "sdpa"}


def test_overlay_merges_sections_and_replaces_everything_else():
    base = _raw()
    overlay = {
        "results": "elsewhere",
        "data": {"synth": {"images": 10}},
        "sft": {"max_steps": 5},
        "grpo": {"prompts": None, "variants": {"full": {"rewards": "full"}}},
        "evaluate": {"models": ["base", "grpo-full"]},
        "report": {"alpha_beta_rows": {"alpha=1.0,beta=1.0": "grpo-full"}},
    }
    merged = merge_overlay(base, overlay)
    assert merged["results"] == "elsewhere"
    assert merged["data"]["synth"] == {**base["data"]["synth"], "images": 10}  # sections: key by key
    assert merged["sft"] == {**base["sft"], "max_steps": 5}
    assert merged["grpo"] == {**base["grpo"], "prompts": None, "variants": {"full": {"rewards": "full"}}}
    assert merged["evaluate"]["models"] == ["base", "grpo-full"]  # lists and named collections: whole
    assert merged["report"] == {**base["report"], "alpha_beta_rows": {"alpha=1.0,beta=1.0": "grpo-full"}}
    assert base == _raw()  # the base is not modified


def _write(path, raw: dict) -> None:
    path.write_text(yaml.safe_dump(raw))


def test_overlay_chain_resolves_nearest_last(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "base.yaml", _raw())
    _write(tmp_path / "middle.yaml", {"extends": "base.yaml", "seed": 1, "sft": {"max_steps": 5}})
    _write(tmp_path / "top.yaml", {"extends": "middle.yaml", "sft": {"save_steps": 5}})
    cfg = load_config("top.yaml")
    assert (cfg.seed, cfg.sft.max_steps, cfg.sft.save_steps) == (1, 5, 5)
    assert cfg.sft.learning_rate == _raw()["sft"]["learning_rate"]
    assert "extends" not in resolve_extends(read_config_file("top.yaml"))


def test_extends_cycle_names_the_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "a.yaml", {"extends": "b.yaml"})
    _write(tmp_path / "b.yaml", {"extends": "a.yaml"})
    with pytest.raises(ConfigError, match=r"a\.yaml: extends forms a cycle: a\.yaml -> b\.yaml -> a\.yaml"):
        load_config("a.yaml")


def test_missing_base_names_the_overlay_and_the_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "a.yaml", {"extends": "config/none.yaml", "seed": 1})
    with pytest.raises(ConfigError, match=r"a\.yaml: extends: no file config/none\.yaml"):
        load_config("a.yaml")


def test_learning_config_is_the_default_with_its_own_changes(monkeypatch):
    monkeypatch.chdir(REPO)
    assert read_config_file("config/learning.yaml")["extends"] == "config/config.yaml"
    learning, default = load_config("config/learning.yaml"), load_config("config/config.yaml")
    assert learning.results == "results-learning"
    assert list(learning.grpo.variants) == ["base_only", "ref_cite", "ref_cite_consist", "full"]
    assert list(learning.report.alpha_beta_rows.values()) == ["grpo-full"]
    assert (learning.sft.max_steps, learning.sft.schedule_steps) == (1400, 1600)
    assert learning.sft.threads == default.sft.threads and learning.sft.learning_rate == default.sft.learning_rate
    assert learning.model == default.model and learning.rewards == default.rewards


def test_snakemake_plans_the_learning_dag_from_the_overlay(tmp_path, monkeypatch):
    workdir = copy_workflow(tmp_path)
    monkeypatch.chdir(workdir)
    # --config overrides win over the overlay (results) and over its base (seed)
    proc = snakemake(
        workdir,
        "--configfile",
        "config/learning.yaml",
        "--config",
        "results=overridden",
        "seed=7",
        "-n",
        "--quiet",
        "rules",
        timeout=300,
    )
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.M))
    assert planned["grpo"] == "8" and planned["sft"] == "1"  # 4 variants, full and base_only with 3 seeds
    resolved = yaml.safe_load((workdir / "overridden" / "config.resolved.yaml").read_text())
    expected = resolve_extends(read_config_file("config/learning.yaml")) | {"results": "overridden", "seed": 7}
    assert resolved == expected


TRAINING = ("model", "sft", "grpo")


def _training_params(raw: dict) -> dict:
    return {
        stage: stage_params(raw, stage, variant="full") if stage == "grpo" else stage_params(raw, stage)
        for stage in TRAINING
    }


@pytest.mark.parametrize(
    "edit",
    [
        {"grpo": {"threads": 7}},
        {"grpo": {"save_steps": 3}},
        {"grpo": {"save_total_limit": 5}},
        {"grpo": {"accelerate_config": "envs/accelerate/ddp.yaml"}},
        {"sft": {"threads": 7, "save_steps": 3}},
        {"grpo": {"gpus": 2, "gradient_accumulation_steps": 32}},  # 4 -> 2 GPUs at the same global batch
        {"evaluate": {"threads": 2, "gpus": 0}},
        {"prompt": {"models": {"released-visionreasoner": {"source": "x", "template": "{Question}?"}}}},
    ],
)
def test_operational_keys_and_evaluation_prompts_change_no_training_params(edit):
    raw = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    changed = merge_overlay(raw, edit)
    assert _training_params(changed) == _training_params(raw)


def test_a_gpu_count_that_changes_the_global_batch_reruns_training():
    raw = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert stage_params(merge_overlay(raw, {"grpo": {"gpus": 2}}), "grpo", variant="full") != stage_params(
        raw, "grpo", variant="full"
    )


def test_an_evaluation_prompt_changes_only_the_evaluation_params_of_its_models():
    raw = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    edited = merge_overlay(
        raw,
        {
            "prompt": {
                "models": {
                    **raw["prompt"]["models"],
                    "released-visionreasoner": {**raw["prompt"]["models"]["released-visionreasoner"], "strip": "."},
                }
            }
        },
    )
    changed = {
        m
        for m in ("base", "grpo-full", "released-visionreasoner", "released-regionreasoner")
        if stage_params(edited, "evaluate", model=m) != stage_params(raw, "evaluate", model=m)
    }
    assert changed == {"released-visionreasoner"}
    # a pattern entry covers every model it matches: grpo-* (the released RegionReasoner prompt's alias)
    assert json.loads(stage_params(raw, "evaluate", model="grpo-a1.0_b0.5"))["prompt.models.grpo-*"]["max_new_tokens"]


def test_resolved_config_keeps_the_variant_order_the_tables_list_rows_in(tmp_path):
    raw = {"seed": 1, "grpo": {"variants": {"full": {}, "base_only": {}, "a1.0_b0.5": {}}}}
    resolved = yaml.safe_load(write_resolved(raw, tmp_path / "config.resolved.yaml").read_text())
    assert list(resolved["grpo"]["variants"]) == ["full", "base_only", "a1.0_b0.5"]
