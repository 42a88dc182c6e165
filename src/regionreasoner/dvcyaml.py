"""The DVC pipeline (dvc.yaml) written from a config, so one definition serves both scales.

Snakemake builds; DVC versions what it built. Each DVC stage runs Snakemake on the targets of one
artifact group with ``--allowed-rules`` naming the group's own rules: upstream outputs are files DVC
has checked out, never jobs this stage could rerun, and DVC deletes a stage's outputs before running
it, so Snakemake rebuilds exactly those. The stage list follows the config: one stage per GRPO
variant (a ``foreach`` over the config's variants, read when DVC runs) and one per further seed of a
variant (``grpo_seeds``, written from the config), one evaluation stage per
model that the config evaluates or that a table or figure reads, a fetch stage per released
checkpoint evaluated, and no SFT stage when nothing starts from the warm-up. Table and figure stages
depend on exactly the files their builders declare (``table_inputs``, ``figure_inputs``), and every
stage tracks the config keys its Snakemake jobs rerun on (``stages.STAGES``), so no module here
lists settings or rules one by one. DVC reads params from the
files themselves, so for an overlay config (``extends``) each key is tracked in every file of the
chain that sets it: a change to a base setting the overlay overrides reruns a stage needlessly,
never leaves one stale. After adding models, table rows or GRPO keys to a config, write dvc.yaml
again: ``regionreasoner dvc-yaml --configfile <config>``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from regionreasoner import paths
from regionreasoner.config import (
    BATCH_KEYS,
    TRAINER_STAGES,
    PipelineConfig,
    config_chain,
    grpo_model,
    read_config_file,
    resolve_extends,
    stage_keys,
    validate_config,
)
from regionreasoner.io import atomic_write_text
from regionreasoner.report.figures import figure_inputs
from regionreasoner.report.tables import table_inputs
from regionreasoner.report.targets import (
    NOTEBOOK_FIGURE_NAMES,
    TABLE_NAMES,
    curve_figure_names,
    figure_files,
    figure_names,
    table_files,
)
from regionreasoner.stages import rules_of

# The Snakefile sits at the top level, so Snakemake does not find workflow/profiles/default by
# itself: name it (local cores, every rerun trigger).
SNAKEMAKE = "snakemake --workflow-profile workflow/profiles/default"
RANDOM = "random"  # the random-object baseline's model id (rule evaluate_random)
TRAIN_CODE = ["src/regionreasoner/train", "src/regionreasoner/models"]
EVAL_MODES = ("multi", "single")
# The rules of the DVC bench stage: test and validation dialogues, training turns (stages.STAGES).
DIALOGUE_STAGES = ("bench", "train_data", "validation")
DIALOGUE_RULES = " ".join(rules_of(*DIALOGUE_STAGES))
# The rules of a DVC curves stage: score the points, then the curve (and the chosen checkpoint's folder).
POINT_RULES = ("evaluate_checkpoint", "probe_checkpoint", "curve")


def _sets(layer: dict[str, Any], key: str) -> bool:
    """Whether one config file writes the dotted ``key``."""
    node: Any = layer
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


class Pipeline:
    """Stages of one config; paths are the config's, params are read from ``config_file`` and the
    files it extends (base first)."""

    def __init__(self, config_file: str | Path) -> None:
        self.config_file = str(config_file)
        own = read_config_file(config_file)
        self.files: list[tuple[str, dict[str, Any]]] = config_chain(own, self.config_file)[::-1]
        self.raw: dict[str, Any] = resolve_extends(own, self.config_file)
        self.cfg: PipelineConfig = validate_config(self.raw, self.config_file)
        self.r = self.cfg.results
        self.sm = f"{SNAKEMAKE} --configfile {self.config_file}"

    # ---- helpers ------------------------------------------------------------------------------

    def params(self, *stages: str, extra: tuple[str, ...] = ()) -> list[dict[str, list[str]]]:
        """The keys the Snakemake stages read (``stages.STAGES``), plus ``extra``, each
        under every file of the config's chain that sets it.

        Where Snakemake tracks a value DVC cannot address, DVC tracks the keys it comes from: a
        trainer's ``BATCH_KEYS`` (Snakemake: their product, the global batch), every evaluation
        prompt (Snakemake: the one prompt of each model; a ``foreach`` has one params list for all
        its stages). DVC cannot address keys with dots, which variant names carry (``a1.0_b0.5``),
        so each GRPO variant rides in its stage's command instead (see ``grpo``)."""
        keys = [k for stage in stages for k in stage_keys(self.raw, stage)]
        keys += [f"{stage}.{k}" for stage in stages if stage in TRAINER_STAGES for k in BATCH_KEYS]
        keys = list(dict.fromkeys([*keys, *extra]))
        return [{name: written} for name, layer in self.files if (written := [k for k in keys if _sets(layer, k)])]

    def variants_file(self) -> str:
        """The file whose ``grpo.variants`` the GRPO stages' ``foreach`` reads (the nearest that sets
        them: an overlay replaces the base's variants whole)."""
        return next(name for name, layer in reversed(self.files) if _sets(layer, "grpo.variants"))

    def path(self, *parts: str) -> str:
        return "/".join([self.r, *parts])

    def run(self, rules: str, *targets: str) -> str:
        return f"{self.sm} --allowed-rules {rules} -- {' '.join(targets)}"

    def grpo_init(self, variant: str) -> str:
        """The checkpoint a variant starts from, as ``grpo_init`` in workflow/rules/common.smk."""
        use_sft = self.cfg.grpo.variants[variant].sft
        return "sft" if (self.cfg.sft.enabled if use_sft is None else use_sft) else "base"

    def evaluated_models(self) -> list[str]:
        """``evaluate.models`` and every model a table or figure reads, in first-mention order."""
        read = [path.parts[0] for path in self.report_inputs_under("eval") if path.name != "vstar.json"]
        return list(dict.fromkeys([*self.cfg.evaluate.models, *read]))

    def probed_models(self) -> list[str]:
        """Models whose held-out reward probe a table or figure reads (the training table's)."""
        return list(dict.fromkeys(path.stem for path in self.report_inputs_under("probe")))

    def report_inputs_under(self, folder: str) -> list[Path]:
        """The files tables and figures read under ``{results}/<folder>``, relative to it."""
        root = Path(self.path(folder))
        return [Path(p).relative_to(root) for p in self.report_inputs if Path(p).is_relative_to(root)]

    @functools.cached_property
    def report_inputs(self) -> list[str]:
        """Every file a table or figure declares, in declaration order (computed once per config)."""
        return [p for name in TABLE_NAMES for p in table_inputs(self.cfg, name)] + [
            p for name in figure_names(self.cfg) for p in figure_inputs(self.cfg, name)
        ]

    # ---- stages -------------------------------------------------------------------------------

    def data(self) -> dict[str, Any]:
        return {
            "desc": "Refer datasets (procedural scenes, or COCO + refer downloads at paper scale)",
            # --until/--omit-from: the jobs upstream of the dialogue builders, whatever the source.
            "cmd": f"{self.sm} --until {DIALOGUE_RULES} --omit-from {DIALOGUE_RULES}",
            "deps": ["src/regionreasoner/data", "src/regionreasoner/images.py", "workflow/rules/data.smk"],
            "params": self.params("data", extra=("benchmarks",)),
            "outs": [self.path("data")],
        }

    def bench(self) -> dict[str, Any]:
        return {
            "desc": "RegionDial-Bench test dialogues, single-round protocol, datasheets, validation dialogues, "
            "training and held-out turns",
            # data's rules rerun only when their params or code change, which the data stage tracks.
            "cmd": f"{self.sm} --until {DIALOGUE_RULES}",
            "deps": [
                self.path("data"),
                "workflow/rules/bench.smk",
                "src/regionreasoner/dialogs",
                "src/regionreasoner/data/refer.py",
            ],
            "params": self.params(*DIALOGUE_STAGES, extra=("seed",)),
            "outs": [self.path("bench"), self.path("train")],
        }

    def base_model(self) -> dict[str, Any]:
        tiny = self.cfg.model.base == "tiny"
        return {
            "desc": "The base checkpoint (tiny Qwen2.5-VL built locally, or the hub model)",
            "cmd": self.run("build_model" if tiny else "prepare_model", self.path("models", "base")),
            "deps": ([self.path("train", "turns.jsonl")] if tiny else [])
            + ["src/regionreasoner/models", "workflow/rules/model.smk"],
            "params": self.params("model"),
            "outs": [self.path("models", "base")],
        }

    def released(self, names: list[str]) -> dict[str, Any]:
        """``fetch_released@<name>``: a released checkpoint that a table evaluates without training."""
        model = self.path("models", "released-${item}")
        return {
            "foreach": names,
            "do": {
                "desc": "A released checkpoint, evaluated without training",
                "cmd": self.run("fetch_released", model),
                "deps": ["src/regionreasoner/models", "workflow/rules/model.smk"],
                "params": self.params(extra=("model.released",)),
                "outs": [model],
            },
        }

    def segmenter(self) -> dict[str, Any]:
        """The SAM2 weights, fetched by a CPU job so evaluation jobs never download."""
        weights = paths.segmenter_weights(self.r)
        return {
            "desc": "SAM2 weights for the evaluation's masks",
            "cmd": self.run("fetch_segmenter", weights),
            "deps": ["src/regionreasoner/models/registry.py", "workflow/rules/evaluate.smk"],
            "params": self.params(extra=("evaluate.segmenter",)),
            "outs": [weights],
        }

    def sft(self) -> dict[str, Any]:
        return {
            "desc": "SFT warm-up checkpoint",
            "cmd": self.run("sft", self.path("models", "sft")),
            "deps": [
                self.path("models", "base"),
                self.path("train", "turns.jsonl"),
                *TRAIN_CODE,
                "workflow/rules/sft.smk",
            ],
            "params": self.params("sft"),
            "outs": [self.path("models", "sft"), paths.kept_checkpoints(self.r, "sft")],
            "plots": [{self.path("train_metrics", "sft.csv"): {"x": "step", "y": "loss"}}],
        }

    def grpo(self) -> dict[str, Any]:
        """``grpo@<variant>`` for each variant of the config, read when DVC runs (``vars``).

        A variant's reward terms and weights ride in its command, after the shell comment sign:
        DVC params cannot address keys with dots (``a1.0_b0.5``), but a changed command reruns
        the stage just the same, and a variant added to the config gets its stage. The stages
        share one body, so when variants start from different checkpoints (``variants.<v>.sft``)
        each depends on all of them: an over-approximation that can rerun, never go stale. These
        stages train each variant's first seed (model ``grpo-<variant>``); a variant's ``seeds``
        list rides in its item, so changing it reruns the first seed too."""
        inits = sorted({self.grpo_init(v) for v in self.cfg.grpo.variants})
        model = self.path("models", "grpo-${key}")
        return {
            "foreach": "${grpo.variants}",
            "do": {
                "desc": "GRPO checkpoint of one reward variant (Tables 1-4, 11)",
                "cmd": self.run("grpo", model) + "  # variant: ${item}",
                "deps": self.grpo_deps(inits),
                "params": self.params("grpo"),
                "outs": [model, paths.kept_checkpoints(self.r, "grpo-${key}")],
                "plots": [{self.path("train_metrics", "grpo-${key}.csv"): {"x": "step", "y": "reward"}}],
            },
        }

    def grpo_deps(self, inits: list[str]) -> list[str]:
        """What a GRPO training reads: the checkpoints its variants start from, the training turns, the
        training and reward code and its rule (the same for a variant's first and further seeds)."""
        return [
            *(self.path("models", init) for init in inits),
            self.path("train", "turns.jsonl"),
            *TRAIN_CODE,
            "src/regionreasoner/rewards",
            "workflow/rules/grpo.smk",
        ]

    def grpo_seeds(self, extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``grpo_seeds@<model>`` for each seed after a variant's first (``PipelineConfig.grpo_runs``).

        Unlike ``grpo``, the items are written here, so adding a seed means writing dvc.yaml again
        (as adding a model does). Variant and seed ride in the command; the stages track the whole
        ``grpo.variants`` (DVC cannot address a variant whose name has dots): a change to any variant,
        its seeds list included, reruns every further seed, an over-approximation that never goes stale."""
        inits = sorted({self.grpo_init(run["variant"]) for run in extra.values()})
        model = self.path("models", "${key}")
        return {
            "foreach": extra,
            "do": {
                "desc": "GRPO checkpoint of one reward variant with a further seed (mean over seeds in the tables)",
                "cmd": self.run("grpo", model) + "  # variant: ${item.variant}, seed: ${item.seed}",
                "deps": self.grpo_deps(inits),
                "params": self.params("grpo", extra=("grpo.variants",)),
                "outs": [model, paths.kept_checkpoints(self.r, "${key}")],
                "plots": [{self.path("train_metrics", "${key}.csv"): {"x": "step", "y": "reward"}}],
            },
        }

    def segmenter_weights(self) -> list[str]:
        return [paths.segmenter_weights(self.r)] if self.cfg.evaluate.segmenter == "sam2" else []

    def runs(self) -> list[str]:
        return [f"{bench}.{mode}" for bench in self.cfg.benchmarks for mode in EVAL_MODES]

    def model_groups(self, models: list[str]) -> list[tuple[str, list[str], str]]:
        """(stage suffix, models, folder under results) of the models a table stage loads: under
        ``evaluate.checkpoint: best_validation`` the ones with a curve load their chosen checkpoint
        (``selected/``, ``evaluate.curves.evaluated_model_dir``), the others their own folder."""
        if self.cfg.evaluate.checkpoint == "last":
            return [("", models, "models")]
        curved = set(self.cfg.curve_models())
        groups = [("", [m for m in models if m not in curved], "models")]
        groups.append(("_selected", [m for m in models if m in curved], "selected"))
        return [group for group in groups if group[1]]

    def evaluate(self, models: list[str], folder: str = "models") -> dict[str, Any]:
        """``evaluate@<model>`` for each model evaluated (the random baseline has its own stage)."""
        metrics = [self.path("eval", "${item}", f"{run}.json") for run in self.runs()]
        return {
            "foreach": models,
            "do": {
                "desc": "Every benchmark, multi- and single-round, for one model (Tables 1-4, 10, 11)",
                "cmd": self.run("evaluate", *metrics),
                "deps": [
                    self.path(folder, "${item}"),
                    self.path("bench"),
                    *self.segmenter_weights(),
                    "src/regionreasoner/evaluate",
                    "src/regionreasoner/rewards",
                    "src/regionreasoner/models",
                    "workflow/rules/evaluate.smk",
                ],
                "params": self.params("evaluate"),
                # Only the metric JSON files are metrics; predictions are plain outputs.
                "outs": [self.path("eval", "${item}", f"{run}.predictions.jsonl") for run in self.runs()],
                "metrics": metrics,
            },
        }

    def probe(self, models: list[str], folder: str = "models") -> dict[str, Any]:
        """``probe@<model>``: the sampled reward of one checkpoint on the held-out turns."""
        summary = paths.probe_metrics(self.r, "${item}")
        return {
            "foreach": models,
            "do": {
                "desc": "Held-out reward probe of one model (training table)",
                "cmd": self.run("probe", summary),
                "deps": [
                    self.path(folder, "${item}"),
                    paths.heldout_turns(self.r),
                    "src/regionreasoner/evaluate",
                    "src/regionreasoner/rewards",
                    "src/regionreasoner/models",
                    "workflow/rules/evaluate.smk",
                ],
                "params": self.params("probe"),
                "metrics": [summary],
            },
        }

    def vstar(self) -> dict[str, Any]:
        """``fetch_vstar`` and ``evaluate_vstar@<model>``: V*Bench (Table 9) where the config evaluates it."""
        bench = paths.snapshot_dir(self.r, self.cfg.vstar.snapshot)
        metrics, answers = paths.vstar_metrics(self.r, "${item}"), paths.vstar_answers(self.r, "${item}")
        stages: dict[str, Any] = {
            "fetch_vstar": {
                "desc": "V*Bench at its pinned hub revision, tree-verified (data manifest snapshots)",
                "cmd": self.run("fetch_vstar", bench),
                "deps": ["src/regionreasoner/data/download.py", "src/regionreasoner/data/manifest.yaml"],
                "params": self.params(extra=("vstar.snapshot",)),
                "outs": [bench],
            }
        }
        for suffix, models, folder in self.model_groups(list(self.cfg.vstar.models)):
            stages[f"evaluate_vstar{suffix}"] = {
                "foreach": models,
                "do": {
                    "desc": "V*Bench accuracy of one model, options scored by likelihood (Table 9)",
                    "cmd": self.run("evaluate_vstar", metrics),
                    "deps": [
                        self.path(folder, "${item}"),
                        bench,
                        "src/regionreasoner/evaluate",
                        "src/regionreasoner/models",
                        "workflow/rules/evaluate.smk",
                    ],
                    "params": self.params("evaluate"),
                    "outs": [answers],
                    "metrics": [metrics],
                },
            }
        return stages

    def curves(self) -> dict[str, Any]:
        """``curves@<model>``: the checkpoint curve of a model that keeps checkpoints (validation
        dialogues and probe of its kept checkpoints and final model) and, under best_validation, the
        chosen checkpoint's folder."""
        best = self.cfg.evaluate.checkpoint == "best_validation"
        curve, selected = paths.curve(self.r, "${item}"), paths.selected_model(self.r, "${item}")
        final_probe = [] if best else [paths.probe_metrics(self.r, "${item}")]  # evaluate.curves.point_probe
        rules = " ".join([*POINT_RULES, *(["select_checkpoint"] if best else [])])
        return {
            "foreach": self.cfg.curve_models(),
            "do": {
                "desc": "Checkpoint curve of one trained model and the checkpoint evaluate.checkpoint picks",
                "cmd": self.run(rules, curve, *([selected] if best else [])),
                "deps": [
                    self.path("models", "${item}"),
                    paths.kept_checkpoints(self.r, "${item}"),
                    *(paths.validation_bench(self.r, b) for b in self.cfg.benchmarks),
                    paths.heldout_turns(self.r),
                    *final_probe,
                    "src/regionreasoner/evaluate",
                    "src/regionreasoner/rewards",
                    "src/regionreasoner/models",
                    "workflow/rules/curves.smk",
                ],
                "params": self.params("evaluate", "probe", "curves"),
                "outs": [paths.curve_points(self.r, "${item}"), *([selected] if best else [])],
                "metrics": [curve],
            },
        }

    def evaluate_random(self) -> dict[str, Any]:
        return {
            "desc": "The random-object baseline (chance level) beside the models' rows",
            "cmd": self.run("evaluate_random", "evaluate_random"),
            "deps": [
                self.path("data"),
                self.path("bench"),
                "src/regionreasoner/evaluate",
                "workflow/rules/evaluate.smk",
            ],
            "params": self.params(extra=("seed",)),
            "outs": [self.path("eval", RANDOM, f"{run}.predictions.jsonl") for run in self.runs()],
            "metrics": [self.path("eval", RANDOM, f"{run}.json") for run in self.runs()],
        }

    def table(self, name: str) -> dict[str, Any]:
        outs = [str(p) for p in table_files(self.cfg, name)]
        return {
            "desc": f"{name} from the files it declares, beside the reported numbers",
            "cmd": self.run(f"table_{name}", *outs),
            "deps": [*table_inputs(self.cfg, name), "src/regionreasoner/report/tables.py", "workflow/rules/report.smk"],
            "params": self.params("report"),
            "outs": outs,
        }

    def figure(self, name: str) -> dict[str, Any]:
        png, pdf = (str(p) for p in figure_files(self.cfg, name))
        inputs = figure_inputs(self.cfg, name)
        notebook = name in NOTEBOOK_FIGURE_NAMES
        rule = "figure_curves" if name in curve_figure_names(self.cfg) else f"figure_{name}"
        # Bench records name their images, which lie under the data directory.
        reads_bench = any(p.startswith(self.path("bench", "")) for p in inputs)
        images = [self.path("data")] if reads_bench and not notebook else []
        code = (["workflow/notebooks/turns_per_round.py.ipynb"] if notebook else []) + [
            "src/regionreasoner/report/figures.py",
            "src/regionreasoner/report/tables.py",
            "workflow/rules/report.smk",
        ]
        return {
            "desc": f"{name} from the files it declares" + (", drawn by a Jupyter notebook" if notebook else ""),
            "cmd": self.run("turns_per_round_figure" if notebook else rule, png),
            "deps": [*inputs, *images, *code],
            "params": self.params("report"),
            "outs": [png, pdf],
        }

    def stages(self) -> dict[str, dict[str, Any]]:
        stages = {"data": self.data(), "bench": self.bench(), "base_model": self.base_model()}
        models = self.evaluated_models()
        released = [n for n in self.cfg.model.released if f"released-{n}" in models]
        if released:
            stages["fetch_released"] = self.released(released)
        if "sft" in models or any(self.grpo_init(v) == "sft" for v in self.cfg.grpo.variants):
            stages["sft"] = self.sft()
        stages["grpo"] = self.grpo()
        firsts = {grpo_model(v) for v in self.cfg.grpo.variants}
        extra = {m: run._asdict() for m, run in self.cfg.grpo_runs().items() if m not in firsts}
        if extra:
            stages["grpo_seeds"] = self.grpo_seeds(extra)
        if self.segmenter_weights():
            stages["fetch_segmenter"] = self.segmenter()
        if self.cfg.curve_models():
            stages["curves"] = self.curves()
        for suffix, group, folder in self.model_groups([m for m in models if m != RANDOM]):
            stages[f"evaluate{suffix}"] = self.evaluate(group, folder)
        if RANDOM in models:
            stages["evaluate_random"] = self.evaluate_random()
        for suffix, group, folder in self.model_groups(self.probed_models()):
            stages[f"probe{suffix}"] = self.probe(group, folder)
        if self.cfg.vstar is not None:
            stages |= self.vstar()
        stages |= {name: self.table(name) for name in TABLE_NAMES}
        stages |= {name: self.figure(name) for name in figure_names(self.cfg)}
        return stages


def dvc_yaml(config_file: str | Path) -> str:
    """The text of dvc.yaml for ``config_file`` (a header, then the stages)."""
    header = (
        f"# Written by `regionreasoner dvc-yaml --configfile {config_file}` (src/regionreasoner/dvcyaml.py):\n"
        "# edit the config and write this file again rather than editing it. See docs/cluster.md.\n"
    )
    pipeline = Pipeline(config_file)
    # vars: the config file that sets the GRPO variants, for the GRPO stages' foreach over them.
    body = yaml.safe_dump({"vars": [pipeline.variants_file()], "stages": pipeline.stages()}, sort_keys=False, width=110)
    return header + body


def write_dvc_yaml(config_file: str | Path, out: Path) -> None:
    atomic_write_text(out, dvc_yaml(config_file))
