"""The paper's figures rebuilt from pipeline outputs.

Four figures, each declared once in ``FIGURES`` with the files it reads (``figure_inputs``, the
Snakefile's rule inputs) and how it draws them (``build_figure``):

- ``fig_per_round``: AP@0.5 and gIoU by round per model (Tables 1-2 as curves, paper's beside ours);
- ``fig_reward_curves``: GRPO training reward by term, one panel per reward variant (Tables 3-4, 11);
- ``fig_qualitative``: one dialogue, each round's question with predicted vs ground-truth boxes;
- ``fig_turns_per_round``: the benchmark's turns per round (Table 6), also drawn by the notebook
  workflow/notebooks/turns_per_round.py.ipynb through ``plot_turns_per_round``.

and one ``fig_curves_{model}`` per trained model (``curve_figure``): validation AP@0.5 and held-out
reward against steps, the checkpoint ``evaluate.checkpoint`` chose marked.

Matplotlib's object API (no pyplot state) with the Agg canvas; PNG and PDF are written atomically
without creation dates, so the same inputs give the same bytes.
"""

from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from regionreasoner import paths
from regionreasoner.config import PipelineConfig, grpo_model
from regionreasoner.io import atomic_path, read_json, read_jsonl, read_yaml
from regionreasoner.report.tables import (
    REPORTED,
    Reader,
    bench_label,
    datasheet_path,
    eval_path,
    fifths,
    results_dir,
    train_metrics_path,
)

PDF_METADATA = {"CreationDate": None, "ModDate": None}
DPI = 150
BENCH_STYLES = ("-", "--", ":", "-.")
MAIN_REPORTED_MODEL = "RegionReasoner-7B"


def save_figure(fig: Figure, out_png: Path) -> None:
    """Write ``fig`` as ``out_png`` and its ``.pdf`` sibling, atomically and without dates."""
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    with atomic_path(out_png.with_suffix(".pdf")) as tmp:
        fig.savefig(tmp, format="pdf", metadata=PDF_METADATA)


def _reported(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    return read_yaml(path) or {}


# ---- fig_per_round ----------------------------------------------------------------------------


def _per_round_inputs(config: PipelineConfig) -> list[Path]:
    return [eval_path(config, m, b) for b in config.benchmarks for m in config.report.table1_rows]


def _rounds_of(data: dict[str, Any], max_rounds: int) -> list[int]:
    present = (int(r) for r, v in data.get("per_round", {}).items() if v.get("turns"))
    return sorted(r for r in present if r <= max_rounds)


def _draw_per_round(config: PipelineConfig, reported: dict[str, Any], reader: Reader) -> Figure:
    """Two panels (AP@0.5, gIoU); colour = model, line style = benchmark, o = ours, x = paper."""
    max_rounds = config.bench.max_rounds
    rows = config.report.table1_rows
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    panels = (("ap50", "table1_detection_ap50", "AP@0.5 (%)"), ("giou", "table2_segmentation_giou", "gIoU (%)"))
    for ax, (key, reported_key, title) in zip(fig.subplots(1, 2), panels, strict=True):
        for colour, (model, row) in enumerate(rows.items()):
            for style, bench in zip(BENCH_STYLES, config.benchmarks):
                data = reader.json(eval_path(config, model, bench))
                rounds = [r for r in _rounds_of(data, max_rounds) if data["per_round"][str(r)].get(key) is not None]
                ax.plot(
                    rounds,
                    [data["per_round"][str(r)][key] for r in rounds],
                    color=f"C{colour}",
                    linestyle=style,
                    marker="o",
                    markersize=4,
                )
                paper = reported.get(reported_key, {}).get(bench, {}).get(row.reported_as)
                if paper:
                    paper_rounds = list(range(1, min(len(paper["rounds"]), max_rounds) + 1))
                    ax.plot(
                        paper_rounds,
                        paper["rounds"][: len(paper_rounds)],
                        color=f"C{colour}",
                        linestyle=style,
                        marker="x",
                        linewidth=0.8,
                        alpha=0.5,
                    )
        ax.set(title=title, xlabel="round", ylim=(0, 100), xticks=range(1, max_rounds + 1))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=f"C{i}", label=row.label) for i, row in enumerate(rows.values())]
    handles += [
        Line2D([], [], color="grey", linestyle=s, label=bench_label(config, b))
        for s, b in zip(BENCH_STYLES, config.benchmarks)
    ]
    handles += [
        Line2D([], [], color="grey", marker="o", linestyle="", label="reproduced"),
        Line2D([], [], color="grey", marker="x", linestyle="", label="reported (paper)"),
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    return fig


# ---- fig_reward_curves ------------------------------------------------------------------------


def _reward_inputs(config: PipelineConfig) -> list[Path]:
    return [train_metrics_path(config, grpo_model(v)) for v in config.grpo.variants]


def read_curves(path: Path) -> dict[str, list[tuple[float, float]]]:
    """(step, value) pairs of the total reward and each ``rewards/<term>/mean`` column present."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = rows[0].keys() if rows else []
    columns = [c for c in header if c == "reward" or (c.startswith("rewards/") and c.endswith("/mean"))]
    curves: dict[str, list[tuple[float, float]]] = {}
    for column in columns:
        name = "total" if column == "reward" else column[len("rewards/") : -len("/mean")]
        points = [(float(r["step"]), float(r[column])) for r in rows if r.get("step") and r.get(column)]
        if points:
            curves[name] = points
    return curves


def fifth_segments(points: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """(first step, last step, mean) of each fifth of the run (``tables.fifths``, the training
    table's windows). Per-step rewards swing with each step's prompts; the fifth means show the trend.
    """
    segments = []
    for window in fifths(len(points)):
        part = points[window]
        segments.append((part[0][0], part[-1][0], sum(v for _, v in part) / len(part)))
    return segments


def _draw_reward_curves(config: PipelineConfig, reported: dict[str, Any], reader: Reader) -> Figure:
    """One panel per GRPO variant; one colour per reward term, the total in black, its fifth means dashed."""
    variants = list(config.grpo.variants)
    curves = {v: read_curves(reader.path(train_metrics_path(config, grpo_model(v)))) for v in variants}
    terms = sorted({t for c in curves.values() for t in c} - {"total"})
    columns = min(len(variants), 4)
    rows = math.ceil(len(variants) / columns)
    fig = Figure(figsize=(3.2 * columns, 2.6 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, variant in zip(axes, variants):
        for name, points in curves[variant].items():
            colour = "black" if name == "total" else f"C{terms.index(name) % 10}"
            ax.plot(*zip(*points), color=colour, linewidth=1.8 if name == "total" else 1.0)
        for first, last, mean in fifth_segments(curves[variant].get("total", [])):
            ax.hlines(mean, first, last, colors="dimgray", linestyles="--", linewidth=1.5)
        ax.set(title=grpo_model(variant), xlabel="step", ylabel="reward")
        ax.grid(alpha=0.3)
    for ax in axes[len(variants) :]:
        ax.set_visible(False)
    handles = [Line2D([], [], color="black", linewidth=1.8, label="total")]
    handles += [Line2D([], [], color="dimgray", linestyle="--", linewidth=1.5, label="total, mean per fifth")]
    handles += [Line2D([], [], color=f"C{i % 10}", label=t) for i, t in enumerate(terms)]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8)
    return fig


# ---- fig_qualitative --------------------------------------------------------------------------


def qualitative_choice(config: PipelineConfig) -> tuple[str, str]:
    """(model, bench) of the qualitative figure: the row compared with RegionReasoner-7B (or the last
    Table 1 row) on the first benchmark."""
    rows = config.report.table1_rows
    main = [m for m, row in rows.items() if row.reported_as == MAIN_REPORTED_MODEL] or list(rows)[-1:]
    return main[0], next(iter(config.benchmarks))


def predictions_path(config: PipelineConfig, model: str, bench: str, mode: str = "multi") -> Path:
    """Per-turn predictions JSONL written by the evaluator."""
    return Path(paths.eval_predictions(str(results_dir(config)), model, bench, mode))


def bench_path(config: PipelineConfig, bench: str) -> Path:
    """The RegionDial-Bench dialogues of ``bench``."""
    return Path(paths.bench_file(str(results_dir(config)), bench))


def _qualitative_inputs(config: PipelineConfig) -> list[Path]:
    model, bench = qualitative_choice(config)
    return [predictions_path(config, model, bench), bench_path(config, bench)]


def resolve_image(image_path: str, bench: Path) -> Path:
    """A bench record's image: as written (absolute or relative to the working directory), else
    relative to the bench file."""
    for candidate in (Path(image_path), bench.parent / image_path):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{bench}: image {image_path} not found (relative to the working directory or the bench)")


def _box_patch(box: Sequence[float], colour: str, style: str) -> Rectangle:
    return Rectangle(
        (box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False, edgecolor=colour, linestyle=style, linewidth=1.6
    )


def _draw_qualitative(config: PipelineConfig, reported: dict[str, Any], reader: Reader) -> Figure:
    """The longest dialogue (first on ties): one panel per round, true box green, predicted red dashed."""
    model, bench = qualitative_choice(config)
    path = bench_path(config, bench)
    dialogues = reader.json(path)
    index = max(range(len(dialogues)), key=lambda i: (len(dialogues[i]["conversational_turns"]), -i))
    dialogue = dialogues[index]
    predicted = {
        p["turn"]: p
        for p in read_jsonl(reader.path(predictions_path(config, model, bench)))
        if p.get("dialogue", index) == index and p.get("image_id") == dialogue["image_id"]
    }
    with Image.open(resolve_image(dialogue["image_path"], path)) as handle:
        image = np.asarray(handle.convert("RGB"))
    turns = dialogue["conversational_turns"]
    columns = min(len(turns), 4)
    fig = Figure(figsize=(3.0 * columns, 3.4 * math.ceil(len(turns) / columns)), layout="constrained")
    axes = fig.subplots(math.ceil(len(turns) / columns), columns, squeeze=False).ravel()
    for t, (ax, turn) in enumerate(zip(axes, turns)):
        ax.imshow(image)
        for box in turn.get("bboxes") or []:
            ax.add_patch(_box_patch(box, "lime", "-"))
        for box in predicted.get(t, {}).get("boxes") or []:
            ax.add_patch(_box_patch(box, "red", "--"))
        ax.set_title("\n".join(textwrap.wrap(f"R{t + 1}: {turn['question']}", 34)), fontsize=7, loc="left")
        ax.set_axis_off()
    for ax in axes[len(turns) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"{model} on {bench_label(config, bench)} (image {dialogue['image_id']}): "
        "green = ground truth, red dashed = predicted",
        fontsize=9,
    )
    return fig


# ---- fig_turns_per_round ----------------------------------------------------------------------


def plot_turns_per_round(
    datasheets: dict[str, Path], out_png: Path, reported: Path | None = None, labels: dict[str, str] | None = None
) -> None:
    """Turns per round of each benchmark (Table 6): counts, and each round's share of all turns
    with the paper's shares as black ticks (the shapes compare even when the sizes do not).

    ``datasheets`` maps a benchmark key to its datasheet JSON (``turns_per_round`` or ``rounds``).
    """
    paper = _reported(reported).get("table6_turns_per_round", {})
    counts = {}
    for bench, path in datasheets.items():
        sheet = read_json(path)
        counts[bench] = list(sheet.get("turns_per_round") or sheet.get("rounds") or [])
    shown = [c for c in counts.values()] + [paper[b]["rounds"] for b in counts if b in paper]
    rounds = max([max((r + 1 for r, v in enumerate(c) if v), default=0) for c in shown] + [1])
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    count_ax, share_ax = fig.subplots(1, 2)
    width = 0.8 / max(len(counts), 1)
    for i, (bench, values) in enumerate(counts.items()):
        xs = np.arange(1, rounds + 1) + (i - (len(counts) - 1) / 2) * width
        ys = np.array([values[r] if r < len(values) else 0 for r in range(rounds)], dtype=float)
        label = (labels or {}).get(bench, bench)
        count_ax.bar(xs, ys, width, color=f"C{i}", label=label)
        share_ax.bar(xs, 100 * ys / max(ys.sum(), 1), width, color=f"C{i}", label=label)
        if bench in paper:
            theirs = np.array(paper[bench]["rounds"][:rounds], dtype=float)
            share_ax.plot(
                xs[: len(theirs)],
                100 * theirs / paper[bench]["turns"],
                linestyle="",
                marker="_",
                markersize=12,
                markeredgewidth=2,
                color="black",
            )
    if any(b in paper for b in counts):
        share_ax.plot(
            [], [], linestyle="", marker="_", markersize=12, markeredgewidth=2, color="black", label="reported (paper)"
        )
    count_ax.set(xlabel="round", ylabel="turns", title="Turns per round", xticks=range(1, rounds + 1))
    share_ax.set(
        xlabel="round", ylabel="share of turns (%)", title="Share of turns per round", xticks=range(1, rounds + 1)
    )
    for ax in (count_ax, share_ax):
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    save_figure(fig, out_png)


def datasheets_from_inputs(paths: Sequence[str | Path]) -> dict[str, Path]:
    """Benchmark key -> datasheet among a rule's inputs ({results}/bench/{bench}.datasheet.json)."""
    suffix = ".datasheet.json"
    return {Path(p).name[: -len(suffix)]: Path(p) for p in paths if Path(p).name.endswith(suffix)}


def _turns_inputs(config: PipelineConfig) -> list[Path]:
    return [datasheet_path(config, b) for b in config.benchmarks]


# ---- fig_curves_{model} ------------------------------------------------------------------------

CURVE_FIGURE = "fig_curves_"  # name prefix of the per-model checkpoint-curve figures


def curve_figure(model: str) -> str:
    """The name of ``model``'s checkpoint-curve figure."""
    return f"{CURVE_FIGURE}{model}"


def _curve_path(config: PipelineConfig, model: str) -> Path:
    return Path(paths.curve(str(results_dir(config)), model))


def _draw_curve(config: PipelineConfig, model: str, reader: Reader) -> Figure:
    """Validation AP@0.5 per benchmark (and their mean) and the held-out reward (+/- 1 SE) by step;
    the chosen checkpoint circled in both panels."""
    data = reader.json(_curve_path(config, model))
    points = data["points"]
    steps = [p["step"] for p in points]
    chosen = next(i for i, p in enumerate(points) if p["step"] == data["chosen_step"])
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    val_ax, probe_ax = fig.subplots(1, 2)
    for style, bench in zip(BENCH_STYLES, config.benchmarks):
        val_ax.plot(
            steps,
            [p["validation"][bench] for p in points],
            "o",
            ls=style,
            color="C0",
            alpha=0.6,
            label=bench_label(config, bench),
        )
    means = [p["validation_ap50"] for p in points]
    val_ax.plot(steps, means, "o-", color="black", linewidth=1.8, label="mean (the rule's metric)")
    probe = [p["probe_reward"] for p in points]
    probe_ax.errorbar(steps, probe, yerr=[p["probe_reward_se"] for p in points], fmt="o-", color="C1", capsize=3)
    for ax, values in ((val_ax, means), (probe_ax, probe)):
        ax.plot(
            [steps[chosen]],
            [values[chosen]],
            "o",
            markersize=14,
            markerfacecolor="none",
            color="red",
            markeredgewidth=2,
            label=f"chosen ({data['rule']}): step {steps[chosen]}",
        )
        ax.set(xlabel="step", xticks=steps)
        ax.grid(alpha=0.3)
    val_ax.set(title="Validation dialogues: AP@0.5 over all turns (%)", ylim=(0, 100))
    probe_ax.set(title=f"Held-out reward ({config.probe.rewards})")
    val_ax.legend(fontsize=7)
    probe_ax.legend(fontsize=7)
    fig.suptitle(f"{model}: checkpoint curve", fontsize=10)
    return fig


# ---- dispatch ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureSpec:
    """What a figure reads and how it draws it; ``reported`` says whether it shows paper numbers."""

    inputs: Callable[[PipelineConfig], list[Path]]
    draw: Callable[[PipelineConfig, dict[str, Any], Reader], Figure] | None
    reported: bool


FIGURES: dict[str, FigureSpec] = {
    "fig_per_round": FigureSpec(_per_round_inputs, _draw_per_round, True),
    "fig_reward_curves": FigureSpec(_reward_inputs, _draw_reward_curves, False),
    "fig_qualitative": FigureSpec(_qualitative_inputs, _draw_qualitative, False),
    "fig_turns_per_round": FigureSpec(_turns_inputs, None, True),
}


def _spec(name: str) -> FigureSpec:
    """A declared figure, or the checkpoint-curve figure of the model its name ends with."""
    if name.startswith(CURVE_FIGURE):
        model = name.removeprefix(CURVE_FIGURE)
        return FigureSpec(
            lambda config: [_curve_path(config, model)],
            lambda config, reported, reader: _draw_curve(config, model, reader),
            False,
        )
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; choose one of {sorted(FIGURES)} or {CURVE_FIGURE}<model>")
    return FIGURES[name]


def figure_inputs(config: PipelineConfig, name: str, reported: Path = REPORTED) -> list[str]:
    """Files figure ``name`` reads (the reported numbers last, for figures that show them)."""
    spec = _spec(name)
    paths = list(dict.fromkeys(str(p) for p in spec.inputs(config)))
    return paths + [str(reported)] if spec.reported else paths


def build_figure(config: PipelineConfig, name: str, out_png: Path, reported: Path = REPORTED) -> None:
    """Draw figure ``name`` into ``out_png`` and its ``.pdf`` sibling."""
    spec = _spec(name)
    if spec.draw is None:  # drawn from datasheets alone; the notebook calls the same function
        plot_turns_per_round(
            {b: datasheet_path(config, b) for b in config.benchmarks}, out_png, reported, config.report.bench_names
        )
        return
    reader = Reader(figure_inputs(config, name, reported))
    save_figure(spec.draw(config, _reported(reported) if spec.reported else {}, reader), out_png)
