"""Scores a predictions file against RegionDial-Bench (docs/method.md section 7).

The protocol, kept separate from generation so it can be audited and re-run on any predictions:

- every turn of the bench counts; a turn with no prediction line is a miss (no box, empty mask);
- "AP@0.5" is the share of turns where some predicted box has IoU > 0.5 with some target box, boxes
  in continuous original-image pixels (no +1 pixel term);
- gIoU is the mean per-turn mask IoU (a turn whose predicted and target masks are both empty
  counts 0); cIoU is the sum of intersections over the sum of unions. Both need a target mask for
  every turn: a bench with turns that carry none (the authors' GitHub copies of the released files)
  gets ``giou``/``ciou`` = None and ``mask_metrics`` saying why, never a crash and never a made-up
  0 (the authors' script scores such a turn against an empty mask: I = 0, so gIoU and cIoU are 0);
- pass rates give the share of turns whose best box IoU exceeds 0.3 / 0.5 / 0.7 / 0.9;
- per-round numbers assign a turn to round k+1 by its 0-based index k within its dialogue, and
  the top-level numbers pool all turns (Tables 1-2, "Avg").

All rates are percentages (0-100).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from regionreasoner.dialogs.geometry import Box, box_iou, compressed_rle
from regionreasoner.io import InputError, atomic_write_json, atomic_write_jsonl, read_jsonl, read_records

PASS_THRESHOLDS = ("0.3", "0.5", "0.7", "0.9")
AP_THRESHOLD = 0.5
MASK_METRICS = ("giou", "ciou")
"""Metrics that need a target mask per turn; None (with ``mask_metrics`` saying why) on a bench without."""


def best_box_iou(predicted: Iterable[Box], targets: Iterable[Box]) -> float:
    """Largest IoU between any predicted box and any target box (0 when either list is empty)."""
    targets = list(targets)
    return max((box_iou(p, t) for p in predicted for t in targets), default=0.0)


def decode_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Decode a COCO segmentation (RLE with str/bytes or list counts, or polygons) to a bool mask.

    ``None`` decodes to an empty mask: a turn without a predicted mask scores as if it predicted
    nothing.
    """
    if segmentation is None:
        return np.zeros((height, width), dtype=bool)
    rle = compressed_rle(segmentation, height, width)
    mask = mask_utils.decode(rle).astype(bool)
    if mask.shape != (height, width):
        raise ValueError(f"mask of size {mask.shape} does not match the image size {(height, width)}")
    return mask


def mask_intersection_union(predicted: np.ndarray, target: np.ndarray) -> tuple[int, int]:
    """Pixel counts of the intersection and the union of two bool masks of the same shape."""
    return int(np.logical_and(predicted, target).sum()), int(np.logical_or(predicted, target).sum())


def mask_iou(predicted: np.ndarray, target: np.ndarray) -> float:
    """Mask IoU; an empty union counts 0 (docs/method.md section 7)."""
    inter, union = mask_intersection_union(predicted, target)
    return inter / union if union else 0.0


@dataclass(frozen=True)
class TurnScore:
    """What one turn contributes to the pooled and per-round metrics."""

    round: int
    box_iou: float
    mask_iou: float
    intersection: int
    union: int
    has_target_mask: bool = True


def _summary(scores: Sequence[TurnScore]) -> dict[str, Any]:
    n = len(scores)
    if n == 0:
        return {"turns": 0, "ap50": 0.0, "giou": 0.0, "ciou": 0.0}
    summary: dict[str, Any] = {"turns": n, "ap50": 100.0 * sum(s.box_iou > AP_THRESHOLD for s in scores) / n}
    if not all(s.has_target_mask for s in scores):
        return summary | dict.fromkeys(MASK_METRICS)
    union = sum(s.union for s in scores)
    return summary | {
        "giou": 100.0 * sum(s.mask_iou for s in scores) / n,
        "ciou": 100.0 * sum(s.intersection for s in scores) / union if union else 0.0,
    }


def mask_availability(scores: Sequence[TurnScore]) -> str:
    """``available``, or why gIoU/cIoU are not reported (how many turns lack a target mask)."""
    missing = sum(not s.has_target_mask for s in scores)
    if not missing:
        return "available"
    return f"unavailable: {missing} of {len(scores)} turns have no target mask (box metrics only)"


def format_metric(metrics: dict[str, Any], key: str) -> str:
    """One metric for a log line: one decimal, or ``n/a`` where it is unavailable."""
    value = metrics.get(key)
    return "n/a" if value is None else f"{value:.1f}"


def summarize(scores: Sequence[TurnScore]) -> dict[str, Any]:
    """Pooled metrics, pass rates and per-round metrics of scored turns (the output of ``score``)."""
    result = _summary(scores)
    result["mask_metrics"] = mask_availability(scores)
    n = max(len(scores), 1)
    result["pass"] = {t: 100.0 * sum(s.box_iou > float(t) for s in scores) / n for t in PASS_THRESHOLDS}
    result["mean_box_iou"] = 100.0 * sum(s.box_iou for s in scores) / n
    rounds = sorted({s.round for s in scores})
    result["per_round"] = {str(r): _summary([s for s in scores if s.round == r]) for r in rounds}
    return result


def _prediction_index(
    lines: Iterable[dict[str, Any]], source: str, bench: list[dict[str, Any]]
) -> dict[tuple[int, int], dict[str, Any]]:
    """Map (dialogue index, turn index) to its prediction line, rejecting unknown or repeated turns.

    A line names its dialogue by ``image_id`` (unique per dialogue in RegionDial-Bench); an optional
    ``dialogue`` key (index into the bench list) disambiguates benches that repeat an image.
    """
    by_image: dict[Any, list[int]] = {}
    for index, dialogue in enumerate(bench):
        by_image.setdefault(dialogue["image_id"], []).append(index)
    index_of: dict[tuple[int, int], dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        where = f"{source}: line {number}"
        if "dialogue" in line:
            dialogue = int(line["dialogue"])
        else:
            candidates = by_image.get(line.get("image_id"), [])
            if len(candidates) != 1:
                problem = "is not in the bench" if not candidates else "names several dialogues; add a 'dialogue' index"
                raise ValueError(f"{where}: image_id {line.get('image_id')!r} {problem}")
            dialogue = candidates[0]
        turn = line.get("turn")
        if not isinstance(turn, int) or not 0 <= dialogue < len(bench):
            raise ValueError(f"{where}: needs an integer 'turn' and a dialogue in the bench")
        if not 0 <= turn < len(bench[dialogue]["conversational_turns"]):
            raise ValueError(f"{where}: turn {turn} is not a turn of image_id {bench[dialogue]['image_id']}")
        if (dialogue, turn) in index_of:
            raise ValueError(f"{where}: turn {turn} of image_id {bench[dialogue]['image_id']} is predicted twice")
        index_of[(dialogue, turn)] = line
    return index_of


def _image_size(dialogue: dict[str, Any], turn: dict[str, Any]) -> tuple[int, int]:
    if "height" in dialogue and "width" in dialogue:
        return int(dialogue["height"]), int(dialogue["width"])
    masks = turn.get("masks") or []
    if masks and isinstance(masks[0], dict):
        height, width = masks[0]["size"]
        return int(height), int(width)
    raise ValueError("needs 'width' and 'height' or an RLE mask to know the image size")


def score_turn(dialogue: dict[str, Any], index: int, prediction: dict[str, Any] | None) -> TurnScore:
    """Score turn ``index`` of ``dialogue`` given its prediction line (``None``: a miss)."""
    turn = dialogue["conversational_turns"][index]
    box_iou = best_box_iou((prediction or {}).get("boxes") or [], turn.get("bboxes") or [])
    if not turn.get("masks"):  # box metrics only; the summary reports the mask metrics unavailable
        return TurnScore(round=index + 1, box_iou=box_iou, mask_iou=0.0, intersection=0, union=0, has_target_mask=False)
    height, width = _image_size(dialogue, turn)
    target = np.zeros((height, width), dtype=bool)
    for segmentation in turn["masks"]:
        target |= decode_mask(segmentation, height, width)
    predicted = decode_mask((prediction or {}).get("mask"), height, width)
    inter, union = mask_intersection_union(predicted, target)
    return TurnScore(
        round=index + 1, box_iou=box_iou, mask_iou=inter / union if union else 0.0, intersection=inter, union=union
    )


BENCH_KEYS = ("image_path", "conversational_turns")  # what every command that reads a bench relies on


def read_bench(path: str | Path, images: bool = False) -> list[dict[str, Any]]:
    """A bench file's dialogues; a wrong or truncated file fails naming the file and dialogue.

    ``images``: also check that every dialogue's image exists (as written, relative to the working
    directory), so that evaluation fails before it loads a model rather than mid-run."""
    bench = read_records(path, "dialogue", BENCH_KEYS)
    for index, dialogue in enumerate(bench):
        if not isinstance(dialogue["conversational_turns"], list):
            raise InputError(f"{path}: dialogue {index}: conversational_turns is not a list; rebuild the bench")
        if images and not Path(dialogue["image_path"]).is_file():
            raise InputError(
                f"{path}: dialogue {index}: image {dialogue['image_path']} not found (relative to "
                f"{Path.cwd()}); rebuild the bench or run from the folder it was built in"
            )
    return bench


def score_predictions(predictions: Path, bench: Path, out: Path | None = None) -> dict[str, Any]:
    """Metrics of a predictions JSONL against a bench JSON (docs/method.md section 7).

    Returns (and writes to ``out`` atomically when given) ``turns``, ``ap50``, ``giou``, ``ciou``,
    ``pass``, ``per_round``, plus ``dialogues``, ``predicted_turns`` (turns with a prediction line)
    and ``mean_box_iou``.
    """
    predictions, bench = Path(predictions), Path(bench)
    dialogues = read_bench(bench)
    result = score_prediction_lines(read_jsonl(predictions), str(predictions), dialogues, str(bench))
    if out is not None:
        atomic_write_json(out, result)
    return result


def score_prediction_lines(
    lines: Iterable[dict[str, Any]], source: str, dialogues: list[dict[str, Any]], bench: str
) -> dict[str, Any]:
    """``score_predictions`` on lines already in memory; errors name ``source`` (lines) and ``bench``."""
    index_of = _prediction_index(lines, source, dialogues)
    scores = []
    for d, dialogue in enumerate(dialogues):
        for t in range(len(dialogue["conversational_turns"])):
            try:
                scores.append(score_turn(dialogue, t, index_of.get((d, t))))
            except (KeyError, ValueError) as err:
                raise ValueError(
                    f"{bench}: dialogue {d} (image_id {dialogue.get('image_id')}) turn {t}: {err}"
                ) from err
    result = summarize(scores)
    result["dialogues"] = len(dialogues)
    result["predicted_turns"] = len(index_of)
    result["query_dependence"] = query_dependence(dialogues, index_of)
    result["per_dialogue"] = turn_outcomes(dialogues, scores)
    return result


def query_dependence(
    dialogues: list[dict[str, Any]], index_of: dict[tuple[int, int], dict[str, Any]]
) -> dict[str, Any]:
    """Does the answer depend on what is asked? Share of images whose plainly asked objects get different boxes.

    A plain turn asks by its referring sentence alone (no cited box), as round 1 does; in the
    single-round protocol every object of an image is asked that way. Among images with two or
    more plain turns, ``share`` is the percentage whose first predicted boxes are not all the same
    (a turn without a box counts as one more answer, "nothing"). A model that ignores the query
    scores 0 whatever its accuracy; the random-object baseline shows the level of chance.
    """
    answers: dict[Any, list[tuple[float, ...] | None]] = {}
    for d, dialogue in enumerate(dialogues):
        for t, turn in enumerate(dialogue["conversational_turns"]):
            if turn.get("context_from_turn") is None:
                boxes = (index_of.get((d, t)) or {}).get("boxes") or []
                answer = tuple(round(float(v), 1) for v in boxes[0]) if boxes else None
                answers.setdefault(dialogue["image_id"], []).append(answer)
    asked = [set(a) for a in answers.values() if len(a) >= 2]
    share = 100.0 * sum(len(a) > 1 for a in asked) / len(asked) if asked else 0.0
    return {"images": len(asked), "share": share}


def turn_outcomes(dialogues: list[dict[str, Any]], scores: Sequence[TurnScore]) -> list[dict[str, str]]:
    """Per dialogue, a hit string (``1``: box IoU > 0.5) and a cited string (``1``: the turn cites one).

    Kept so that differences between two models can be bootstrapped over the same dialogues
    (``evaluate.noise``); ``scores`` lists the turns in dialogue order, as ``score_prediction_lines``
    makes them.
    """
    outcomes, position = [], 0
    for dialogue in dialogues:
        turns = dialogue["conversational_turns"]
        hits = "".join("1" if s.box_iou > AP_THRESHOLD else "0" for s in scores[position : position + len(turns)])
        cited = "".join("0" if t.get("context_from_turn") is None else "1" for t in turns)
        outcomes.append({"hit": hits, "cited": cited})
        position += len(turns)
    return outcomes


def write_and_score_run(
    predictions: list[dict[str, Any]], bench: Path, out_dir: Path, run: str, **extra: Any
) -> dict[str, Any]:
    """Write one run's predictions (``{run}.predictions.jsonl``), score them and write ``{run}.json``.

    ``extra`` keys (e.g. the format rate, the model) are added to the metrics before they are written.
    """
    predictions_out = Path(out_dir) / f"{run}.predictions.jsonl"
    atomic_write_jsonl(predictions_out, predictions)
    metrics = {**score_predictions(predictions_out, Path(bench)), **extra}
    atomic_write_json(Path(out_dir) / f"{run}.json", metrics)
    return metrics
