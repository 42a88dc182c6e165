"""Paths and input choices shared by the rules (no logic beyond choosing inputs and parameters)."""

import json

from regionreasoner import paths
from regionreasoner.config import stage_params
from regionreasoner.evaluate.curves import (
    VALIDATION_MODE,
    curve_inputs,
    evaluated_model_dir,
    point_checkpoint,
    point_input,
    validation_metrics,
)
from regionreasoner.report.figures import curve_figure, figure_inputs
from regionreasoner.report.tables import table_inputs
from regionreasoner.report.targets import (
    ALL_FIGURE_NAMES,
    FIGURE_NAMES,
    PURPOSES,
    TABLE_NAMES,
    curve_figure_names,
    figure_files,
    figure_names,
    paper_pdf,
    purpose_inputs,
    table_files,
)

BENCHES = list(CFG.benchmarks)
MODELS = CFG.model_ids()
GRPO_RUNS = CFG.grpo_runs()  # model id -> (variant, seed): one GRPO job per variant and seed
TABLES_MD = [str(table_files(CFG, name)[0]) for name in TABLE_NAMES]
TABLES_TEX = [str(table_files(CFG, name)[1]) for name in TABLE_NAMES]
FIGURES = [str(figure_files(CFG, name)[0]) for name in figure_names(CFG)]
FIGURES_PDF = [str(figure_files(CFG, name)[1]) for name in figure_names(CFG)]
TRAINED = CFG.trained_models()
PAPER_PDF = str(paper_pdf(CFG))


wildcard_constraints:
    bench="|".join(BENCHES),
    model="|".join(m.replace(".", r"\.") for m in MODELS),
    mode="multi|single",


# SAM2 weights of the evaluation (a CPU rule fetches them); none for GrabCut
SEGMENTER_WEIGHTS = [paths.segmenter_weights(R)] if CFG.evaluate.segmenter == "sam2" else []


def params_of(stage, **kw):
    """The config slice a stage depends on (a change reruns exactly the downstream jobs)."""
    return stage_params(config, stage, **kw)


def refer_files(bench):
    """Where the refer dataset of a benchmark lies: synthesised or downloaded."""
    b = CFG.benchmarks[bench]
    if CFG.data.source == "synth":
        root = f"{R}/data/synth/{bench}"
        return {
            "refs": f"{root}/refs({b.split_by}).p",
            "instances": f"{root}/instances.json",
            "captions": f"{root}/captions.json",
            "images": f"{root}/images",
        }
    root = f"{R}/data/raw"  # layout of src/regionreasoner/data/manifest.yaml
    return {
        "refs": f"{root}/refer/{b.dataset}/refs({b.split_by}).p",
        "instances": f"{root}/refer/{b.dataset}/instances.json",
        "captions": f"{root}/coco/annotations/captions_train2014.json",
        "images": f"{root}/coco/train2014",
    }


def model_dir(model):
    return paths.model_dir(R, model)


def evaluated_model(model):
    """The folder the tables' evaluation loads: the checkpoint evaluate.checkpoint chose."""
    return evaluated_model_dir(CFG, model)


def grpo_init(model):
    """GRPO starts from the SFT warm-up when enabled (embedded default), else from the base model."""
    use_sft = CFG.grpo.variants[GRPO_RUNS[model].variant].sft
    use_sft = CFG.sft.enabled if use_sft is None else use_sft
    return model_dir("sft") if use_sft else model_dir("base")


def refer_inputs(wc):
    """Inputs of the dialogue builders: the refer files of the benchmark."""
    return refer_files(wc.bench)


# evaluation runs: every benchmark, multi-round (RegionDial-Bench) and single-round (Table 10)
RUN_PAIRS = [(bench, mode) for bench in BENCHES for mode in paths.MODES]
RUNS = [paths.run_name(bench, mode) for bench, mode in RUN_PAIRS]


def run_bench_file(run):
    return paths.bench_file(R, *run.split("."))
