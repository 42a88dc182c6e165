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


def datasheet(results: str, bench: str, suffix: str = ".json") -> str:
    """Statistics of a built benchmark (Table 6): ``.md`` for people, ``.json`` for the report."""
    return f"{results}/bench/{bench}.datasheet{suffix}"


def model_dir(results: str, model: str) -> str:
    """A saved model: ``base``, ``sft``, ``grpo-{variant}`` (``grpo-{variant}-seed{N}`` for a further
    seed) or ``released-{name}``."""
    return f"{results}/models/{model}"


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
