"""Seeds: a GRPO variant trained once per seed, its tables the mean over seeds with their spread,
its differences paired seed by seed (config ``grpo.variants.<v>.seeds``)."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from regionreasoner.config import ConfigError, stage_params, validate_config
from regionreasoner.evaluate.noise import TURN_FILTERS, paired_difference, seed_mean
from regionreasoner.report.tables import mean_sd, seed_rows
from regionreasoner.train.configs import resolved
from tests.conftest import REPO

ALL = TURN_FILTERS["all turns"]


def _run(hits: str) -> list[dict[str, str]]:
    """One evaluation of one-turn dialogues: ``hits`` holds each dialogue's hit (1) or miss (0)."""
    return [{"hit": h, "cited": "0"} for h in hits]


A1, A2 = _run("1100"), _run("1000")  # 50 and 25 points
B1, B2 = _run("1000"), _run("1110")  # 25 and 75 points


def test_seed_paired_difference_pairs_seed_i_with_seed_i():
    d = paired_difference([A1, A2], [B1, B2], ALL)
    # pairs: 50 - 25 = 25 and 25 - 75 = -50; crossed (A1-B2, A2-B1) would be -25 and 0
    assert d.per_seed == (25.0, -50.0) and d.value == pytest.approx(-12.5) and d.turns == 4
    assert (d.seeds, d.seed_sd) == (2, pytest.approx(75 / math.sqrt(2)))
    # per dialogue the mean paired difference is 0, 0, -0.5, 0: resampled sums of 4 dialogues reach
    # -37.5 with 5 % chance (3 draws of the third) and -50 with 0.4 %; 0 with (3/4)^4 = 32 %
    assert (d.low, d.high) == (-37.5, 0.0)


def test_a_model_with_one_seed_is_paired_with_every_seed_of_the_other():
    d = paired_difference([A1, A2], [B1], ALL)
    assert d.per_seed == (25.0, 0.0) and d.value == pytest.approx(12.5)
    assert d.seed_sd == pytest.approx(25 / math.sqrt(2))
    single = paired_difference([A1], [B1], ALL)
    assert (single.seeds, single.seed_sd) == (1, None)


def test_unequal_seed_counts_cannot_be_paired():
    with pytest.raises(ValueError, match="cannot be paired"):
        paired_difference([A1, A2], [B1, B2, B1], ALL)


def test_seed_mean_gives_the_spread_over_seeds_beside_the_interval_over_dialogues():
    e = seed_mean([A1, A2], ALL)
    assert e.per_seed == (50.0, 25.0) and e.value == pytest.approx(37.5)
    assert e.seed_sd == pytest.approx(25 / math.sqrt(2))
    # per dialogue the mean hit is 1, 0.5, 0, 0: resampled 4 dialogues span 0 to 100 points
    assert 0.0 <= e.low < e.value < e.high <= 100.0


def test_mean_sd_keeps_missing_and_unavailable_cells():
    assert mean_sd([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_sd([4.0]) == (4.0, None)
    assert mean_sd([1.0, None]) == (None, None)
    assert mean_sd(["n/a", "n/a"]) == ("n/a", "n/a")


def test_seed_rows_show_the_mean_compared_with_the_paper_and_the_sd_below_it():
    rows = seed_rows("RegionReasoner", "grpo-full", [[10.0, "n/a"], [20.0, "n/a"]], [12.0, 5.0], "paper")
    assert rows == [
        ["RegionReasoner", "reproduced: grpo-full, mean of 2 seeds", "15.0", "n/a"],
        ["", "sd over 2 seeds", "7.1", "n/a"],
        ["", "reported: paper", "12.0", "5.0"],
        ["", "difference", "+3.0", "-"],
    ]
    one = seed_rows("SFT", "sft", [[10.0, 2.0]], None, None)
    assert one == [["SFT", "reproduced: sft", "10.0", "2.0"]]


def _raw(**variants: dict) -> dict:
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for name, spec in variants.items():
        raw["grpo"]["variants"][name] = spec
    return raw


def test_each_seed_is_a_model_and_the_first_keeps_the_variant_id():
    cfg = validate_config(_raw(full={"rewards": "full", "seeds": [7, 8, 9]}))
    runs = {m: r for m, r in cfg.grpo_runs().items() if r.variant == "full"}
    assert {m: r.seed for m, r in runs.items()} == {"grpo-full": 7, "grpo-full-seed8": 8, "grpo-full-seed9": 9}
    assert cfg.seed_models("grpo-full") == list(runs) and cfg.seed_models("grpo-full-seed8") == ["grpo-full-seed8"]
    assert set(runs) <= set(cfg.model_ids())
    assert cfg.grpo_runs()["grpo-base_only"].seed == cfg.seed  # no seeds: the top-level seed
    assert json.loads(json.dumps(resolved(cfg, "grpo", "full", 8)))["seed"] == 8
    assert resolved(cfg, "grpo", "full")["data_seed"] == 7  # the variant's first seed


@pytest.mark.parametrize(
    ("variants", "differences", "message"),
    [
        ({"full": {"rewards": "full", "seeds": [1, 1]}}, [], r"seeds repeat"),
        ({"full-seed5": {"rewards": "full"}, "full": {"rewards": "full", "seeds": [4, 5]}}, [], r"same model id"),
        (
            {"full": {"rewards": "full", "seeds": [1, 2]}, "base_only": {"rewards": "base_only", "seeds": [1, 2, 3]}},
            [{"a": "grpo-full", "b": "grpo-base_only", "turns": "all turns"}],
            r"report\.differences\[0\]: .*different numbers of seeds",
        ),
    ],
)
def test_seeds_that_cannot_train_or_pair_are_refused(variants, differences, message):
    raw = _raw(**variants)
    raw["report"]["differences"] = differences
    with pytest.raises(ConfigError, match=message):
        validate_config(raw, "config.yaml")


def test_changing_one_seed_changes_only_that_trainings_params():
    before = _raw(full={"rewards": "full", "seeds": [1, 2]})
    after = _raw(full={"rewards": "full", "seeds": [1, 3]})
    assert stage_params(before, "grpo", "full", seed=1) == stage_params(after, "grpo", "full", seed=1)
    assert stage_params(before, "grpo", "full", seed=2) != stage_params(after, "grpo", "full", seed=3)
    # a variant without seeds keeps the slice it had before seeds existed: nothing reruns
    plain = _raw()
    assert "grpo.seed" not in json.loads(stage_params(plain, "grpo", "full", seed=plain["seed"]))
