"""Reference points that need no model: what chance looks like on a benchmark.

A model that finds *some* object but not *which* one scores the random-object baseline: each turn
answers the box and mask of an annotated object of the image drawn uniformly. The embedded default's
tiny model must be read against it (docs/benchmarks.md has its measured scores).
One draw over about 60 dialogues missed the 32-draw mean by up to 14 points at round 1, so the
metrics are the mean over ``draws`` seeded draws: chance as an expectation, not as one sample.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO

from regionreasoner.data.refer import load_instances
from regionreasoner.dialogs.geometry import box_centre, segmentation_rle, xywh_to_xyxy
from regionreasoner.evaluate.metrics import format_metric, read_bench, score_prediction_lines
from regionreasoner.io import atomic_write_json, atomic_write_jsonl

DRAWS = 32
"""Random draws the baseline's metrics are averaged over."""


def random_object_predictions(
    bench: list[dict[str, Any]], coco: COCO, instances: Path, seed: int
) -> list[dict[str, Any]]:
    """One prediction per turn: a uniformly drawn annotated object of the turn's image (``coco``, read
    from ``instances``)."""
    rng = random.Random(seed)
    predictions = []
    for d, dialogue in enumerate(bench):
        annotations = sorted(coco.imgToAnns[dialogue["image_id"]], key=lambda a: a["id"])
        if not annotations:
            raise ValueError(f"{instances}: image {dialogue['image_id']} of the bench has no annotation")
        w, h = dialogue["width"], dialogue["height"]
        for t in range(len(dialogue["conversational_turns"])):
            ann = rng.choice(annotations)
            box = xywh_to_xyxy(ann["bbox"])
            predictions.append(
                {
                    "dialogue": d,
                    "image_id": dialogue["image_id"],
                    "turn": t,
                    "boxes": [box],
                    "points": [list(box_centre(box))],
                    "mask": segmentation_rle(ann["segmentation"], box, w, h),
                }
            )
    return predictions


def mean_metrics(draws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Leaf-wise mean of metric dicts with the same keys; values equal in every draw (counts) stay as they are.

    Lists (per-dialogue outcomes) have no mean and are left out.
    """
    merged: dict[str, Any] = {}
    for key, value in draws[0].items():
        values = [d[key] for d in draws]
        if isinstance(value, list):
            continue
        if isinstance(value, dict):
            merged[key] = mean_metrics(values)
        elif isinstance(value, float | int) and not isinstance(value, bool) and len(set(values)) > 1:
            merged[key] = sum(values) / len(values)
        else:
            merged[key] = value
    return merged


def evaluate_random_object(
    runs: dict[str, Path], instances: dict[str, Path], out_dir: Path, seed: int, draws: int = DRAWS
) -> None:
    """Score the random-object baseline on each run (``{bench}.{mode}`` -> bench file).

    Writes ``{run}.json`` (metrics averaged over ``draws`` draws, seeds ``seed`` ...) and
    ``{run}.predictions.jsonl`` (every draw's lines, each with its ``draw`` number).
    """
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    loaded: dict[str, COCO] = {}
    for run, bench_path in runs.items():
        bench = read_bench(bench_path)
        name = run.split(".")[0]
        if name not in loaded:
            loaded[name] = load_instances(instances[name])  # once per benchmark, not once a draw
        predictions = [random_object_predictions(bench, loaded[name], instances[name], seed + k) for k in range(draws)]
        scores = [
            score_prediction_lines(lines, f"random draw {k}", bench, str(bench_path))
            for k, lines in enumerate(predictions)
        ]
        metrics = mean_metrics(scores) | {"format_rate": 100.0, "model": "random-object baseline", "draws": draws}
        atomic_write_jsonl(
            Path(out_dir) / f"{run}.predictions.jsonl",
            [line | {"draw": k} for k, lines in enumerate(predictions) for line in lines],
        )
        atomic_write_json(Path(out_dir) / f"{run}.json", metrics)
        print(
            f"random object on {run}: AP@0.5 {metrics['ap50']:.1f}  gIoU {format_metric(metrics, 'giou')} "
            f"(mean of {draws} draws)"
        )
