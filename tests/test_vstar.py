"""V*Bench (Table 9): its folder format read, options scored by likelihood, accuracy as its own code counts it,
the benchmark verified by its tree sha256, and the table beside the paper's numbers.

The fixture is a small folder in the benchmark's format (craigwu/vstar_bench): ``direct_attributes/``
and ``relative_position/`` holding images and same-named annotation JSON files whose first option is
the correct one. The questions are our own.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from regionreasoner.config import validate_config
from regionreasoner.data.download import ChecksumError, download_snapshot, tree_digest
from regionreasoner.evaluate.vstar import accuracy, mean_token_loss, read_vstar, run_vstar
from regionreasoner.report.tables import build_table
from tests.conftest import REPO

QUESTIONS = {
    "direct_attributes": {
        "sa_1": ("What is the color of the cup?", ["red", "blue", "green", "white"]),
        "sa_2": ("What is the material of the glove?", ["leather", "cotton", "rubber", "kevlar"]),
    },
    "relative_position": {
        "sa_3": ("Is the dog on the left or right side of the car?", ["left", "right"]),
    },
}


def vstar_folder(root: Path) -> Path:
    for category, items in QUESTIONS.items():
        (root / category).mkdir(parents=True)
        for name, (question, options) in items.items():
            Image.new("RGB", (64, 48)).save(root / category / f"{name}.jpg")
            annotation = {"target_object": ["x"], "bbox": [[1, 2, 3, 4]], "question": question, "options": options}
            (root / category / f"{name}.json").write_text(json.dumps(annotation))
    return root


def test_reads_both_folders_with_the_first_option_as_the_answer(tmp_path):
    questions = read_vstar(vstar_folder(tmp_path / "vstar"))
    assert [(q.category, Path(q.image).stem) for q in questions] == [
        ("direct_attributes", "sa_1"),
        ("direct_attributes", "sa_2"),
        ("relative_position", "sa_3"),
    ]
    assert questions[2].options == ("left", "right")


def test_an_image_without_its_annotation_is_an_error_naming_it(tmp_path):
    root = vstar_folder(tmp_path / "vstar")
    (root / "relative_position" / "sa_3.json").unlink()
    with pytest.raises(ValueError, match=r"sa_3\.json: cannot read the annotation of sa_3\.jpg"):
        read_vstar(root)


def test_mean_token_loss_is_the_cross_entropy_of_the_reply_tokens_only():
    # vocabulary of 3; tokens [0, 1, 2]; the reply starts at token 1
    logits = torch.tensor([[0.0, math.log(3.0), 0.0], [0.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
    ids = torch.tensor([0, 1, 2])
    # token 1 given logits[0]: p = 3/5; token 2 given logits[1]: p = 1/3
    assert mean_token_loss(logits, ids, 1) == pytest.approx((-math.log(3 / 5) - math.log(1 / 3)) / 2)


def test_accuracy_is_per_folder_and_over_all_questions(tmp_path):
    questions = read_vstar(vstar_folder(tmp_path / "vstar"))
    result = accuracy(questions, [0, 2, 0])
    assert result["direct_attributes"] == {"questions": 2, "correct": 1, "accuracy": 50.0}
    assert result["relative_position"]["accuracy"] == 100.0
    assert result["overall"]["accuracy"] == pytest.approx(200 / 3)


def test_run_answers_each_question_by_its_least_loss_option_and_table9_shows_it(tmp_path):
    questions = read_vstar(vstar_folder(tmp_path / "vstar"))
    results = tmp_path / "results"
    wrong_on_gloves = {"leather": 2.0, "rubber": 0.5}
    for model in ("base", "released-visionreasoner", "grpo-full"):
        out = results / "eval" / model / "vstar.json"
        run_vstar(questions, lambda q: [wrong_on_gloves.get(o, 1.0 + i) for i, o in enumerate(q.options)], out, model)
    answers = [json.loads(line) for line in (results / "eval" / "grpo-full" / "vstar.jsonl").read_text().splitlines()]
    assert [a["chosen"] for a in answers] == [0, 2, 0]
    raw = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    raw["results"] = str(results)
    raw["report"]["vstar_rows"] = {
        "Qwen2.5-VL-7B": "base",
        "VisionReasoner-7B": "released-visionreasoner",
        "RegionReasoner-7B": "grpo-full",
    }
    raw["report"]["not_reproduced"] = {"GPT-4V": "a closed model"}
    md, tex = tmp_path / "t9.md", tmp_path / "t9.tex"
    build_table(validate_config(raw), "table9_vstar", md, tex, reported=REPO / "paper" / "reported_numbers.yaml")
    lines = [line for line in md.read_text().splitlines() if line.startswith("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert ["RegionReasoner-7B", "reproduced: grpo-full", "50.00", "100.00", "66.67"] in rows
    assert ["", "reported: paper", "75.65", "68.42", "72.77"] in rows
    assert ["GPT-4V", "reported only: a closed model", "51.30", "60.52", "54.97"] in rows
    assert ["SEAL", "reported only: no model evaluated (report.vstar_rows)", "74.78", "76.31", "75.39"] in rows


def _manifest(tmp_path: Path, sha256: str | None, files: int | None) -> Path:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        json.dumps(
            {
                "files": [],
                "snapshots": [
                    {
                        "name": "vstar_bench",
                        "repo": "craigwu/vstar_bench",
                        "revision": "d9ae62c903da0c98336e85c5ee89cd863b04b4da",
                        "sha256": sha256,
                        "files": files,
                    }
                ],
            }
        )
    )
    return manifest


def test_tree_digest_covers_every_file_but_the_hub_cache(tmp_path):
    root = vstar_folder(tmp_path / "vstar")
    digest, count = tree_digest(root)
    (root / ".cache").mkdir()
    (root / ".cache" / "lock").write_text("x")
    assert tree_digest(root) == (digest, 6)
    lines = "".join(
        f"{p.relative_to(root).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}\n"
        for p in sorted(root.rglob("*.*"))
        if ".cache" not in p.parts
    )
    assert digest == hashlib.sha256(lines.encode()).hexdigest() and count == 6


def test_snapshot_is_trusted_only_when_pinned_and_matching(tmp_path):
    out = tmp_path / "snapshots"
    part = vstar_folder(out / "vstar_bench.part")  # a copy already fetched, kept for the next run
    digest, count = tree_digest(part)
    with pytest.raises(ChecksumError, match=f"has no sha256.*tree sha256 {digest} and {count} files"):
        download_snapshot(_manifest(tmp_path, None, None), "vstar_bench", out)
    assert part.is_dir()
    assert download_snapshot(_manifest(tmp_path, digest, count), "vstar_bench", out) == out / "vstar_bench"
    assert len(read_vstar(out / "vstar_bench")) == 3 and not part.exists()
    shutil.copytree(out / "vstar_bench", part)
    (part / "relative_position" / "sa_3.json").write_text("{}")
    with pytest.raises(ChecksumError, match="the copy was deleted"):
        download_snapshot(_manifest(tmp_path, digest, count), "vstar_bench", out)
    assert not part.exists()


def test_option_scorer_runs_a_real_model_and_scores_only_the_reply(tmp_path):
    from transformers import AutoModelForImageTextToText

    from regionreasoner.evaluate.vstar import option_scorer
    from regionreasoner.models.processor import load_processor
    from regionreasoner.models.prompts import PromptConfig
    from regionreasoner.models.tiny import TinyModelConfig, build_tiny_model

    turn = {
        "problem": "what is the color of the cup?",
        "solution": [{"bbox_2d": [0, 0, 28, 28], "point_2d": [1, 1]}],
        "scene": "a cup",
        "focus": "",
        "target": "the cup",
        "relation": None,
    }
    (tmp_path / "turns.jsonl").write_text(json.dumps(turn) + "\n")
    build_tiny_model(tmp_path / "turns.jsonl", tmp_path / "model", TinyModelConfig(), PromptConfig(), frame=112, seed=0)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "model").eval()
    processor = load_processor(tmp_path / "model", 112)
    question = read_vstar(vstar_folder(tmp_path / "vstar"))[0]
    losses = option_scorer(model, processor, native_image=False, frame=112)(question)
    assert len(losses) == 4 and all(math.isfinite(v) and v > 0 for v in losses)
    assert len(set(losses)) == 4  # each option's own tokens are scored
    # the scorer's premise: the question's generation prompt is a prefix of the conversation with the reply
    user = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question.question}]}]
    reply = [*user, {"role": "assistant", "content": [{"type": "text", "text": "blue"}]}]
    prompt = processor.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
    assert processor.apply_chat_template(reply, tokenize=False).startswith(prompt)
