"""Turn-by-turn evaluation of RegionDial-Bench with predicted-reference propagation (docs/method.md section 7).

A later turn cites an earlier turn's region. At test time that citation is the model's OWN box for
the cited turn (ground truth only when it predicted nothing), so a wrong early answer misleads the
later ones: that is what makes later rounds hard and what the per-round tables measure. Dialogues
are run round by round, each round batches of greedy generations across all dialogues; a progress
bar on stderr (the job's log under results/logs/evaluate/) advances per batch.

A paper-scale model takes hours per benchmark, so a run is cut into chunks of dialogues (dialogues
are independent): each finished chunk is kept beside the outputs (``work_dir_for``) and skipped when
the job reruns, so a job killed at its time limit loses at most the chunk it was in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import AutoModelForImageTextToText

from regionreasoner.dialogs.geometry import int_box, render_box, to_frame
from regionreasoner.dialogs.released import RELEASED_FORMAT, released_box_text
from regionreasoner.evaluate.answers import DEFAULT_FORMAT, AnswerFormat, answer_format
from regionreasoner.evaluate.metrics import format_metric, read_bench, write_and_score_run
from regionreasoner.evaluate.segment import RememberingSegmenter, Segmenter, encode_mask, segment_objects
from regionreasoner.images import load_frame_image, load_original, load_rgb
from regionreasoner.io import atomic_write_jsonl, atomic_write_text, read_jsonl
from regionreasoner.models.patch_embed import embed_patches_by_matmul
from regionreasoner.models.processor import load_processor
from regionreasoner.models.prompts import PromptConfig, build_messages
from regionreasoner.runtime import limit_threads


@dataclass
class Generator:
    """Batched generation with one model: greedy for the benchmarks (docs/method.md section 4), sampled
    for the reward probe."""

    model: Any
    processor: Any
    prompt: PromptConfig
    frame: int
    max_new_tokens: int
    batch_size: int

    @classmethod
    def load(
        cls,
        path: Path,
        prompt: PromptConfig,
        frame: int,
        max_new_tokens: int,
        batch_size: int,
        attn_implementation: str | None = None,
        device: str | None = None,
    ) -> Generator:
        """``device``: as regionreasoner.preflight.torch_device chose it (default: CUDA when present)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
        native = answer_format(prompt.answer_format).native_image
        processor = load_processor(path, None if native else frame)  # first: it checks that the folder holds a model
        embed_patches_by_matmul()
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, **extra)
        model.to(device).eval()
        return cls(model, processor, prompt, frame, max_new_tokens, batch_size)

    @property
    def answers(self) -> AnswerFormat:
        """The model's answer format (``prompt.answer_format``): how its answers are read and its images sized."""
        return answer_format(self.prompt.answer_format)

    def answer(self, image_paths: Sequence[str], questions: Sequence[str], progress: tqdm | None = None) -> list[str]:
        """Greedy answers in batches of ``batch_size``; ``progress`` advances by each batch's size."""
        return self._generate(image_paths, questions, progress, do_sample=False)

    def sample(
        self,
        image_paths: Sequence[str],
        questions: Sequence[str],
        n: int,
        temperature: float,
        progress: tqdm | None = None,
    ) -> list[list[str]]:
        """``n`` completions per question drawn as GRPO draws them (temperature, no top-p/top-k cut)."""
        texts = self._generate(
            image_paths,
            questions,
            progress,
            do_sample=True,
            temperature=temperature,
            top_p=1.0,
            top_k=0,
            num_return_sequences=n,
        )
        return [texts[i : i + n] for i in range(0, len(texts), n)]

    @torch.no_grad()
    def _generate(
        self, image_paths: Sequence[str], questions: Sequence[str], progress: tqdm | None, **generate_kwargs: Any
    ) -> list[str]:
        texts = []
        for start in range(0, len(questions), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            prompts = [
                self.processor.apply_chat_template(
                    build_messages(q, self.prompt), add_generation_prompt=True, tokenize=False
                )
                for q in questions[chunk]
            ]
            native = self.answers.native_image
            images = [load_rgb(p) if native else load_frame_image(p, self.frame) for p in image_paths[chunk]]
            inputs = self.processor(text=prompts, images=images, padding=True, return_tensors="pt").to(
                self.model.device
            )
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **generate_kwargs)
            texts += self.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            if progress is not None:
                progress.update(len(prompts))
        return texts


@dataclass(frozen=True)
class Reading:
    """What a later turn may cite from one answered turn: its first box, read two ways (model coordinates).

    ``valid``: the first valid box (x1 < x2, y1 < y2) of the parsed objects, what the metrics
    score. ``raw``: the first box the authors' code reads, invalid or not (None where their reader
    keeps none); their evaluator cites it in later questions.
    """

    valid: list[float] | None
    raw: list[float] | None


@dataclass(frozen=True)
class Citation:
    """The text written into a cited question, where it came from, and whether a valid-box reading differs."""

    text: str
    source: str
    differs: bool = False


@dataclass
class DialogueState:
    """Each answered turn's reading per (dialogue, turn): what later turns cite."""

    answers: AnswerFormat
    frame: int
    readings: dict[tuple[int, int], Reading] = field(default_factory=dict)

    def cite(self, d: int, dialogue: dict[str, Any], cited: int, released: bool) -> Citation:
        """The cited turn's box as text: the model's own answer, or the ground truth if it has none.

        Released files (``released``) get what the authors' evaluator writes: ``str`` of the first
        box their reader keeps (inverted boxes included), scaled to original pixels with their
        integer arithmetic (scale, then write); ``differs`` says whether reading only valid boxes
        would have written something else. Built benches get ``bbox=[x1,y1,x2,y2]`` of the first
        valid box in the model's coordinates.
        """
        reading = self.readings.get((d, cited), Reading(None, None))
        w, h = dialogue["width"], dialogue["height"]
        truth = dialogue["conversational_turns"][cited]["bboxes"][0]
        if released:
            fx, fy = self.answers.factors(w, h, self.frame)
            written = self.answers.authors_box(reading.raw, fx, fy) if reading.raw else None
            valid = self.answers.authors_box(reading.valid, fx, fy) if reading.valid else None
            text = released_box_text(written) if written else released_box_text(truth)
            return Citation(text, "prediction" if written else "ground_truth", differs=written != valid)
        if reading.valid:
            return Citation(render_box(reading.valid), "prediction")
        return Citation(render_box(self._model_coordinates(truth, w, h)), "ground_truth")

    def _model_coordinates(self, box: list[float], width: int, height: int) -> list[int]:
        """A ground-truth pixel box in the coordinates the model answers in."""
        if self.answers.coordinates == "pixels":
            return int_box(box)
        return to_frame(box, width, height, 1000 if self.answers.coordinates == "thousandths" else self.frame)


def _released_format(turn: dict[str, Any]) -> bool:
    return turn.get("ref_box_format") == RELEASED_FORMAT


def question_for(dialogue: dict[str, Any], index: int, citation: Citation | None) -> str:
    """The turn's question with the cited region's text (``DialogueState.cite``) filled in."""
    turn = dialogue["conversational_turns"][index]
    if citation is None or turn.get("context_from_turn") is None or not turn.get("question_template"):
        return turn["question"]
    return turn["question_template"].replace("{ref_box}", citation.text)


def _prediction(
    index_of_dialogue: int,
    dialogue: dict[str, Any],
    index: int,
    question: str,
    completion: str,
    objects: list[dict[str, Any]],
    answers: AnswerFormat,
    frame: int,
    segmenter: Segmenter | None,
) -> dict[str, Any]:
    """One prediction line in original pixels (the ``score`` input format), with the turn's mask."""
    fx, fy = answers.factors(dialogue["width"], dialogue["height"], frame)
    boxes = [[float(v * f) for v, f in zip(o["bbox_2d"], (fx, fy, fx, fy), strict=True)] for o in objects]
    points = [[o["point_2d"][0] * fx, o["point_2d"][1] * fy] if o.get("point_2d") else None for o in objects]
    mask = None
    if segmenter is not None and boxes:
        image = load_original(dialogue["image_path"])
        mask = encode_mask(segment_objects(segmenter, image, boxes, points))
    return {
        "dialogue": index_of_dialogue,
        "image_id": dialogue["image_id"],
        "turn": index,
        "question": question,
        "completion": completion,
        "boxes": boxes,
        "points": points,
        "mask": mask,
        "well_formed": answers.well_formed(completion, objects),
    }


def run_bench(
    bench: list[dict[str, Any]],
    generator: Generator,
    segmenter: Segmenter | None,
    desc: str = "turns",
    answers: AnswerFormat | None = None,
) -> list[dict[str, Any]]:
    """Predictions for every turn, round by round, citing the model's own earlier boxes.

    ``answers``: the model's answer format (default: the RegionReasoner format).
    """
    answers = answers or answer_format(DEFAULT_FORMAT)
    state = DialogueState(answers, generator.frame)
    predictions: list[dict[str, Any]] = []
    rounds = max((len(d["conversational_turns"]) for d in bench), default=0)
    progress = tqdm(total=sum(len(d["conversational_turns"]) for d in bench), desc=desc, unit="turn")
    for r in range(rounds):
        progress.set_postfix_str(f"round {r + 1}/{rounds}")
        active = [d for d, dialogue in enumerate(bench) if r < len(dialogue["conversational_turns"])]
        questions, citations = [], []
        for d in active:
            turn = bench[d]["conversational_turns"][r]
            citation = None
            if turn.get("context_from_turn") is not None and turn.get("question_template"):
                citation = state.cite(d, bench[d], turn["context_from_turn"], _released_format(turn))
            questions.append(question_for(bench[d], r, citation))
            citations.append(citation)
        completions = generator.answer([bench[d]["image_path"] for d in active], questions, progress)
        for d, question, completion, citation in zip(active, questions, completions, citations, strict=True):
            objects = answers.objects(completion)
            raw = answers.raw_boxes(completion)
            state.readings[(d, r)] = Reading(objects[0]["bbox_2d"] if objects else None, raw[0] if raw else None)
            line = _prediction(d, bench[d], r, question, completion, objects, answers, generator.frame, segmenter)
            predictions.append(
                {
                    **line,
                    "cited_box_source": citation.source if citation else None,
                    "cited_box_differs_from_valid_reading": bool(citation and citation.differs),
                }
            )
    progress.close()
    return predictions


def citation_counts(predictions: list[dict[str, Any]]) -> dict[str, int]:
    """Turns whose question was filled with a cited box, how many got the ground truth, and how many differ.

    The ground truth stands in only where the cited turn has no prediction (nothing parsed, or not
    asked yet); a high count means the later turns were helped, so it is reported with the metrics.
    On released files the box is cited as the authors' evaluator cites it; the last count says in
    how many turns a reading of valid boxes only would have cited something else.
    """
    sources = [p.get("cited_box_source") for p in predictions]
    return {
        "cited_turns_filled": sum(s is not None for s in sources),
        "cited_ground_truth_fallbacks": sum(s == "ground_truth" for s in sources),
        "cited_differs_from_valid_box_reading": sum(
            bool(p.get("cited_box_differs_from_valid_reading")) for p in predictions
        ),
    }


def work_dir_for(out_dir: Path) -> Path:
    """Finished chunks live beside the outputs, outside anything Snakemake deletes before a rerun."""
    return out_dir.parent / f".{out_dir.name}.chunks"


def fingerprint(*parts: Any) -> str:
    """What the kept chunks were computed with; a changed one (model, prompt, bench...) discards them."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def model_fingerprint(model_path: Path) -> list[str]:
    """Names, sizes and modification times of a model folder's files (a rebuilt model differs)."""
    files = sorted(f for f in Path(model_path).rglob("*") if f.is_file())
    return [f"{f.relative_to(model_path)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]


def kept_chunks(work: Path, key: str) -> Path:
    """``work``, emptied first when its chunks were computed with anything else than ``key``."""
    stamp = work / "fingerprint"
    if work.exists() and (not stamp.exists() or stamp.read_text() != key):
        shutil.rmtree(work)
    if not work.exists():
        work.mkdir(parents=True)
        atomic_write_text(stamp, key)
    return work


def run_bench_chunked(
    bench: list[dict[str, Any]],
    generator: Generator,
    segmenter: Segmenter | None,
    work: Path,
    run: str,
    chunk: int,
    answers: AnswerFormat | None = None,
) -> list[dict[str, Any]]:
    """``run_bench`` over chunks of ``chunk`` dialogues, each kept in ``work`` once finished and read
    back instead of recomputed; the predictions come out in ``run_bench``'s order (round by round)."""
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(bench), chunk):
        path = work / f"{run}.{start // chunk:06d}.jsonl"
        if path.exists():
            part = read_jsonl(path)
        else:
            lines = run_bench(
                bench[start : start + chunk], generator, segmenter, desc=f"{run} [{start}:]", answers=answers
            )
            part = [{**line, "dialogue": line["dialogue"] + start} for line in lines]
            atomic_write_jsonl(path, part)
        predictions += part
    return sorted(predictions, key=lambda p: (p["turn"], p["dialogue"]))


def evaluate_runs(
    generator: Generator,
    runs: dict[str, Path],
    out_dir: Path,
    segmenter: Segmenter | None,
    model: str,
    key: str,
    chunk: int,
    answers: AnswerFormat | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate one loaded model on several benchmark files, resuming from the chunks a killed job
    finished (``key``: what they must have been computed with); the chunks are deleted at the end.
    ``answers``: the model's answer format (``run_bench``)."""
    work = kept_chunks(work_dir_for(out_dir), key)
    segmenter = RememberingSegmenter(segmenter) if segmenter is not None else None  # one memory for every run
    results = {}
    for run, bench_path in runs.items():
        bench = read_bench(bench_path)
        predictions = run_bench_chunked(bench, generator, segmenter, work, run, chunk, answers)
        format_rate = 100.0 * sum(p["well_formed"] for p in predictions) / max(len(predictions), 1)
        metrics = write_and_score_run(
            predictions, bench_path, out_dir, run, format_rate=format_rate, model=model, **citation_counts(predictions)
        )
        print(
            f"{model} on {run}: AP@0.5 {metrics['ap50']:.1f}  gIoU {format_metric(metrics, 'giou')}  "
            f"format {metrics['format_rate']:.1f}%"
        )
        results[run] = metrics
    shutil.rmtree(work)
    return results


def evaluate_model(
    model_path: Path,
    runs: dict[str, Path],
    out_dir: Path,
    prompt: PromptConfig,
    frame: int,
    max_new_tokens: int,
    batch_size: int,
    segmenter: Segmenter | None,
    attn_implementation: str | None = None,
    device: str | None = None,
    chunk: int = 64,
) -> dict[str, dict[str, Any]]:
    """Evaluate one model on several benchmark files (loaded once).

    ``runs`` maps a run name (``{bench}.{mode}``) to a bench file; each run writes
    ``{out_dir}/{run}.predictions.jsonl`` (per-turn predictions) and ``{out_dir}/{run}.json`` (metrics).
    """
    limit_threads()  # bench files and their images were checked by preflight_evaluation, before any load
    generator = Generator.load(model_path, prompt, frame, max_new_tokens, batch_size, attn_implementation, device)
    digests = [hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in runs.values()]
    key = fingerprint(
        model_fingerprint(model_path),
        prompt,
        frame,
        max_new_tokens,
        batch_size,
        type(segmenter).__name__,
        attn_implementation,
        chunk,
        sorted(runs),
        digests,
    )
    return evaluate_runs(generator, runs, out_dir, segmenter, str(model_path), key, chunk, generator.answers)
