#!/usr/bin/env bash
# Create (or refresh) the virtual environment at .venv with the package and its pinned dependencies.
# Idempotent: a second call with an unchanged pyproject.toml does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.installed
if [[ -x .venv/bin/regionreasoner && -f $stamp && ! pyproject.toml -nt $stamp ]]; then
    echo "setup: .venv is up to date"
    exit 0
fi
echo "setup: creating .venv (torch CPU wheel here, CUDA wheel on GPU clusters; ~2-3 minutes)"
"$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
touch "$stamp"
echo "setup: done; tools in .venv/bin (regionreasoner, snakemake, dvc)"
