"""Each model's answer is read in its own format, and its boxes are computed as its authors' code does.

Answers are written by hand in each format the models are asked for (config/paper.yaml): the
RegionReasoner/VisionReasoner ``<answer>`` list, Seg-Zero's single object with two points, and the
Qwen2.5-VL / Qwen2-VL ```` ```json ```` list.
"""

from __future__ import annotations

import pytest

from regionreasoner.config import load_config
from regionreasoner.evaluate.answers import ANSWER_FORMATS, answer_format, first_braced, has_think, qwen_json
from regionreasoner.models.prompts import prompt_for_model
from tests.conftest import REPO

TAGGED = answer_format("tagged_json")
SEGZERO = answer_format("segzero")
QWEN25 = answer_format("qwen2_5_vl")
QWEN2 = answer_format("qwen2_vl")


def test_every_table_1_2_model_of_the_paper_config_names_a_registered_format():
    cfg = load_config(REPO / "config" / "paper.yaml")
    formats = {m: prompt_for_model(cfg, m).answer_format for m in cfg.report.table1_rows}
    assert formats == {
        "released-qwen2vl": "qwen2_vl",
        "base": "qwen2_5_vl",
        "released-segzero": "segzero",
        "released-visionreasoner": "tagged_json",
        "released-regionreasoner": "tagged_json",
        "grpo-full": "tagged_json",
    }
    assert set(formats.values()) <= set(ANSWER_FORMATS)


def test_unknown_format_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown answer format 'nope'; known: \['qwen2_5_vl'"):
        answer_format("nope")


def test_regionreasoner_answer_is_read_and_scaled_half_up():
    text = (
        "<scene>s</scene><focus>f</focus><think>t</think>"
        '<answer>[{"bbox_2d": [10.3, 20, 100, 200], "point_2d": [50, 60]}]</answer>'
    )
    assert TAGGED.objects(text) == [{"bbox_2d": [10.3, 20.0, 100.0, 200.0], "point_2d": [50.0, 60.0]}]
    assert TAGGED.authors_boxes(text, 2.0, 0.5) == [[21, 10, 200, 100]]
    assert TAGGED.well_formed(text, TAGGED.objects(text))


def test_regionreasoner_reader_keeps_inverted_boxes_and_drops_everything_when_one_item_has_no_box():
    inverted = '<answer>[{"bbox_2d": [50, 10, 10, 50], "point_2d": [1, 1]}]</answer>'
    assert TAGGED.objects(inverted) == [] and TAGGED.raw_boxes(inverted) == [[50.0, 10.0, 10.0, 50.0]]
    broken = '<answer>[{"bbox_2d": [1, 2, 3, 4], "point_2d": [1, 1]}, {"point_2d": [5, 5]}]</answer>'
    assert TAGGED.raw_boxes(broken) == [] and len(TAGGED.objects(broken)) == 1
    no_point = '<answer>[{"bbox_2d": [1, 2, 3, 4]}]</answer>'
    assert TAGGED.raw_boxes(no_point) == [[1.0, 2.0, 3.0, 4.0]]


SEGZERO_ANSWER = (
    "<think>the man on the left</think>"
    '<answer>{"bbox": [10.7, 20, 300, 400], "points_1": [50, 60], "points_2": [70, 80]}</answer>'
)


def test_segzero_answer_is_one_object_with_two_points_truncated_then_rounded():
    assert SEGZERO.objects(SEGZERO_ANSWER) == [{"bbox_2d": [10.7, 20.0, 300.0, 400.0], "point_2d": [50.0, 60.0]}]
    # Seg-Zero: round(int(v) * factor): int(10.7) = 10, 10 * 1.25 = 12.5 rounds half to even -> 12
    assert SEGZERO.authors_boxes(SEGZERO_ANSWER, 1.25, 1.0) == [[12, 20, 375, 400]]
    assert SEGZERO.coordinates == "frame"


@pytest.mark.parametrize(
    "text",
    [
        SEGZERO_ANSWER.replace("<think>the man on the left</think>", ""),  # no think part
        SEGZERO_ANSWER.replace(', "points_2": [70, 80]', ""),  # one point only
        SEGZERO_ANSWER.replace('"bbox": [10.7, 20, 300, 400]', '"bbox": [1, 2, 3]'),  # three values
        SEGZERO_ANSWER.replace('"', "'"),  # not JSON (as in the prompt)
    ],
)
def test_segzero_reader_fails_where_its_code_raises(text):
    assert SEGZERO.objects(text) == [] and SEGZERO.raw_boxes(text) == []


def test_segzero_patterns_match_as_the_regular_expressions_do():
    assert first_braced("a {} b {x} {y}") == "{x}" and first_braced("{ no close") is None
    assert has_think("<think></think><think>ok</think>") and not has_think("<think>a<b</think>")


QWEN25_ANSWER = 'Sure.\n```json\n[\n  {"bbox_2d": [12.9, 30, 200, 180], "label": "the man"}\n]\n```'


def test_qwen2_5_answer_is_read_from_the_json_block_in_pixels_truncated():
    assert QWEN25.objects(QWEN25_ANSWER) == [{"bbox_2d": [12.9, 30.0, 200.0, 180.0], "point_2d": None}]
    assert QWEN25.factors(640, 480, 840) == (1.0, 1.0) and QWEN25.native_image
    assert QWEN25.authors_boxes(QWEN25_ANSWER, 1.0, 1.0) == [[12, 30, 200, 180]]


def test_qwen2_answer_is_read_in_thousandths_of_the_image():
    text = '```json\n[{"bbox": [100, 250, 500, 750], "label": "dog"}]\n```'
    x, y = QWEN2.factors(640, 480, 840)
    assert QWEN2.authors_boxes(text, x, y) == [[64, 120, 320, 360]]
    assert QWEN2.objects(text) == [{"bbox_2d": [100.0, 250.0, 500.0, 750.0], "point_2d": None}]


def test_qwen_reader_falls_back_to_the_first_bracket_pair_as_the_authors_code_does():
    assert qwen_json('boxes: [{"bbox_2d": [1, 2, 3, 4]}]') is None  # the first "]" closes the inner list
    assert qwen_json("answer [1, 2, 3, 4] done") == [1, 2, 3, 4]
    assert qwen_json("```json\nnot json\n``` [1]") is None  # a broken block is not retried
    assert QWEN25.objects('[{"bbox": [1, 2, 3, 4]}, {"bbox_2d": [5, 6, 7, 8]}]') == []
