# The commands of the README. Everything else is `.venv/bin/snakemake ...` (see README).
.PHONY: setup run learn test test-fast lint

setup:
	bash scripts/setup.sh

# Whole DAG on the embedded default: synthetic RefCOCO-format data + tiny Qwen2.5-VL, CPU, offline.
run: setup
	.venv/bin/snakemake --workflow-profile workflow/profiles/default --cores all

# The same DAG with longer SFT and GRPO and larger benchmarks (config/learning.yaml): shows the method learning.
learn: setup
	.venv/bin/snakemake --workflow-profile workflow/profiles/default --cores all --configfile config/learning.yaml

# Lint and format check (ruff, configured in pyproject.toml).
lint: setup
	.venv/bin/ruff check src tests scripts
	.venv/bin/ruff format --check src tests scripts

# Unit, property and end-to-end tests (whole DAG on config/test.yaml, SLURM on loopback, DVC round trip).
test: lint
	bash scripts/install_system_deps.sh
	.venv/bin/pytest

# The tests not marked slow (no whole-DAG, SLURM, DVC or two-rank runs): about a minute.
test-fast: setup
	.venv/bin/pytest -m "not slow"
