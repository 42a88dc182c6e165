"""Turn-by-turn evaluation: later turns cite the model's OWN earlier box (docs/method.md section 7)."""

from __future__ import annotations

from PIL import Image

from regionreasoner.evaluate.dialogue import run_bench, single_round_bench
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
        "question": q, "question_template": template, "context_from_turn": cited, "relation": None,
        "bboxes": [box], "points": [[0, 0]], "ann_ids": [1], "ref_id": 1, "sent": q, "masks": [],
    }
    return [{
        "image_id": 7, "image_path": str(image), "width": 200, "height": 100,
        "conversational_turns": [
            turn("the dog", [0, 0, 100, 50]),
            turn("the cat next to bbox=[0,0,100,50]", [100, 50, 200, 100], "the cat next to {ref_box}", 0),
        ],
    }]


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
