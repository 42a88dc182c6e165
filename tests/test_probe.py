"""Held-out reward probe: the same held-out turns for every checkpoint, GRPO-style samples, one reward."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from regionreasoner.config import load_config
from regionreasoner.evaluate.probe import probe_model, probe_turns, summarise
from regionreasoner.models.prompts import training_prompt
from regionreasoner.models.tiny import TinyModelConfig, build_tiny_model
from tests.conftest import REPO


def test_probe_turns_are_one_seeded_draw_in_file_order():
    turns = [{"problem": str(i)} for i in range(50)]
    drawn = probe_turns(turns, 10, seed=42)
    assert drawn == probe_turns(turns, 10, seed=42) and drawn != probe_turns(turns, 10, seed=43)
    assert [int(t["problem"]) for t in drawn] == sorted(int(t["problem"]) for t in drawn)
    assert probe_turns(turns[:3], 10, seed=42) == turns[:3]  # fewer held-out turns than asked: all of them


def test_summary_standard_error_is_over_prompts_not_completions():
    score = lambda total: {"total": total, "terms": {"accuracy_reward": total / 2}}  # noqa: E731
    summary = summarise([[score(1.0), score(3.0)], [score(4.0), score(4.0)], [score(6.0), score(6.0)]], "full")
    # prompt means 2, 4, 6: mean 4, sample variance 4, standard error sqrt(4 / 3)
    assert summary["reward"] == 4.0 and math.isclose(summary["reward_se"], math.sqrt(4 / 3))
    assert summary["prompts"] == 3 and summary["generations"] == 2
    assert summary["terms"] == {"accuracy_reward": 2.0}


@pytest.fixture(scope="module")
def heldout(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny model and four held-out turns on one image."""
    root = tmp_path_factory.mktemp("probe")
    image = root / "scene.png"
    Image.new("RGB", (112, 112), "white").save(image)
    turn = {
        "problem": "the red circle",
        "image_path": str(image),
        "reference_boxes": [],
        "solution": [{"bbox_2d": [0, 0, 28, 28], "point_2d": [14, 14]}],
        "scene": "",
        "focus": "the red circle",
        "target": "the red circle",
        "relation": None,
    }
    turns = root / "heldout.jsonl"
    turns.write_text("".join(json.dumps({**turn, "problem": f"{turn['problem']} {i}"}) + "\n" for i in range(4)))
    cfg = load_config(REPO / "config" / "test.yaml")
    build_tiny_model(turns, root / "model", TinyModelConfig(), training_prompt(cfg), frame=cfg.model.frame, seed=0)
    return root / "model", turns


def test_probe_samples_each_turn_and_is_reproducible(heldout, tmp_path):
    model, turns = heldout
    cfg = load_config(REPO / "config" / "test.yaml")
    cfg = cfg.model_copy(
        update={
            "probe": cfg.probe.model_copy(update={"prompts": 3, "generations": 2, "batch_size": 2}),
            "grpo": cfg.grpo.model_copy(update={"max_completion_length": 8}),
        }
    )
    first = probe_model(cfg, model, turns, tmp_path / "a.json")
    probe_model(cfg, model, turns, tmp_path / "b.json")
    written = json.loads((tmp_path / "a.json").read_text())
    assert written["prompts"] == 3 and written["generations"] == 2 and written["rewards"] == "full"
    assert set(written["terms"]) == {
        "format_reward",
        "non_repeat_reward",
        "accuracy_reward",
        "citation_reward",
        "consistency_reward",
    }
    assert math.isfinite(first["reward"]) and first["reward_se"] >= 0.0
    # the same seed draws the same completions: a rerun of the probe gives the same figure
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()


def test_no_heldout_turns_is_an_error_naming_the_file(heldout, tmp_path):
    model, _ = heldout
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.jsonl"):
        probe_model(load_config(REPO / "config" / "test.yaml"), model, empty, tmp_path / "out.json")
