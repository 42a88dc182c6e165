"""Per-device throughput figures and model shapes the cost plan prices jobs with.

The published baseline (throughput.yaml beside this module, each figure with its source) is what a
plan uses until a GPU has been measured; the JSON that scripts/gpu_smoke.sh writes then replaces the
figures it measured, so a plan made after the smoke prices jobs with the user's own hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from regionreasoner.io import InputError, atomic_write_json, read_json

PUBLISHED = Path(__file__).with_name("throughput.yaml")
MEASURED = Path("config/gpu_throughput.json")
# what the measured JSON must hold (scripts/gpu_throughput.py writes it)
MEASURED_KEYS = (
    "device",
    "memory_gb",
    "params",
    "decode_ms_per_step",
    "train_s_per_1k_tokens",
    "activation_bytes_per_token_per_layer",
    "sam2_s_per_turn",
)


@dataclass(frozen=True)
class Architecture:
    """The shape of a checkpoint: what its weights, KV cache and logits occupy."""

    params: float
    layers: int
    hidden: int
    kv_heads: int
    head_dim: int
    vocab: int

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        """Keys and values of every layer for one token."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


@dataclass(frozen=True)
class Device:
    """One accelerator as the cost model sees it."""

    name: str
    memory_gb: float
    peak_bf16_tflops: float
    hbm_tb_per_s: float
    train_mfu: float
    hf_generate_bandwidth_fraction: float
    sam2_s_per_turn: float
    sam2_memory_gb: float
    # measured on a GPU (scripts/gpu_throughput.py) for a model of `measured_params` parameters;
    # empty or None: derived from the published figures above
    decode_ms_per_step: dict[int, float] = field(default_factory=dict)
    train_s_per_1k_tokens: float | None = None
    activation_bytes_per_token_per_layer: float | None = None
    measured_params: float | None = None
    source: str = "published"


@dataclass(frozen=True)
class Workload:
    """Token counts a turn costs: assumptions, kept beside the device figures."""

    image_token_pixels: int
    chars_per_token: float
    question_chars: int
    chat_template_tokens: int
    grpo_mean_completion_tokens: int
    eval_longest_completion_tokens: int
    host_overhead_gb_per_process: float
    load_gb_per_s: float
    checkpoint_write_gb_per_s: float


@dataclass(frozen=True)
class Figures:
    device: Device
    workload: Workload
    architectures: dict[str, Architecture]
    same_as: dict[str, str]

    def architecture(self, model: str) -> tuple[Architecture, str | None]:
        """The shape of hub id ``model``, and a warning when it is not listed."""
        name = self.same_as.get(model, model)
        if name in self.architectures:
            return self.architectures[name], None
        first = next(iter(self.architectures))
        return self.architectures[first], f"{model}: shape not listed in {PUBLISHED.name}; priced as {first}"


def _fields(cls: type, raw: dict[str, Any], source: Path, section: str) -> dict[str, Any]:
    """A section's keys, refused by name when the dataclass has no such field (a typo, not a TypeError)."""
    names = set(cls.__dataclass_fields__)
    unknown = set(raw) - names
    if unknown:
        raise ValueError(f"{source}: unknown keys in {section}: {sorted(unknown)}")
    return raw


def load_published(path: Path = PUBLISHED) -> Figures:
    """The published figures file (throughput.yaml)."""
    raw = yaml.safe_load(path.read_text())
    try:
        return Figures(
            device=Device(**_fields(Device, raw["device"], path, "device")),
            workload=Workload(**_fields(Workload, raw["workload"], path, "workload")),
            # PyYAML reads 8.29e9 (no sign in the exponent) as a string
            architectures={
                k: Architecture(**{**v, "params": float(v["params"])}) for k, v in raw["architectures"].items()
            },
            same_as=dict(raw.get("same_as") or {}),
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: malformed throughput figures ({err})") from None


def write_measured(path: Path, measured: dict[str, Any]) -> None:
    """Write a GPU measurement as the JSON ``load_figures`` reads (atomic)."""
    missing = [k for k in MEASURED_KEYS if k not in measured]
    if missing:
        raise ValueError(f"{path}: measurement lacks {missing}")
    atomic_write_json(path, measured, indent=1)


def read_measured(path: Path) -> dict[str, Any]:
    """A measured JSON file, checked for the keys the planner uses."""
    measured = read_json(path)
    if not isinstance(measured, dict):
        raise InputError(
            f"{path}: holds a JSON {type(measured).__name__}, expected the object scripts/gpu_smoke.sh writes"
        )
    missing = [k for k in MEASURED_KEYS if k not in measured]
    if missing:
        raise ValueError(f"{path}: measured throughput lacks {missing} (write it with scripts/gpu_smoke.sh)")
    return measured


def with_measured(figures: Figures, measured: dict[str, Any], source: str) -> Figures:
    """The published figures with the measured ones in their place."""
    device = replace(
        figures.device,
        name=str(measured["device"]),
        memory_gb=float(measured["memory_gb"]),
        decode_ms_per_step={int(b): float(ms) for b, ms in measured["decode_ms_per_step"].items()},
        train_s_per_1k_tokens=float(measured["train_s_per_1k_tokens"]),
        activation_bytes_per_token_per_layer=float(measured["activation_bytes_per_token_per_layer"]),
        sam2_s_per_turn=float(measured["sam2_s_per_turn"]),
        measured_params=float(measured["params"]),
        source=source,
    )
    return replace(figures, device=device)


def load_figures(measured: Path | None = MEASURED) -> Figures:
    """Published figures, replaced by a GPU measurement when ``measured`` exists."""
    figures = load_published()
    if measured is not None and Path(measured).exists():
        return with_measured(figures, read_measured(Path(measured)), f"measured ({measured})")
    return figures
