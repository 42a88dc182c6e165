"""The stage table (src/regionreasoner/stages.py) is the one place rules, config slices and DVC
stages meet: every rule of the workflow has a stage, and the rule names DVC passes to Snakemake exist."""

from __future__ import annotations

import pytest

from regionreasoner.stages import STAGES, check_rules, rules_of, stage_of
from tests.conftest import REPO, snakemake


def test_a_rule_without_a_stage_names_the_table():
    with pytest.raises(ValueError, match="rule 'tidy_up' belongs to no stage: add it to STAGES"):
        check_rules(["grpo", "tidy_up"])


def test_generated_rules_match_their_stage_patterns():
    assert stage_of("synth_refcocog") == "data"
    assert stage_of("table_table1_detection") == stage_of("figure_fig_per_round") == "report"


@pytest.mark.parametrize("config", ["config.yaml", "paper.yaml"])
def test_every_workflow_rule_has_a_stage_and_dvc_names_existing_rules(config):
    out = snakemake(REPO, "--configfile", f"config/{config}", "--list-rules").stdout
    listed = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]  # "name (doc)"
    assert listed and {stage_of(rule) for rule in listed} <= set(STAGES)
    assert set(rules_of("bench", "train_data")) <= set(listed)  # the DVC data and bench stages' --until
