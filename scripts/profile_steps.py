"""Profile training steps of the pipeline's SFT and GRPO trainers (torch.profiler).

Usage: python scripts/profile_steps.py --stage sft|grpo --model results/models/base
           [--config config/config.yaml] [--turns results/train/turns.jsonl] [--variant full]
           [--warmup 3] [--steps 5] [--threads 2] [--bf16] [--every-position]
           [--conv-patch-embed]

Builds the trainer exactly as ``regionreasoner sft|grpo`` does, runs ``warmup`` steps unprofiled,
then profiles ``steps`` steps and prints: seconds per step (wall and process CPU), the share of the
step spent in named parts (vision tower, position ids, text model, generation, reward functions,
optimizer), the matmul FLOPs the profiler counts and the FLOP/s they ran at. Compare the FLOP/s
with the machine's matmul throughput (docs/benchmarks.md) to tell arithmetic from overhead.
``--bf16`` runs the step under CPU bfloat16 autocast; ``--every-position`` restores TRL's CPU
default for its fused LM head (every position projected, then masked) in place of the pipeline's
labelled positions only, and ``--conv-patch-embed`` the vision tower's Conv3d patch embedding in
place of the pipeline's matmul, to measure what each choice saves. Not a test: figures depend on
the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
import trl.trainer.utils as trl_utils
from torch.profiler import ProfilerActivity, profile, record_function
from transformers import TrainerCallback
from trl.kernels.chunked_logprob import _use_triton

from regionreasoner.config import load_config
from regionreasoner.models.patch_embed import embed_patches_by_conv
from regionreasoner.train.grpo import grpo_trainer
from regionreasoner.train.sft import sft_trainer

PARTS = {
    "vision tower": "Qwen2_5_VisionTransformerPretrainedModel.forward",
    "position ids (get_rope_index)": "Qwen2_5_VLModel.get_rope_index",
    "text model": "Qwen2_5_VLTextModel.forward",
    "generation (model.generate)": "GenerationMixin.generate",
    "reward functions": "rewards",
    "LM head + log-probs (TRL, forward)": "ChunkedLogProbFunction",
    "LM head + log-probs (TRL, backward)": "ChunkedLogProbFunctionBackward",
    "data loading (images, processor)": "enumerate(DataLoader)",
}


def _labelled(function, label: str):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with record_function(label):
            return function(*args, **kwargs)

    return wrapper


def label_parts(trainer) -> None:
    """Wrap the parts of a step in record_function ranges named in PARTS (this process only)."""
    from transformers.generation.utils import GenerationMixin
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

    for cls, name in (
        (qwen.Qwen2_5_VisionTransformerPretrainedModel, "forward"),
        (qwen.Qwen2_5_VLModel, "get_rope_index"),
        (qwen.Qwen2_5_VLTextModel, "forward"),
        (GenerationMixin, "generate"),
    ):
        setattr(cls, name, _labelled(getattr(cls, name), f"{cls.__name__}.{name}"))
    funcs = getattr(trainer, "reward_funcs", None)
    if funcs:
        trainer.reward_funcs = [
            _labelled(f, "rewards") if callable(f) and not isinstance(f, torch.nn.Module) else f for f in funcs
        ]
        for wrapped, original in zip(trainer.reward_funcs, funcs):
            wrapped.__name__ = original.__name__


class StepTimer(TrainerCallback):
    """Starts the profiler after ``warmup`` steps and records wall and CPU seconds per profiled step."""

    def __init__(self, prof, warmup: int) -> None:
        self.prof, self.warmup, self.wall, self.cpu = prof, warmup, [], []
        self._start = (0.0, 0.0)

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.prof.start()
        self._start = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > self.warmup:
            self.wall.append(time.perf_counter() - self._start[0])
            self.cpu.append(time.process_time() - self._start[1])


def report_varied_terms(history: list[dict]) -> None:
    """GRPO only: per reward term, the mean share of groups in which it varied over the run's steps."""
    shares = defaultdict(list)
    for row in history:
        for key, value in row.items():
            if key.endswith("/groups_varied"):
                shares[key.split("/")[1]].append(value)
    for term, values in shares.items():
        print(f"  {term:20s} varies in {100 * sum(values) / len(values):5.1f} % of groups ({len(values)} steps)")


def report(prof, timer: StepTimer, steps: int) -> None:
    events = prof.key_averages()
    total_us = sum(timer.wall) * 1e6
    print(
        f"steps profiled: {steps}; wall s/step {sum(timer.wall) / steps:.3f} "
        f"(per step: {', '.join(f'{w:.3f}' for w in timer.wall)}); CPU s/step {sum(timer.cpu) / steps:.3f}"
    )
    for part, key in PARTS.items():
        event = next(
            (e for e in events if e.key == key or (key.startswith("enumerate") and e.key.startswith(key))), None
        )
        if event is not None:
            share = event.cpu_time_total / total_us
            print(
                f"  {part:32s} {event.cpu_time_total / 1e3 / steps:9.1f} ms/step  {100 * share:5.1f} %  "
                f"(calls/step {event.count / steps:.0f})"
            )
    flops = defaultdict(float)
    mm_us = 0.0
    for e in events:
        if e.flops:
            flops[e.key] += e.flops
            mm_us += e.self_cpu_time_total
    total = sum(flops.values())
    kinds = ", ".join(f"{k} {v / steps / 1e9:.3f}" for k, v in flops.items())
    print(f"  matmul FLOPs/step {total / steps / 1e9:.3f} G ({kinds})")
    print(
        f"  matmul self time {mm_us / 1e3 / steps:.1f} ms/step -> {total / max(mm_us, 1) / 1e3:.1f} GFLOP/s "
        f"inside matmuls; {total / total_us / 1e3:.2f} GFLOP/s over the whole step"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["sft", "grpo"], required=True)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--model", required=True)
    parser.add_argument("--turns", default=None)
    parser.add_argument("--variant", default="full")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--bf16", action="store_true", help="CPU bfloat16 autocast around each step")
    parser.add_argument(
        "--every-position",
        action="store_true",
        help="TRL's CPU default: the fused LM head projects every position and masks afterwards "
        "(the pipeline projects the labelled positions alone)",
    )
    parser.add_argument(
        "--conv-patch-embed",
        action="store_true",
        help="transformers' Conv3d patch embedding (the pipeline computes it as a matmul)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    turns = Path(args.turns or Path(cfg.results) / "train" / "turns.jsonl")
    with tempfile.TemporaryDirectory() as work:
        if args.stage == "sft":
            trainer = sft_trainer(cfg, Path(args.model), turns, Path(work))
        else:
            trainer = grpo_trainer(cfg, args.variant, Path(args.model), turns, Path(work))
        trainer.args.max_steps = args.warmup + args.steps
        trainer.args.save_strategy = "no"
        if args.every_position:
            trl_utils._use_triton = _use_triton  # undo score_labelled_positions_only for this process
        if args.conv_patch_embed:
            embed_patches_by_conv()  # undo embed_patches_by_matmul for this process
        label_parts(trainer)
        prof = profile(activities=[ProfilerActivity.CPU], with_flops=True, record_shapes=False)
        timer = StepTimer(prof, args.warmup)
        trainer.add_callback(timer)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
        with autocast:
            trainer.train()
        prof.stop()
    report(prof, timer, args.steps)
    report_varied_terms(trainer.state.log_history)


if __name__ == "__main__":
    main()
