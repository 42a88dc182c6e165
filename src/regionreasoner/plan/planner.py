"""`regionreasoner plan`: the jobs a target needs, what each costs, totals and warnings.

Jobs come from Snakemake's dry run (regionreasoner.plan.dag); each GPU job is priced by the cost
model (regionreasoner.plan.cost) from the config and the throughput figures; the profile says how
many GPUs each job gets and what time and memory it is allowed.
"""

from __future__ import annotations

import heapq
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from regionreasoner import paths
from regionreasoner.config import PipelineConfig, TrainerCommon
from regionreasoner.data.download import read_manifest
from regionreasoner.models.prompts import PromptConfig, max_new_tokens_for, prompt_for_model, training_prompt, user_text
from regionreasoner.plan.cost import (
    Cost,
    EvalShape,
    SampleShape,
    TrainShape,
    download_cost,
    eval_cost,
    sample_cost,
    train_cost,
    weights_cost,
)
from regionreasoner.plan.dag import Job, Profile, dependencies
from regionreasoner.plan.throughput import Architecture, Figures

REPORTED = Path("paper/reported_numbers.yaml")
FETCH_RULES = ("prepare_model", "fetch_released")
GPU_RULES = ("sft", "grpo", "evaluate", "probe", "evaluate_checkpoint", "probe_checkpoint")


@dataclass
class Row:
    job: Job
    cost: Cost | None
    limit_h: float | None = None
    warnings: list[str] = field(default_factory=list)  # the job exceeds a profile or device limit
    notes: list[str] = field(default_factory=list)  # how the cost model priced it (assumptions)


@dataclass
class Plan:
    rows: list[Row]
    node_gpus: int
    wall_hours: float
    figures: Figures

    @property
    def notes(self) -> list[str]:
        return sorted({n for r in self.rows for n in r.notes})

    @property
    def gpu_hours(self) -> float:
        return sum(r.cost.gpus * r.cost.hours for r in self.rows if r.cost)

    def gpu_hours_by_rule(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for r in self.rows:
            if r.cost and r.cost.gpus:
                totals[r.job.rule] = totals.get(r.job.rule, 0.0) + r.cost.gpus * r.cost.hours
        return totals

    @property
    def disk_peak_gb(self) -> float:
        """Kept outputs of every job plus the largest transient (resume checkpoints) of any one."""
        costs = [r.cost for r in self.rows if r.cost]
        kept = sum(c.disk_kept_gb for c in costs)
        return kept + max((c.disk_peak_gb - c.disk_kept_gb for c in costs), default=0.0)


def prompt_tokens(cfg: PipelineConfig, prompt: PromptConfig, figures: Figures) -> int:
    """Image tokens of the frame plus the prompt text, at the workload's characters per token."""
    w = figures.workload
    image = (cfg.model.frame // w.image_token_pixels) ** 2
    text = len(prompt.system or "") + len(user_text("x" * w.question_chars, prompt))
    return image + math.ceil(text / w.chars_per_token) + w.chat_template_tokens


def architecture(cfg: PipelineConfig, model_id: str, figures: Figures) -> tuple[Architecture, str | None]:
    """Shape of a pipeline model id: trained models share the base's, released ones their hub id's."""
    if model_id.startswith("released-"):
        return figures.architecture(cfg.model.released[model_id.removeprefix("released-")])
    return figures.architecture(cfg.model.base)


def zero_stage(section: TrainerCommon) -> int | None:
    """The DeepSpeed ZeRO stage of the stage's accelerate config; None without DeepSpeed."""
    if not section.accelerate_config:
        return None
    path = Path(section.accelerate_config)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ValueError(f"{path}: cannot read the accelerate config ({err})") from None
    if raw.get("distributed_type") != "DEEPSPEED":
        return None
    return int((raw.get("deepspeed_config") or {}).get("zero_stage", 0))


def train_shape(cfg: PipelineConfig, model: str, gpus: int, figures: Figures) -> TrainShape:
    """SFT or GRPO (``model``: sft or grpo-{variant}) as the cost model reads it; GPUs as the job's
    rule requests them (the config's)."""
    stage = "sft" if model == "sft" else "grpo"
    section = cfg.grpo if stage == "grpo" else cfg.sft
    grpo = stage == "grpo"
    w = figures.workload
    return TrainShape(
        gpus=gpus,
        steps=section.max_steps,
        micro_batch=section.batch_size,
        accumulation=section.gradient_accumulation_steps,
        prompt_tokens=prompt_tokens(cfg, training_prompt(cfg), figures),
        completion_tokens=min(w.grpo_mean_completion_tokens, cfg.grpo.max_completion_length),
        generate_tokens=cfg.grpo.max_completion_length if grpo else 0,
        reference=grpo and cfg.grpo.beta > 0,
        iterations=cfg.grpo.num_iterations if grpo else 1,
        checkpointing=section.gradient_checkpointing,
        bf16=section.bf16,
        zero_stage=zero_stage(section) if gpus else None,  # the accelerate config runs only on GPUs
        save_steps=section.save_steps,
        save_total_limit=section.save_total_limit,
        kept_checkpoints=len(cfg.curve_steps(model)) - 1,
    )


def turns_per_round(cfg: PipelineConfig, bench: str) -> tuple[int, ...] | None:
    """Turns of each round of a benchmark: its built file when present, else the paper's Table 6."""
    built = Path(paths.bench_file(cfg.results, bench))
    if built.exists():
        dialogues = json.loads(built.read_text())
        lengths = [len(d["conversational_turns"]) for d in dialogues]
        return tuple(sum(n > r for n in lengths) for r in range(max(lengths, default=0)))
    if REPORTED.exists():
        row = (yaml.safe_load(REPORTED.read_text()).get("table6_turns_per_round") or {}).get(bench)
        if row and row.get("rounds"):
            return tuple(int(n) for n in row["rounds"])
    return None


def validation_rounds(cfg: PipelineConfig, rounds: tuple[int, ...]) -> tuple[int, ...]:
    """Turns per round of ``evaluate.validation_dialogues`` dialogues shaped like the benchmark's
    (round 1 has one turn per dialogue), for the checkpoint curves' validation runs."""
    scale = min(1.0, cfg.evaluate.validation_dialogues / rounds[0]) if rounds and rounds[0] else 0.0
    return tuple(math.ceil(n * scale) for n in rounds)


def eval_shape(
    cfg: PipelineConfig, model_id: str, figures: Figures, validation: bool = False
) -> tuple[EvalShape, list[str]]:
    """Every benchmark, multi-round by round and single-round as one round, for one model; with
    ``validation``, a checkpoint-curve point: the validation dialogues, multi-round, boxes only."""
    runs, warnings = [], []
    for bench in cfg.benchmarks:
        rounds = turns_per_round(cfg, bench)
        if rounds is None:
            warnings.append(f"{bench}: turn count unknown (no built benchmark, no reported row): priced at 0 turns")
            continue
        runs += [validation_rounds(cfg, rounds)] if validation else [rounds, (sum(rounds),)]
    limit = max_new_tokens_for(cfg, model_id)
    shape = EvalShape(
        rounds=tuple(runs),
        batch=cfg.evaluate.batch_size,
        prompt_tokens=prompt_tokens(cfg, prompt_for_model(cfg, model_id), figures),
        completion_tokens=min(figures.workload.eval_longest_completion_tokens, limit),
        max_new_tokens=limit,
        sam2=cfg.evaluate.segmenter == "sam2" and not validation,
    )
    return shape, warnings


def job_cost(job: Job, cfg: PipelineConfig, gpus: int, figures: Figures) -> tuple[Cost | None, list[str]]:
    """The cost of one job; None for CPU work the model does not price (data, tables)."""
    d, w = figures.device, figures.workload
    if job.rule == "download":
        entries = read_manifest(Path(cfg.data.download.manifest))
        unsized = [e.name for e in entries if e.size is None]
        note = f"download: no size pinned for {', '.join(unsized)}: not counted in its disk" if unsized else None
        return download_cost([e.size for e in entries]), [note] if note else []
    if job.rule in FETCH_RULES:
        model = "base" if job.rule == "prepare_model" else f"released-{job.wildcards['name']}"
        arch, warning = architecture(cfg, model, figures)
        return weights_cost(arch), [warning] if warning else []
    if not gpus or job.rule not in GPU_RULES:
        return None, []
    if cfg.model.base == "tiny":  # the embedded default's model: CPU minutes, nothing to price
        return None, ["model.base is the tiny model: GPU jobs not priced"]
    model = job.wildcards.get("model", "base")
    arch, warning = architecture(cfg, model, figures)
    warnings = [warning] if warning else []
    if job.rule in ("sft", "grpo"):
        trained = "sft" if job.rule == "sft" else job.wildcards["model"]
        return train_cost(train_shape(cfg, trained, gpus, figures), arch, d, w), warnings
    if job.rule in ("evaluate", "evaluate_checkpoint"):
        shape, more = eval_shape(cfg, model, figures, validation=job.rule == "evaluate_checkpoint")
        return eval_cost(shape, arch, d, w), warnings + more
    sample = SampleShape(
        prompts=cfg.probe.prompts,
        generations=cfg.probe.generations,
        batch=cfg.probe.batch_size,
        prompt_tokens=prompt_tokens(cfg, training_prompt(cfg), figures),
        generate_tokens=cfg.grpo.max_completion_length,
    )
    return sample_cost(sample, arch, d, w), warnings


def _row(job: Job, cfg: PipelineConfig, profile: Profile, figures: Figures) -> Row:
    limits = profile.limits(job.rule)
    rule_gpus = int(float(job.resources.get("gpu", 0)))
    gpus = limits.gpus if limits.gpus is not None else rule_gpus
    cost, notes = job_cost(job, cfg, gpus, figures)
    row = Row(job, cost, limits.runtime_min / 60 if limits.runtime_min else None, notes=notes)
    if cost is None:
        return row
    if row.limit_h and cost.hours > row.limit_h:
        longest = profile.limits(job.rule, attempt=limits.retries + 1).runtime_min / 60
        row.warnings.append(
            f"{cost.hours:.1f} h exceeds the profile's runtime of {row.limit_h:.0f} h "
            f"(attempt 1; {longest:.0f} h by attempt {limits.retries + 1}, resuming from checkpoints)"
        )
    if limits.mem_mb and cost.host_memory_gb * 1000 > limits.mem_mb:
        row.warnings.append(
            f"host memory {cost.host_memory_gb:.0f} GB exceeds the profile's mem_mb "
            f"{limits.mem_mb:.0f} ({limits.mem_mb / 1000:.0f} GB)"
        )
    if cost.gpus and cost.gpu_memory_gb > figures.device.memory_gb:
        row.warnings.append(
            f"GPU memory {cost.gpu_memory_gb:.0f} GB per device exceeds the "
            f"{figures.device.memory_gb:.0f} GB of one {figures.device.name}"
        )
    return row


def schedule(rows: list[Row], deps: dict[int, set[int]], node_gpus: int) -> float:
    """Wall hours of the jobs on one node: each starts when its inputs exist and its GPUs are free.

    Unpriced CPU jobs take no time; ready GPU jobs start longest first (list scheduling).
    """
    hours = {r.job.jobid: (r.cost.hours if r.cost else 0.0) for r in rows}
    gpus = {r.job.jobid: min(r.cost.gpus if r.cost else 0, node_gpus) for r in rows}
    waiting = {j: set(d) for j, d in deps.items()}
    ready = [j for j, d in waiting.items() if not d]
    running: list[tuple[float, int]] = []
    now, free = 0.0, node_gpus
    while ready or running:
        for j in sorted(ready, key=lambda j: -hours[j]):
            if gpus[j] <= free:
                free -= gpus[j]
                heapq.heappush(running, (now + hours[j], j))
                ready.remove(j)
        if not running:
            raise ValueError(f"jobs {ready} need more GPUs than the node's {node_gpus}")
        now, done = heapq.heappop(running)
        free += gpus[done]
        for j, d in waiting.items():
            if done in d:
                d.discard(done)
                if not d:
                    ready.append(j)
    return now


def make_plan(jobs: list[Job], cfg: PipelineConfig, profile: Profile, figures: Figures) -> Plan:
    """Price every job of a dry run and schedule them on the profile's node."""
    rows = [_row(job, cfg, profile, figures) for job in jobs]
    order = {"grpo": 0, "sft": 0, "evaluate": 1, "probe": 2, "evaluate_checkpoint": 3, "probe_checkpoint": 3}
    rows.sort(key=lambda r: (r.cost is None, order.get(r.job.rule, 3), r.job.rule, r.job.name))
    # the node that fits the config's largest GPU job (the GPU counts are the config's, not the profile's)
    node_gpus = max([cfg.sft.gpus, cfg.grpo.gpus, cfg.evaluate.gpus] + [r.cost.gpus for r in rows if r.cost])
    return Plan(rows, node_gpus, schedule(rows, dependencies(jobs), node_gpus), figures)


def render(plan: Plan) -> str:
    """The plan as a plain-text table, per-rule GPU-hours and totals."""
    header = (
        "job",
        "GPUs",
        "hours",
        "limit h",
        "GPU-h",
        "GPU mem/dev GB",
        "host mem GB",
        "disk peak GB",
        "disk kept GB",
    )
    lines = []
    for r in plan.rows:
        c = r.cost
        if c is None:
            continue
        gpu = c.gpus > 0
        lines.append(
            (
                r.job.name,
                str(c.gpus),
                f"{c.hours:.1f}" if gpu else "-",
                f"{r.limit_h:.0f}" if gpu and r.limit_h else "-",
                f"{c.gpus * c.hours:.1f}" if gpu else "-",
                f"{c.gpu_memory_gb:.0f}" if gpu else "-",
                f"{c.host_memory_gb:.0f}" if gpu else "-",
                f"{c.disk_peak_gb:.0f}",
                f"{c.disk_kept_gb:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{widths[0]}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*row) for row in lines]
    d = plan.figures.device
    unpriced = Counter(r.job.rule for r in plan.rows if r.cost is None)
    if unpriced:
        counted = (f"{rule} x{n}" if n > 1 else rule for rule, n in unpriced.items())
        out.append("not priced: " + ", ".join(counted))
    out.append("")
    by_rule = ", ".join(f"{rule} {hours:.1f}" for rule, hours in plan.gpu_hours_by_rule().items())
    out.append(f"GPU-hours by rule: {by_rule or 'none'}")
    out.append(
        f"total: {len(plan.rows)} jobs, {plan.gpu_hours:.1f} GPU-hours; the GPU jobs take about "
        f"{plan.wall_hours:.1f} h ({plan.wall_hours / 24:.1f} days) on one node of {plan.node_gpus} GPUs; "
        f"disk peak {plan.disk_peak_gb:.0f} GB"
    )
    out.append(f"figures: {d.name}, {d.source}")
    out += [f"note: {n}" for n in plan.notes]
    for r in plan.rows:
        out += [f"WARNING {r.job.name}: {w}" for w in r.warnings]
    return "\n".join(out)
