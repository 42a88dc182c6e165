"""A new reward term is a function plus registry entries: the config accepts its variant and GRPO
trains with it (one step of the tiny model on CPU, from a base model built by the workflow)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from regionreasoner.config import validate_config
from regionreasoner.rewards.registry import TERMS, VARIANTS, Term, Variant, variant_total_range
from regionreasoner.train.grpo import run_grpo
from tests.conftest import copy_workflow, snakemake

CALLS: list[int] = []


def brevity_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """The new term: 1 for a completion under 32 characters, else 0."""
    CALLS.append(len(completions))
    return [float(len(str(c)) < 32) for c in completions]


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> str:
    """``brevity_reward`` and a variant using it, in the registry for this test only."""
    monkeypatch.setitem(TERMS, "brevity_reward", Term(brevity_reward, 0.0, 1.0, weight="beta", discrete=True))
    monkeypatch.setitem(VARIANTS, "brevity", Variant(("format_reward", "brevity_reward"), "format + brevity (β)", "-"))
    return "brevity"


@pytest.fixture(scope="module")
def base_workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow copy with the tiny base model and the training turns of config/test.yaml built."""
    workdir = copy_workflow(tmp_path_factory.mktemp("registry"))
    snakemake(
        workdir, "--configfile", "config/test.yaml", "--", "results-test/models/base", "results-test/train/turns.jsonl"
    )
    return workdir


def test_a_registered_term_is_summed_with_its_weight_and_bounded(registered):
    assert variant_total_range(registered, beta=0.5) == (0.0, 3.5)


@pytest.mark.slow  # builds part of the DAG (scenes, turns, base model), then trains
def test_grpo_trains_one_step_with_a_newly_registered_term(registered, base_workflow, monkeypatch):
    monkeypatch.chdir(base_workflow)  # image paths in the turns are relative to the workflow
    raw = yaml.safe_load(Path("config/test.yaml").read_text())
    raw["grpo"].update(max_steps=1, save_steps=1)
    for variant in raw["grpo"]["variants"].values():
        variant.pop("curve_steps", None)  # curve steps must fall before the last step
    raw["grpo"]["variants"]["mine"] = {"rewards": registered, "beta": 0.5}
    cfg = validate_config(raw, "config/test.yaml")
    CALLS.clear()
    metrics = base_workflow / "mine.csv"
    run_grpo(
        cfg,
        "mine",
        Path("results-test/models/base"),
        Path("results-test/train/turns.jsonl"),
        base_workflow / "grpo-mine",
        metrics,
        base_workflow / "kept",
    )
    assert CALLS and sum(CALLS) >= cfg.grpo.num_generations  # scored every rollout of the step
    rows = list(csv.DictReader(metrics.open()))
    assert [row["step"] for row in rows] == ["1"]
    assert 0.0 <= float(rows[0]["rewards/brevity_reward/mean"]) <= 1.0
    assert (base_workflow / "grpo-mine" / "model.safetensors").is_file()
