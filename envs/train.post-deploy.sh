#!/usr/bin/env bash
# Run by Snakemake (--use-conda) right after it creates the environment of the same name. flash-attn
# compiles against the torch of this environment, so it cannot be a plain pip line of the YAML file.
# Paper scale loads Qwen2.5-VL with attn_implementation: flash_attention_2 (config model), as the
# authors' evaluation does; a machine without an NVIDIA GPU skips it (the embedded default never uses it).
set -euo pipefail
if nvidia-smi -L > /dev/null 2>&1; then
    pip install --no-build-isolation "flash-attn>=2.7"
else
    echo "no NVIDIA GPU: flash-attn not installed (needed only with model.attn_implementation: flash_attention_2)"
fi
