"""Tables are built only from evaluation files and the reported numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from regionreasoner.config import PipelineConfig, validate_config
from regionreasoner.report.tables import TABLES, build_table, table_inputs
from tests.conftest import REPO

BENCHES = ("refcocoplus", "refcocog")


def make_config(results: Path, source: str = "synth") -> dict[str, Any]:
    """config/config.yaml with a small report section, its results under ``results`` (a raw mapping
    the tests edit; ``validated`` turns it into what the report builders take)."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["results"] = str(results)
    raw["data"]["source"] = source
    raw["sft"]["enabled"] = False
    raw["grpo"]["variants"] = {
        "base_only": {"rewards": "base_only"},
        "full": {"rewards": "full"},
        "a1.0_b0.5": {"rewards": "full", "alpha": 1.0, "beta": 0.5},
    }
    raw["evaluate"]["models"] = ["base", "grpo-base_only", "grpo-full", "grpo-a1.0_b0.5"]
    return raw | {
        "report": {
            "synthetic_note": "Synthetic scenes and a tiny model.",
            "table1_rows": {
                "base": {"label": "Base model", "reported_as": "Qwen2.5-VL-7B"},
                "grpo-full": {"label": "RegionReasoner (ours)", "reported_as": "RegionReasoner-7B"},
            },
            "ablation_rows": {"base_only": "grpo-base_only", "ref_cite_consist_logic": "grpo-full"},
            "single_round_rows": {"Qwen2.5-VL-7B": "base", "RegionReasoner-7B": "grpo-full"},
            "alpha_beta_rows": {"alpha=1.0,beta=0.5": "grpo-a1.0_b0.5", "alpha=1.0,beta=1.0": "grpo-full"},
            "bench_names": {"refcocoplus": "RefCOCO+", "refcocog": "RefCOCOg"},
        },
    }


def validated(raw: dict[str, Any]) -> PipelineConfig:
    return validate_config(raw, "test config")


def eval_metrics(value: float, rounds: int = 3) -> dict[str, Any]:
    """An evaluation JSON whose every rate is ``value`` + round index, ``rounds`` rounds present."""
    per_round = {
        str(r): {"turns": 10, "ap50": value + r, "giou": value + r, "ciou": value + r} for r in range(1, rounds + 1)
    }
    return {
        "turns": 10 * rounds,
        "ap50": value,
        "giou": value - 1,
        "ciou": value - 2,
        "per_round": per_round,
        "pass": {"0.3": value, "0.5": value, "0.7": value, "0.9": value},
    }


def _cited(step: int) -> str:
    """The citation columns of a curve step: it varies in a quarter of the groups on steps 1-2 (its
    preferred completions 1.0 less accurate), in three quarters on steps 3-4 (0.2 more), never after."""
    return {1: "0.25,-1.0", 2: "0.25,-1.0", 3: "0.75,0.2", 4: "0.75,0.2"}.get(step, "0.0,")


def write_fixture(config: dict[str, Any]) -> None:
    """Evaluation JSONs for every model and mode, and a datasheet per benchmark."""
    results = Path(config["results"])
    for i, model in enumerate(config["evaluate"]["models"] + ["random"]):
        for j, bench in enumerate(BENCHES):
            for mode in ("multi", "single"):
                path = results / "eval" / model / f"{bench}.{mode}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(eval_metrics(10.0 * (i + 1) + j + (mode == "single") * 0.5)))
    for variant in config["grpo"]["variants"]:
        curve = results / "train_metrics" / f"grpo-{variant}.csv"
        curve.parent.mkdir(parents=True, exist_ok=True)
        curve.write_text(
            "step,loss,reward,rewards/accuracy_reward/groups_varied,"
            "rewards/citation_reward/groups_varied,rewards/citation_reward/preferred_accuracy_gap\n"
            + "".join(f"{s},{1 - s / 10},{s - 1},{0.5 * (s % 2)},{_cited(s)}\n" for s in range(1, 11))
        )
        probe = results / "probe" / f"grpo-{variant}.json"
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(
            json.dumps({"rewards": "full", "prompts": 64, "generations": 8, "reward": 7.25, "reward_se": 0.125})
        )
        for bench in BENCHES:
            answers = results / "eval" / f"grpo-{variant}" / f"{bench}.multi.predictions.jsonl"
            answers.write_text(json.dumps({"turn": 0, "boxes": [[0, 0, 10, 10]]}) + "\n")
    for bench in BENCHES:
        sheet = results / "bench" / f"{bench}.datasheet.json"
        sheet.parent.mkdir(parents=True, exist_ok=True)
        sheet.write_text(json.dumps({"images": 70, "dialogues": 70, "turns": 150, "turns_per_round": [70, 50, 30]}))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    config = make_config(tmp_path / "results")
    write_fixture(config)
    reported = tmp_path / "reported_numbers.yaml"
    shutil.copy(REPO / "paper" / "reported_numbers.yaml", reported)
    return config, reported


def build(config: dict[str, Any], name: str, reported: Path) -> tuple[str, str]:
    out = Path(config["results"]) / "tables"
    build_table(validated(config), name, out / f"{name}.md", out / f"{name}.tex", reported=reported)
    return (out / f"{name}.md").read_text(), (out / f"{name}.tex").read_text()


def rows_from(markdown: str, first: str, second: str, count: int = 1) -> list[list[str]]:
    """Number cells of ``count`` Markdown rows starting at the one led by ``first`` and ``second``."""
    table = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]
    for i, cells in enumerate(table):
        if cells[:2] == [first, second]:
            return [r[2:] for r in table[i : i + count]]
    raise AssertionError(f"no row {first!r} / {second!r} in\n{markdown}")


def row(markdown: str, first: str, second: str) -> list[str]:
    return rows_from(markdown, first, second)[0]


def test_per_round_table_shows_reproduced_reported_and_difference(setup):
    config, reported = setup
    markdown, tex = build(config, "table1_detection", reported)
    # grpo-full is the 3rd model (value 30 on refcocoplus); rounds 4..7 are absent from our bench.
    ours, paper, diff = rows_from(markdown, "RegionReasoner (ours)", "reproduced: grpo-full", 3)
    assert ours == ["31.0", "32.0", "33.0", "-", "-", "-", "-", "30.0"]
    assert paper == ["89.3", "83.2", "81.6", "69.6", "61.9", "69.1", "64.7", "80.7"]
    assert diff[:4] == ["-58.3", "-51.2", "-48.6", "-"] and diff[-1] == "-50.7"
    assert "Synthetic scenes and a tiny model." in markdown
    assert r"\toprule" in tex and r"\label{tab:table1_detection}" in tex and "RefCOCOg" in tex


def test_mask_metrics_of_a_bench_without_masks_show_as_unavailable_not_zero(setup):
    config, reported = setup
    path = Path(config["results"]) / "eval" / "grpo-full" / "refcocoplus.multi.json"
    data = json.loads(path.read_text())
    data |= {"giou": None, "ciou": None, "mask_metrics": "unavailable: 30 of 30 turns have no target mask"}
    data["per_round"] = {r: v | {"giou": None, "ciou": None} for r, v in data["per_round"].items()}
    path.write_text(json.dumps(data))
    markdown, _ = build(config, "table2_segmentation", reported)
    ours, _, diff = rows_from(markdown, "RegionReasoner (ours)", "reproduced: grpo-full", 3)
    assert ours == ["n/a", "n/a", "n/a", "-", "-", "-", "-", "n/a"] and set(diff) == {"-"}
    detection, _ = build(config, "table1_detection", reported)
    assert row(detection, "RegionReasoner (ours)", "reproduced: grpo-full")[-1] == "30.0"


def test_column_tables_read_single_and_multi_round_files(setup):
    config, reported = setup
    markdown, _ = build(config, "table3_ablation_detection", reported)
    # base_only = grpo-base_only (model 2): single 20.5 / 21.5, multi 20.0 / 21.0
    ours, paper, _ = rows_from(markdown, "R_base only", "reproduced: grpo-base_only", 3)
    assert ours == ["20.5", "21.5", "20.0", "21.0"]
    assert paper == ["87.9", "87.5", "74.8", "73.6"]
    markdown, _ = build(config, "table10_single_round", reported)
    # seg columns read giou = ap50 - 1 of the single-round files, then det columns
    assert row(markdown, "Qwen2.5-VL-7B", "reproduced: base") == ["9.5", "10.5", "10.5", "11.5"]
    markdown, _ = build(config, "table11_alpha_beta", reported)
    assert row(markdown, "alpha=1.0,beta=1.0", "reproduced: grpo-full") == ["30.0", "31.0", "29.0", "30.0"]


def test_bench_stats_table_reads_datasheets(setup):
    config, reported = setup
    markdown, _ = build(config, "table6_bench_stats", reported)
    ours, _, diff = rows_from(markdown, "RefCOCO+", "reproduced", 3)
    assert ours == ["70", "150", "70", "50", "30", "-", "-", "-", "-"]
    assert diff[:3] == ["-645", "-2205", "-645"]


def test_caption_has_no_synthetic_note_for_downloaded_data(setup):
    config, reported = setup
    config["data"]["source"] = "download"
    markdown, _ = build(config, "table2_segmentation", reported)
    assert "Synthetic" not in markdown


def test_every_table_is_deterministic_and_reads_only_its_inputs(setup, tmp_path):
    config, reported = setup
    for name in TABLES:
        first = build(config, name, reported)
        assert build(config, name, reported) == first
        assert str(reported) in table_inputs(validated(config), name, reported)
    inputs = table_inputs(validated(config), "table1_detection", reported)
    assert sorted(inputs[:-1]) == sorted(
        str(Path(config["results"]) / "eval" / m / f"{b}.multi.json") for m in ("base", "grpo-full") for b in BENCHES
    )


def test_missing_eval_file_names_the_file(setup):
    config, reported = setup
    (Path(config["results"]) / "eval" / "grpo-full" / "refcocog.multi.json").unlink()
    with pytest.raises(FileNotFoundError, match="grpo-full"):
        build(config, "table1_detection", reported)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_is_in_the_paper_and_has_a_report_caption(name):
    assert rf"\input{{\resultsdir/tables/{name}.tex}}" in (REPO / "paper" / "main.tex").read_text()
    assert (REPO / "workflow" / "report" / f"{name}.rst").is_file()


def test_training_summary_compares_first_and_last_fifth_of_steps(setup):
    config, reported = setup
    markdown, _ = build(config, "table_training", reported)
    row = next(line for line in markdown.splitlines() if line.startswith("| grpo-full |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # 10 logged steps: first fifth = steps 1-2, last fifth = steps 9-10; reward = step - 1, loss = 1 - step/10;
    # then the held-out probe's reward and standard error
    assert cells[1:9] == ["10", "0.850", "0.050", "0.500", "8.500", "7.250", "0.125", "0.0"]
    # round-1 AP@0.5 of grpo-full (model index 2): (31 + 32) / 2 over the two benchmarks
    assert cells[9] == "31.5"


def test_training_summary_shows_query_dependence_and_the_random_baseline(setup):
    config, reported = setup
    config["report"]["table1_rows"]["random"] = {"label": "Random object (chance)", "reported_as": None}
    for bench, share in zip(BENCHES, (40.0, 60.0), strict=True):
        path = Path(config["results"]) / "eval" / "grpo-full" / f"{bench}.single.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | {"query_dependence": {"images": 5, "share": share}}))
    markdown, _ = build(config, "table_training", reported)
    cells = [
        c.strip()
        for c in next(line for line in markdown.splitlines() if line.startswith("| grpo-full |")).strip("|").split("|")
    ]
    assert cells[10] == "50.0"
    random = [
        c.strip()
        for c in next(line for line in markdown.splitlines() if line.startswith("| random |")).strip("|").split("|")
    ]
    assert random[1:8] == ["-"] * 7


def _with_outcomes(config: dict[str, Any], outcomes: dict[str, list[dict[str, str]]]) -> None:
    """Give each model's multi-round evaluation these per-dialogue hits, on every benchmark."""
    for model, per_dialogue in outcomes.items():
        for bench in BENCHES:
            path = Path(config["results"]) / "eval" / model / f"{bench}.multi.json"
            path.write_text(json.dumps(json.loads(path.read_text()) | {"per_dialogue": per_dialogue}))


def test_training_summary_states_configured_differences_with_their_interval(setup):
    config, reported = setup
    config["report"]["differences"] = [{"a": "grpo-full", "b": "base", "turns": "round 1"}]
    _with_outcomes(
        config, {"grpo-full": [{"hit": "10", "cited": "01"}] * 20, "base": [{"hit": "00", "cited": "01"}] * 20}
    )
    markdown, tex = build(config, "table_training", reported)
    assert "| grpo-full - base | round 1 | RefCOCOg | 100.0 | [100.0, 100.0] | 20 |" in markdown
    assert "95 \\% interval" in tex


def test_training_summary_shows_how_often_each_term_varies_within_a_group(setup):
    config, reported = setup
    markdown, _ = build(config, "table_training", reported)
    # accuracy varied in half the groups on odd steps and none on even ones: 25 % over the run;
    # the curve logs no other term
    assert "| grpo-full | - | - | 25.0 | 20.0 | - |" in markdown


def test_training_summary_shows_which_way_each_term_points_weighted_by_the_groups_it_varied_in(setup):
    config, reported = setup
    markdown, _ = build(config, "table_training", reported)
    # (0.25 x -1.0 x 2 + 0.75 x 0.2 x 2) / (0.25 x 2 + 0.75 x 2) = -0.2 / 2 = -0.1; steps where it
    # never varied log no gap; format and consistency are not in the curve; accuracy is the yardstick
    assert "| Variant | format | non_repeat | citation | consistency |" in markdown
    assert "| grpo-full | - | - | -0.10 | - |" in markdown


def test_training_summary_names_variants_that_give_identical_answers(setup):
    config, reported = setup
    answers = Path(config["results"]) / "eval" / "grpo-full" / "refcocog.multi.predictions.jsonl"
    answers.write_text(json.dumps({"turn": 0, "boxes": [[5, 5, 10, 10]]}) + "\n")
    markdown, _ = build(config, "table_training", reported)
    caption = markdown.splitlines()[0]
    assert "grpo-base_only and grpo-a1.0_b0.5 give identical answers" in caption
    assert "grpo-full give" not in caption and "and grpo-full" not in caption


def _with_sft(config: dict[str, Any], round_1: dict[str, float]) -> None:
    """Add an SFT model whose round-1 AP@0.5 per benchmark is ``round_1``, and report the random baseline."""
    config["sft"]["enabled"] = True
    config["evaluate"]["models"] = ["sft", *config["evaluate"]["models"]]
    config["report"]["table1_rows"]["random"] = {"label": "Random object (chance)", "reported_as": None}
    results = Path(config["results"])
    for bench, value in round_1.items():
        for mode in ("multi", "single"):
            path = results / "eval" / "sft" / f"{bench}.{mode}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(eval_metrics(value - 1)))  # round r scores value - 1 + r
    (results / "train_metrics" / "sft.csv").write_text("step,loss\n1,2.0\n2,1.0\n")
    (results / "probe" / "sft.json").write_text(json.dumps({"reward": 6.0, "reward_se": 0.1}))


def test_training_summary_says_when_sft_has_not_learnt_to_ground(setup):
    config, reported = setup
    # the random baseline is the fixture's 5th model: round 1 scores 51 (RefCOCO+) and 52 (RefCOCOg)
    _with_sft(config, {"refcocoplus": 101.0, "refcocog": 105.0})
    caption = build(config, "table_training", reported)[0].splitlines()[0]
    assert "SFT has not learnt to ground" in caption
    assert "(RefCOCO+ 101.0 against chance 51.0)" in caption and "sft.max_steps" in caption


def test_training_summary_is_silent_on_grounding_when_sft_grounds(setup):
    config, reported = setup
    _with_sft(config, {"refcocoplus": 102.0, "refcocog": 104.0})
    caption = build(config, "table_training", reported)[0].splitlines()[0]
    assert "ground" not in caption


def _with_grpo_below_sft(config: dict[str, Any]) -> None:
    """An SFT model that grounds, and GRPO `full` missing every round-1 box SFT hits (-100 points)."""
    _with_sft(config, {"refcocoplus": 102.0, "refcocog": 104.0})
    config["report"]["differences"] = [{"a": "grpo-full", "b": "sft", "turns": "round 1"}]
    _with_outcomes(
        config, {"grpo-full": [{"hit": "01", "cited": "01"}] * 20, "sft": [{"hit": "11", "cited": "01"}] * 20}
    )


def test_training_summary_says_when_grpo_ends_below_sft_beyond_the_noise(setup):
    config, reported = setup
    _with_grpo_below_sft(config)
    caption = build(config, "table_training", reported)[0].splitlines()[0]
    assert "GRPO ends below SFT beyond the noise (grpo-full, round 1, RefCOCO+ -100.0 [-100.0, -100.0];" in caption
    # the fixture's citation term preferred the less accurate completions (-0.10, weighted over steps)
    assert "preferred were the less accurate ones (citation -0.10 in grpo-full)" in caption


def test_grpo_below_sft_with_no_term_against_accuracy_says_so(setup):
    config, reported = setup
    _with_grpo_below_sft(config)
    curve = Path(config["results"]) / "train_metrics" / "grpo-full.csv"
    curve.write_text(
        "step,loss,reward,rewards/citation_reward/groups_varied,rewards/citation_reward/preferred_accuracy_gap\n"
        "1,1.0,0.0,0.5,0.3\n2,0.5,1.0,0.5,0.1\n"
    )
    caption = build(config, "table_training", reported)[0].splitlines()[0]
    assert "GRPO ends below SFT beyond the noise" in caption
    assert "No reward term preferred the less accurate completions" in caption
    assert "less accurate ones (" not in caption


def test_training_summary_is_silent_when_grpo_minus_sft_interval_includes_zero_or_b_is_not_sft(setup):
    config, reported = setup
    _with_sft(config, {"refcocoplus": 102.0, "refcocog": 104.0})
    config["report"]["differences"] = [
        {"a": "grpo-full", "b": "sft", "turns": "round 1"},
        {"a": "grpo-full", "b": "base", "turns": "round 1"},
    ]
    gained, lost = {"hit": "10", "cited": "01"}, {"hit": "00", "cited": "01"}
    _with_outcomes(
        config,
        {"grpo-full": [gained] * 10 + [lost] * 10, "sft": [lost] * 10 + [gained] * 10, "base": [gained] * 20},
    )
    markdown, _ = build(config, "table_training", reported)
    assert "| grpo-full - base | round 1 | RefCOCOg | -50.0 |" in markdown  # below zero, but against base
    assert "below SFT" not in markdown.splitlines()[0]
