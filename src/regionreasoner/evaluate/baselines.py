"""Reference points that need no model: what chance looks like on a benchmark.

A model that finds *some* object but not *which* one scores the random-object baseline: each turn
answers the box and mask of an annotated object of the image drawn uniformly. The embedded default's
tiny model must be read against it (DESIGN.md: picking a random object scores about 0.36 there).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from regionreasoner.data.refer import load_instances
from regionreasoner.dialogs.geometry import box_centre, segmentation_rle, xywh_to_xyxy
from regionreasoner.evaluate.metrics import write_and_score_run


def random_object_predictions(bench: list[dict[str, Any]], instances: Path, seed: int) -> list[dict[str, Any]]:
    """One prediction per turn: a uniformly drawn annotated object of the turn's image."""
    coco = load_instances(instances)
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
            predictions.append({
                "dialogue": d, "image_id": dialogue["image_id"], "turn": t,
                "boxes": [box], "points": [list(box_centre(box))],
                "mask": segmentation_rle(ann["segmentation"], box, w, h),
            })
    return predictions


def evaluate_random_object(runs: dict[str, Path], instances: dict[str, Path], out_dir: Path, seed: int) -> None:
    """Score the random-object baseline on each run (``{bench}.{mode}`` -> bench file)."""
    for run, bench_path in runs.items():
        bench = json.loads(Path(bench_path).read_text())
        predictions = random_object_predictions(bench, instances[run.split(".")[0]], seed)
        metrics = write_and_score_run(predictions, bench_path, out_dir, run, format_rate=100.0, model="random-object baseline")
        print(f"random object on {run}: AP@0.5 {metrics['ap50']:.1f}  gIoU {metrics['giou']:.1f}")
