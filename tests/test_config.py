"""The config schema: every shipped config validates; a bad value names its key before any job."""

from __future__ import annotations

import json

import pytest
import yaml

from regionreasoner.config import ConfigError, json_schema, load_config, stage_params, validate_config
from tests.conftest import REPO, copy_workflow, snakemake


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "paper.yaml", "learning.yaml"])
def test_shipped_configs_validate(name):
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
    with pytest.raises(ConfigError, match=r"sft\.learnign_rate: Extra inputs are not permitted"):
        validate_config(raw)


def test_committed_json_schema_is_current():
    committed = (REPO / "workflow" / "schemas" / "config.schema.json").read_text()
    assert committed == json_schema(), "run: regionreasoner schema --out workflow/schemas/config.schema.json"


def test_reward_weight_changes_only_grpo_params():
    raw = _raw()
    before = {s: stage_params(raw, s, variant="full") if s == "grpo" else stage_params(raw, s) for s in ("data", "bench", "sft", "grpo", "evaluate")}
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


def test_show_config_prints_what_trl_receives(capsys):
    from regionreasoner.cli import main

    assert main(["show-config", "--configfile", str(REPO / "config" / "paper.yaml"), "--stage", "grpo", "--variant", "full"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["beta"] == 0.01 and shown["loss_type"] == "dapo"
