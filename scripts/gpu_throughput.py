"""Measure the per-device figures `regionreasoner plan` prices GPU jobs with, and write them as its JSON.

Run by scripts/gpu_smoke.sh on one GPU (nothing is downloaded: every model is randomly initialised):

- decode ms per step and tokens/s of a Qwen2.5-VL-7B-shaped language model (28 layers at width 3584)
  at batch 16, 32 and 64 after a 1,230-token prompt, every sequence forced to the same length with
  ``min_new_tokens``;
- forward + backward seconds per 1k tokens and peak memory of a few layers at 7B width with activation
  checkpointing, scaled to the full depth;
- SAM2 hiera-L seconds per turn (one image encoding and one box prompt);
- torch, CUDA and driver versions, and whether flash-attn imports.

    python scripts/gpu_throughput.py --out config/gpu_throughput.json

Written before any GPU ran it: the figures it prints are the first measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from regionreasoner.plan.cost import BF16, LOGIT_COPIES
from regionreasoner.plan.throughput import load_published, write_measured

MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
PROMPT_TOKENS = 1230
DECODE_BATCHES = (16, 32, 64)
DECODE_STEPS = 64
TRAIN_LAYERS = 4
TRAIN_TOKENS = 4096


def text_config(layers: int) -> Any:
    """The Qwen2.5-VL-7B language model's shape (its config.json), at ``layers`` layers."""
    from transformers import Qwen2Config

    arch = load_published().architectures[MODEL]
    return Qwen2Config(
        vocab_size=arch.vocab,
        hidden_size=arch.hidden,
        intermediate_size=18944,
        num_hidden_layers=layers,
        num_attention_heads=28,
        num_key_value_heads=arch.kv_heads,
        max_position_embeddings=32768,
        rope_theta=1e6,
        attn_implementation="sdpa",
    )


def build(layers: int) -> Any:
    """A randomly initialised bf16 model built on the GPU (a 7B model built on the CPU in fp32 would
    take minutes and 30 GB of host memory first)."""
    from transformers import Qwen2ForCausalLM

    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            return Qwen2ForCausalLM(text_config(layers))
    finally:
        torch.set_default_dtype(torch.float32)


def decode_figures(layers: int) -> dict[str, dict[str, float]]:
    """Decode ms per step and tokens/s at each batch size, prompt of PROMPT_TOKENS, fixed lengths."""
    model = build(layers).eval()
    ms, tokens = {}, {}
    for batch in DECODE_BATCHES:
        prompt = torch.randint(0, 1000, (batch, PROMPT_TOKENS), device="cuda")
        fixed = {"min_new_tokens": DECODE_STEPS, "max_new_tokens": DECODE_STEPS, "do_sample": False, "pad_token_id": 0}
        one = {**fixed, "min_new_tokens": 1, "max_new_tokens": 1}
        with torch.no_grad():
            model.generate(prompt, **one)  # warm-up
            torch.cuda.synchronize()
            start = time.perf_counter()
            model.generate(prompt, **one)
            torch.cuda.synchronize()
            prefill = time.perf_counter() - start  # one token: the prefill
            start = time.perf_counter()
            model.generate(prompt, **fixed)
            torch.cuda.synchronize()
            total = time.perf_counter() - start
        step = (total - prefill) / (DECODE_STEPS - 1)
        ms[str(batch)] = 1000 * step
        tokens[str(batch)] = batch / step
        print(f"gpu_throughput: decode batch {batch}: {1000 * step:.1f} ms/step, {batch / step:.0f} tokens/s")
    del model
    torch.cuda.empty_cache()
    return {"decode_ms_per_step": ms, "decode_tokens_per_s": tokens}


def train_figures(full_layers: int) -> dict[str, float]:
    """Forward + backward of TRAIN_LAYERS layers with checkpointing, scaled to ``full_layers``."""
    model = build(TRAIN_LAYERS).train()
    model.gradient_checkpointing_enable()
    ids = torch.randint(0, 1000, (1, TRAIN_TOKENS), device="cuda")
    model(input_ids=ids, labels=ids).loss.backward()  # warm-up
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    resident = torch.cuda.memory_allocated()
    start = time.perf_counter()
    model(input_ids=ids, labels=ids).loss.backward()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated()
    layer_params = sum(p.numel() for p in model.model.layers.parameters())
    embed_params = sum(p.numel() for p in model.parameters()) - layer_params
    scale = (embed_params + layer_params * full_layers / TRAIN_LAYERS) / (embed_params + layer_params)
    # activation bytes above the resident weights, their bf16 gradients and the logits (which the cost
    # model counts apart), per token and layer
    logits = TRAIN_TOKENS * model.config.vocab_size * BF16 * LOGIT_COPIES
    activations = max(peak - resident - BF16 * sum(p.numel() for p in model.parameters()) - logits, 0)
    print(
        f"gpu_throughput: {TRAIN_LAYERS} layers x {TRAIN_TOKENS} tokens: {seconds:.3f} s forward+backward, "
        f"peak {peak / 1e9:.1f} GB"
    )
    del model
    torch.cuda.empty_cache()
    return {
        "train_s_per_1k_tokens": seconds * scale * 1000 / TRAIN_TOKENS,
        "train_peak_gb": peak / 1e9,
        "activation_bytes_per_token_per_layer": activations / TRAIN_TOKENS / TRAIN_LAYERS,
    }


def sam2_figure(turns: int = 8) -> float:
    """Seconds per turn of SAM2 hiera-L (random weights): set the image, prompt one box."""
    import numpy as np
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    predictor = SAM2ImagePredictor(build_sam2("configs/sam2.1/sam2.1_hiera_l.yaml", ckpt_path=None, device="cuda"))
    image = np.random.default_rng(0).integers(0, 255, (840, 840, 3), dtype=np.uint8)
    box = np.array([100, 120, 500, 600])

    def turn() -> None:
        predictor.set_image(image)
        predictor.predict(box=box, multimask_output=False)

    turn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(turns):
        turn()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / turns
    print(f"gpu_throughput: sam2 hiera-L: {seconds:.3f} s per turn")
    return seconds


def versions() -> dict[str, Any]:
    """torch, CUDA, driver and flash-attn, as the GPU job will see them."""
    try:
        driver = (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[0]
        )
    except (OSError, subprocess.CalledProcessError, IndexError):
        driver = "unknown"
    flash = importlib.util.find_spec("flash_attn") is not None
    if flash:
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            flash = False
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "driver": driver, "flash_attn": flash}


def measure() -> dict[str, Any]:
    arch = load_published().architectures[MODEL]
    props = torch.cuda.get_device_properties(0)
    result: dict[str, Any] = {
        "device": props.name,
        "memory_gb": props.total_memory / 1e9,
        "params": arch.params,
        "model": f"{MODEL} shape, random weights",
        "prompt_tokens": PROMPT_TOKENS,
        **versions(),
    }
    result.update(decode_figures(arch.layers))
    result.update(train_figures(arch.layers))
    result["sam2_s_per_turn"] = sam2_figure()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("config/gpu_throughput.json"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_throughput: torch sees no CUDA device", file=sys.stderr)
        return 1
    result = measure()
    write_measured(args.out, result)
    print(f"gpu_throughput: wrote {args.out} (read by `regionreasoner plan`)")
    for key in ("torch", "cuda", "driver", "flash_attn"):
        print(f"gpu_throughput: {key}: {result[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
