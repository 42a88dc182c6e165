# The two commands of the README. Everything else is `.venv/bin/snakemake ...` (see README).
.PHONY: setup run learn test

setup:
	bash scripts/setup.sh

# Whole DAG on the embedded default: synthetic RefCOCO-format data + tiny Qwen2.5-VL, CPU, offline.
run: setup
	.venv/bin/snakemake --workflow-profile workflow/profiles/default --cores all

# The same DAG with longer SFT and GRPO and larger benchmarks (config/learning.yaml): shows the method learning.
learn: setup
	.venv/bin/snakemake --workflow-profile workflow/profiles/default --cores all --configfile config/learning.yaml

# Unit, property and end-to-end tests (whole DAG on config/test.yaml, SLURM on loopback, DVC round trip).
test: setup
	bash scripts/install_system_deps.sh
	.venv/bin/pytest
