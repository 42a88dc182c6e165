"""RegionDial-Bench: multi-round referring dialogues from refer test splits (docs/method.md section 2).

Construction protocol (documented for reviewers in docs/data.md):

1. The refs of the chosen splits are grouped by image, images in image-id order; one ref per
   annotated object (the lowest ref id), so a dialogue never asks twice for the same object.
   Images with fewer than ``min_rounds`` referred objects are left out (Table 6 has as many
   second-round turns as dialogues).
2. Per image, a generator seeded by ``(seed, image_id)`` shuffles the objects and keeps up to
   ``max_rounds`` of them; it also picks one of each ref's sentences.
3. Turn 1 asks the referring sentence. Each later turn looks for an earlier turn whose target box
   stands in one of the eight relations (``relations.py``) to its own target; pairs in which the
   relation singles out the target among all annotated objects of the image are preferred. The
   question is then "the object <relation> bbox=[...]" (unique) or "<sentence> <relation>
   bbox=[...]", the cited turn recorded as ``context_from_turn``. With no true relation to any
   earlier turn the turn is asked plainly.

Because each image has its own generator, adding or removing images changes no other dialogue.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from tqdm import tqdm

from regionreasoner.data.refer import ReferImage, Target, load_refer
from regionreasoner.dialogs.datasheet import check_datasheet_paths, describe_bench, write_datasheet
from regionreasoner.dialogs.geometry import point_inside, render_box, segmentation_rle
from regionreasoner.dialogs.relations import REF_BOX, check_relations, choose_citation, question_template
from regionreasoner.io import atomic_write_json


@dataclass(frozen=True)
class PlannedTurn:
    """One turn before rendering: its target, sentence and (optionally) the turn it cites."""

    target: Target
    sentence: str
    context_from_turn: int | None = None
    relation: str | None = None
    template: str | None = None
    unique: bool = False


def plan_dialogue(image: ReferImage, seed: int, max_rounds: int, relations: Sequence[str]) -> list[PlannedTurn]:
    """Order the image's objects and choose each later turn's citation (steps 2-3 of the protocol)."""
    rng = random.Random(f"bench/{seed}/{image.image_id}")
    targets = list(image.targets)
    rng.shuffle(targets)
    turns: list[PlannedTurn] = []
    for target in targets[:max_rounds]:
        sentence = rng.choice(target.sentences)
        earlier = [turn.target.ann_id for turn in turns]
        citation = choose_citation(target.ann_id, earlier, image.boxes, relations, rng) if earlier else None
        if citation is None:
            turns.append(PlannedTurn(target, sentence))
        else:
            template = question_template(citation.relation, sentence, citation.unique)
            turns.append(
                PlannedTurn(target, sentence, citation.candidate, citation.relation, template, citation.unique)
            )
    return turns


def render_turn(image: ReferImage, turns: list[PlannedTurn], index: int, coco: COCO) -> dict[str, Any]:
    """A planned turn -> the bench record turn (docs/method.md section 2): question with the GT cited box in pixels."""
    turn = turns[index]
    ann = coco.anns[turn.target.ann_id]
    box = list(image.boxes[turn.target.ann_id])
    if turn.template is None:
        question = turn.sentence
    else:
        cited = image.boxes[turns[turn.context_from_turn].target.ann_id]
        question = turn.template.replace(REF_BOX, render_box(cited))
    return {
        "question": question,
        "question_template": turn.template,
        "relation": turn.relation,
        "context_from_turn": turn.context_from_turn,
        "bboxes": [box],
        "points": [point_inside(ann["segmentation"], box, image.width, image.height)],
        "ann_ids": [turn.target.ann_id],
        "ref_id": turn.target.ref_id,
        "sent": turn.sentence,
        "masks": [segmentation_rle(ann["segmentation"], box, image.width, image.height)],
    }


def build_bench(
    refs: Path,
    instances: Path,
    captions: Path | None,
    image_dir: Path,
    splits: list[str],
    out: Path,
    datasheet: Path | None = None,
    seed: int = 0,
    max_rounds: int = 7,
    relations: list[str] | None = None,
    reported: dict | None = None,
    min_rounds: int = 2,
    max_dialogues: int | None = None,
) -> None:
    """Write RegionDial-Bench dialogues of ``splits`` to ``out`` (JSON list, the record schema of
    docs/method.md section 2).

    With ``datasheet``, also write its statistics as Markdown there and as JSON beside it
    (``.json``); ``reported`` (a reported_numbers.yaml ``table6_turns_per_round`` entry) is shown
    beside ours. ``captions`` is accepted for symmetry with :func:`build_train`; the bench does not
    use it. ``max_dialogues`` keeps the first dialogues in image-id order (the validation dialogues:
    each image has its own generator, so they are the same as without the limit). Same inputs and
    seed give a byte-identical file.
    """
    if not 1 <= min_rounds <= max_rounds:
        raise ValueError(f"need 1 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    if datasheet is not None:
        check_datasheet_paths(Path(datasheet), Path(out))
    keys = check_relations(relations)
    images, coco = load_refer(refs, instances, None, splits)
    dialogues, categories = [], {}
    for image in tqdm(images, desc="RegionDial-Bench", unit="image"):
        if max_dialogues is not None and len(dialogues) == max_dialogues:
            break
        if len(image.targets) < min_rounds:
            continue
        turns = plan_dialogue(image, seed, max_rounds, keys)
        dialogues.append(
            {
                "image_id": image.image_id,
                "image_path": str(Path(image_dir) / image.file_name),
                "width": image.width,
                "height": image.height,
                "conversational_turns": [render_turn(image, turns, i, coco) for i in range(len(turns))],
            }
        )
        categories.update((t.target.ann_id, coco.cats[t.target.category_id]["name"]) for t in turns)
    if not dialogues:
        raise ValueError(f"{refs}: no image of splits {splits} has {min_rounds} or more referred objects")
    atomic_write_json(out, dialogues)
    print(f"wrote {len(dialogues)} dialogues to {out}")
    if datasheet is not None:
        settings = {
            "refs": str(refs),
            "instances": str(instances),
            "splits": list(splits),
            "seed": seed,
            "max_rounds": max_rounds,
            "min_rounds": min_rounds,
            "relations": keys,
        }
        stats = describe_bench(dialogues, categories, settings, reported)
        write_datasheet(Path(datasheet), stats)


def single_round_bench(bench: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every turn asked alone by its referring sentence (single-round protocol, Table 10)."""
    single = []
    for dialogue in bench:
        for turn in dialogue["conversational_turns"]:
            plain = {
                **turn,
                "question": turn["sent"],
                "question_template": None,
                "context_from_turn": None,
                "relation": None,
            }
            single.append({**dialogue, "conversational_turns": [plain]})
    return single
