"""The random-object baseline: chance as the mean over seeded draws, not one noisy draw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regionreasoner.data.synth import write_synthetic_refer
from regionreasoner.dialogs.bench import build_bench
from regionreasoner.evaluate.baselines import evaluate_random_object, mean_metrics
from regionreasoner.io import read_jsonl


@pytest.fixture(scope="module")
def two_object_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Every image holds exactly two objects in different cells: a random pick is right half the time."""
    root = tmp_path_factory.mktemp("random")
    write_synthetic_refer(root, images=40, seed=3, min_objects=2, max_objects=2)
    bench = root / "bench.json"
    build_bench(root / "refs(unc).p", root / "instances.json", None, root / "images", ["train", "val", "test"], bench)
    return bench, root / "instances.json"


def test_mean_over_draws_is_near_the_expected_chance(two_object_bench, tmp_path):
    bench, instances = two_object_bench
    evaluate_random_object({"synth.multi": bench}, {"synth": instances}, tmp_path, seed=0, draws=64)
    metrics = json.loads((tmp_path / "synth.multi.json").read_text())
    turns = sum(len(d["conversational_turns"]) for d in json.loads(bench.read_text()))
    assert metrics["draws"] == 64 and metrics["turns"] == turns  # counts stay integers
    assert 45.0 < metrics["ap50"] < 55.0  # one draw over these turns has a standard deviation of ~8
    lines = list(read_jsonl(tmp_path / "synth.multi.predictions.jsonl"))
    assert len(lines) == 64 * turns and {line["draw"] for line in lines} == set(range(64))


def test_mean_metrics_averages_nested_values_and_keeps_equal_ones():
    draws = [
        {"ap50": 40.0, "turns": 10, "per_round": {"1": {"ap50": 0.0}}, "model": "m"},
        {"ap50": 60.0, "turns": 10, "per_round": {"1": {"ap50": 100.0}}, "model": "m"},
    ]
    assert mean_metrics(draws) == {"ap50": 50.0, "turns": 10, "per_round": {"1": {"ap50": 50.0}}, "model": "m"}


def test_draws_must_be_positive(two_object_bench, tmp_path):
    bench, instances = two_object_bench
    with pytest.raises(ValueError, match="draws must be at least 1"):
        evaluate_random_object({"synth.multi": bench}, {"synth": instances}, tmp_path, seed=0, draws=0)
