"""paper/main.tex compiles against the reduced DAG's tables and figures, and the PDF shows them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from regionreasoner.report.targets import PAPER_PDF
from system_deps import missing_system_dependency
from tests.conftest import snakemake

pytestmark = pytest.mark.slow
RESULTS = "results-test"  # `results` of config/test.yaml


def test_paper_pdf_shows_a_reproduced_table1_number(built_pipeline):
    for tool in ("latexmk", "pdftotext"):
        if shutil.which(tool) is None:
            missing_system_dependency(f"{tool} not installed: the paper PDF cannot be built or read")
    pdf = built_pipeline / RESULTS / PAPER_PDF
    snakemake(built_pipeline, str(pdf.relative_to(built_pipeline)), "--configfile", "config/test.yaml")

    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    # Table 1's largest pooled AP@0.5 (a nonzero number: the random baseline's at the least)
    config = yaml.safe_load((built_pipeline / "config" / "test.yaml").read_text())
    eval_dir = built_pipeline / RESULTS / "eval"
    ap, model = max(
        (json.loads((eval_dir / model / f"{bench}.multi.json").read_text())["ap50"], model)
        for model in config["report"]["table1_rows"]
        for bench in config["benchmarks"]
    )
    assert ap > 0
    rows = [line for line in text.splitlines() if f"reproduced: {model}" in line]
    assert any(f"{ap:.1f}" in row.split()[-1:] for row in rows), rows  # the row's last column, Avg
    assert "Table 1" in text and "Figure 1" in text
    assert "??" not in text, "an unresolved reference or missing input"
