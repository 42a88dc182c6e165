"""Figures are drawn from pipeline outputs, reproducibly, PNG and PDF."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from regionreasoner.report.figures import (
    FIGURES,
    build_figure,
    datasheets_from_inputs,
    fifth_segments,
    figure_inputs,
    qualitative_choice,
    read_curves,
)
from regionreasoner.report.tables import fifth_means
from tests.conftest import REPO
from tests.test_tables import make_config, validated, write_fixture


def write_training_fixture(config: dict[str, Any]) -> None:
    """Training CSVs per GRPO variant; one lacks a reward term and has an unlogged step."""
    for i, variant in enumerate(config["grpo"]["variants"]):
        path = Path(config["results"]) / "train_metrics" / f"grpo-{variant}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        terms = ["accuracy_reward", "format_reward"] + (["citation_reward"] if i else [])
        header = ["step", "loss", "reward", "kl"] + [f"rewards/{t}/mean" for t in terms] + [f"rewards/{terms[0]}/std"]
        lines = [",".join(header)]
        for step in range(1, 6):
            values = (
                [str(step), "0.1", f"{step * 0.5 + i}", "0.01"]
                + [f"{step * 0.1 * (k + 1)}" for k in range(len(terms))]
                + ["0.2"]
            )
            lines.append(",".join(values))
        lines.append("6,0.1,,0.01" + "," * (len(terms) + 1))
        path.write_text("\n".join(lines) + "\n")


def write_dialogue_fixture(config: dict[str, Any]) -> None:
    """A two-dialogue bench (image on disk) and the qualitative model's predictions."""
    results = Path(config["results"])
    image = results / "data" / "img.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((112, 112, 3), 90, dtype=np.uint8)).save(image)
    turn = {"question": "the red circle", "bboxes": [[28, 28, 56, 56]], "masks": []}
    bench = [
        {"image_id": 1, "image_path": str(image), "width": 112, "height": 112, "conversational_turns": [turn]},
        {
            "image_id": 2,
            "image_path": "../data/img.png",
            "width": 112,
            "height": 112,
            "conversational_turns": [turn, dict(turn, question="what is next to bbox=[28,28,56,56]?")],
        },
    ]
    (results / "bench").mkdir(parents=True, exist_ok=True)
    (results / "bench" / "refcocoplus.json").write_text(json.dumps(bench))
    model, bench_name = qualitative_choice(validated(config))
    lines = [{"image_id": 2, "turn": 0, "boxes": [[30, 30, 58, 58]], "points": [[44, 44]], "mask": None}]
    (results / "eval" / model / f"{bench_name}.multi.predictions.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    config = make_config(tmp_path / "results")
    write_fixture(config)
    write_training_fixture(config)
    write_dialogue_fixture(config)
    reported = tmp_path / "reported_numbers.yaml"
    shutil.copy(REPO / "paper" / "reported_numbers.yaml", reported)
    return config, reported


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_writes_png_and_pdf_with_identical_bytes_on_rebuild(setup, name):
    config, reported = setup
    out = Path(config["results"]) / "figures" / f"{name}.png"
    build_figure(validated(config), name, out, reported=reported)
    first = out.read_bytes(), out.with_suffix(".pdf").read_bytes()
    assert first[0].startswith(b"\x89PNG") and first[1].startswith(b"%PDF")
    assert b"CreationDate" not in first[1]
    build_figure(validated(config), name, out, reported=reported)
    assert (out.read_bytes(), out.with_suffix(".pdf").read_bytes()) == first
    assert sorted(p.name for p in out.parent.iterdir()) == [f"{name}.pdf", f"{name}.png"]  # no temp files left


def test_figure_inputs_name_the_files_each_figure_reads(setup):
    config, reported = setup
    results = Path(config["results"])
    assert figure_inputs(validated(config), "fig_reward_curves", reported) == [
        str(results / "train_metrics" / f"grpo-{v}.csv") for v in config["grpo"]["variants"]
    ]
    assert figure_inputs(validated(config), "fig_qualitative", reported) == [
        str(results / "eval" / "grpo-full" / "refcocoplus.multi.predictions.jsonl"),
        str(results / "bench" / "refcocoplus.json"),
    ]
    assert figure_inputs(validated(config), "fig_turns_per_round", reported)[-1] == str(reported)


def test_reward_curves_keep_only_logged_mean_terms(setup):
    config, _ = setup
    curves = read_curves(Path(config["results"]) / "train_metrics" / "grpo-full.csv")
    assert sorted(curves) == ["accuracy_reward", "citation_reward", "format_reward", "total"]
    assert curves["total"][-1] == (5.0, 3.5)  # step 6 has no reward logged


def test_fifth_segments_match_the_training_table_fifths():
    points = [(float(step), float(step % 3)) for step in range(1, 41)]
    segments = fifth_segments(points)
    assert [(a, b) for a, b, _ in segments] == [(1, 8), (9, 16), (17, 24), (25, 32), (33, 40)]
    rows = [{"reward": str(v)} for _, v in points]
    assert (segments[0][2], segments[-1][2]) == pytest.approx(fifth_means(rows, "reward"))
    assert len(fifth_segments(points[:3])) == 3  # fewer than five steps: one segment per step
    uneven = points + [(41.0, 9.0), (42.0, 9.0)]  # 42 steps: fifths of 8, the last ends the run
    segments = fifth_segments(uneven)
    assert segments[-1][:2] == (35, 42)
    rows = [{"reward": str(v)} for _, v in uneven]
    assert (segments[0][2], segments[-1][2]) == pytest.approx(fifth_means(rows, "reward"))


def test_notebook_draws_turns_per_round_from_snakemake_inputs(setup):
    config, reported = setup
    inputs = figure_inputs(validated(config), "fig_turns_per_round", reported)
    assert sorted(datasheets_from_inputs(inputs)) == ["refcocog", "refcocoplus"]
    out = Path(config["results"]) / "figures" / "fig_turns_per_round.png"
    notebook = json.loads((REPO / "workflow" / "notebooks" / "turns_per_round.py.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    snakemake = SimpleNamespace(input=inputs, output=[str(out)], config=config)
    exec(compile(code, "turns_per_round.py.ipynb", "exec"), {"snakemake": snakemake})
    assert out.exists() and out.with_suffix(".pdf").exists()


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_is_in_the_paper_and_has_a_report_caption(name):
    assert rf"\includegraphics[width=\linewidth]{{{name}.pdf}}" in (REPO / "paper" / "main.tex").read_text()
    assert (REPO / "workflow" / "report" / f"{name}.rst").is_file()
