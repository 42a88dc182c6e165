"""The one configuration source: config/*.yaml, validated before any job starts.

Snakemake reads the same YAML file as its ``config`` and DVC reads it as ``params``; the models
below are the schema (exported to workflow/schemas/config.schema.json). A bad value fails with a
message naming the key and what is allowed, before any rule runs.
Paper scale is a second file (config/paper.yaml), not a code branch. A file may name a base with
``extends: <path>`` and hold only what differs (config/learning.yaml): see ``merge_overlay``.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from regionreasoner.dialogs.relations import RELATIONS
from regionreasoner.evaluate.answers import ANSWER_FORMATS, DEFAULT_FORMAT
from regionreasoner.io import InputError, read_yaml
from regionreasoner.rewards.registry import VARIANTS as REWARD_VARIANTS
from regionreasoner.stages import STAGES

RELATION_KEYS = tuple(RELATIONS)


def _registered_variant(name: str) -> str:
    """Checked against the reward registry when a config is validated, so a variant registered
    after import (a new term's test) is accepted like a built-in one."""
    if name not in REWARD_VARIANTS:
        raise ValueError(f"unknown reward variant {name!r}; choose one of: {', '.join(map(repr, REWARD_VARIANTS))}")
    return name


RewardVariant = Annotated[
    str, AfterValidator(_registered_variant), WithJsonSchema({"type": "string", "enum": list(REWARD_VARIANTS)})
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynthConfig(Strict):
    images: PositiveInt
    image_size: PositiveInt = 112
    cell: PositiveInt = 28
    min_objects: PositiveInt = 2
    max_objects: PositiveInt = 4
    splits: dict[str, float] = Field(
        default={"train": 0.8, "val": 0.1, "test": 0.1}, description="image share per split"
    )


class DownloadConfig(Strict):
    manifest: str
    mirrors: list[str] = []
    retries: PositiveInt = 5


class DataConfig(Strict):
    source: Literal["synth", "download"]
    synth: SynthConfig
    download: DownloadConfig


class BenchmarkConfig(Strict):
    dataset: str
    split_by: str
    test_splits: list[str] = Field(min_length=1)
    train_splits: list[str] = Field(min_length=1)
    probe_splits: list[str] = Field(
        default=["val"],
        min_length=1,
        description="held-out refer splits (never trained on, never benchmarked): the reward probe samples their "
        "turns and the checkpoint curves' validation dialogues are built from their images",
    )
    synth_seed: int = 0

    @model_validator(mode="after")
    def _held_out(self) -> BenchmarkConfig:
        shared = sorted(set(self.probe_splits) & (set(self.test_splits) | set(self.train_splits)))
        if shared:
            raise ValueError(
                f"probe_splits {shared} also in test_splits or train_splits: the held-out split must be neither"
            )
        return self


class ReleasedBench(Strict):
    repo: str = "lmsdss/regionreasoner_test_data"
    files: dict[str, str] = Field(
        default={"refcocoplus": "raw/refcocoplus_multi_turn.json", "refcocog": "raw/refcocog_multi_turn.json"},
        description="benchmark name -> released JSON inside the dataset",
    )


class BenchConfig(Strict):
    source: Literal["built", "released"] = Field(
        default="built", description="build from refer files or use the authors' files"
    )
    released: ReleasedBench = Field(default_factory=ReleasedBench)
    max_rounds: int = Field(ge=1, le=20)
    relations: list[Literal[RELATION_KEYS]] = Field(min_length=1)  # type: ignore[valid-type]


class TrainDataConfig(Strict):
    cited_fraction: float = Field(ge=0.0, le=1.0)


class TinyConfig(Strict):
    image_size: PositiveInt
    text_hidden: PositiveInt
    text_layers: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt
    mlp: PositiveInt
    rope_theta: PositiveFloat
    mrope_section: list[PositiveInt]
    vision_depth: PositiveInt
    vision_hidden: PositiveInt
    vision_heads: PositiveInt
    initializer_range: PositiveFloat = Field(
        default=0.02,
        description="std of the random init (text and vision); 0.02 (the library default) leaves the "
        "tiny model's answer independent of the query (docs/benchmarks.md)",
    )


class ModelConfig(Strict):
    base: str = Field(description="'tiny' (built locally) or a hub id / local path")
    frame: PositiveInt
    tiny: TinyConfig
    released: dict[str, str] = Field(default_factory=dict, description="released checkpoints: name -> hub id")
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = Field(
        default=None,
        description="attention kernel for training and evaluation (transformers' attn_implementation); "
        "null: transformers' default. flash_attention_2 needs the flash-attn package, which the documented "
        "install does not provide (docs/cluster.md); preflight stops a job that names a kernel it cannot import",
    )


class ModelPrompt(Strict):
    """A prompt carried verbatim from the code a model was trained or evaluated with."""

    source: str = Field(description="repository@commit and file the template is copied from")
    system: str | None = Field(default=None, description="system message; null: none (the chat template's default)")
    template: str = Field(description="verbatim text; a leading '<image>' marks where the image goes")
    question_field: str = Field(default="Question", description="placeholder of the template that takes the question")
    fill: dict[str, str] = Field(default_factory=dict, description="other placeholders, with their verbatim values")
    lowercase: bool = Field(default=False, description="the question is lower-cased before it is filled in")
    strip: str = Field(default="", description="characters stripped from both ends of the question")
    max_new_tokens: PositiveInt | None = Field(
        default=None, description="generation limit; null: evaluate.max_new_tokens"
    )
    answer_format: Literal[tuple(ANSWER_FORMATS)] = Field(  # type: ignore[valid-type]
        default=DEFAULT_FORMAT,
        description="how the model's answers are read and in which coordinates (regionreasoner.evaluate.answers): "
        "tagged_json and segzero answer in the 840 frame; qwen2_5_vl (pixels) and qwen2_vl (0-1000) see the "
        "image at its own resolution",
    )

    @field_validator("template")
    @classmethod
    def _fills(cls, value: str) -> str:
        try:
            value.format_map(_Placeholders())
        except (ValueError, IndexError) as err:
            raise ValueError(f"not a format string ({err}); write literal braces as {{{{ }}}}") from None
        return value

    @model_validator(mode="after")
    def _asks_the_question(self) -> ModelPrompt:
        if "{" + self.question_field + "}" not in self.template:
            raise ValueError(f"template has no placeholder {{{self.question_field}}} (question_field) for the question")
        return self


class _Placeholders(dict):
    """Accepts every placeholder name, so a template's syntax can be checked before its values are known."""

    def __missing__(self, key: str) -> str:
        return ""


class PromptSection(Strict):
    system: str
    user: str
    instruction: str = ""
    train: ModelPrompt | None = Field(
        default=None, description="GRPO training prompt; null: system + user + instruction"
    )
    models: dict[str, ModelPrompt] = Field(
        default_factory=dict,
        description="evaluation prompt per model id (fnmatch patterns such as 'grpo-*'); "
        "others use system + user + instruction",
    )

    @field_validator("user")
    @classmethod
    def _has_question(cls, value: str) -> str:
        if "{question}" not in value:
            raise ValueError("must contain the placeholder {question}")
        return value


class RewardsConfig(Strict):
    iou_threshold: float = Field(gt=0.0, lt=1.0)
    l1_threshold: PositiveFloat
    point_threshold: PositiveFloat
    spacy_model: str | None = Field(default=None, description="spaCy pipeline for key nouns; null: offline fallback")
    noun_lexicon: list[str] = Field(default_factory=list, description="extra nouns for the offline fallback")


def check_curve_steps(steps: list[int], max_steps: int, key: str) -> None:
    """Curve steps name distinct checkpoints saved before the final one (which is always evaluated)."""
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"{key} {steps}: must be strictly increasing")
    if steps and steps[-1] >= max_steps:
        raise ValueError(
            f"{key} {steps}: every step must be below max_steps ({max_steps}); the final model is always on the curve"
        )


class TrainerCommon(Strict):
    max_steps: PositiveInt
    learning_rate: PositiveFloat
    lr_scheduler_type: str
    batch_size: PositiveInt
    gradient_accumulation_steps: PositiveInt = 1
    adam_beta1: float = Field(ge=0.0, lt=1.0)
    adam_beta2: float = Field(ge=0.0, lt=1.0)
    weight_decay: float = Field(ge=0.0)
    max_grad_norm: PositiveFloat
    save_steps: PositiveInt
    save_total_limit: PositiveInt = Field(default=2, description="resume checkpoints kept on disk (the newest ones)")
    disk_gb: PositiveFloat | None = Field(
        default=None,
        description="disk the job may fill (resume checkpoints and the final model); preflight stops when the "
        "checkpoints kept would not fit or the results' file system has less free; null: not checked",
    )
    warmup_steps: int = Field(default=0, ge=0)
    gpus: int = Field(default=0, ge=0)
    accelerate_config: str | None = None
    gradient_checkpointing: bool = False
    bf16: bool = False
    # processes and CPU threads of one training job (regionreasoner.train.launch)
    threads: PositiveInt = Field(
        default=1, description="CPU threads of the job (Snakemake threads), split over its processes"
    )
    cpu_processes: PositiveInt = Field(
        default=1, description="without GPUs: processes torchrun starts (gloo process group); 1: in-process"
    )
    curve_steps: list[PositiveInt] = Field(
        default=[],
        description="steps whose weights are kept beside the final model and evaluated on the validation "
        "dialogues and the held-out reward probe (the checkpoint curves); increasing, below max_steps; "
        "empty: no curve (the final model alone is the tables' evaluation)",
    )

    @model_validator(mode="after")
    def _curve_steps_within_run(self) -> TrainerCommon:
        check_curve_steps(self.curve_steps, self.max_steps, "curve_steps")
        return self


class SFTSection(TrainerCommon):
    enabled: bool
    target_style: Literal["paper", "compact", "varied"] = "paper"
    min_lr_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    schedule_steps: PositiveInt | None = Field(
        default=None,
        description="length of the cosine_with_min_lr schedule when training stops earlier, at max_steps "
        "(a truncated schedule: the first max_steps steps of a schedule_steps run); null: max_steps",
    )

    @model_validator(mode="after")
    def _truncates_a_cosine(self) -> SFTSection:
        if self.schedule_steps is None:
            return self
        if self.lr_scheduler_type != "cosine_with_min_lr":
            raise ValueError("schedule_steps needs lr_scheduler_type cosine_with_min_lr")
        if self.schedule_steps < self.max_steps:
            raise ValueError(f"schedule_steps ({self.schedule_steps}) must be at least max_steps ({self.max_steps})")
        return self


class GRPOVariant(Strict):
    rewards: RewardVariant
    alpha: float = Field(default=1.0, ge=0.0)
    beta: float = Field(default=1.0, ge=0.0)
    sft: bool | None = Field(default=None, description="start from the SFT warm-up; null: sft.enabled")
    seeds: list[int] | None = Field(
        default=None,
        min_length=1,
        description="training seeds: the variant is trained once per seed (model grpo-<variant> for the first, "
        "grpo-<variant>-seed<N> for the others) and the tables show the mean over seeds; null: the top-level seed",
    )
    curve_steps: list[PositiveInt] | None = Field(
        default=None, description="this variant's checkpoint curve steps; null: grpo.curve_steps"
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) < len(value):
            raise ValueError(f"seeds repeat ({value}): each seed trains one model")
        return value


class GRPOSection(TrainerCommon):
    num_generations: int = Field(ge=2)
    beta: float = Field(ge=0.0)
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"]
    epsilon: PositiveFloat
    temperature: PositiveFloat
    max_completion_length: PositiveInt
    entropy_coef: float = Field(default=0.0, ge=0.0)
    num_iterations: PositiveInt = 1
    prompts: PositiveInt | None = Field(
        default=None,
        description="size of the seeded pool of training turns GRPO cycles over; null: every turn "
        "(one episode at paper scale)",
    )
    variants: dict[str, GRPOVariant] = Field(min_length=1)

    @model_validator(mode="after")
    def _variant_curve_steps_within_run(self) -> GRPOSection:
        for name, variant in self.variants.items():
            if variant.curve_steps is not None:
                check_curve_steps(variant.curve_steps, self.max_steps, f"variants.{name}.curve_steps")
        return self


class ProbeConfig(Strict):
    """The held-out reward probe (regionreasoner.evaluate.probe): GRPO's sampling, fixed held-out prompts."""

    prompts: PositiveInt = Field(default=64, description="held-out turns sampled (a seeded draw; all when fewer)")
    generations: PositiveInt = Field(default=8, description="completions sampled per prompt")
    rewards: RewardVariant = Field(default="full", description="reward variant the completions are scored with")
    batch_size: PositiveInt = Field(default=8, description="prompts per generate call")


CHECKPOINT_RULES = {
    "last": "the final checkpoint, the paper's rule",
    "best_validation": "the kept or final checkpoint with the best validation AP@0.5",
}
"""How the checkpoint behind the tables is chosen (``evaluate.checkpoint``), as the captions name it."""


class EvaluateConfig(Strict):
    segmenter: Literal["grabcut", "sam2"]
    batch_size: PositiveInt
    max_new_tokens: PositiveInt
    models: list[str] = Field(min_length=1)
    threads: PositiveInt = Field(default=1, description="CPU threads of one evaluation job (Snakemake threads)")
    chunk_dialogues: PositiveInt = Field(
        default=64, description="dialogues per kept chunk: a killed evaluation reruns at most this many"
    )
    gpus: int = Field(
        default=0,
        ge=0,
        le=1,
        description="GPUs of one evaluation or probe job (the SLURM request reads it); 1: stop when CUDA is "
        "unusable; 0: the GPU when one is visible, else the CPU",
    )
    checkpoint: Literal[tuple(CHECKPOINT_RULES)] = Field(  # type: ignore[valid-type]
        default="last",
        description="which checkpoint of a trained model the tables evaluate, chosen from the validation "
        "dialogues only: last (the final one, the paper's rule) or best_validation (the kept or final "
        "checkpoint with the best mean validation AP@0.5; the earliest on ties)",
    )
    validation_dialogues: PositiveInt = Field(
        default=16,
        description="validation dialogues per benchmark (the first of the held-out images, built like the "
        "benchmark): each point of a checkpoint curve is evaluated on them",
    )


class VStarConfig(Strict):
    """V*Bench (Table 9), evaluated as its own code does (regionreasoner.evaluate.vstar)."""

    snapshot: str = Field(default="vstar_bench", description="snapshot name in the data manifest (snapshots:)")
    questions: PositiveInt = Field(
        default=191, description="questions of the benchmark (115 attribute + 76 spatial): its size for cost planning"
    )
    models: list[str] = Field(min_length=1, description="model ids evaluated on it (Table 9 rows: report.vstar_rows)")


class RowSpec(Strict):
    label: str
    reported_as: str | None = None


class DifferenceSpec(Strict):
    a: str = Field(description="model id")
    b: str = Field(description="model id subtracted from a")
    turns: Literal["round 1", "all turns", "cited turns"]


class ReportConfig(Strict):
    synthetic_note: str
    table1_rows: dict[str, RowSpec]
    ablation_rows: dict[str, str]
    single_round_rows: dict[str, str]
    alpha_beta_rows: dict[str, str]
    vstar_rows: dict[str, str] = Field(default_factory=dict, description="Table 9: reported row name -> model id")
    not_reproduced: dict[str, str] = Field(
        default_factory=dict,
        description="reported rows without a reproduced counterpart: row name -> the reason, shown in the table",
    )
    bench_names: dict[str, str]
    differences: list[DifferenceSpec] = Field(
        default_factory=list,
        description="AP@0.5 differences a - b shown in the training table with a paired bootstrap interval",
    )


class PipelineConfig(Strict):
    seed: int
    results: str
    data: DataConfig
    benchmarks: dict[str, BenchmarkConfig] = Field(min_length=1)
    bench: BenchConfig
    train_data: TrainDataConfig
    model: ModelConfig
    prompt: PromptSection
    rewards: RewardsConfig
    sft: SFTSection
    grpo: GRPOSection
    evaluate: EvaluateConfig
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    vstar: VStarConfig | None = Field(default=None, description="V*Bench (Table 9); null: not evaluated")
    report: ReportConfig

    def model_ids(self) -> list[str]:
        """Every model id the pipeline can evaluate ("random": the random-object baseline)."""
        ids = ["random", "base", "sft", *self.grpo_runs()]
        return ids + [f"released-{name}" for name in self.model.released]

    def variant_seeds(self, variant: str) -> list[int]:
        """The seeds ``variant`` is trained with: its ``seeds``, else the top-level ``seed``."""
        return self.grpo.variants[variant].seeds or [self.seed]

    def grpo_runs(self) -> dict[str, GRPORun]:
        """Every GRPO training by model id, variants in config order, each once per seed."""
        return {
            grpo_model(variant, None if i == 0 else seed): GRPORun(variant, seed)
            for variant in self.grpo.variants
            for i, seed in enumerate(self.variant_seeds(variant))
        }

    def seed_models(self, model: str) -> list[str]:
        """The models a table row naming ``model`` averages: every seed of the variant when ``model``
        is a variant's id (``grpo-<variant>``), else ``model`` alone (a seed's own id included)."""
        variant = next((v for v in self.grpo.variants if grpo_model(v) == model), None)
        if variant is None:
            return [model]
        return [m for m, run in self.grpo_runs().items() if run.variant == variant]

    def trained_models(self) -> list[str]:
        """The models this pipeline trains: the SFT warm-up when enabled, then every GRPO run (each
        variant once per seed)."""
        return (["sft"] if self.sft.enabled else []) + list(self.grpo_runs())

    def curve_models(self) -> list[str]:
        """The trained models that have a checkpoint curve: those keeping a checkpoint besides the
        final one. Without one a curve would be a single point, the final model the tables already
        evaluate, and there would be nothing for ``evaluate.checkpoint`` to choose between."""
        return [model for model in self.trained_models() if len(self.curve_steps(model)) > 1]

    def curve_steps(self, model: str) -> list[int]:
        """Steps of a trained model's checkpoint curve, its final step (``max_steps``) last."""
        if model == "sft":
            return [*self.sft.curve_steps, self.sft.max_steps]
        own = self.grpo.variants[self.grpo_runs()[model].variant].curve_steps
        return [*(self.grpo.curve_steps if own is None else own), self.grpo.max_steps]


class GRPORun(NamedTuple):
    """One GRPO training: a variant of ``grpo.variants`` and the seed its trainer gets."""

    variant: str
    seed: int


def grpo_model(variant: str, seed: int | None = None) -> str:
    """The model id of a GRPO training, defined here only. The variant's first seed (``seed`` None)
    keeps the id ``grpo-<variant>``, so a config without ``seeds`` has the ids, outputs and tables
    it had before seeds existed; each further seed is ``grpo-<variant>-seed<N>``."""
    return f"grpo-{variant}" if seed is None else f"grpo-{variant}-seed{seed}"


class ConfigError(InputError):
    """A config file failed validation; the first line names the file and the first problem, and says what to do."""


BASE_CONFIG = "config/config.yaml"  # the complete config an overlay names in ``extends:``


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema model of the section at ``loc`` (through named collections such as grpo.variants.NAME)."""
    kind: Any = PipelineConfig
    for part in loc:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            kind = field.annotation if field else None
        elif typing.get_origin(kind) is dict:
            kind = typing.get_args(kind)[1]
        else:
            return None
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _problem(error: dict[str, Any]) -> str:
    """One key's problem: an unknown key suggests the nearest valid one (a typo is the usual cause)."""
    loc = tuple(error["loc"])
    key = ".".join(str(p) for p in loc) or "<root>"
    if error["type"] == "extra_forbidden":
        section = _model_at(loc[:-1])
        valid = sorted(section.model_fields) if section else []
        near = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"valid keys here: {', '.join(valid)}"
        return f"{key}: unknown key; {hint}"
    return f"{key}: {error['msg']} (got {error.get('input')!r})"


class PreflightError(RuntimeError):
    """A valid config cannot run on this machine (regionreasoner.preflight); the message says what
    is missing and what was found."""


def _format_errors(source: str, err: ValidationError) -> str:
    """The errors with the one that matters first.

    A file that names no base fails with a "Field required" for every setting it leaves out; that
    wall hides the two facts the user needs (the file is not a complete config; which key is
    misspelt), so the missing settings are summarised in the first line and the others listed after."""
    errors = err.errors()
    missing_sections = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
    if missing_sections:
        others = [_problem(e) for e in errors if e["type"] != "missing"]
        missing = sum(e["type"] == "missing" for e in errors)
        head = (
            f"{source}: not a complete configuration ({missing} required settings missing: "
            f"{', '.join(missing_sections)}...); to change only some settings, put '{EXTENDS}: {BASE_CONFIG}' "
            "at its top"
        )
        return "\n".join([head, *(f"  {line}" for line in others)])
    problems = [_problem(e) for e in errors]
    fix = "" if errors[0]["type"] == "extra_forbidden" else "; fix that value"
    more = f" ({len(problems) - 1} more below)" if len(problems) > 1 else ""
    return "\n".join([f"{source}: invalid configuration: {problems[0]}{fix}{more}", *(f"  {p}" for p in problems[1:])])


def _check_references(cfg: PipelineConfig, source: str) -> None:
    """Cross-field checks the schema cannot express: every model id named must exist."""
    known = set(cfg.model_ids())
    trainings = sum(len(cfg.variant_seeds(v)) for v in cfg.grpo.variants)
    if len(cfg.grpo_runs()) < trainings:
        raise ConfigError(
            f"{source}: invalid configuration: grpo.variants: two trainings get the same model id "
            "(a variant named like another's seed, '<variant>-seed<N>'); rename the variant"
        )
    named = {f"evaluate.models[{i}]": m for i, m in enumerate(cfg.evaluate.models)}
    named |= {f"report.table1_rows.{m}": m for m in cfg.report.table1_rows}
    named |= {f"vstar.models[{i}]": m for i, m in enumerate(cfg.vstar.models if cfg.vstar else [])}
    for section in ("ablation_rows", "single_round_rows", "alpha_beta_rows", "vstar_rows"):
        named |= {f"report.{section}.{k}": v for k, v in getattr(cfg.report, section).items()}
    for i, spec in enumerate(cfg.report.differences):
        named |= {f"report.differences[{i}].a": spec.a, f"report.differences[{i}].b": spec.b}
    bad = [
        f"  {key}: unknown model id {mid!r}; choose one of {sorted(known)}"
        for key, mid in named.items()
        if mid not in known
    ]
    bad += [
        f"  prompt.models.{pattern}: matches no model id; choose one of {sorted(known)}"
        for pattern in cfg.prompt.models
        if not fnmatch.filter(known, pattern)
    ]
    for i, spec in enumerate(cfg.report.differences):
        counts = {len(cfg.seed_models(m)) for m in (spec.a, spec.b) if m in known}
        if len(counts - {1}) > 1:
            bad.append(
                f"  report.differences[{i}]: {spec.a} and {spec.b} have different numbers of seeds "
                f"({' and '.join(map(str, sorted(counts)))}); seed i of a is paired with seed i of b, so give "
                "both variants the same number of seeds"
            )
    evaluated = set(cfg.vstar.models) if cfg.vstar else set()
    bad += [
        f"  report.vstar_rows.{row}: {mid!r} is not evaluated on V*Bench (vstar.models)"
        for row, mid in cfg.report.vstar_rows.items()
        if mid not in evaluated
    ]
    if bad:
        more = f" ({len(bad) - 1} more below)" if len(bad) > 1 else ""
        raise ConfigError("\n".join([f"{source}: invalid configuration: {bad[0].strip()}{more}", *bad[1:]]))


def validate_config(raw: dict[str, Any], source: str = "config") -> PipelineConfig:
    """Validate a config mapping; raise ConfigError naming every bad key."""
    try:
        cfg = PipelineConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None
    _check_references(cfg, source)
    return cfg


def read_config_file(path: str | Path) -> dict[str, Any]:
    """One YAML config file as written (an overlay's ``extends`` unresolved)."""
    try:
        raw = read_yaml(path)
    except InputError as err:
        raise ConfigError(str(err)) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: holds a YAML {type(raw).__name__}, expected a mapping of settings (start from {BASE_CONFIG})"
        )
    return raw


EXTENDS = "extends"  # top-level key of an overlay: the path of the config it changes


def config_chain(raw: dict[str, Any], source: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, mapping)`` of a config and of every file it extends, the config itself first.

    Base paths are relative to the working directory, like every other path in a config. DVC
    reads params from the files themselves, so dvc.yaml needs the chain, not only the merge."""
    chain = [(source, raw)]
    while EXTENDS in chain[-1][1]:
        name, base = chain[-1][0], chain[-1][1][EXTENDS]
        if not isinstance(base, str):
            raise ConfigError(f"{name}: {EXTENDS}: expected the path of a config file (got {base!r})")
        if Path(base).resolve() in {Path(n).resolve() for n, _ in chain}:
            raise ConfigError(f"{source}: {EXTENDS} forms a cycle: {' -> '.join([n for n, _ in chain] + [base])}")
        if not Path(base).is_file():
            raise ConfigError(
                f"{name}: {EXTENDS}: no file {base} (relative to {Path.cwd()}); fix the path, "
                "or run from the repository root"
            )
        chain.append((base, read_config_file(base)))
    return chain


def _section(model: type[BaseModel] | None, key: str) -> type[BaseModel] | None:
    """The schema model of ``model.key`` when that field is a section (a model), else None."""
    field = model.model_fields.get(key) if model else None
    kind = field.annotation if field else None
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def merge_overlay(
    base: dict[str, Any], overlay: dict[str, Any], model: type[BaseModel] = PipelineConfig
) -> dict[str, Any]:
    """``base`` with ``overlay`` written over it; neither is modified.

    Sections (fields whose schema type is a model, such as ``sft`` or ``data.synth``) merge key by
    key, so an overlay names only the settings it changes. Everything else is replaced whole:
    values, lists, and the mappings whose keys the user names (``grpo.variants``, ``benchmarks``,
    ``report.*_rows``, ``model.released``...), so that an overlay can drop the base's GRPO variants
    or report rows by listing the ones it keeps. The rule follows the schema: no list to maintain."""
    merged = dict(base)
    for key, value in overlay.items():
        section = _section(model, key)
        if section and isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = merge_overlay(base[key], value, section)
        else:
            merged[key] = value
    return merged


def resolve_extends(raw: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """The full config of ``raw``: every base it extends merged under it, without ``extends``."""
    merged: dict[str, Any] = {}
    for _, layer in reversed(config_chain(raw, source)):
        merged = merge_overlay(merged, {k: v for k, v in layer.items() if k != EXTENDS})
    return merged


def load_config(path: str | Path) -> PipelineConfig:
    """Read a YAML config file, resolve the files it extends, and validate the result."""
    return validate_config(resolve_extends(read_config_file(path), str(path)), str(path))


def json_schema() -> str:
    """The JSON schema of the config, as committed in workflow/schemas/config.schema.json."""
    return json.dumps(PipelineConfig.model_json_schema(), indent=1, sort_keys=True) + "\n"


def write_resolved(raw: dict[str, Any], path: str | Path) -> Path:
    """Write the merged, validated config where the stage commands read it.

    Snakemake merges ``configfile:``, ``--configfile`` and ``--config`` overrides; the package's
    commands read this one file, so every stage sees exactly the config Snakemake resolved. The file
    is rewritten only when its content changes. Keys keep the config's order: the order of
    ``grpo.variants`` is the order of the tables' variant rows.
    """
    from regionreasoner.io import atomic_write_text

    path = Path(path)
    text = yaml.safe_dump(raw, sort_keys=False)
    if not path.exists() or path.read_text() != text:
        atomic_write_text(path, text)
    return path


# Trainer keys that decide how a run is executed, not what it learns: a change reruns no training.
OPERATIONAL_KEYS = (
    "curve_steps",
    "save_steps",
    "save_total_limit",
    "disk_gb",
    "threads",
    "accelerate_config",
    "gradient_checkpointing",
)
# Trainer keys whose product with the micro-batch is the global batch (``global_batch``). Snakemake
# tracks the product, so more GPUs with fewer accumulation steps (the same batch; bnpo averages the
# micro-batch token means) rerun nothing; DVC cannot track a product and tracks these keys.
BATCH_KEYS = ("gradient_accumulation_steps", "gpus", "cpu_processes")
# What a prompt token of stages.STAGES stands for (``prompt_keys``).
DEFAULT_PROMPT = ("prompt.system", "prompt.user", "prompt.instruction")

TRAINER_STAGES = ("sft", "grpo")


def trainer_keys(raw: dict[str, Any], stage: str) -> list[str]:
    """The keys of a trainer section that change its weights (``<stage>.*`` of stages.STAGES)."""
    return [f"{stage}.{k}" for k in raw[stage] if k not in (*OPERATIONAL_KEYS, *BATCH_KEYS, "variants")]


def prompt_keys(raw: dict[str, Any], use: str, model: str | None = None) -> list[str]:
    """The prompt keys a stage renders: ``default`` (system + user + instruction), ``train`` (GRPO's:
    ``prompt.train`` when set) or ``model`` (``model``'s evaluation prompt: its ``prompt.models``
    entry, exact id first, else the first matching pattern, as models.prompts picks it).

    Without ``model``, ``model`` means every evaluation prompt (DVC cannot vary params per stage of a
    ``foreach``)."""
    prompt = raw["prompt"]
    if use == "train":
        return ["prompt.train"] if prompt.get("train") else list(DEFAULT_PROMPT)
    if use == "model":
        models = prompt.get("models") or {}
        if model is None:
            return [*DEFAULT_PROMPT, *(["prompt.models"] if models else [])]
        pattern = model if model in models else next((p for p in models if fnmatch.fnmatchcase(model, p)), None)
        return [f"prompt.models.{pattern}"] if pattern else list(DEFAULT_PROMPT)
    return list(DEFAULT_PROMPT)


def stage_keys(raw: dict[str, Any], stage: str, model: str | None = None) -> list[str]:
    """The keys of ``stage`` (stages.STAGES) as concrete dotted keys of ``raw``."""
    keys: list[str] = []
    for key in STAGES[stage].keys:
        if key.endswith(".*"):
            keys += trainer_keys(raw, key[:-2])
        elif key.startswith("prompt:"):
            keys += prompt_keys(raw, key.partition(":")[2], model)
        else:
            keys.append(key)
    return list(dict.fromkeys(keys))


def global_batch(section: dict[str, Any]) -> int:
    """Completions per optimizer step: micro-batch x accumulation x processes (GPUs, else CPU ranks)."""
    processes = section.get("gpus") or section.get("cpu_processes", 1)
    return section["batch_size"] * section.get("gradient_accumulation_steps", 1) * processes


def _lookup(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        node = node[part] if part in node else None
        if node is None:
            return None
    return node


def stage_params(
    raw: dict[str, Any], stage: str, variant: str | None = None, model: str | None = None, seed: int | None = None
) -> str:
    """The config slice a stage's job depends on, as canonical JSON.

    Snakemake reruns a job when its params change; giving each rule only its own slice means that
    changing a reward weight reruns GRPO, evaluation and tables, but not data or SFT; an evaluation
    prompt reruns only the evaluation of ``model``; operational keys rerun nothing. A trainer's
    slice carries its global batch, so a GPU count changed with the accumulation steps (same batch)
    reruns nothing, and one that changes the batch reruns it. A GRPO slice holds the variant without
    its ``seeds`` list and, where the variant lists seeds, the ``seed`` of this training (else the
    top-level seed, already in the slice): adding or changing one seed reruns that seed's model only."""
    picked: dict[str, Any] = {key: _lookup(raw, key) for key in stage_keys(raw, stage, model)}
    if stage in TRAINER_STAGES:
        picked[f"{stage}.global_batch"] = global_batch(raw[stage])
    if stage == "grpo":
        spec = raw["grpo"]["variants"][variant] if variant else None
        picked["grpo.variant"] = (
            {k: v for k, v in spec.items() if k not in (*OPERATIONAL_KEYS, "seeds")} if spec else None
        )
        if spec and spec.get("seeds"):
            picked["grpo.seed"] = seed
    return json.dumps(picked, sort_keys=True, separators=(",", ":"))
