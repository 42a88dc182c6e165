"""The paper's tables and figures as targets: named once, here, for Snakemake, DVC and the tests.

The names are the keys of the table and figure declarations (``tables.TABLES``,
``figures.FIGURES``), so a table added there becomes a Snakemake rule (workflow/rules/report.smk),
a DVC stage (``regionreasoner dvc-yaml``) and a checked output of the end-to-end tests without a
second list to keep in step. Paths follow the config's ``results`` directory.
"""

from __future__ import annotations

from pathlib import Path

from regionreasoner.config import PipelineConfig
from regionreasoner.report.figures import FIGURES
from regionreasoner.report.tables import TABLES, results_dir

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
# Drawn by `regionreasoner figure`; the others (draw None) by a notebook rule of their own.
FIGURE_NAMES: tuple[str, ...] = tuple(name for name, spec in FIGURES.items() if spec.draw is not None)
NOTEBOOK_FIGURE_NAMES: tuple[str, ...] = tuple(name for name, spec in FIGURES.items() if spec.draw is None)
ALL_FIGURE_NAMES: tuple[str, ...] = tuple(FIGURES)
PAPER_PDF = Path("paper") / "main.pdf"


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
