"""Every reported row of the paper config is a target: Qwen2-VL-7B (Tables 1, 2, 10) and V*Bench (Table 9).

A Snakemake dry run of config/paper.yaml plans the jobs that would produce them, without data or GPUs.
"""

from __future__ import annotations

import re

from tests.conftest import copy_workflow, snakemake


def _plan(tmp_path, *targets):
    workdir = copy_workflow(tmp_path)
    proc = snakemake(workdir, *targets, "-n", "--quiet", "rules", "--configfile", "config/paper.yaml", timeout=300)
    return dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.M))


def test_table9_plans_the_vstar_fetch_and_one_evaluation_per_row_model(tmp_path):
    planned = _plan(tmp_path, "results-paper/tables/table9_vstar.md")
    assert planned["fetch_vstar"] == "1" and planned["evaluate_vstar"] == "3"
    assert planned["table_table9_vstar"] == "1"


def test_qwen2_vl_rows_plan_its_fetch_and_evaluation(tmp_path):
    planned = _plan(tmp_path, "results-paper/eval/released-qwen2vl/refcocog.multi.json")
    assert planned["fetch_released"] == "1" and planned["evaluate"] == "1"
    planned = _plan(
        tmp_path / "again", "results-paper/tables/table1_detection.md", "results-paper/tables/table10_single_round.md"
    )
    assert planned["fetch_released"] == "4"  # Qwen2-VL-7B with the three released checkpoints
