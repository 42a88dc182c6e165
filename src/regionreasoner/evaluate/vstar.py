"""V*Bench (paper Table 9): multiple-choice questions on high-resolution images, scored as its own code does.

The benchmark (craigwu/vstar_bench; Wu and Xie, 2023) is two folders, ``direct_attributes`` (attribute
recognition, 4 options) and ``relative_position`` (spatial relations, 2 options); each image has an
annotation JSON of the same name with ``question`` and ``options``, the first option being the
correct one. Its evaluation (penghao-wu/vstar @ 4ede6647959cfb59eeabd09286adf6a5f9478da0,
vstar_bench_eval.py, ``multiple_choices_inference``) asks the question with the image and takes
as the answer the option whose tokens, written as the assistant's reply, have the lowest mean
cross-entropy; accuracy is reported per folder and over all questions. RegionReasoner's and
VisionReasoner's repositories release no V* evaluation, so that protocol is the one used here
(without SEAL's own visual search, which belongs to the SEAL row only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regionreasoner.io import atomic_write_json, atomic_write_jsonl

CATEGORIES = ("direct_attributes", "relative_position")
"""The benchmark's folders, in its evaluation's order (Table 9: attribute, spatial)."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Question:
    """One V* question; ``options[0]`` is the correct answer."""

    category: str
    image: str
    question: str
    options: tuple[str, ...]


def read_vstar(folder: Path) -> list[Question]:
    """Every question of a V*Bench folder, in a fixed order (category, then file name).

    A missing category folder, an image without its annotation, or an annotation without a
    question or with fewer than two options is an error naming the file.
    """
    folder = Path(folder)
    questions = []
    for category in CATEGORIES:
        root = folder / category
        if not root.is_dir():
            raise FileNotFoundError(f"{folder}: no {category}/ folder (is this a V*Bench copy?)")
        for image in sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            annotation = image.with_suffix(".json")
            try:
                data = json.loads(annotation.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                raise ValueError(f"{annotation}: cannot read the annotation of {image.name} ({err})") from None
            options = data.get("options") if isinstance(data, dict) else None
            if not isinstance(data.get("question"), str) or not isinstance(options, list) or len(options) < 2:
                raise ValueError(f"{annotation}: needs a 'question' and at least two 'options'")
            questions.append(Question(category, str(image), data["question"], tuple(str(o) for o in options)))
    return questions


def mean_token_loss(logits: Any, input_ids: Any, start: int) -> float:
    """Mean cross-entropy of tokens ``input_ids[start:]`` given everything before them.

    ``logits`` is (T, V) for the ``T`` tokens of ``input_ids``; position ``t - 1`` predicts token ``t``.
    """
    import torch.nn.functional as F

    return float(F.cross_entropy(logits[start - 1 : -1].float(), input_ids[start:]))


def accuracy(questions: Sequence[Question], chosen: Sequence[int]) -> dict[str, Any]:
    """Per-category and overall accuracy (%) and counts; an answer is right when option 0 is chosen."""

    def summary(picked: list[int]) -> dict[str, Any]:
        right = sum(c == 0 for c in picked)
        return {"questions": len(picked), "correct": right, "accuracy": 100.0 * right / len(picked) if picked else None}

    result = {
        category: summary([c for q, c in zip(questions, chosen, strict=True) if q.category == category])
        for category in CATEGORIES
    }
    return result | {"overall": summary(list(chosen))}


OptionScorer = Callable[[Question], list[float]]
"""Mean token loss of each option of a question (lower: more likely)."""


def run_vstar(questions: Sequence[Question], score: OptionScorer, out: Path, model: str) -> dict[str, Any]:
    """Answer every question by its least-loss option; write ``out`` (metrics) and ``out``'s ``.jsonl`` (answers)."""
    from tqdm import tqdm

    lines, chosen = [], []
    for question in tqdm(questions, desc="V*Bench", unit="question"):
        losses = score(question)
        choice = min(range(len(losses)), key=losses.__getitem__)
        chosen.append(choice)
        lines.append(
            {
                "category": question.category,
                "image": Path(question.image).name,
                "question": question.question,
                "options": list(question.options),
                "losses": losses,
                "chosen": choice,
                "correct": choice == 0,
            }
        )
    metrics = accuracy(questions, chosen) | {"model": model}
    atomic_write_jsonl(Path(out).with_suffix(".jsonl"), lines)
    atomic_write_json(out, metrics)
    print(
        f"{model} on V*Bench: attribute {metrics['direct_attributes']['accuracy']:.2f}  "
        f"spatial {metrics['relative_position']['accuracy']:.2f}  overall {metrics['overall']['accuracy']:.2f}"
    )
    return metrics


def option_scorer(model: Any, processor: Any, native_image: bool, frame: int) -> OptionScorer:
    """Score options with a Qwen-VL model: the question (with the image) as the user turn, each option as the reply.

    The reply's tokens include the end-of-turn marker, as the benchmark's code includes the
    conversation's separator. The image is sized as the model's own protocol sizes it (its frame,
    or its native resolution for the Qwen models).
    """
    import torch

    from regionreasoner.images import load_frame_image, load_rgb

    def text(messages: list[dict[str, Any]], generation: bool) -> str:
        return processor.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)

    @torch.no_grad()
    def score(question: Question) -> list[float]:
        image = load_rgb(question.image) if native_image else load_frame_image(question.image, frame)
        user = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question.question}]}]
        prompt = processor(text=[text(user, True)], images=[image], return_tensors="pt")
        start = prompt["input_ids"].shape[1]
        losses = []
        for option in question.options:
            reply = {"role": "assistant", "content": [{"type": "text", "text": option}]}
            full = processor(text=[text([*user, reply], False).rstrip("\n")], images=[image], return_tensors="pt")
            full = full.to(model.device)
            logits = model(**full).logits[0]
            losses.append(mean_token_loss(logits, full["input_ids"][0], start))
        return losses

    return score
