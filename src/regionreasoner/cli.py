"""The ``regionreasoner`` command: one subcommand per pipeline stage, no logic of its own.

Snakemake rules call these subcommands with explicit input and output paths; each subcommand
parses its arguments and calls one library function (thin entry points: the logic stays testable without the CLI).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from regionreasoner.config import PipelineConfig, PreflightError, load_config
from regionreasoner.io import missing


def _config(args: argparse.Namespace) -> PipelineConfig:
    return load_config(args.configfile)


def _check_variant(cfg: PipelineConfig, source: str, variant: str | None) -> None:
    """A --variant must name one of the config's GRPO variants (else a KeyError deep in training)."""
    if variant is not None and variant not in cfg.grpo.variants:
        known = ", ".join(cfg.grpo.variants)
        raise ValueError(f"{source}: grpo.variants has no {variant!r}; choose one of {known}")


def cmd_validate_config(args: argparse.Namespace) -> None:
    _config(args)
    print(f"{args.configfile}: valid")


def cmd_schema(args: argparse.Namespace) -> None:
    from regionreasoner.config import json_schema
    from regionreasoner.io import atomic_write_text

    atomic_write_text(args.out, json_schema())


def cmd_synth(args: argparse.Namespace) -> None:
    from regionreasoner.data.synth import write_synthetic_refer

    s = _config(args).data.synth
    write_synthetic_refer(
        Path(args.out),
        args.images or s.images,
        args.seed,
        s.image_size,
        s.cell,
        s.min_objects,
        s.max_objects,
        split_by=args.split_by,
        splits=s.splits,
    )


def cmd_download(args: argparse.Namespace) -> None:
    from regionreasoner.data.download import download_manifest

    d = _config(args).data.download
    download_manifest(Path(args.manifest or d.manifest), Path(args.out), args.names or None, d.mirrors, d.retries)


def cmd_fetch_snapshot(args: argparse.Namespace) -> None:
    from regionreasoner.data.download import download_snapshot

    download_snapshot(Path(args.manifest or _config(args).data.download.manifest), args.name, Path(args.out))


def _reported_table6(bench: str) -> dict | None:
    from regionreasoner.io import read_yaml
    from regionreasoner.report.tables import REPORTED as path

    if not path.exists():
        return None
    return (read_yaml(path) or {}).get("table6_turns_per_round", {}).get(bench)


def cmd_build_bench(args: argparse.Namespace) -> None:
    from regionreasoner.dialogs.bench import build_bench

    cfg = _config(args)
    build_bench(
        Path(args.refs),
        Path(args.instances),
        Path(args.captions) if args.captions else None,
        Path(args.images),
        args.splits,
        Path(args.out),
        Path(args.datasheet) if args.datasheet else None,
        args.seed,
        cfg.bench.max_rounds,
        list(cfg.bench.relations),
        reported=_reported_table6(args.name) if cfg.data.source == "download" else None,
        max_dialogues=args.max_dialogues,
    )


def cmd_convert_released(args: argparse.Namespace) -> None:
    from regionreasoner.dialogs.released import convert_released

    convert_released(
        Path(args.raw),
        Path(args.images) if args.images else None,
        Path(args.out),
        Path(args.datasheet) if args.datasheet else None,
        reported=_reported_table6(args.name),
    )


def cmd_fetch_released(args: argparse.Namespace) -> None:
    from regionreasoner.dialogs.released import fetch_released

    fetch_released(args.repo, Path(args.out), args.files)


def cmd_build_train(args: argparse.Namespace) -> None:
    from regionreasoner.dialogs.train import build_train

    cfg = _config(args)
    build_train(
        Path(args.refs),
        Path(args.instances),
        Path(args.captions) if args.captions else None,
        Path(args.images),
        args.splits,
        Path(args.out),
        cfg.model.frame,
        args.seed,
        list(cfg.bench.relations),
        cfg.train_data.cited_fraction,
    )


def cmd_merge_turns(args: argparse.Namespace) -> None:
    from regionreasoner.io import TURN_KEYS, atomic_write_jsonl, read_jsonl

    # read, not concatenated as text: a truncated or wrong file fails here, naming itself, not in training
    atomic_write_jsonl(args.out, [row for path in args.inputs for row in read_jsonl(path, TURN_KEYS)])


def cmd_build_single(args: argparse.Namespace) -> None:
    from regionreasoner.dialogs.bench import single_round_bench
    from regionreasoner.evaluate.metrics import read_bench
    from regionreasoner.io import atomic_write_json

    atomic_write_json(args.out, single_round_bench(read_bench(args.bench)))


def cmd_build_model(args: argparse.Namespace) -> None:
    from regionreasoner.models.prompts import PromptConfig
    from regionreasoner.models.tiny import TinyModelConfig, build_tiny_model

    cfg = _config(args)
    tiny = cfg.model.tiny.model_dump()
    tiny["mrope_section"] = tuple(tiny["mrope_section"])
    build_tiny_model(
        Path(args.turns),
        Path(args.out),
        TinyModelConfig(**tiny),
        PromptConfig.from_config(cfg),
        cfg.model.frame,
        cfg.seed,
    )


def cmd_fetch_model(args: argparse.Namespace) -> None:
    from regionreasoner.models.registry import fetch_model

    fetch_model(args.source, Path(args.out))


def _preflight_training(cfg: PipelineConfig, stage: str, args: argparse.Namespace) -> None:
    """The checks a training job makes before it loads anything (once, before the ranks start)."""
    from regionreasoner.preflight import preflight_training
    from regionreasoner.train.launch import LAUNCHED_MARKERS

    if not any(marker in os.environ for marker in LAUNCHED_MARKERS):
        for line in preflight_training(cfg, stage, Path(args.model), Path(args.train), Path(args.out).parent):
            print(f"preflight: {line}", flush=True)


def cmd_sft(args: argparse.Namespace) -> None:
    from regionreasoner.train.launch import relaunch_if_distributed
    from regionreasoner.train.sft import run_sft

    cfg = _config(args)
    _preflight_training(cfg, "sft", args)
    relaunch_if_distributed(cfg.sft, sys.argv, "sft")
    run_sft(cfg, Path(args.model), Path(args.train), Path(args.out), Path(args.metrics), Path(args.kept))


def cmd_grpo(args: argparse.Namespace) -> None:
    from regionreasoner.train.grpo import run_grpo
    from regionreasoner.train.launch import relaunch_if_distributed

    cfg = _config(args)
    _check_variant(cfg, args.configfile, args.variant)
    _preflight_training(cfg, "grpo", args)
    relaunch_if_distributed(cfg.grpo, sys.argv, "grpo")
    run_grpo(
        cfg,
        args.variant,
        Path(args.model),
        Path(args.train),
        Path(args.out),
        Path(args.metrics),
        Path(args.kept),
        args.seed,
    )


def cmd_preflight(args: argparse.Namespace) -> None:
    from regionreasoner.preflight import GB, preflight_evaluation, preflight_training

    cfg = load_config(args.configfile)
    if args.stage == "evaluate":
        weights = Path(args.segmenter_weights) if args.segmenter_weights else None
        done = preflight_evaluation(cfg, Path(args.model), weights)
    else:
        if not args.train:
            raise ValueError(f"preflight --stage {args.stage} needs --train; point at its training turns file")
        required = int(args.disk_gb * GB) if args.disk_gb else None
        done = preflight_training(cfg, args.stage, Path(args.model), Path(args.train), Path(cfg.results), required)
    print("\n".join(f"ok: {line}" for line in done))


def cmd_show_config(args: argparse.Namespace) -> None:
    from regionreasoner.train.configs import resolved

    cfg = load_config(args.configfile)
    _check_variant(cfg, args.configfile, args.variant)
    print(json.dumps(resolved(cfg, args.stage, args.variant, args.seed), indent=1, sort_keys=True, default=str))


def _pair(item: str) -> tuple[str, Path]:
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--run expects NAME=BENCH.json, got {item!r}")
    return name, Path(path)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from regionreasoner.evaluate.dialogue import evaluate_model
    from regionreasoner.evaluate.segment import make_segmenter
    from regionreasoner.models.prompts import max_new_tokens_for, prompt_for_model
    from regionreasoner.preflight import preflight_evaluation, torch_device

    cfg = _config(args)
    e = cfg.evaluate
    runs = dict(_pair(item) for item in args.run)
    model_id = args.model_id or Path(args.model).name
    weights = Path(args.segmenter_weights) if args.segmenter_weights else None
    for line in preflight_evaluation(cfg, Path(args.model), weights, list(runs.values())):
        print(f"preflight: {line}", flush=True)
    device = torch_device(e.gpus, "evaluate.gpus")
    segmenter = None
    if not args.boxes_only:
        segmenter = make_segmenter(
            e.segmenter, **({"weights": weights, "device": device} if e.segmenter == "sam2" else {})
        )
    evaluate_model(
        Path(args.model),
        runs,
        Path(args.out_dir),
        prompt_for_model(cfg, model_id),
        cfg.model.frame,
        max_new_tokens_for(cfg, model_id),
        e.batch_size,
        segmenter,
        cfg.model.attn_implementation,
        device=device,
        chunk=e.chunk_dialogues,
    )


def cmd_evaluate_vstar(args: argparse.Namespace) -> None:
    from regionreasoner.evaluate.dialogue import Generator
    from regionreasoner.evaluate.vstar import option_scorer, read_vstar, run_vstar
    from regionreasoner.models.prompts import prompt_for_model
    from regionreasoner.preflight import torch_device

    cfg = _config(args)
    device = torch_device(cfg.evaluate.gpus, "evaluate.gpus")  # before any weights load
    model_id = args.model_id or Path(args.model).name
    questions = read_vstar(Path(args.bench))
    generator = Generator.load(
        Path(args.model), prompt_for_model(cfg, model_id), cfg.model.frame, 1, 1, cfg.model.attn_implementation, device
    )
    scorer = option_scorer(generator.model, generator.processor, generator.answers.native_image, cfg.model.frame)
    run_vstar(questions, scorer, Path(args.out), model_id)


def cmd_probe(args: argparse.Namespace) -> None:
    from regionreasoner.evaluate.probe import probe_model

    summary = probe_model(_config(args), Path(args.model), Path(args.prompts), Path(args.out))
    print(
        f"{args.model}: {summary['rewards']} reward {summary['reward']:.3f} +/- {summary['reward_se']:.3f} "
        f"on {summary['prompts']} held-out prompts x {summary['generations']}"
    )


def cmd_curve(args: argparse.Namespace) -> None:
    from regionreasoner.evaluate.curves import write_curve

    result = write_curve(_config(args), args.model_id, Path(args.out))
    print(f"{args.model_id}: {len(result['points'])} points; {result['rule']} chooses step {result['chosen_step']}")


def cmd_select_checkpoint(args: argparse.Namespace) -> None:
    from regionreasoner.evaluate.curves import select_checkpoint

    print(f"{args.out}: linked from {select_checkpoint(Path(args.curve), Path(args.out))}")


def _cited_box(text: str | None) -> list[float] | None:
    if text is None:
        return None
    values = text.split(",")
    try:
        box = [float(v) for v in values]
    except ValueError:
        box = []
    if len(box) != 4:
        raise ValueError(f"--cited-box expects x1,y1,x2,y2, got {text!r}")
    return box


def cmd_show_prompt(args: argparse.Namespace) -> None:
    from regionreasoner.models.prompts import show_prompt

    cfg = load_config(args.configfile)
    if args.model not in cfg.model_ids():
        known = ", ".join(cfg.model_ids())
        raise ValueError(f"{args.configfile}: unknown model id {args.model!r}; choose one of {known}")
    print(show_prompt(cfg, args.model, args.question, _cited_box(args.cited_box)))


def cmd_baseline_random(args: argparse.Namespace) -> None:
    from regionreasoner.evaluate.baselines import DRAWS, evaluate_random_object

    runs = dict(_pair(item) for item in args.run)
    instances = dict(_pair(item) for item in args.instances)
    draws = DRAWS if args.draws is None else args.draws
    evaluate_random_object(runs, instances, Path(args.out_dir), args.seed, draws)


def cmd_score(args: argparse.Namespace) -> None:
    from regionreasoner.evaluate.metrics import format_metric, score_predictions

    metrics = score_predictions(Path(args.predictions), Path(args.bench), Path(args.out))
    print(f"{args.out}: {metrics['turns']} turns, AP@0.5 {metrics['ap50']:.1f}, gIoU {format_metric(metrics, 'giou')}")


def cmd_reward(args: argparse.Namespace) -> None:
    from regionreasoner.rewards.variants import reward_file

    reward_file(args.variant, Path(args.input), Path(args.out))


def cmd_table(args: argparse.Namespace) -> None:
    from regionreasoner.report.tables import build_table

    build_table(_config(args), args.name, Path(args.out_md), Path(args.out_tex))


def cmd_figure(args: argparse.Namespace) -> None:
    from regionreasoner.report.figures import build_figure

    build_figure(_config(args), args.name, Path(args.out))


def cmd_plan(args: argparse.Namespace) -> None:
    from regionreasoner.plan.dag import Profile, dry_run
    from regionreasoner.plan.planner import make_plan, render
    from regionreasoner.plan.throughput import load_figures
    from regionreasoner.report.targets import PURPOSES

    cfg = load_config(args.configfile)
    profile, figures = Profile(Path(args.profile)), load_figures(Path(args.throughput))  # inputs before the dry run
    jobs = dry_run(Path(args.configfile), args.targets, from_scratch=args.from_scratch)
    for target in args.targets:
        if target in PURPOSES:
            print(f"{target}: {PURPOSES[target]}")
    print(render(make_plan(jobs, cfg, profile, figures)))


def cmd_dvc_yaml(args: argparse.Namespace) -> None:
    from regionreasoner.dvcyaml import write_dvc_yaml

    write_dvc_yaml(Path(args.configfile), Path(args.out))


def _add(sub, name: str, handler: Callable, help: str, config: bool = True) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help)
    if config:
        parser.add_argument("--configfile", default="config/config.yaml", help="pipeline config (YAML)")
    parser.set_defaults(handler=handler)
    return parser


def _refer_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refs", required=True, help="refs(<splitBy>).p")
    parser.add_argument("--instances", required=True, help="COCO instances.json")
    parser.add_argument("--captions", help="COCO captions json")
    parser.add_argument("--images", required=True, help="image directory")
    parser.add_argument("--splits", nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="regionreasoner", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of a failure (also: {DEBUG_ENV}=1), not only its one-line message",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="STAGE")

    _add(sub, "validate-config", cmd_validate_config, "check a config file against the schema")
    p = _add(sub, "schema", cmd_schema, "write the config JSON schema", config=False)
    p.add_argument("--out", required=True)

    p = _add(sub, "synth", cmd_synth, "procedural scenes in the refer/COCO on-disk formats")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, help="number of images (default: data.synth.images)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-by", default="unc")

    p = _add(sub, "download", cmd_download, "download paper-scale data from the checksummed manifest")
    p.add_argument("--manifest")
    p.add_argument("--out", required=True)
    p.add_argument("--names", nargs="*")

    p = _add(
        sub, "fetch-snapshot", cmd_fetch_snapshot, "a hub dataset folder of the manifest (snapshots), tree-verified"
    )
    p.add_argument("--manifest")
    p.add_argument("--name", required=True, help="snapshot name, e.g. vstar_bench")
    p.add_argument("--out", required=True, help="the snapshot lands in OUT/<name>")

    p = _add(sub, "build-bench", cmd_build_bench, "RegionDial-Bench test dialogues (+ datasheet)")
    _refer_args(p)
    p.add_argument("--datasheet")
    p.add_argument("--name", default="", help="benchmark name (for the reported Table 6 row)")
    p.add_argument("--max-dialogues", type=int, help="keep the first N dialogues (the validation dialogues)")

    p = _add(
        sub,
        "convert-released",
        cmd_convert_released,
        "the authors' released benchmark file as bench records",
        config=False,
    )
    p.add_argument("--raw", required=True, help="released *_multi_turn.json")
    p.add_argument(
        "--images",
        help="folder the records' image_path values are relative to "
        "(default: the file's folder, as in the hub dataset)",
    )
    p.add_argument("--out", required=True)
    p.add_argument("--datasheet")
    p.add_argument("--name", default="", help="benchmark name (for the reported Table 6 row)")

    p = _add(
        sub, "fetch-released", cmd_fetch_released, "download the released benchmark dataset (paper scale)", config=False
    )
    p.add_argument("--repo", required=True, help="hub dataset id, or a local copy of its folder")
    p.add_argument("--out", required=True)
    p.add_argument("--files", nargs="+", required=True, help="released files inside the dataset (bench.released.files)")

    p = _add(sub, "build-train", cmd_build_train, "training turns (JSONL) with reference citations")
    _refer_args(p)

    p = _add(sub, "merge-turns", cmd_merge_turns, "concatenate training-turn files", config=False)
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)

    p = _add(sub, "build-single", cmd_build_single, "single-round version of a benchmark (Table 10)", config=False)
    p.add_argument("--bench", required=True)
    p.add_argument("--out", required=True)

    p = _add(sub, "build-model", cmd_build_model, "build the tiny Qwen2.5-VL and its tokenizer locally")
    p.add_argument("--turns", required=True, help="training turns the tokenizer is trained on")
    p.add_argument("--out", required=True)

    p = _add(
        sub, "fetch-model", cmd_fetch_model, "fetch a paper-scale checkpoint (hub id or local folder)", config=False
    )
    p.add_argument("--source", required=True)
    p.add_argument("--out", required=True)

    trainers = (("sft", cmd_sft, "SFT warm-up (TRL SFTTrainer)"), ("grpo", cmd_grpo, "GRPO (TRL GRPOTrainer)"))
    for name, handler, what in trainers:
        p = _add(sub, name, handler, what)
        p.add_argument("--model", required=True)
        p.add_argument("--train", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--metrics", required=True, help="training curves (CSV)")
        p.add_argument("--kept", required=True, help="folder of the weights kept at the curve steps (step-N each)")
        if name == "grpo":
            p.add_argument("--variant", required=True)
            p.add_argument("--seed", type=int, help="training seed (default: the variant's first seed)")

    p = _add(sub, "show-config", cmd_show_config, "print the resolved TRL trainer config")
    p.add_argument("--stage", choices=["sft", "grpo"], required=True)
    p.add_argument("--variant")
    p.add_argument("--seed", type=int, help="GRPO training seed (default: the variant's first seed)")

    p = _add(sub, "preflight", cmd_preflight, "check, before a GPU job's hours start, what the run needs", config=False)
    p.add_argument("--configfile", default="config/config.yaml")
    p.add_argument("--stage", choices=["sft", "grpo", "evaluate"], required=True)
    p.add_argument("--model", required=True, help="the model folder the job starts from (or evaluates)")
    p.add_argument("--train", help="training turns (sft, grpo): one real batch is checked")
    p.add_argument("--segmenter-weights", help="local SAM2 checkpoint folder (evaluate with sam2)")
    p.add_argument("--disk-gb", type=float, help="disk the job needs (default: derived from the model and checkpoints)")

    p = _add(sub, "evaluate", cmd_evaluate, "multi-round evaluation with predicted-reference propagation")
    p.add_argument("--model", required=True)
    p.add_argument("--model-id", help="model id choosing the prompt (prompt.models); default: the --model folder name")
    p.add_argument(
        "--run", nargs="+", required=True, help="NAME=BENCH.json pairs, e.g. refcocog.multi=results/bench/refcocog.json"
    )
    p.add_argument("--out-dir", required=True, help="writes NAME.json (metrics) and NAME.predictions.jsonl")
    p.add_argument("--segmenter-weights", help="local SAM2 checkpoint folder (evaluate.segmenter: sam2)")
    p.add_argument("--boxes-only", action="store_true", help="score boxes only, no masks (the checkpoint curves)")

    p = _add(sub, "evaluate-vstar", cmd_evaluate_vstar, "V*Bench (Table 9): option likelihood, as the benchmark's code")
    p.add_argument("--model", required=True)
    p.add_argument("--model-id", help="model id choosing the image protocol (prompt.models); default: the folder name")
    p.add_argument("--bench", required=True, help="V*Bench folder (direct_attributes/, relative_position/)")
    p.add_argument("--out", required=True, help="metrics JSON; the answers go beside it as .jsonl")

    p = _add(sub, "probe", cmd_probe, "held-out reward probe: sampled reward of a checkpoint on fixed held-out turns")
    p.add_argument("--model", required=True)
    p.add_argument("--prompts", required=True, help="held-out turns (JSONL, the build-train format)")
    p.add_argument("--out", required=True, help="summary JSON")

    p = _add(sub, "curve", cmd_curve, "a trained model's checkpoint curve and the checkpoint evaluate.checkpoint picks")
    p.add_argument("--model-id", required=True, help="sft or grpo-{variant}")
    p.add_argument("--out", required=True, help="curve JSON")

    p = _add(
        sub,
        "select-checkpoint",
        cmd_select_checkpoint,
        "link the checkpoint a curve file chose into a model folder (evaluate.checkpoint: best_validation)",
        config=False,
    )
    p.add_argument("--curve", required=True, help="curve JSON (regionreasoner curve)")
    p.add_argument("--out", required=True)

    p = _add(
        sub, "show-prompt", cmd_show_prompt, "print the messages a model receives for one turn (no weights loaded)"
    )
    p.add_argument("--model", required=True, help="model id, e.g. released-regionreasoner")
    p.add_argument("--question", required=True, help="the turn's question as the bench holds it")
    p.add_argument("--cited-box", help="x1,y1,x2,y2 written into the question's cited-box placeholder")

    p = _add(sub, "baseline-random", cmd_baseline_random, "random-object baseline (chance level)", config=False)
    p.add_argument("--run", nargs="+", required=True, help="NAME=BENCH.json pairs (NAME = bench.mode)")
    p.add_argument("--instances", nargs="+", required=True, help="BENCH=instances.json pairs")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, help="random draws the metrics are averaged over (default 32)")

    p = _add(sub, "score", cmd_score, "metrics from a predictions file", config=False)
    p.add_argument("--predictions", required=True)
    p.add_argument("--bench", required=True)
    p.add_argument("--out", required=True)

    p = _add(sub, "reward", cmd_reward, "score completions with a reward variant", config=False)
    p.add_argument("--variant", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)

    p = _add(sub, "table", cmd_table, "one table of the paper (Markdown + LaTeX)")
    p.add_argument("--name", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-tex", required=True)

    p = _add(sub, "figure", cmd_figure, "one figure of the paper (PNG + PDF)")
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)

    p = _add(
        sub, "plan", cmd_plan, "the jobs a target needs (Snakemake's dry run) priced in GPU-hours, memory and disk"
    )
    p.add_argument("--profile", default="workflow/profiles/slurm", help="workflow profile: GPUs and limits per rule")
    p.add_argument(
        "--throughput",
        default="config/gpu_throughput.json",
        help="measured figures (scripts/gpu_smoke.sh); the published ones when absent",
    )
    p.add_argument("--from-scratch", action="store_true", help="every job the targets need, also those already built")
    p.add_argument("targets", nargs="*", help="Snakemake targets (files or rules); default: the default target")

    p = _add(sub, "dvc-yaml", cmd_dvc_yaml, "write the DVC pipeline (dvc.yaml) of a config")
    p.add_argument("--out", default="dvc.yaml")
    return parser


DEBUG_ENV = "REGIONREASONER_DEBUG"  # set to 1 (or pass --debug) for the traceback of a failed command


def describe(err: Exception) -> str:
    """The message of a failed command; its first line names the file and the problem.

    Input errors (InputError, ConfigError and the ValueErrors and OSErrors raised with a message
    that names the file) are the user's to fix and print as they are; an OS error of the system
    names its file. Anything else is a bug or an unforeseen input: one line with the exception,
    and how to get the traceback."""
    if isinstance(err, FileNotFoundError) and err.filename is not None:
        return str(missing(err.filename))
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}; check the path and its permissions"
    if isinstance(err, (ValueError, OSError)) and not isinstance(err, UnicodeError):
        return str(err)  # raised with a message that names its file
    if isinstance(err, PreflightError):
        return str(err)  # what this machine lacks for the run, and what it has
    detail = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {detail} (rerun with --debug or {DEBUG_ENV}=1 for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except Exception as err:
        if args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        print(f"regionreasoner {args.command}: error: {describe(err)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
