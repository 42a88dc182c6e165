"""paper/main.tex compiles against the reduced DAG's tables and figures, and the PDF shows them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

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
    metrics = json.loads((built_pipeline / RESULTS / "eval" / "grpo-full" / "refcocog.multi.json").read_text())
    rows = [line for line in text.splitlines() if "reproduced: grpo-full" in line]
    # Table 1's RefCOCOg row of the main model ends with its pooled AP@0.5
    assert any(f"{metrics['ap50']:.1f}" in row for row in rows), rows
    assert "Table 1" in text and "Figure 1" in text
    assert "??" not in text, "an unresolved reference or missing input"
