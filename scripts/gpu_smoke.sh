#!/usr/bin/env bash
# GPU smoke test for one H100/H200 (meant to finish in under 5 minutes).
#
# Runs the embedded default's SFT + GRPO (variant `full`) + evaluation on the GPU in bf16 with
# activation checkpointing, each training through `accelerate launch` (regionreasoner.train.launch):
# first plain (envs/accelerate/single_gpu.yaml), then DeepSpeed ZeRO-2 with one process
# (envs/accelerate/deepspeed_zero2.yaml). Then the SAM2 segmenter, built from the sam2 package's own
# model config with random weights (nothing is downloaded), segments a few boxes. Prints steps/s of
# each training, evaluation wall time and the peak GPU memory of each phase.
# Last, scripts/gpu_throughput.py measures what `regionreasoner plan` prices with (decode ms per step of
# a Qwen2.5-VL-7B-shaped model at batch 16/32/64, forward+backward s per 1k tokens at 7B width, SAM2
# s per turn, torch/CUDA/driver versions, flash-attn) and writes config/gpu_throughput.json, which
# later plans read in place of the published figures. Not yet run on a GPU.
#
#   bash scripts/gpu_smoke.sh [WORKDIR]        # default WORKDIR: a new temporary directory
#
# Needs the package with a CUDA build of torch (scripts/setup.sh, or `pip install -e .`) and
# SAM2 pinned and built against that torch: `pip install --no-build-isolation sam2==1.1.0` (with build
# isolation pip would build its CUDA extension against a freshly downloaded torch). Upstream stages (scenes, benchmark, training turns, tiny model) run on the CPU.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work" && work=$(cd "$work" && pwd)
if [[ -x $repo/.venv/bin/python ]]; then export PATH=$repo/.venv/bin:$PATH; fi
python - <<'EOF'
import importlib.util, sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_smoke: torch sees no CUDA device")
for module in ("regionreasoner", "deepspeed", "sam2"):
    if importlib.util.find_spec(module) is None:
        sys.exit(f"gpu_smoke: python package {module!r} missing (pip install -e . / deepspeed / "
                 "pip install --no-build-isolation sam2==1.1.0)")
print("gpu_smoke: device", torch.cuda.get_device_name(0), "| torch", torch.__version__)
EOF

# a copy of the workflow, so the smoke run leaves the checkout's .snakemake and results alone
for name in Snakefile workflow config envs paper src/regionreasoner/data/manifest.yaml; do
    mkdir -p "$work/$(dirname "$name")" && cp -r "$repo/$name" "$work/$name"
done
cd "$work"

# the embedded default on one GPU; $1: accelerate config of SFT and GRPO
smoke_config() {
    python - "$1" <<'EOF'
import sys, yaml
raw = yaml.safe_load(open("config/config.yaml"))
for stage in ("sft", "grpo"):
    raw[stage].update(gpus=1, bf16=True, gradient_checkpointing=True, accelerate_config=sys.argv[1])
yaml.safe_dump(raw, open("smoke.yaml", "w"))
EOF
}

# peak memory.used (MiB) over the run of a command, sampled every 200 ms
with_peak_memory() {
    local samples=$work/memory.$$.log
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$samples" &
    local sampler=$! status=0
    "$@" || status=$?
    kill "$sampler"
    wait "$sampler" 2>/dev/null || true
    peak_mib=$(sort -n "$samples" | tail -1)
    return "$status"
}

steps_per_second() {  # the Trainer's summary line in a training log
    grep -o "'train_steps_per_second': '[0-9.e+-]*'" "$1" | tail -1 | grep -o "[0-9][0-9.e+-]*"
}

targets=(results/models/sft results/models/grpo-full results/eval/grpo-full/refcocog.multi.json)
report=()
for mode in single_gpu deepspeed_zero2; do
    smoke_config "envs/accelerate/$mode.yaml"
    start=$SECONDS
    with_peak_memory snakemake "${targets[@]}" --cores all --configfile smoke.yaml
    eval_s=$(awk 'NR == 2 {printf "%.1f", $1}' results/benchmarks/evaluate/grpo-full.tsv)
    report+=("$mode: SFT $(steps_per_second results/logs/sft.log) steps/s, GRPO $(steps_per_second results/logs/grpo/grpo-full.log) steps/s, evaluation ${eval_s} s, peak GPU memory ${peak_mib} MiB, wall $((SECONDS - start)) s")
    mkdir -p "logs-$mode" && cp -r results/logs/. "logs-$mode/"
done

sam2_segments() {
    python - <<'EOF'
import time

import numpy as np
import torch
from sam2.build_sam import build_sam2
from sam2.sam2_image_predictor import SAM2ImagePredictor

from regionreasoner.evaluate.segment import Sam2Segmenter

# the package's own model config, random weights: exercises the code path, not mask quality
config = "configs/sam2.1/sam2.1_hiera_l.yaml"
segmenter = Sam2Segmenter(predictor=SAM2ImagePredictor(build_sam2(config, ckpt_path=None, device="cuda")))
image = np.random.default_rng(0).integers(0, 255, (840, 840, 3), dtype=np.uint8)
boxes = [(40, 60, 300, 320), (400, 420, 820, 800), (100, 500, 380, 790), (500, 40, 700, 260)]
start = time.perf_counter()
masks = [segmenter.segment(image, box, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)) for box in boxes]
torch.cuda.synchronize()
assert all(m.shape == image.shape[:2] and m.dtype == bool for m in masks)
print(f"sam2 ({config}, random weights): {len(boxes)} boxes in {time.perf_counter() - start:.2f} s, "
      f"torch peak allocated {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
EOF
}
with_peak_memory sam2_segments
report+=("sam2: peak GPU memory ${peak_mib} MiB")

python "$repo/scripts/gpu_throughput.py" --out "$repo/config/gpu_throughput.json"
report+=("throughput: $repo/config/gpu_throughput.json (regionreasoner plan reads it)")

printf '\ngpu_smoke: done in %d s (outputs and logs under %s)\n' "$SECONDS" "$work"
printf '  %s\n' "${report[@]}"
