"""Where each pipeline output lies under the results root (``config["results"]``).

The one layout shared by the Snakemake rules, which declare these files as outputs, and by the
report, which reads them (a table or figure may read only the files its rule declares, so both must
name them alike). Paths are strings so that rules can pass wildcards such as ``"{model}"``.
"""

from __future__ import annotations

MODES = ("multi", "single")
"""Evaluation modes: multi-round RegionDial-Bench dialogues and the single-round protocol (Table 10)."""


def run_name(bench: str, mode: str) -> str:
    """``{bench}.{mode}``: the name of one evaluation run, the stem of its output files."""
    return f"{bench}.{mode}"


def bench_file(results: str, bench: str, mode: str = "multi") -> str:
    """RegionDial-Bench dialogues of ``bench``; ``single`` is its single-round rewrite."""
    return f"{results}/bench/{bench}.json" if mode == "multi" else f"{results}/bench/{bench}.{mode}.json"


def validation_bench(results: str, bench: str) -> str:
    """Validation dialogues of ``bench``: built like the benchmark from the held-out images
    (``probe_splits``), never from its test splits; the checkpoint curves are scored on them."""
    return f"{results}/bench/{bench}.val.json"


def datasheet(results: str, bench: str, suffix: str = ".json") -> str:
    """Statistics of a built benchmark (Table 6): ``.md`` for people, ``.json`` for the report."""
    return f"{results}/bench/{bench}.datasheet{suffix}"


def model_dir(results: str, model: str) -> str:
    """A saved model: ``base``, ``sft``, ``grpo-{variant}`` (``grpo-{variant}-seed{N}`` for a further
    seed) or ``released-{name}``."""
    return f"{results}/models/{model}"


def kept_checkpoints(results: str, model: str) -> str:
    """The folder of a trained model's kept checkpoints (its curve steps), one ``step-N`` each."""
    return f"{results}/checkpoints/{model}"


def curve_points(results: str, model: str) -> str:
    """The folder of a checkpoint curve's points (``curve_point``)."""
    return f"{results}/curves/{model}"


def curve_point(results: str, model: str, step: int | str) -> str:
    """The folder of one point of a checkpoint curve: validation metrics (and the probe) at ``step``."""
    return f"{curve_points(results, model)}/step-{step}"


def curve(results: str, model: str) -> str:
    """A trained model's checkpoint curve and the checkpoint chosen for the tables (JSON)."""
    return f"{results}/curves/{model}.json"


def selected_model(results: str, model: str) -> str:
    """The checkpoint the tables evaluate under ``evaluate.checkpoint: best_validation`` (linked files)."""
    return f"{results}/selected/{model}"


SAM2_MODEL = "facebook/sam2-hiera-large"
"""The segmenter of the paper's evaluation (config ``evaluate.segmenter: sam2``)."""


def segmenter_weights(results: str) -> str:
    """The SAM2 checkpoint folder, fetched by a CPU job before any evaluation needs it."""
    return f"{results}/models/segmenter"


def train_metrics(results: str, model: str) -> str:
    """Training curves of ``model`` (``sft`` or ``grpo-{variant}``) as the trainers log them."""
    return f"{results}/train_metrics/{model}.csv"


def eval_metrics(results: str, model: str, bench: str, mode: str = "multi") -> str:
    """Metrics of ``model`` on ``bench`` in ``mode``, written by ``evaluate.metrics``."""
    return f"{results}/eval/{model}/{run_name(bench, mode)}.json"


def snapshot_dir(results: str, name: str) -> str:
    """A hub-folder snapshot of the data manifest (V*Bench), kept apart from the refer data."""
    return f"{results}/snapshots/{name}"


def vstar_metrics(results: str, model: str) -> str:
    """V*Bench accuracy of ``model`` (Table 9); its answers lie beside it as ``vstar.jsonl``."""
    return f"{results}/eval/{model}/vstar.json"


def vstar_answers(results: str, model: str) -> str:
    """Per-question answers beside ``vstar_metrics`` (``evaluate.vstar.run_vstar`` writes both)."""
    return vstar_metrics(results, model).removesuffix(".json") + ".jsonl"


def eval_predictions(results: str, model: str, bench: str, mode: str = "multi") -> str:
    """Per-turn predictions of ``model`` on ``bench`` in ``mode``."""
    return f"{results}/eval/{model}/{run_name(bench, mode)}.predictions.jsonl"


def heldout_turns(results: str, bench: str | None = None) -> str:
    """Turns of the benchmarks' ``probe_splits`` (one benchmark's, or all merged): the reward
    probe's prompts, built like training turns and never trained on."""
    return f"{results}/train/{bench}.heldout.jsonl" if bench else f"{results}/train/heldout.jsonl"


def probe_metrics(results: str, model: str) -> str:
    """Sampled reward of ``model`` on the held-out turns (``evaluate.probe``)."""
    return f"{results}/probe/{model}.json"
