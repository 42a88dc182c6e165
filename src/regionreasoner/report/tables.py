"""The paper's tables rebuilt from evaluation outputs, beside the reported numbers.

Every reproduced number is read from an evaluation JSON (``paths.eval_metrics``, written by
``evaluate.metrics.score_predictions``) or a bench datasheet; the only typed numbers are
the paper's, in paper/reported_numbers.yaml. Each table is declared once in ``TABLES``: the files it
reads (``table_inputs``, which the Snakefile uses as the rule's inputs) and how it lays them out
(``build_table``); a table may read only the files it declares, so the DAG cannot go stale.
Rows come from ``config.report`` (a validated ``PipelineConfig``) in config order, so output bytes are deterministic.
A row naming a GRPO variant trained with several seeds (``grpo.variants.<v>.seeds``) shows the mean
over its seeds and, in a row below, their standard deviation (``seed_rows``).
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regionreasoner import paths
from regionreasoner.config import CHECKPOINT_RULES, DifferenceSpec, PipelineConfig, grpo_model
from regionreasoner.evaluate.metrics import MASK_METRICS
from regionreasoner.evaluate.noise import TURN_FILTERS, Estimate, Outcomes, paired_difference, seed_mean
from regionreasoner.io import atomic_write_text, read_json, read_jsonl, read_yaml
from regionreasoner.rewards.registry import TERMS, VARIANTS

REPORTED = Path("paper/reported_numbers.yaml")
# The paper's column layout for Tables 3, 4, 10 and 11: RefCOCO+ then RefCOCOg.
PAPER_BENCHES = ("refcocoplus", "refcocog")
MISSING = "-"
UNAVAILABLE = "n/a"
"""A metric the run could not compute (gIoU/cIoU on a bench without target masks); never shown as 0."""
ABLATION_LABELS = {
    "base_only": "R_base only",
    "ref_cite": "+ reference citation",
    "ref_cite_consist": "+ citation + consistency",
    "ref_cite_consist_logic": "+ citation + consistency + logic (full)",
}


# ---- paths shared with figures.py -------------------------------------------------------------


def results_dir(config: PipelineConfig) -> Path:
    """``config.results``: the root of every pipeline output."""
    return Path(config.results)


def eval_path(config: PipelineConfig, model: str, bench: str, mode: str = "multi") -> Path:
    """Metrics of ``model`` on ``bench`` in ``mode`` (multi | single)."""
    return Path(paths.eval_metrics(str(results_dir(config)), model, bench, mode))


def train_metrics_path(config: PipelineConfig, model: str) -> Path:
    """Training curves of ``model`` (sft or grpo-{variant}) as written by the trainers."""
    return Path(paths.train_metrics(str(results_dir(config)), model))


def probe_path(config: PipelineConfig, model: str) -> Path:
    """Held-out reward probe of ``model`` (sft or grpo-{variant})."""
    return Path(paths.probe_metrics(str(results_dir(config)), model))


def datasheet_path(config: PipelineConfig, bench: str) -> Path:
    """Statistics of a built RegionDial-Bench (Table 6)."""
    return Path(paths.datasheet(str(results_dir(config)), bench))


def bench_label(config: PipelineConfig, bench: str) -> str:
    """Display name of a benchmark key (``report.bench_names``)."""
    return config.report.bench_names.get(bench, bench)


def checkpoint_note(config: PipelineConfig) -> str:
    """The frozen rule that chose each trained model's evaluated checkpoint (``evaluate.checkpoint``)."""
    rule = config.evaluate.checkpoint
    return f"Checkpoint: {rule} ({CHECKPOINT_RULES[rule]})."


def caption_with_note(config: PipelineConfig, caption: str) -> str:
    """Append the checkpoint rule, and the synthetic-data note when the numbers come from the embedded default."""
    caption = f"{caption} {checkpoint_note(config)}"
    if config.data.source == "synth":
        return f"{caption} {config.report.synthetic_note}"
    return caption


# ---- a table as plain cells, rendered twice ---------------------------------------------------


@dataclass
class Table:
    """Header and row groups of strings; ``text_columns`` leading columns are left-aligned.

    A group titled in ``group_headers`` has its own header (at most as wide as ``header``).
    """

    caption: str
    header: list[str]
    groups: list[tuple[str | None, list[list[str]]]] = field(default_factory=list)
    text_columns: int = 2
    group_headers: dict[str, list[str]] = field(default_factory=dict)


def render_markdown(table: Table) -> str:
    """GitHub Markdown: one pipe table per row group, titled by the group."""
    lines = [f"**{table.caption}**", ""]
    for title, rows in table.groups:
        header = table.group_headers.get(title or "", table.header)
        align = ["---"] * table.text_columns + ["---:"] * (len(header) - table.text_columns)
        if title:
            lines += [f"*{title}*", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("| " + " | ".join(align) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def render_latex(table: Table, label: str) -> str:
    """A booktabs ``table`` float, scaled to the line width, for ``\\input`` in paper/main.tex."""
    width = len(table.header)
    spec = "l" * table.text_columns + "r" * (width - table.text_columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.caption)}}}",
        rf"\label{{tab:{label}}}",
        r"\resizebox{\linewidth}{!}{%",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in table.header) + r" \\",
    ]
    for title, rows in table.groups:
        lines.append(r"\midrule")
        if title:
            lines.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{{latex_escape(title)}}}}} \\")
        if title in table.group_headers:
            padded = table.group_headers[title] + [""] * (width - len(table.group_headers[title]))
            lines.append(" & ".join(latex_escape(h) for h in padded) + r" \\")
        lines += [" & ".join(latex_escape(cell) for cell in row + [""] * (width - len(row))) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}", ""]
    return "\n".join(lines)


# ---- numbers ----------------------------------------------------------------------------------

Number = float | int | str | None
"""A cell value: a number, ``UNAVAILABLE``, or None (no file or no such round)."""


def fmt(value: Number, digits: int = 1) -> str:
    """A reproduced or reported number; ``-`` where there is none, ``n/a`` where it cannot be computed."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def fmt_diff(ours: Number, reported: Number, digits: int = 1) -> str:
    """Reproduced (as displayed) minus reported, signed; ``-`` unless both are numbers."""
    if ours is None or reported is None or isinstance(ours, str) or isinstance(reported, str):
        return MISSING
    diff = (round(ours, digits) if isinstance(ours, float) else ours) - reported
    return f"{diff:+.{digits}f}" if isinstance(diff, float) else f"{diff:+d}"


def compared_rows(
    label: str,
    source: str,
    ours: Sequence[Number],
    reported: Sequence[Number] | None,
    reported_as: str | None,
    digits: int = 1,
) -> list[list[str]]:
    """Rows of one subject: reproduced, and where the paper reports it, reported and difference."""
    rows = [[label, source] + [fmt(v, digits) for v in ours]]
    if reported is not None:
        rows.append(["", f"reported: {reported_as}"] + [fmt(v, digits) for v in reported])
        rows.append(["", "difference"] + [fmt_diff(o, r, digits) for o, r in zip(ours, reported, strict=True)])
    return rows


def mean_sd(values: Sequence[Number]) -> tuple[Number, Number]:
    """Mean and sample standard deviation of one cell over seeds: missing (None) or not computable
    (a string) in any seed is so in both; the sd is None for one seed."""
    if any(v is None for v in values):
        return None, None
    text = next((v for v in values if isinstance(v, str)), None)
    if text is not None:
        return text, text
    numbers = [float(v) for v in values]  # type: ignore[arg-type]
    return sum(numbers) / len(numbers), statistics.stdev(numbers) if len(numbers) > 1 else None


def seed_rows(
    label: str,
    model: str,
    per_seed: Sequence[Sequence[Number]],
    reported: Sequence[Number] | None,
    reported_as: str | None,
    digits: int = 1,
) -> list[list[str]]:
    """``compared_rows`` of ``model`` from its cells per seed (``PipelineConfig.seed_models``): one
    seed as it is; several as their mean, compared with the paper, and a row of their sd."""
    if len(per_seed) == 1:
        return compared_rows(label, f"reproduced: {model}", per_seed[0], reported, reported_as, digits)
    means, sds = zip(*(mean_sd(column) for column in zip(*per_seed, strict=True)), strict=True)
    source = f"reproduced: {model}, mean of {len(per_seed)} seeds"
    rows = compared_rows(label, source, means, reported, reported_as, digits)
    rows.insert(1, ["", f"sd over {len(per_seed)} seeds"] + [fmt(v, digits) for v in sds])
    return rows


class Reader:
    """Gives access only to files the table or figure declared as inputs, so the DAG stays honest."""

    def __init__(self, declared: Sequence[str]) -> None:
        self.declared = set(declared)

    def path(self, path: Path) -> Path:
        if str(path) not in self.declared:
            raise RuntimeError(f"{path} is read but not declared in table_inputs/figure_inputs")
        return path

    def json(self, path: Path) -> Any:
        return read_json(self.path(path))


def metric(data: dict[str, Any], key: str, round_: int | None = None) -> float | str | None:
    """A metric of an evaluation JSON, pooled or for one round; ``None`` where the round is absent.

    A mask metric of a run scored without target masks (``mask_metrics`` is not ``available``) is
    ``UNAVAILABLE``, so the table says so instead of showing a number.
    """
    unavailable = key in MASK_METRICS and data.get("mask_metrics", "available") != "available"
    if round_ is not None:
        data = data.get("per_round", {}).get(str(round_), {})
        if not data.get("turns"):
            return None
    if unavailable:
        return UNAVAILABLE
    value = data.get(key)
    return float(value) if value is not None else None


def _padded(values: Sequence[Number] | None, length: int) -> list[Number] | None:
    if values is None:
        return None
    return [values[i] if i < len(values) else None for i in range(length)]


# ---- the tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """What a table reads and how it lays it out."""

    caption: str
    inputs: Callable[[PipelineConfig], list[Path]]
    build: Callable[[PipelineConfig, dict[str, Any], Reader], Table]


def _max_rounds(config: PipelineConfig) -> int:
    return config.bench.max_rounds


def _per_round_inputs(config: PipelineConfig) -> list[Path]:
    return [
        eval_path(config, s, b)
        for b in config.benchmarks
        for m in config.report.table1_rows
        for s in config.seed_models(m)
    ]


def _per_round_table(metric_key: str, reported_key: str, caption: str) -> TableSpec:
    """Tables 1-2: one row group per benchmark, R1..R7 and the pooled Avg."""

    def build(config: PipelineConfig, reported: dict[str, Any], reader: Reader) -> Table:
        rounds = range(1, _max_rounds(config) + 1)
        table = Table("", ["Model", "Source"] + [f"R{r}" for r in rounds] + ["Avg"])
        for bench in config.benchmarks:
            rows: list[list[str]] = []
            for model, row in config.report.table1_rows.items():
                runs = [reader.json(eval_path(config, m, bench)) for m in config.seed_models(model)]
                ours = [[metric(d, metric_key, r) for r in rounds] + [metric(d, metric_key)] for d in runs]
                paper = reported.get(reported_key, {}).get(bench, {}).get(row.reported_as)
                paper_values = _padded(paper["rounds"], len(rounds)) + [paper["avg"]] if paper else None
                rows += seed_rows(row.label, model, ours, paper_values, row.reported_as)
            table.groups.append((bench_label(config, bench), rows))
        return table

    return TableSpec(caption, _per_round_inputs, build)


def _paper_columns(config: PipelineConfig, columns: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, str, int]]:
    """(metric, mode, bench, index into the reported list) for the paper's columns our config has."""
    return [(k, mode, b, i) for i, (k, mode, b) in enumerate(columns) if b in config.benchmarks]


def _column_table(
    rows_key: str,
    reported_key: str,
    columns: Sequence[tuple[str, str, str]],
    caption: str,
    labels: dict[str, str] | None = None,
) -> TableSpec:
    """Tables 3, 4, 10, 11: one row per reported row key, a fixed list of (metric, mode, bench) columns."""

    def inputs(config: PipelineConfig) -> list[Path]:
        return [
            eval_path(config, seed, bench, mode)
            for model in getattr(config.report, rows_key).values()
            for seed in config.seed_models(model)
            for _, mode, bench, _ in _paper_columns(config, columns)
        ]

    def build(config: PipelineConfig, reported: dict[str, Any], reader: Reader) -> Table:
        kept = _paper_columns(config, columns)
        names = {"ap50": "AP@0.5", "giou": "gIoU"}
        header = ["Setting", "Source"] + [f"{names[k]} {mode}-round {bench_label(config, b)}" for k, mode, b, _ in kept]
        rows: list[list[str]] = []
        for key, model in getattr(config.report, rows_key).items():
            ours = [
                [metric(reader.json(eval_path(config, m, b, mode)), k) for k, mode, b, _ in kept]
                for m in config.seed_models(model)
            ]
            paper = reported.get(reported_key, {}).get(key)
            paper_values = [paper[i] for *_, i in kept] if paper else None
            label = (labels or {}).get(key, key)
            rows += seed_rows(label, model, ours, paper_values, "paper" if paper else None)
        return Table("", header, [(None, rows)])

    return TableSpec(caption, inputs, build)


VSTAR_COLUMNS = (("direct_attributes", "Attribute"), ("relative_position", "Spatial"), ("overall", "Overall"))


def vstar_path(config: PipelineConfig, model: str) -> Path:
    """V*Bench accuracy of ``model`` (Table 9)."""
    return Path(paths.vstar_metrics(str(results_dir(config)), model))


def _vstar_inputs(config: PipelineConfig) -> list[Path]:
    return [vstar_path(config, model) for model in config.report.vstar_rows.values()]


def _vstar(config: PipelineConfig, reported: dict[str, Any], reader: Reader) -> Table:
    """Table 9: the paper's rows in its order; each reproduced where ``report.vstar_rows`` names a model,
    else with the reason of ``report.not_reproduced``."""
    rows_of = config.report.vstar_rows
    reasons = config.report.not_reproduced
    paper = reported.get("table9_vstar", {})
    rows: list[list[str]] = []
    for name in [*paper, *(n for n in rows_of if n not in paper)]:
        if name in rows_of:
            data = reader.json(vstar_path(config, rows_of[name]))
            ours = [data.get(key, {}).get("accuracy") for key, _ in VSTAR_COLUMNS]
            rows += compared_rows(name, f"reproduced: {rows_of[name]}", ours, paper.get(name), "paper", digits=2)
        else:
            reason = reasons.get(name, "no model evaluated (report.vstar_rows)")
            rows.append([name, f"reported only: {reason}"] + [fmt(v, 2) for v in paper[name]])
    return Table("", ["Model", "Source"] + [label for _, label in VSTAR_COLUMNS], [(None, rows)])


def _datasheet_inputs(config: PipelineConfig) -> list[Path]:
    return [datasheet_path(config, b) for b in config.benchmarks]


def bench_stats_table(
    rounds: int, benches: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any] | None]], caption: str = ""
) -> Table:
    """The Table 6 layout, used by the report and by each bench datasheet.

    ``benches`` holds (label, datasheet statistics, reported ``{images, turns, rounds}`` or None; a
    released file reports only some of them);
    each benchmark gets its reproduced row and, where the paper reports it, the paper's row and the
    difference. Rounds R1..``rounds`` are columns; missing rounds show ``-``.
    """
    table = Table(caption, ["Benchmark", "Source", "Images", "Turns"] + [f"R{r}" for r in range(1, rounds + 1)])
    rows: list[list[str]] = []
    for label, sheet, paper in benches:
        per_round = sheet.get("turns_per_round") or sheet.get("rounds") or []
        ours = [sheet.get("images"), sheet.get("turns")] + _padded(per_round, rounds)
        paper_values = (
            [paper.get("images"), paper.get("turns")] + _padded(paper.get("rounds") or [], rounds) if paper else None
        )
        rows += compared_rows(label, "reproduced", ours, paper_values, "paper" if paper else None)
    table.groups.append((None, rows))
    return table


def _bench_stats(config: PipelineConfig, reported: dict[str, Any], reader: Reader) -> Table:
    """Table 6: images, turns and turns per round of each built benchmark (datasheets read defensively)."""
    papers = reported.get("table6_turns_per_round", {})
    return bench_stats_table(
        _max_rounds(config),
        [
            (bench_label(config, bench), reader.json(datasheet_path(config, bench)), papers.get(bench))
            for bench in config.benchmarks
        ],
    )


def _ablation_columns(metric_key: str) -> list[tuple[str, str, str]]:
    """Tables 3-4 columns: single-round then multi-round, RefCOCO+ then RefCOCOg."""
    return [(metric_key, mode, bench) for mode in ("single", "multi") for bench in PAPER_BENCHES]


def _trained_models(config: PipelineConfig) -> list[str]:
    """The training table's trained rows: SFT and one per GRPO variant (its seeds averaged)."""
    models = ["sft"] if config.sft.enabled else []
    return models + _grpo_models(config)


def _every_seed(config: PipelineConfig, models: Sequence[str]) -> list[str]:
    """``models`` with each variant's id replaced by its seeds' (``PipelineConfig.seed_models``)."""
    return [seed for model in models for seed in config.seed_models(model)]


def _training_rows(config: PipelineConfig) -> list[str]:
    """Trained models, then the random-object baseline where the config reports it (Table 1's rows)."""
    return _trained_models(config) + [m for m in ("random",) if m in config.report.table1_rows]


def _grpo_models(config: PipelineConfig) -> list[str]:
    """One model id per GRPO variant: its first seed's, the id a table row names the variant by."""
    return [grpo_model(v) for v in config.grpo.variants]


def _predictions_path(config: PipelineConfig, model: str, bench: str) -> Path:
    return Path(paths.eval_predictions(str(results_dir(config)), model, bench))


def _training_inputs(config: PipelineConfig) -> list[Path]:
    evals = [
        eval_path(config, m, b, mode)
        for m in _every_seed(config, _training_rows(config))
        for b in config.benchmarks
        for mode in ("multi", "single")
    ]
    evals += [
        eval_path(config, m, b)
        for spec in config.report.differences
        for m in _every_seed(config, (spec.a, spec.b))
        for b in config.benchmarks
    ]
    evals += [_predictions_path(config, m, b) for m in _grpo_models(config) for b in config.benchmarks]
    trained = config.trained_models()
    return [train_metrics_path(config, m) for m in trained] + [probe_path(config, m) for m in trained] + evals


def fifths(count: int) -> list[slice]:
    """The five windows over ``count`` logged steps that the training table and the reward-curve
    figure both use: ``count // 5`` steps each (at least one), the first starting the run and the
    last ending it; fewer than five windows when the run has fewer than five steps."""
    if count == 0:
        return []
    k = max(1, count // 5)
    starts = [i * k for i in range(4) if i * k < count - k] + [count - k]
    return [slice(s, s + k) for s in starts]


def fifth_means(rows: list[dict[str, str]], column: str) -> tuple[float | None, float | None]:
    """Mean of ``column`` over the first and the last fifth of the logged steps."""
    values = [float(r[column]) for r in rows if r.get(column) not in (None, "")]
    if not values:
        return None, None
    windows = fifths(len(values))
    first, last = values[windows[0]], values[windows[-1]]
    return sum(first) / len(first), sum(last) / len(last)


def _query_dependence(config: PipelineConfig, model: str, reader: Reader) -> float | None:
    """Mean over the benchmarks of the single-round query dependence (% of multi-object images)."""
    shares = [
        reader.json(eval_path(config, model, b, "single")).get("query_dependence", {}).get("share")
        for b in config.benchmarks
    ]
    shares = [v for v in shares if v is not None]
    return sum(shares) / len(shares) if shares else None


def _training_values(config: PipelineConfig, model: str, reader: Reader) -> list[Number]:
    """Steps, loss and reward fifths and the held-out reward probe (none for the random baseline),
    format rate, R1 AP@0.5, query dependence of one trained model."""
    curve: list[dict[str, str]] = []
    probe: dict[str, Any] = {}
    if model != "random":
        curve = _read_curve(config, model, reader)
        probe = reader.json(probe_path(config, model))
    evals = [reader.json(eval_path(config, model, b)) for b in config.benchmarks]
    firsts = [v for v in (metric(e, "ap50", 1) for e in evals) if v is not None]
    steps = max((int(float(r["step"])) for r in curve), default=None)
    three_digits = [
        *fifth_means(curve, "loss"),
        *fifth_means(curve, "reward"),
        probe.get("reward"),
        probe.get("reward_se"),
    ]
    one_digit = [
        sum(e.get("format_rate", 0.0) for e in evals) / len(evals),
        sum(firsts) / len(firsts) if firsts else None,
        _query_dependence(config, model, reader),
    ]
    return [steps, *three_digits, *one_digit]


def _row_label(config: PipelineConfig, model: str) -> str:
    """A training table row's model, with its number of seeds where it averages several."""
    seeds = len(config.seed_models(model))
    return f"{model} (mean of {seeds} seeds)" if seeds > 1 else model


def _training_row(config: PipelineConfig, model: str, reader: Reader) -> list[str]:
    """``_training_values`` of ``model``, the mean over its seeds (the steps are every seed's)."""
    per_seed = [_training_values(config, m, reader) for m in config.seed_models(model)]
    steps, *rest = (mean_sd(column)[0] for column in zip(*per_seed))
    three_digits, one_digit = rest[:6], rest[6:]
    return [_row_label(config, model), fmt(None if steps is None else int(steps))] + [
        *(fmt(v, 3) for v in three_digits),
        *(fmt(v) for v in one_digit),
    ]


def _outcomes(config: PipelineConfig, model: str, bench: str, reader: Reader) -> Outcomes:
    return reader.json(eval_path(config, model, bench)).get("per_dialogue", [])


def _seeded(config: PipelineConfig, models: Sequence[str]) -> bool:
    """Whether any of ``models`` is a variant trained with several seeds."""
    return any(len(config.seed_models(m)) > 1 for m in models)


def _differences(config: PipelineConfig, reader: Reader) -> list[tuple[DifferenceSpec, str, Estimate]]:
    """``report.differences``, per benchmark: AP@0.5 a - b, paired bootstrap over dialogues (95 %),
    the mean over seed pairs."""
    out = []
    for spec in config.report.differences:
        for bench in config.benchmarks:
            a, b = ([_outcomes(config, s, bench, reader) for s in config.seed_models(m)] for m in (spec.a, spec.b))
            out.append((spec, bench, paired_difference(a, b, TURN_FILTERS[spec.turns])))
    return out


def _difference_rows(
    config: PipelineConfig, differences: list[tuple[DifferenceSpec, str, Estimate]], seeded: bool
) -> list[list[str]]:
    """One row per difference; ``seeded``: with the number of seed pairs and their sd."""
    rows = []
    for spec, bench, d in differences:
        row = [
            f"{spec.a} - {spec.b}",
            spec.turns,
            bench_label(config, bench),
            fmt(d.value),
            f"[{fmt(d.low)}, {fmt(d.high)}]",
            str(d.turns),
        ]
        rows.append(row + ([str(d.seeds), fmt(d.seed_sd)] if seeded else []))
    return rows


def _below_sft_note(
    config: PipelineConfig, differences: list[tuple[DifferenceSpec, str, Estimate]], reader: Reader
) -> str:
    """A caption sentence naming each configured GRPO - SFT difference whose whole 95 % interval is
    below zero, and the reward terms of those models whose preferred completions were the less
    accurate ones (the likeliest pull away from grounding); empty where there is none."""
    named = [
        (spec, bench, d)
        for spec, bench, d in differences
        if spec.b == "sft" and spec.a in _grpo_models(config) and d.high < 0
    ]
    if not named:
        return ""
    below = [
        f"{spec.a}, {spec.turns}, {bench_label(config, bench)} {fmt(d.value)} [{fmt(d.low)}, {fmt(d.high)}]"
        for spec, bench, d in named
    ]
    terms = _directed_terms(config)
    against = [
        f"{term.removesuffix('_reward')} {gap:+.2f} in {model}"
        for model in dict.fromkeys(spec.a for spec, _, _ in named)
        for term, gap in zip(terms, _mean_gaps(config, model, terms, reader))
        if gap is not None and gap < 0
    ]
    reason = (
        f"The completions some reward terms preferred were the less accurate ones ({'; '.join(against)}), "
        "pulling the update away from grounding"
        if against
        else "No reward term preferred the less accurate completions"
    )
    return (
        f"GRPO ends below SFT beyond the noise ({'; '.join(below)}). {reason}; "
        "`python scripts/reward_controls.py permuted` measures what the update's noise alone costs "
        "(docs/benchmarks.md)."
    )


def _seed_spread_rows(config: PipelineConfig, reader: Reader) -> list[list[str]]:
    """Per variant with several seeds and per benchmark: AP@0.5 over all multi-round turns, the mean
    over seeds with its 95 % bootstrap interval over dialogues (the benchmark's noise), beside the sd
    over seeds (the training's noise) and each seed's value."""
    rows = []
    for model in _grpo_models(config):
        seeds = config.seed_models(model)
        if len(seeds) < 2:
            continue
        for bench in config.benchmarks:
            e = seed_mean([_outcomes(config, s, bench, reader) for s in seeds], TURN_FILTERS["all turns"])
            rows.append(
                [
                    model,
                    bench_label(config, bench),
                    fmt(e.value),
                    f"[{fmt(e.low)}, {fmt(e.high)}]",
                    fmt(e.seed_sd),
                    str(e.seeds),
                    " / ".join(fmt(v) for v in e.per_seed),
                ]
            )
    return rows


def _trained_terms(config: PipelineConfig) -> list[str]:
    """The reward terms of the configured GRPO variants, in registry order (the varied-groups columns)."""
    used = {term for variant in config.grpo.variants.values() for term in VARIANTS[variant.rewards].terms}
    return [term for term in TERMS if term in used]


def _read_curve(config: PipelineConfig, model: str, reader: Reader) -> list[dict[str, str]]:
    with open(reader.path(train_metrics_path(config, model)), encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _varied_rows(config: PipelineConfig, terms: list[str], reader: Reader) -> list[list[str]]:
    """Per GRPO variant and reward term: % of groups in which the term varies, over all logged steps
    (``rewards/<term>/groups_varied``, logged by ``train.grpo``); "-" where the variant lacks the term."""
    rows = []
    for model in _grpo_models(config):
        per_seed = [_varied_shares(_read_curve(config, m, reader), terms) for m in config.seed_models(model)]
        rows.append([_row_label(config, model), *(fmt(mean_sd(column)[0]) for column in zip(*per_seed))])
    return rows


def _varied_shares(curve: list[dict[str, str]], terms: list[str]) -> list[float | None]:
    """Per reward term: % of groups in which it varies over the logged steps; None where not logged."""
    shares: list[float | None] = []
    for name in terms:
        values = [float(r[key]) for r in curve if (key := f"rewards/{name}/groups_varied") in r and r[key] != ""]
        shares.append(100.0 * sum(values) / len(values) if values else None)
    return shares


def _directed_terms(config: PipelineConfig) -> list[str]:
    """The trained reward terms whose direction is measured against the grounding term."""
    return [term for term in _trained_terms(config) if not TERMS[term].grounding]


def _direction_rows(config: PipelineConfig, terms: list[str], reader: Reader) -> list[list[str]]:
    """Per GRPO variant and non-grounding reward term: the accuracy reward of the completions the
    term preferred minus the rest's (``rewards/<term>/preferred_accuracy_gap``, logged by
    ``train.grpo``), over all logged steps; "-" where the variant lacks the term or it never varied."""
    return [
        [_row_label(config, model), *(fmt(gap, 2) for gap in _mean_gaps(config, model, terms, reader))]
        for model in _grpo_models(config)
    ]


def _mean_gaps(config: PipelineConfig, model: str, terms: list[str], reader: Reader) -> list[Number]:
    """Per term: the model's preferred-accuracy gap, the mean over its seeds."""
    per_seed = [_preferred_gaps(_read_curve(config, m, reader), terms) for m in config.seed_models(model)]
    return [mean_sd(column)[0] for column in zip(*per_seed)]


def _preferred_gaps(curve: list[dict[str, str]], terms: list[str]) -> list[float | None]:
    """Per reward term: its logged gaps averaged over steps, each step weighted by the share of groups
    in which the term varied then (a step's gap is a mean over those groups); None where not logged."""
    gaps: list[float | None] = []
    for name in terms:
        gap, varied = f"rewards/{name}/preferred_accuracy_gap", f"rewards/{name}/groups_varied"
        pairs = [(float(r[gap]), float(r.get(varied) or 1.0)) for r in curve if r.get(gap, "") != ""]
        weight = sum(w for _, w in pairs)
        gaps.append(sum(g * w for g, w in pairs) / weight if pairs and weight > 0 else None)
    return gaps


def _answers(config: PipelineConfig, model: str, reader: Reader) -> list[Any]:
    """The model's answer boxes on every multi-round benchmark turn, in file order."""
    return [
        line["boxes"]
        for bench in config.benchmarks
        for line in read_jsonl(reader.path(_predictions_path(config, model, bench)), ("boxes",))
    ]


def coinciding_variants(config: PipelineConfig, reader: Reader) -> list[list[str]]:
    """GRPO variants with identical answer boxes on every multi-round turn of every benchmark, as
    groups of two or more in config order: such variants are one result, not several."""
    groups: dict[str, list[str]] = {}
    for model in _grpo_models(config):
        groups.setdefault(repr(_answers(config, model, reader)), []).append(model)
    return [models for models in groups.values() if len(models) > 1]


GROUNDED_OVER_CHANCE = 2.0
"""Round-1 AP@0.5, as a multiple of the random-object baseline's, below which SFT has not learnt to
ground: a tiny model first learns the answer format and, until it leaves that loss plateau, boxes
objects with little regard to the query (docs/benchmarks.md)."""


def _ungrounded_sft_note(config: PipelineConfig, reader: Reader) -> str:
    """A caption sentence naming each benchmark on which SFT's round 1 is below
    ``GROUNDED_OVER_CHANCE`` times chance, and what to change; empty where it is not."""
    if not {"sft", "random"} <= set(_training_rows(config)):
        return ""
    short = []
    for bench in config.benchmarks:
        sft, chance = (metric(reader.json(eval_path(config, m, bench)), "ap50", 1) for m in ("sft", "random"))
        if isinstance(sft, float) and isinstance(chance, float) and sft < GROUNDED_OVER_CHANCE * chance:
            short.append(f"{bench_label(config, bench)} {fmt(sft)} against chance {fmt(chance)}")
    if not short:
        return ""
    return (
        f"SFT has not learnt to ground: its round-1 AP@0.5 is below {GROUNDED_OVER_CHANCE:g}x chance "
        f"({'; '.join(short)}): GRPO starts from a model that still often boxes another object than the one "
        "asked for. The step at which a tiny model leaves its loss plateau moves with floating-point detail; "
        "more SFT steps (sft.max_steps, within sft.schedule_steps) get it past (docs/benchmarks.md)."
    )


def _training_summary(config: PipelineConfig, reported: dict[str, Any], reader: Reader) -> Table:
    """Did training teach anything? Loss and GRPO reward, first vs last fifth; the sampled reward on
    held-out turns; format rate, R1 accuracy, query dependence, beside the random-object baseline;
    then the configured differences with their noise."""
    header = [
        "Model",
        "Steps",
        "Loss first 1/5",
        "Loss last 1/5",
        "Reward first 1/5",
        "Reward last 1/5",
        "Held-out reward",
        "SE",
        "Format %",
        "R1 AP@0.5",
        "Query dep. %",
    ]
    rows = [_training_row(config, model, reader) for model in _training_rows(config)]
    coinciding = coinciding_variants(config, reader)
    notes = [
        f"{' and '.join(models)} give identical answers on every benchmark turn: one result, not several."
        for models in coinciding
    ]
    notes.append(_ungrounded_sft_note(config, reader))
    differences = _differences(config, reader)
    notes.append(_below_sft_note(config, differences, reader))
    if _seeded(config, _grpo_models(config)):
        notes.append(
            "A variant trained with several seeds (grpo.variants.<v>.seeds) shows the mean over its seeds in "
            "every row; its spread is in the across-seeds part."
        )
    caption = " ".join(note for note in notes if note)
    table = Table(caption, header, [(None, rows)], text_columns=1)
    title = (
        "Share of GRPO groups in which each reward term varies (%): a term constant within a group moves no advantage"
    )
    terms = _trained_terms(config)
    table.groups.append((title, _varied_rows(config, terms, reader)))
    table.group_headers[title] = ["Variant", *(term.removesuffix("_reward") for term in terms)]
    directed = _directed_terms(config)
    title = (
        "Accuracy reward (0-3) of the completions each term scores highest in a GRPO group minus the rest's, "
        "over the groups where the term varies: below zero the term pulls the update away from grounding"
    )
    table.groups.append((title, _direction_rows(config, directed, reader)))
    table.group_headers[title] = ["Variant", *(term.removesuffix("_reward") for term in directed)]
    spread = _seed_spread_rows(config, reader)
    if spread:
        title = (
            "Across seeds: AP@0.5 (points, all multi-round turns) of each variant trained with several seeds, "
            "the mean over seeds with its 95 % bootstrap interval over dialogues (the benchmark's noise) "
            "beside the sd over seeds (the training's noise)"
        )
        table.groups.append((title, spread))
        table.group_headers[title] = ["Variant", "Benchmark", "Mean", "95 % interval", "Seed sd", "Seeds", "Per seed"]
    seeded = _seeded(config, [m for spec in config.report.differences for m in (spec.a, spec.b)])
    if differences:
        title = "Differences in AP@0.5 (points), 95 % paired bootstrap interval over dialogues (the noise)"
        header = ["Models", "Turns", "Benchmark", "a - b", "95 % interval", "Turns counted"]
        if seeded:
            title = (
                "Differences in AP@0.5 (points), seed-paired (seed i of a with seed i of b; a model with one seed "
                "paired with every seed): the mean over pairs, its 95 % paired bootstrap interval over dialogues "
                "(the benchmark's noise) and the sd over pairs (the training's noise)"
            )
            header += ["Seed pairs", "Pair sd"]
        table.groups.append((title, _difference_rows(config, differences, seeded)))
        table.group_headers[title] = header
    return table


TABLES: dict[str, TableSpec] = {
    "table1_detection": _per_round_table(
        "ap50",
        "table1_detection_ap50",
        "Detection accuracy (AP@0.5, %) per round on RegionDial-Bench, later turns citing the model's "
        "own earlier predictions; Avg pools all turns (paper Table 1).",
    ),
    "table2_segmentation": _per_round_table(
        "giou",
        "table2_segmentation_giou",
        "Segmentation gIoU (%) per round on RegionDial-Bench; Avg pools all turns (paper Table 2). "
        "n/a: the benchmark file has no target masks, so only box metrics are scored.",
    ),
    "table3_ablation_detection": _column_table(
        "ablation_rows",
        "table3_ablation_detection",
        _ablation_columns("ap50"),
        "Reward ablation, detection AP@0.5 (%) (paper Table 3).",
        ABLATION_LABELS,
    ),
    "table4_ablation_segmentation": _column_table(
        "ablation_rows",
        "table4_ablation_segmentation",
        _ablation_columns("giou"),
        "Reward ablation, segmentation gIoU (%) (paper Table 4).",
        ABLATION_LABELS,
    ),
    "table6_bench_stats": TableSpec(
        "RegionDial-Bench statistics: images, turns and turns per round (paper Table 6).",
        _datasheet_inputs,
        _bench_stats,
    ),
    "table9_vstar": TableSpec(
        "V*Bench accuracy (%): attribute recognition, spatial relations and overall, each option scored by "
        "its likelihood as the benchmark's own evaluation does (paper Table 9).",
        _vstar_inputs,
        _vstar,
    ),
    "table10_single_round": _column_table(
        "single_round_rows",
        "table10_single_round",
        [
            ("giou", "single", "refcocoplus"),
            ("giou", "single", "refcocog"),
            ("ap50", "single", "refcocoplus"),
            ("ap50", "single", "refcocog"),
        ],
        "Single-round referring segmentation (gIoU, %) and detection (AP@0.5, %) (paper Table 10).",
    ),
    "table11_alpha_beta": _column_table(
        "alpha_beta_rows",
        "table11_alpha_beta",
        [
            ("ap50", "multi", "refcocoplus"),
            ("ap50", "multi", "refcocog"),
            ("giou", "multi", "refcocoplus"),
            ("giou", "multi", "refcocog"),
        ],
        "Sensitivity to the reward weights alpha (citation) and beta (consistency), multi-round "
        "AP@0.5 and gIoU (%) (paper Table 11).",
    ),
    "table_training": TableSpec(
        "Training summary (no paper counterpart): mean loss and GRPO reward over the first and last "
        "fifth of the logged steps; held-out reward: mean reward (probe.rewards) of completions sampled "
        "as GRPO samples them on the same held-out turns for every model, with its standard error over "
        "prompts; share of well-formed answers, round-1 AP@0.5 and query dependence "
        "(% of multi-object images whose objects, each asked alone, get different answers) on the "
        "benchmarks, beside the random-object baseline; per GRPO variant and reward term, the share of "
        "groups (the completions of one prompt) in which the term's value varies, and there the accuracy "
        "of the completions it prefers minus the rest's; configured AP@0.5 "
        "differences with a 95 % paired bootstrap interval over dialogues.",
        _training_inputs,
        _training_summary,
    ),
}


def _spec(name: str) -> TableSpec:
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; choose one of {sorted(TABLES)}")
    return TABLES[name]


def table_inputs(config: PipelineConfig, name: str, reported: Path = REPORTED) -> list[str]:
    """Files table ``name`` reads (evaluation JSONs or datasheets, then the reported numbers)."""
    paths = [str(p) for p in _spec(name).inputs(config)]
    return list(dict.fromkeys(paths)) + [str(reported)]


def build_table(config: PipelineConfig, name: str, out_md: Path, out_tex: Path, reported: Path = REPORTED) -> None:
    """Write table ``name`` as Markdown and booktabs LaTeX, reproduced beside reported numbers."""
    spec = _spec(name)
    paper = read_yaml(reported) or {}
    table = spec.build(config, paper, Reader(table_inputs(config, name, reported)))
    table.caption = caption_with_note(config, f"{spec.caption} {table.caption}".strip())
    atomic_write_text(out_md, render_markdown(table))
    atomic_write_text(out_tex, render_latex(table, name))
