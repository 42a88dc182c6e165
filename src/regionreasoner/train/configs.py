"""Resolve the pipeline config into the TRL trainer configs (what TRL actually receives).

TRL's defaults differ from the paper (GRPOConfig: beta 0.0, loss_type "dapo", 8 generations, ...),
so every hyper-parameter of docs/method.md section 6 is set here from the config file, never left to a
library default. The configs are resolved for the hardware the config targets (``gpus``), not for
the machine that reads them: ``regionreasoner show-config`` on a laptop prints what the GPU job gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trl import GRPOConfig, SFTConfig

from regionreasoner.config import GRPOSection, PipelineConfig, SFTSection, TrainerCommon
from regionreasoner.rewards.variants import RewardFunction, reward_functions, reward_options
from regionreasoner.train.launch import uses_gpus


def _common(section: TrainerCommon, seed: int, output_dir: Path) -> dict[str, Any]:
    on_gpu = uses_gpus(section)
    return {
        "output_dir": str(output_dir),
        "max_steps": section.max_steps,
        "learning_rate": section.learning_rate,
        "lr_scheduler_type": section.lr_scheduler_type,
        "warmup_steps": section.warmup_steps,
        "per_device_train_batch_size": section.batch_size,
        "gradient_accumulation_steps": section.gradient_accumulation_steps,
        "adam_beta1": section.adam_beta1,
        "adam_beta2": section.adam_beta2,
        "weight_decay": section.weight_decay,
        "max_grad_norm": section.max_grad_norm,
        "save_strategy": "steps",
        "save_steps": section.save_steps,
        "save_total_limit": section.save_total_limit,
        "logging_steps": 1,
        "seed": seed,
        "data_seed": seed,
        "report_to": "none",
        "disable_tqdm": False,
        "dataloader_num_workers": 0,
        "use_cpu": not on_gpu,
        "bf16": section.bf16 and on_gpu,
        "activation_checkpointing": section.gradient_checkpointing and on_gpu,
    }


def model_init_kwargs(cfg: PipelineConfig, section: TrainerCommon) -> dict[str, Any]:
    """How the trainer loads policy and reference: in bfloat16 when it trains in bf16 (TRL loads in
    float32 unless told: a 7B policy + reference on 4 ranks would then need ~265 GB of host memory),
    with the config's attention kernel."""
    kwargs: dict[str, Any] = {"dtype": "bfloat16" if section.bf16 and uses_gpus(section) else "float32"}
    if cfg.model.attn_implementation:
        kwargs["attn_implementation"] = cfg.model.attn_implementation
    return kwargs


def _for_target(config_class: type[Any], **kwargs: Any) -> Any:
    """``config_class(**kwargs)`` also where this machine lacks the bf16 GPU the config targets.

    TrainingArguments refuses ``bf16`` without such a GPU. A training job never gets here without
    one (``require_cuda`` stops it first), so on another machine (show-config) the check is skipped:
    the config is built without bf16 and then given the target's value."""
    bf16 = kwargs.pop("bf16")
    args = config_class(**kwargs, bf16=bf16 and _bf16_here())
    args.bf16 = bf16
    return args


def _bf16_here() -> bool:
    from transformers.utils import is_torch_bf16_gpu_available

    return is_torch_bf16_gpu_available()


def _cosine_cycles(section: SFTSection) -> float:
    """transformers' ``num_cycles`` that makes a ``max_steps`` run follow the first ``max_steps`` steps
    of a ``schedule_steps`` cosine (0.5, half a cosine wave, when the schedule is not truncated)."""
    total = section.schedule_steps or section.max_steps
    # max(1, ...) as transformers does: a run that ends within its warm-up never reads the cosine
    return 0.5 * max(1, section.max_steps - section.warmup_steps) / max(1, total - section.warmup_steps)


def sft_config(cfg: PipelineConfig, output_dir: Path) -> SFTConfig:
    """SFTConfig for the warm-up: completion-only loss on the rendered four-part target."""
    section: SFTSection = cfg.sft
    kwargs = _common(section, cfg.seed, output_dir)
    if section.lr_scheduler_type == "cosine_with_min_lr":
        kwargs["lr_scheduler_kwargs"] = {"min_lr_rate": section.min_lr_rate, "num_cycles": _cosine_cycles(section)}
    return _for_target(
        SFTConfig,
        **kwargs,
        max_length=None,
        completion_only_loss=True,
        remove_unused_columns=False,
        model_init_kwargs=model_init_kwargs(cfg, section),
    )


def variant_rewards(cfg: PipelineConfig, variant: str) -> tuple[list[RewardFunction], list[float]]:
    """The reward functions and weights of a GRPO variant, with the frame's accuracy thresholds."""
    spec = cfg.grpo.variants[variant]
    return reward_functions(spec.rewards, spec.alpha, spec.beta, **reward_options(cfg.rewards))


def grpo_config(
    cfg: PipelineConfig, variant: str, output_dir: Path, reward_weights: list[float], seed: int | None = None
) -> GRPOConfig:
    """GRPOConfig for one reward variant trained with ``seed`` (None: the variant's first seed);
    every docs/method.md section 6 value is explicit. The seed is TRL's ``seed`` and ``data_seed``:
    sampling, dropout and the order of the prompts, the things that differ between two runs of one
    recipe; the prompt pool (``grpo.prompts``) stays the top-level seed's, the same data for every seed."""
    section: GRPOSection = cfg.grpo
    if variant not in section.variants:
        raise KeyError(f"grpo variant {variant!r} is not in config grpo.variants ({sorted(section.variants)})")
    return _for_target(
        GRPOConfig,
        **_common(section, cfg.variant_seeds(variant)[0] if seed is None else seed, output_dir),
        num_generations=section.num_generations,
        max_completion_length=section.max_completion_length,
        temperature=section.temperature,
        top_p=1.0,
        top_k=0,
        beta=section.beta,
        epsilon=section.epsilon,
        loss_type=section.loss_type,
        entropy_coef=section.entropy_coef,
        num_iterations=section.num_iterations,
        scale_rewards="group",
        reward_weights=reward_weights,
        use_vllm=False,  # no vLLM release supports the pinned torch and transformers (docs/cluster.md)
        remove_unused_columns=False,
        log_completions=False,
        model_init_kwargs=model_init_kwargs(cfg, section),
    )


def resolved(cfg: PipelineConfig, stage: str, variant: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """The trainer config of ``stage`` (GRPO: of ``variant`` trained with ``seed``) as a JSON-able
    dict (for show-config and tests)."""
    out = Path(cfg.results) / "models" / "_work" / "show-config"
    if stage == "sft":
        args = sft_config(cfg, out)
    elif stage == "grpo":
        name = variant or next(iter(cfg.grpo.variants))
        _, weights = variant_rewards(cfg, name)
        args = grpo_config(cfg, name, out, weights, seed)
    else:
        raise ValueError(f"unknown stage {stage!r}: choose sft or grpo")
    return {k: v for k, v in args.to_dict().items() if not k.startswith("_") and "token" not in k}
