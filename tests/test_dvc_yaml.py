"""dvc.yaml is written from a config (``regionreasoner dvc-yaml``): the committed file is the embedded
default's, and the paper-scale pipeline has a stage per variant and per evaluated model, no SFT. For an
overlay config (``extends``), params name every file of the chain that sets each key."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo

from regionreasoner.config import OPERATIONAL_KEYS, load_config
from regionreasoner.dvcyaml import dvc_yaml
from regionreasoner.report.targets import ALL_FIGURE_NAMES, TABLE_NAMES
from tests.conftest import REPO, run


def test_committed_dvc_yaml_is_the_generators_output(monkeypatch):
    monkeypatch.chdir(REPO)
    committed = (REPO / "dvc.yaml").read_text()
    assert committed == dvc_yaml("config/config.yaml"), "run: regionreasoner dvc-yaml --configfile config/config.yaml"


def test_grpo_stages_track_the_keys_that_change_weights_and_no_operational_key(monkeypatch):
    monkeypatch.chdir(REPO)
    raw = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    stages = yaml.safe_load(dvc_yaml("config/paper.yaml"))["stages"]
    tracked = stages["grpo"]["do"]["params"][0]["config/paper.yaml"]
    learning = {k for k in raw["grpo"] if k not in (*OPERATIONAL_KEYS, "variants")}
    assert {f"grpo.{k}" for k in learning} <= set(tracked)
    assert {"grpo.save_steps", "grpo.threads", "grpo.accelerate_config", "grpo.variants"}.isdisjoint(tracked)
    assert not any(key.startswith("prompt.models") or key == "prompt" for key in tracked)
    assert {"rewards", "prompt.train", "seed", "grpo.loss_type", "grpo.batch_size"} <= set(tracked)


def dvc_pipeline(tmp_path: Path, config: str) -> tuple[Path, set[str]]:
    """A git + DVC repository holding the configs and the dvc.yaml written for ``config``, and the
    stage names DVC lists; ``dvc dag`` must build (no two stages share an output, no cycle)."""
    work = tmp_path / "repo"
    shutil.copytree(REPO / "config", work / "config")
    run(["git", "init", "-q"], work)
    run(["dvc", "init", "-q"], work)
    run(["regionreasoner", "dvc-yaml", "--configfile", config], work)
    listed = set(run(["dvc", "stage", "list", "--name-only"], work).stdout.split())
    run(["dvc", "dag", "--dot"], work)
    return work, listed


def test_paper_scale_pipeline_has_a_stage_per_variant_and_evaluated_model(tmp_path):
    _, listed = dvc_pipeline(tmp_path, "config/paper.yaml")

    cfg = load_config(REPO / "config/paper.yaml")
    report = cfg.report
    named = {
        *report.table1_rows,
        *report.ablation_rows.values(),
        *report.single_round_rows.values(),
        *report.alpha_beta_rows.values(),
        *cfg.evaluate.models,
    }
    assert {f"grpo@{v}" for v in cfg.grpo.variants} <= listed
    assert {f"evaluate@{m}" for m in named} <= listed
    assert {f"fetch_released@{n}" for n in cfg.model.released} <= listed
    assert {*TABLE_NAMES, *ALL_FIGURE_NAMES} <= listed
    assert "sft" not in listed and "evaluate@sft" not in listed


def test_overlay_pipeline_tracks_params_in_every_file_that_sets_them(tmp_path):
    work, listed = dvc_pipeline(tmp_path, "config/learning.yaml")
    assert {"grpo@full", "grpo@ref_cite"} <= listed and "grpo@a1.0_b0.5" not in listed  # the overlay's variants
    # full and base_only train with seeds 42, 43, 44: a stage per further seed, each evaluated and probed
    further = {f"grpo-{v}-seed{n}" for v in ("full", "base_only") for n in (43, 44)}
    assert {f"grpo_seeds@{m}" for m in further} | {f"evaluate@{m}" for m in further} <= listed
    assert {f"probe@{m}" for m in further} <= listed and "grpo_seeds@grpo-ref_cite-seed43" not in listed

    written = yaml.safe_load((work / "dvc.yaml").read_text())
    assert written["vars"] == ["config/learning.yaml"]  # the file that sets grpo.variants
    grpo_params = written["stages"]["grpo"]["do"]["params"]
    assert [list(p) for p in grpo_params] == [["config/config.yaml"], ["config/learning.yaml"]]
    # the overlay's GRPO keys that change the weights; its grpo.save_steps and curve_steps are operational
    overlay_keys = ["grpo.batch_size", "grpo.learning_rate", "grpo.max_steps", "grpo.prompts"]
    assert sorted(grpo_params[1]["config/learning.yaml"]) == overlay_keys
    # the overlay sets only an operational SFT key (curve_steps): the SFT stage tracks the base alone
    assert [list(p) for p in written["stages"]["sft"]["params"]] == [["config/config.yaml"]]
    # DVC's own check when it records a stage: every tracked key is in the file named
    with Repo(str(work)) as repo:
        deps = [d for stage in repo.index.stages for d in stage.deps if isinstance(d, ParamsDependency)]
        assert {str(d) for d in deps} == {"config/config.yaml", "config/learning.yaml"}
        for dep in deps:
            dep.get_hash()  # raises MissingParamsError naming the key and file
