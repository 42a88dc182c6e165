"""What a GPU job checks before its hours start, and the CUDA check every GPU stage makes first.

A paper-scale job that asks for GPUs and silently trains on the CPU wastes its whole time limit
(and each retry's); one that dies after loading 7B weights because the disk is full, the spaCy
pipeline is missing or SAM2 wants the internet wastes the load. ``require_cuda`` runs before any
model loads; ``regionreasoner preflight`` (also the first command of a GPU job) checks the rest.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from regionreasoner.config import PipelineConfig, PreflightError, TrainerCommon
from regionreasoner.evaluate.metrics import read_bench
from regionreasoner.images import load_frame_image
from regionreasoner.io import read_jsonl
from regionreasoner.models.processor import load_processor
from regionreasoner.models.prompts import PromptConfig, build_messages, training_prompt
from regionreasoner.models.registry import check_model_folder

GB = 10**9  # decimal, as the plan reports disk


def driver_version() -> str:
    """The NVIDIA driver as nvidia-smi reports it, or why there is none."""
    if shutil.which("nvidia-smi") is None:
        return "none (nvidia-smi not on PATH)"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as err:
        return f"unknown (nvidia-smi failed: {err})"
    return out[0] if out else "unknown (nvidia-smi listed no GPU)"


def cuda_summary() -> str:
    """Versions that decide whether torch can use the GPUs: torch, the CUDA it was built for, the driver."""
    return (
        f"torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none (a CPU-only wheel)'}, "
        f"NVIDIA driver {driver_version()}, GPUs visible to torch: {torch.cuda.device_count()}"
    )


def require_cuda(gpus: int, key: str) -> None:
    """Stop a stage that asks for ``gpus`` GPUs (config ``key``) where torch cannot use that many.

    Falling back to the CPU would run a 4-GPU allocation on its CPUs until the time limit, then
    again on every retry; stopping names the versions to fix instead."""
    if gpus <= 0:
        return
    if not torch.cuda.is_available() or torch.cuda.device_count() < gpus:
        raise PreflightError(
            f"{key} = {gpus} but torch can use {torch.cuda.device_count()} GPU(s) here ({cuda_summary()}); "
            f"install a torch wheel built for this driver's CUDA, run on a GPU node, or set {key}: 0 to use the CPU"
        )


def torch_device(gpus: int, key: str) -> str:
    """The device of a one-process stage (evaluation, probe): CUDA when ``gpus > 0`` (and then it
    must work), else CUDA when present, else the CPU."""
    require_cuda(gpus, key)
    return "cuda" if gpus > 0 or torch.cuda.is_available() else "cpu"


def require_free_disk(path: str | Path, required_bytes: int) -> None:
    """Stop when the file system of ``path`` has less than ``required_bytes`` free (checkpoints of a
    7B run hold ~100 GB of optimizer state each)."""
    path = Path(path)
    probe = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    if free < required_bytes:
        raise PreflightError(f"{probe}: {free / GB:.1f} GB free, the run needs {required_bytes / GB:.1f} GB")


def require_local_weights(path: str | Path, what: str, rule: str) -> None:
    """Stop when a model folder is missing or holds no weights: GPU jobs never download (rule ``rule``
    fetches them on a CPU node)."""
    path = Path(path)
    if not path.is_dir() or not (any(path.glob("*.safetensors")) or any(path.glob("*.pt"))):
        raise PreflightError(f"{path}: no {what} weights here; fetch them first (Snakemake rule {rule}, a CPU job)")


@dataclass(frozen=True)
class BatchAlignment:
    """How one processed batch lines up: what the padding check found."""

    padding_side: str
    image_tokens: list[int]  # placeholder tokens per sample
    expected_tokens: list[int]  # what the image grid of each sample needs
    masked_image_tokens: int  # placeholder tokens the attention mask hides
    misplaced_type_ids: int  # positions where mm_token_type_ids disagrees with the placeholders
    typed: bool  # the processor returned mm_token_type_ids, without which image tokens get text positions


def batch_alignment(processor: Any, texts: Sequence[str], images: Sequence[Any]) -> BatchAlignment:
    """Process one batch as the GRPO trainer does and compare, position by position, the image
    placeholders of its prompt ids with the attention mask and multimodal token types.

    The trainer takes the pixel inputs and ``mm_token_type_ids`` from the processor's padded batch
    but pads the prompt ids itself, on the left. When the processor pads the other way (TRL issue
    5785), the image markers of the shorter prompts land under zeros of the attention mask and the
    model trains on corrupted context without an error; here the prompt ids are left-padded as the
    trainer pads them, so that mismatch shows."""
    batch = processor(text=list(texts), images=list(images), padding=True, return_tensors="pt")
    mask = batch["attention_mask"]
    pad = processor.tokenizer.pad_token_id
    rows = [processor(text=[t], images=[im], return_tensors="pt")["input_ids"][0] for t, im in zip(texts, images)]
    width = mask.shape[1]
    prompt_ids = torch.stack([torch.cat([row.new_full((width - len(row),), pad), row]) for row in rows])
    is_image = prompt_ids == processor.image_token_id
    merge = processor.image_processor.merge_size**2
    types = batch.get("mm_token_type_ids")
    return BatchAlignment(
        padding_side=processor.tokenizer.padding_side,
        image_tokens=[int(n) for n in is_image.sum(-1)],
        expected_tokens=[int(n) // merge for n in batch["image_grid_thw"].prod(-1)],
        masked_image_tokens=int((is_image & (mask == 0)).sum()),
        misplaced_type_ids=int(((types == 1) != is_image).sum()) if types is not None else 0,
        typed=types is not None,
    )


def check_batch_alignment(alignment: BatchAlignment) -> None:
    """Stop unless prompts are left-padded (generation appends on the right) and every image
    placeholder is attended and typed as an image, in the number its image grid needs.

    Qwen-VL models in transformers 5 build their 3-D (time, height, width) positions only when
    ``mm_token_type_ids`` come with the input ids; without them the image tokens silently get text
    positions, and the tiny model's log-probabilities moved by up to 9 nats a token."""
    problems = []
    if alignment.padding_side != "left":
        problems.append(f"the tokenizer pads on the {alignment.padding_side}; generation needs left padding")
    if alignment.image_tokens != alignment.expected_tokens:
        problems.append(
            f"image placeholders per sample {alignment.image_tokens}, the image grids need {alignment.expected_tokens}"
        )
    if alignment.masked_image_tokens:
        problems.append(f"{alignment.masked_image_tokens} image placeholders lie under the attention mask's zeros")
    if not alignment.typed:
        problems.append("the processor returns no mm_token_type_ids, so the image tokens would get text positions")
    if alignment.misplaced_type_ids:
        problems.append(
            f"mm_token_type_ids disagree with the image placeholders at {alignment.misplaced_type_ids} positions"
        )
    if problems:
        raise PreflightError("image tokens and attention mask do not line up: " + "; ".join(problems))


# bytes per parameter of a DeepSpeed resume checkpoint: bf16 weights (2), Adam's fp32 master copy and
# two moments (12) and DeepSpeed's bf16 module states (2), as regionreasoner.plan.cost prices it
CHECKPOINT_BYTES_PER_PARAM = 16


def weight_bytes(model_dir: Path) -> int:
    """Bytes of a saved model's weight files."""
    return sum(f.stat().st_size for pattern in ("*.safetensors", "*.bin") for f in model_dir.glob(pattern))


def parameter_count(model_dir: Path) -> int:
    """Parameters of a saved model, from its weight bytes and the dtype its config.json names."""
    config = json.loads((model_dir / "config.json").read_text()) if (model_dir / "config.json").exists() else {}
    dtype = config.get("dtype") or config.get("torch_dtype") or "bfloat16"
    return weight_bytes(model_dir) // (4 if dtype == "float32" else 2)


def training_disk_bytes(model_dir: Path, section: TrainerCommon, kept: int = 0) -> int:
    """Disk a training job fills at most: the resume checkpoints it keeps, one more being written
    before the oldest is deleted, and the final bf16 model with the ``kept`` curve-step weights."""
    params = parameter_count(model_dir)
    return (section.save_total_limit + 1) * params * CHECKPOINT_BYTES_PER_PARAM + 2 * params * (1 + kept)


def check_disk_budget(required_bytes: int, section: TrainerCommon, key: str) -> None:
    """Stop when the checkpoints a run keeps exceed the disk the config grants it (``disk_gb``)."""
    if section.disk_gb is not None and required_bytes > section.disk_gb * GB:
        raise PreflightError(
            f"{key}.disk_gb = {section.disk_gb:g} but {key}.save_total_limit = {section.save_total_limit} checkpoints, "
            f"the curve steps' weights and the final model need {required_bytes / GB:.0f} GB; lower save_total_limit "
            "or curve_steps, or raise disk_gb"
        )


def first_batch(turns: Path, prompt: PromptConfig, frame: int, size: int) -> tuple[list[Any], list[Any]]:
    """Messages and frame images of the ``size`` training turns of most different length (the ones
    padding moves most)."""
    rows = sorted(read_jsonl(turns)[:64], key=lambda t: len(t["problem"]))
    picked = [rows[0], rows[-1], *rows[1:-1]][:size] if rows else []
    if not picked:
        raise PreflightError(f"{turns}: no training turns to build a batch from")
    return (
        [build_messages(t["problem"], prompt) for t in picked],
        [load_frame_image(t["image_path"], frame) for t in picked],
    )


def check_training_batch(model_dir: Path, batch: tuple[list[Any], list[Any]], frame: int) -> None:
    """The padding check on one real batch (``first_batch``), with the processor the trainer gets."""
    processor = load_processor(model_dir, frame)
    messages, images = batch
    texts = [processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages]
    check_batch_alignment(batch_alignment(processor, texts, images))


def require_kernel(attn_implementation: str | None) -> None:
    """Stop when the configured attention kernel's package cannot be imported."""
    if attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise PreflightError(
            "model.attn_implementation = flash_attention_2 but the flash-attn package is not "
            "installed; use sdpa (docs/cluster.md)"
        )


def preflight_training(
    cfg: PipelineConfig, stage: str, model_dir: Path, turns: Path, out_dir: Path, required_bytes: int | None = None
) -> list[str]:
    """Every check a training job makes before it loads weights; returns what passed, one line each.

    ``required_bytes``: the disk the job needs (a planner's estimate); by default what
    ``training_disk_bytes`` derives from the model's size and the checkpoints kept."""
    section = getattr(cfg, stage)
    require_cuda(section.gpus, f"{stage}.gpus")
    done = [f"CUDA: {cuda_summary()}" if section.gpus else "CPU run: no CUDA needed"]
    prompt = training_prompt(cfg) if stage == "grpo" else PromptConfig.from_config(cfg)
    batch = first_batch(turns, prompt, cfg.model.frame, 4)  # a bad turns file fails before the model is looked at
    require_kernel(cfg.model.attn_implementation)
    done.append(f"attention kernel: {cfg.model.attn_implementation or 'transformers default'}")
    check_model_folder(model_dir)
    # the most curve steps any model of the stage keeps (one check before the variant's ranks start)
    models = ["sft"] if stage == "sft" else [f"grpo-{v}" for v in cfg.grpo.variants]
    kept = max(len(cfg.curve_steps(m)) - 1 for m in models)
    needed = training_disk_bytes(model_dir, section, kept) if required_bytes is None else required_bytes
    check_disk_budget(needed, section, stage)
    require_free_disk(out_dir, needed)
    done.append(f"disk: {needed / GB:.1f} GB needed, free under {out_dir}")
    if stage == "grpo" and cfg.rewards.spacy_model is not None:
        from regionreasoner.rewards.nouns import require_spacy_model  # spaCy's import (1 s) only where rewards run

        require_spacy_model(cfg.rewards.spacy_model)
        done.append(f"spaCy pipeline {cfg.rewards.spacy_model} installed")
    check_training_batch(model_dir, batch, cfg.model.frame)
    done.append("image tokens and attention mask line up on a real batch (left padding)")
    return done


def preflight_evaluation(
    cfg: PipelineConfig, model_dir: Path, segmenter_weights: Path | None, benches: Sequence[Path] = ()
) -> list[str]:
    """What an evaluation job checks before it loads weights: its bench files and their images, CUDA,
    kernel, model and SAM2 weights local."""
    require_cuda(cfg.evaluate.gpus, "evaluate.gpus")
    for bench in benches:
        read_bench(bench, images=True)
    require_kernel(cfg.model.attn_implementation)
    check_model_folder(model_dir)
    done = [f"CUDA: {cuda_summary()}" if cfg.evaluate.gpus else "no GPU requested", f"model weights in {model_dir}"]
    if cfg.evaluate.segmenter == "sam2":
        if segmenter_weights is None:
            raise PreflightError("evaluate.segmenter = sam2 needs the local SAM2 weights (rule fetch_segmenter)")
        require_local_weights(segmenter_weights, "SAM2", "fetch_segmenter")
        done.append(f"SAM2 weights in {segmenter_weights}")
    return done
