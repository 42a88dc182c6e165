"""The paper's tables and figures as targets: named once, here, for Snakemake, DVC and the tests.

The names are the keys of the table and figure declarations (``tables.TABLES``,
``figures.FIGURES``), so a table added there becomes a Snakemake rule (workflow/rules/report.smk),
a DVC stage (``regionreasoner dvc-yaml``) and a checked output of the end-to-end tests without a
second list to keep in step. Paths follow the config's ``results`` directory.
"""

from __future__ import annotations

from pathlib import Path

from regionreasoner import paths
from regionreasoner.config import PipelineConfig
from regionreasoner.report.figures import FIGURES, curve_figure
from regionreasoner.report.tables import TABLES, results_dir

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
# Drawn by `regionreasoner figure`; the others (draw None) by a notebook rule of their own.
FIGURE_NAMES: tuple[str, ...] = tuple(name for name, spec in FIGURES.items() if spec.draw is not None)
NOTEBOOK_FIGURE_NAMES: tuple[str, ...] = tuple(name for name, spec in FIGURES.items() if spec.draw is None)
ALL_FIGURE_NAMES: tuple[str, ...] = tuple(FIGURES)
PAPER_PDF = Path("paper") / "main.pdf"


def curve_figure_names(config: PipelineConfig) -> list[str]:
    """One checkpoint-curve figure per model with a curve (``figures.curve_figure``)."""
    return [curve_figure(model) for model in config.curve_models()]


def figure_names(config: PipelineConfig) -> list[str]:
    """Every figure ``all`` builds for ``config``: the declared ones, then the checkpoint curves."""
    return [*ALL_FIGURE_NAMES, *curve_figure_names(config)]


def table_files(config: PipelineConfig, name: str) -> tuple[Path, Path]:
    """Markdown and LaTeX outputs of table ``name``."""
    root = results_dir(config) / "tables"
    return root / f"{name}.md", root / f"{name}.tex"


def figure_files(config: PipelineConfig, name: str) -> tuple[Path, Path]:
    """PNG and PDF outputs of figure ``name``."""
    root = results_dir(config) / "figures"
    return root / f"{name}.png", root / f"{name}.pdf"


def paper_pdf(config: PipelineConfig) -> Path:
    """paper/main.tex compiled against the config's results (``results/paper/main.pdf``)."""
    return results_dir(config) / PAPER_PDF


# Paper-scale targets by purpose (workflow/rules/targets.smk): what each builds, so a user can spend
# GPU-hours on one purpose at a time (`regionreasoner plan <purpose>` prices it).
PURPOSES: dict[str, str] = {
    "no_training": "Tables 1-2 rows that need no training (base and released checkpoints) and Table 6",
    "regionreasoner": "the trained RegionReasoner: one GRPO run, its checkpoint curve and its evaluation",
    "reward_ablation": "the reward ablation, Tables 3-4",
    "alpha_beta_sweep": "the alpha/beta sweep, Table 11",
}


def _trained(model: str) -> bool:
    return model == "sft" or model.startswith("grpo-")


def _evaluations(config: PipelineConfig, models: list[str]) -> list[str]:
    results = str(results_dir(config))
    return [
        paths.eval_metrics(results, m, bench, mode)
        for m in models
        for bench in config.benchmarks
        for mode in paths.MODES
    ]


def purpose_inputs(config: PipelineConfig, purpose: str) -> list[str]:
    """The files target ``purpose`` builds (one of PURPOSES)."""
    rows = list(config.report.table1_rows)
    if purpose == "no_training":
        released = _evaluations(config, [m for m in rows if not _trained(m)])
        return released + [str(table_files(config, "table6_bench_stats")[0])]
    if purpose == "regionreasoner":
        trained = [seed for m in rows if _trained(m) for seed in config.seed_models(m)]
        results = str(results_dir(config))
        curved = set(config.curve_models())
        curves = [paths.curve(results, m) for m in trained if m in curved]
        return [paths.model_dir(results, m) for m in trained] + curves + _evaluations(config, trained)
    tables = {
        "reward_ablation": ("table3_ablation_detection", "table4_ablation_segmentation"),
        "alpha_beta_sweep": ("table11_alpha_beta",),
    }
    if purpose not in tables:
        raise ValueError(f"unknown target {purpose!r}; one of {sorted(PURPOSES)}")
    return [str(table_files(config, name)[0]) for name in tables[purpose]]
