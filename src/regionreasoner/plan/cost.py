"""A small cost model: hours, GPU memory, host memory and disk of one training or evaluation job.

Arithmetic only, from a job's shape (read from the config) and per-device figures
(regionreasoner.plan.throughput): a forward pass costs 2 P FLOPs per token at the device's training
MFU; a backward pass two forwards, activation checkpointing one more; a decoding step reads the
weights and the batch's KV cache once, at a fraction of the HBM bandwidth (or the measured ms per
step); memory follows the ZeRO stage's partitioning of weights, gradients and Adam state.
Estimates, not measurements: they size a run before a GPU is spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from regionreasoner.plan.throughput import Architecture, Device, Workload

GB = 1e9
FP32 = 4
BF16 = 2
ADAM_FP32 = 3 * FP32  # fp32 master weights + two Adam moments, per parameter
RECOMPUTE_WORKING_SET = 34  # bytes per token and hidden unit of one layer's full activations (bf16)
LOGIT_COPIES = 3  # logits, the temperature-scaled copy and their gradient (bf16)


@dataclass(frozen=True)
class Cost:
    """What one job needs: the numbers a plan row shows."""

    gpus: int
    hours: float
    gpu_memory_gb: float
    host_memory_gb: float
    disk_peak_gb: float
    disk_kept_gb: float


@dataclass(frozen=True)
class TrainShape:
    """A training job as the cost model reads it (SFT: no generation; GRPO: generation first)."""

    gpus: int
    steps: int
    micro_batch: int  # sequences per GPU per micro-step
    accumulation: int
    prompt_tokens: int
    completion_tokens: int  # mean trained completion (SFT: the target)
    generate_tokens: int  # decoding steps of one generation batch (0: no generation)
    reference: bool  # a frozen reference model (GRPO with beta > 0)
    iterations: int  # GRPO num_iterations: updates per generation batch
    checkpointing: bool
    bf16: bool
    zero_stage: int | None  # DeepSpeed ZeRO stage; None: no DeepSpeed
    save_steps: int
    save_total_limit: int
    kept_checkpoints: int = 0  # weights kept at the curve steps, each as large as the final model


@dataclass(frozen=True)
class EvalShape:
    """An evaluation job: greedy batches of turns, round after round, per benchmark run."""

    rounds: tuple[tuple[int, ...], ...]  # per run, the turns of each round (single-round: one round)
    batch: int
    prompt_tokens: int
    completion_tokens: int  # decoding steps of one batch (its longest answer)
    max_new_tokens: int  # the KV cache is sized for the limit
    sam2: bool


@dataclass(frozen=True)
class SampleShape:
    """A sampling job (the reward probe): `generations` samples of each prompt, `batch` prompts a call."""

    prompts: int
    generations: int
    batch: int
    prompt_tokens: int
    generate_tokens: int


def forward_s_per_token(device: Device, arch: Architecture) -> float:
    """Seconds of one forward pass per token on one device."""
    if device.train_s_per_1k_tokens is not None and device.measured_params:
        # measured: forward + backward with activation checkpointing = 4 forward passes
        return device.train_s_per_1k_tokens / 1000 / 4 * arch.params / device.measured_params
    return 2 * arch.params / (device.train_mfu * device.peak_bf16_tflops * 1e12)


def decode_s_per_step(device: Device, arch: Architecture, batch: int, context: float) -> float:
    """Seconds of one decoding step of ``batch`` sequences holding ``context`` tokens on average."""
    if device.decode_ms_per_step and device.measured_params:
        sizes = sorted(device.decode_ms_per_step)
        ms = float(np.interp(batch, sizes, [device.decode_ms_per_step[b] for b in sizes]))
        return ms / 1000 * arch.params / device.measured_params
    read = BF16 * arch.params + batch * context * arch.kv_bytes_per_token()
    return read / (device.hbm_tb_per_s * 1e12) / device.hf_generate_bandwidth_fraction


def _weight_bytes(shape: TrainShape) -> int:
    return BF16 if shape.bf16 else FP32


def _optimizer_bytes(shape: TrainShape, params: float) -> float:
    """Adam state of the whole model: DeepSpeed keeps fp32 master weights, plain Adam its moments."""
    if shape.zero_stage is not None:
        return ADAM_FP32 * params
    return 2 * _weight_bytes(shape) * params


def checkpoint_gb(shape: TrainShape, params: float) -> float:
    """One resume checkpoint: the saved weights, the optimizer state and DeepSpeed's module states."""
    module_states = BF16 * params if shape.zero_stage is not None else 0
    return (_weight_bytes(shape) * params + _optimizer_bytes(shape, params) + module_states) / GB


def train_gpu_memory_gb(shape: TrainShape, arch: Architecture, device: Device) -> float:
    """Peak memory of one device: resident state plus the larger of generation and training buffers."""
    n, p, w, stage = shape.gpus or 1, arch.params, _weight_bytes(shape), shape.zero_stage
    weights = w * p / (n if stage == 3 else 1)
    grads = FP32 * p / n if stage is not None and stage >= 2 else w * p
    optimizer = _optimizer_bytes(shape, p) / (n if stage is not None and stage >= 1 else 1)
    reference = weights if shape.reference else 0
    longest = shape.prompt_tokens + max(shape.generate_tokens, shape.completion_tokens)
    if device.activation_bytes_per_token_per_layer is not None:
        per_layer = device.activation_bytes_per_token_per_layer
    else:
        per_layer = BF16 * arch.hidden if shape.checkpointing else RECOMPUTE_WORKING_SET * arch.hidden
    per_token = arch.layers * per_layer + (RECOMPUTE_WORKING_SET * arch.hidden if shape.checkpointing else 0)
    completion = max(shape.generate_tokens, shape.completion_tokens)
    logits = shape.micro_batch * completion * arch.vocab * BF16 * LOGIT_COPIES
    activations = shape.micro_batch * longest * per_token + logits
    generating = shape.micro_batch * shape.accumulation if shape.generate_tokens else 0
    kv_cache = generating * longest * arch.kv_bytes_per_token()
    return (weights + grads + optimizer + reference + max(activations, kv_cache)) / GB


def train_cost(shape: TrainShape, arch: Architecture, device: Device, workload: Workload) -> Cost:
    """Hours and resources of one SFT or GRPO job on ``shape.gpus`` devices of one node."""
    fwd = forward_s_per_token(device, arch)
    sequences = shape.micro_batch * shape.accumulation  # per device per optimizer step
    generate_s = 0.0
    if shape.generate_tokens:
        prefill = sequences * shape.prompt_tokens * fwd
        context = shape.prompt_tokens + shape.generate_tokens / 2
        generate_s = prefill + shape.generate_tokens * decode_s_per_step(device, arch, sequences, context)
    passes = (4 if shape.checkpointing else 3) + (1 if shape.reference else 0)
    passes += 1 / shape.iterations if shape.iterations > 1 else 0  # old-policy log-probs, once per batch
    train_s = sequences * (shape.prompt_tokens + shape.completion_tokens) * fwd * passes
    step_s = generate_s / shape.iterations + train_s
    saves = shape.steps // shape.save_steps
    ckpt = checkpoint_gb(shape, arch.params)
    final = _weight_bytes(shape) * arch.params / GB
    models = 2 if shape.reference else 1
    load_s = models * final / workload.load_gb_per_s
    seconds = shape.steps * step_s + saves * ckpt / workload.checkpoint_write_gb_per_s + load_s
    seconds += shape.kept_checkpoints * final / workload.checkpoint_write_gb_per_s
    kept = (1 + shape.kept_checkpoints) * final
    processes = max(shape.gpus, 1)
    host = processes * (models * final + workload.host_overhead_gb_per_process)
    return Cost(
        gpus=shape.gpus,
        hours=seconds / 3600,
        gpu_memory_gb=train_gpu_memory_gb(shape, arch, device),
        host_memory_gb=host,
        disk_peak_gb=min(shape.save_total_limit + 1, saves) * ckpt + kept,
        disk_kept_gb=kept,
    )


def _batch_s(n: int, prompt: int, decode: int, arch: Architecture, device: Device) -> float:
    """One generate call: prefill ``n`` prompts, then ``decode`` steps of ``n`` sequences."""
    prefill = n * prompt * forward_s_per_token(device, arch)
    return prefill + decode * decode_s_per_step(device, arch, n, prompt + decode / 2)


def eval_cost(shape: EvalShape, arch: Architecture, device: Device, workload: Workload) -> Cost:
    """One model on every benchmark run, one GPU, batches of turns within each round."""
    seconds = BF16 * arch.params / GB / workload.load_gb_per_s
    for run in shape.rounds:
        for turns in run:
            full, rest = divmod(turns, shape.batch)
            seconds += full * _batch_s(shape.batch, shape.prompt_tokens, shape.completion_tokens, arch, device)
            if rest:
                seconds += _batch_s(rest, shape.prompt_tokens, shape.completion_tokens, arch, device)
            if shape.sam2:
                seconds += turns * device.sam2_s_per_turn
    kv = shape.batch * (shape.prompt_tokens + shape.max_new_tokens) * arch.kv_bytes_per_token()
    weights = BF16 * arch.params
    return Cost(
        gpus=1,
        hours=seconds / 3600,
        gpu_memory_gb=(weights + kv) / GB + (device.sam2_memory_gb if shape.sam2 else 0),
        host_memory_gb=weights / GB + workload.host_overhead_gb_per_process,
        disk_peak_gb=0.0,
        disk_kept_gb=0.0,
    )


def sample_cost(shape: SampleShape, arch: Architecture, device: Device, workload: Workload) -> Cost:
    """The reward probe: sampled completions of fixed prompts on one GPU."""
    calls = math.ceil(shape.prompts / shape.batch)
    n = shape.batch * shape.generations
    seconds = BF16 * arch.params / GB / workload.load_gb_per_s
    seconds += calls * _batch_s(n, shape.prompt_tokens, shape.generate_tokens, arch, device)
    kv = n * (shape.prompt_tokens + shape.generate_tokens) * arch.kv_bytes_per_token()
    weights = BF16 * arch.params
    return Cost(
        gpus=1,
        hours=seconds / 3600,
        gpu_memory_gb=(weights + kv) / GB,
        host_memory_gb=weights / GB + workload.host_overhead_gb_per_process,
        disk_peak_gb=0.0,
        disk_kept_gb=0.0,
    )


def weights_cost(arch: Architecture) -> Cost:
    """A fetched checkpoint (CPU job): the disk its bf16 weights take."""
    gb = BF16 * arch.params / GB
    return Cost(gpus=0, hours=0.0, gpu_memory_gb=0.0, host_memory_gb=0.0, disk_peak_gb=gb, disk_kept_gb=gb)


def download_cost(sizes: list[int | None]) -> Cost:
    """The downloaded archives (kept) and what they extract to (about as large: JPEGs do not compress)."""
    gb = 2 * sum(size or 0 for size in sizes) / GB
    return Cost(gpus=0, hours=0.0, gpu_memory_gb=0.0, host_memory_gb=0.0, disk_peak_gb=gb, disk_kept_gb=gb)
