"""Turn-by-turn evaluation: later turns cite the model's OWN earlier box (docs/method.md section 7)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regionreasoner.dialogs.bench import single_round_bench
from regionreasoner.evaluate.dialogue import evaluate_runs, run_bench, work_dir_for
from regionreasoner.evaluate.segment import encode_mask
from tests.conftest import ScriptedGenerator


def _answer(box):
    x1, y1, x2, y2 = box
    return (
        f'<scene>s</scene><focus>f</focus><think>t</think><answer>[{{"bbox_2d":[{x1},{y1},{x2},{y2}],'
        f'"point_2d":[{(x1 + x2) // 2},{(y1 + y2) // 2}]}}]</answer>'
    )


def _bench(tmp_path):
    image = tmp_path / "img.jpg"
    Image.new("RGB", (200, 100)).save(image)
    turn = lambda q, box, template=None, cited=None: {  # noqa: E731
        "question": q,
        "question_template": template,
        "context_from_turn": cited,
        "relation": None,
        "bboxes": [box],
        "points": [[0, 0]],
        "ann_ids": [1],
        "ref_id": 1,
        "sent": q,
        "masks": [],
    }
    return [
        {
            "image_id": 7,
            "image_path": str(image),
            "width": 200,
            "height": 100,
            "conversational_turns": [
                turn("the dog", [0, 0, 100, 50]),
                turn("the cat next to bbox=[0,0,100,50]", [100, 50, 200, 100], "the cat next to {ref_box}", 0),
            ],
        }
    ]


def test_later_turn_cites_predicted_box_of_earlier_turn(tmp_path):
    # the model answers turn 1 wrongly, in its 100x100 frame; turn 2 must cite that wrong box
    generator = ScriptedGenerator({"the dog": _answer([10, 10, 20, 20])})
    predictions = run_bench(_bench(tmp_path), generator, segmenter=None)
    assert generator.asked == ["the dog", "the cat next to bbox=[10,10,20,20]"]
    # boxes come back in original pixels: x * 200/100, y * 100/100
    assert predictions[0]["boxes"] == [[20.0, 10.0, 40.0, 20.0]]
    assert predictions[1]["boxes"] == [] and not predictions[1]["well_formed"]


def test_ground_truth_is_cited_only_when_nothing_was_predicted(tmp_path):
    generator = ScriptedGenerator({})
    run_bench(_bench(tmp_path), generator, segmenter=None)
    # ground truth [0,0,100,50] in original pixels is [0,0,50,50] in the 100x100 frame
    assert generator.asked[1] == "the cat next to bbox=[0,0,50,50]"


def test_progress_counts_turns_per_batch_with_the_round(tmp_path, capsys):
    run_bench(_bench(tmp_path), ScriptedGenerator({}), segmenter=None, desc="refcocog.multi")
    err = capsys.readouterr().err
    assert "refcocog.multi" in err and "2/2" in err and "round 2/2" in err


def test_single_round_asks_every_turn_alone_by_its_sentence(tmp_path):
    single = single_round_bench(_bench(tmp_path))
    assert [len(d["conversational_turns"]) for d in single] == [1, 1]
    assert all(d["conversational_turns"][0]["context_from_turn"] is None for d in single)


class Killed(Exception):
    """Stands for the job being killed at its time limit."""


@dataclass
class DyingGenerator(ScriptedGenerator):
    """Answers ``calls_left`` generate calls, then is killed."""

    calls_left: int = 0

    def answer(self, image_paths, questions, progress=None):
        if self.calls_left == 0:
            raise Killed
        self.calls_left -= 1
        return super().answer(image_paths, questions, progress)


def _many(tmp_path, dialogues: int) -> Path:
    """A bench file of ``dialogues`` copies of the two-turn dialogue, each with its own first question."""
    bench = []
    for d in range(dialogues):
        [dialogue] = _bench(tmp_path)
        dialogue["conversational_turns"][0]["question"] = f"the dog {d}"
        for turn in dialogue["conversational_turns"]:  # a target mask: the box's pixels
            x1, y1, x2, y2 = turn["bboxes"][0]
            mask = np.zeros((100, 200), dtype=bool)
            mask[y1:y2, x1:x2] = True
            turn["masks"] = [encode_mask(mask)]
        bench.append(dialogue)
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    return path


def test_killed_evaluation_reruns_without_recomputing_its_finished_chunks(tmp_path):
    bench = _many(tmp_path, 5)
    runs = {"refcocog.multi": bench, "refcocog.single": bench}
    script = {f"the dog {d}": _answer([10, 10, 20, 20]) for d in range(5)}
    out, chunk = tmp_path / "eval" / "m", 2  # chunks of 2, 2 and 1 dialogues; 2 rounds each
    out.mkdir(parents=True)

    dying = DyingGenerator(script, calls_left=8)  # the first run's 6 calls, then 1 chunk of the second
    with pytest.raises(Killed):
        evaluate_runs(dying, runs, out, None, "m", key="k", chunk=chunk)
    assert not (out / "refcocog.single.json").exists()  # killed inside the second run

    rerun = ScriptedGenerator(script)
    evaluate_runs(rerun, runs, out, None, "m", key="k", chunk=chunk)
    # only the second run's last two chunks are asked again: 3 dialogues x 2 turns
    assert len(rerun.asked) == 6 and set(rerun.asked) >= {"the dog 2", "the dog 3", "the dog 4"}
    assert not work_dir_for(out).exists()  # kept chunks go once the outputs are written

    fresh_out = tmp_path / "fresh" / "m"
    fresh_out.mkdir(parents=True)
    evaluate_runs(ScriptedGenerator(script), runs, fresh_out, None, "m", key="k", chunk=chunk)
    for run in runs:  # the resumed predictions are the uninterrupted ones, in the same order
        name = f"{run}.predictions.jsonl"
        assert (out / name).read_text() == (fresh_out / name).read_text()


def test_kept_chunks_of_another_evaluation_are_discarded(tmp_path):
    bench = _many(tmp_path, 2)
    out = tmp_path / "eval" / "m"
    out.mkdir(parents=True)
    with pytest.raises(Killed):  # one chunk of the first run kept, computed with key "old"
        evaluate_runs(DyingGenerator({}, calls_left=2), {"r": bench}, out, None, "m", key="old", chunk=1)
    rerun = ScriptedGenerator({})
    evaluate_runs(rerun, {"r": bench}, out, None, "m", key="new", chunk=1)
    assert len(rerun.asked) == 4  # a changed model, prompt or bench recomputes everything
