"""RegionReasoner replication pipeline (ICLR 2026, arXiv 2602.03733).

data -> RegionDial-Bench -> (SFT warm-up) -> GRPO variants -> evaluation -> tables and figures.
Run `snakemake -c all` for the embedded default; `--configfile config/paper.yaml` for paper scale.
Rules are thin: each calls one `regionreasoner` subcommand; the logic lives in src/regionreasoner.
"""

import os
import sys

from regionreasoner.config import ConfigError, resolve_extends, validate_config, write_resolved
from regionreasoner.stages import check_rules

# Jobs call the `regionreasoner` command of the environment that runs Snakemake (.venv/bin),
# also when Snakemake was started as .venv/bin/snakemake without activating the environment.
envvars:
    "PATH",


search_path = os.environ["PATH"]
os.environ.update(PATH=os.path.dirname(sys.executable) + os.pathsep + search_path)

# The embedded default unless --configfile names another file: paper.yaml replaces it whole rather
# than being merged into it (a merge would keep the default's GRPO variants and model list).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# An overlay (`extends: <base file>`, config/learning.yaml) is merged over its base here, after
# Snakemake has applied --config to the --configfile, so command-line overrides win over both files.
# Validate before any job starts: a bad value names its file and key in one line and the run stops here.
SOURCE = " + ".join(map(str, workflow.overwrite_configfiles)) or "config/config.yaml"
SOURCE += " (with --config overrides)" if workflow.config_settings.config else ""
try:
    merged = resolve_extends(config, source=SOURCE)
    CFG = validate_config(merged, source=SOURCE)
except ConfigError as err:
    sys.exit(f"error: {err}")
config.clear()
config.update(merged)
R = CFG.results
CONFIG = str(write_resolved(config, f"{R}/config.resolved.yaml"))

report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/grpo.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/curves.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/targets.smk"


rule all:
    """Every table and figure of the paper that the config can build."""
    default_target: True
    input:
        TABLES_MD,
        TABLES_TEX,
        FIGURES,


# Every rule belongs to a stage of src/regionreasoner/stages.py (its config slice, its DVC stage).
check_rules(rule.name for rule in workflow.rules)
