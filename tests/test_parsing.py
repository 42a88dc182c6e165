"""Parsing of model output (docs/method.md section 4): correct on normal output, linear and total on hostile output."""

from __future__ import annotations

import pytest

from regionreasoner.rewards.parsing import (
    MAX_OBJECTS,
    answer_of,
    cited_boxes,
    completion_text,
    extract_tag,
    parse_answer,
)
from tests.conftest import assert_tag_content

MB = 1_000_000


def test_extract_tag_returns_stripped_content_of_first_block():
    assert extract_tag("<think>  a b \n</think><think>c</think>", "think") == "a b"


def test_extract_tag_is_none_when_missing_or_unclosed():
    assert extract_tag("no tags", "think") is None
    assert extract_tag("<think>never closed", "think") is None
    assert extract_tag("</think><think>", "think") is None
    assert extract_tag(None, "think") is None  # type: ignore[arg-type]


def test_nested_tag_ends_at_first_closing_tag_like_the_released_regex():
    assert extract_tag("<think><think>a</think></think>", "think") == "<think>a"


def test_parse_answer_reads_boxes_and_points_as_floats():
    text = '<answer>[{"bbox_2d": [1, 2, 30, 40], "point_2d": [5, 6]}, {"bbox_2d": [0, 0, 1.5, 2]}]</answer>'
    assert parse_answer(text) == [
        {"bbox_2d": [1.0, 2.0, 30.0, 40.0], "point_2d": [5.0, 6.0]},
        {"bbox_2d": [0.0, 0.0, 1.5, 2.0], "point_2d": None},
    ]


@pytest.mark.parametrize(
    "payload",
    [
        '[{"bbox_2d": [30, 2, 1, 40]}]',  # inverted x
        '[{"bbox_2d": [1, 2, 30, 2]}]',  # zero height
        '[{"bbox_2d": [NaN, 2, 30, 40]}]',
        '[{"bbox_2d": [1, 2, Infinity, 40]}]',
        '[{"bbox_2d": [true, 2, 30, 40]}]',
        '[{"bbox_2d": ["1", 2, 30, 40]}]',
        '[{"bbox_2d": [1, 2, 30]}]',
        '[{"bbox_2d": [1, 2, 30, 40, 50]}]',
        '[{"point_2d": [1, 2]}]',
        "[[1, 2, 30, 40]]",
        '{"bbox_2d": [1, 2, 30, 40]}',  # an object, not a list
        '"text"',
        "17",
        "[1, 2",  # truncated JSON
        "[" * 100_000,  # nesting deeper than the JSON parser's recursion limit
    ],
)
def test_parse_answer_drops_invalid_objects_and_non_lists(payload):
    assert parse_answer(f"<answer>{payload}</answer>") == []


def test_parse_answer_keeps_box_when_point_is_invalid():
    assert parse_answer('<answer>[{"bbox_2d": [0, 0, 1, 1], "point_2d": [NaN, 1]}]</answer>') == [
        {"bbox_2d": [0.0, 0.0, 1.0, 1.0], "point_2d": None}
    ]


def test_parse_answer_reads_a_code_fenced_answer():
    assert parse_answer('<answer>```json\n[{"bbox_2d": [0, 0, 1, 1]}]\n```</answer>')[0]["bbox_2d"] == [0, 0, 1, 1]


def test_parse_answer_caps_object_count_but_counts_every_item():
    text = "<answer>[" + ",".join(['{"bbox_2d": [0, 0, 1, 1]}'] * 250) + "]</answer>"
    assert len(parse_answer(text)) == MAX_OBJECTS
    assert answer_of(text).item_count == 250


def test_parse_answer_without_answer_tag_is_empty():
    assert parse_answer('[{"bbox_2d": [0, 0, 1, 1]}]') == []


def test_cited_boxes_reads_each_citation_form_in_order():
    text = "see bbox=[1,2,3,4], then BBox [ 5 , 6 , 7 , 8 ] and bbox = [9,10,11,12]"
    assert cited_boxes(text) == [(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12)]


def test_cited_boxes_rounds_decimals_and_skips_absurd_coordinates():
    # 1.6 rounds to 2, -0.4 to 0; a 1e12 coordinate is no citation; an unclosed list is none
    assert cited_boxes("bbox=[1.6, -0.4, 3, 4] bbox=[1000000000000, 0, 1, 1] bbox=[1, 2, 3") == [(2, 0, 3, 4)]


def test_cited_boxes_of_non_text_is_empty():
    assert cited_boxes(None) == []  # type: ignore[arg-type]


def test_completion_text_accepts_strings_and_conversational_messages():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    assert completion_text(parts) == "ab"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert completion_text(None) == ""
    assert completion_text(42) == ""


HOSTILE_1MB = {
    "repeated open tags": "<think>" * (MB // 7),
    "open tag then spaces": "<answer>" + " " * MB,
    "bbox then spaces": "bbox" + " " * MB,
    "bbox equals spaces": "bbox" + " " * (MB // 2) + "=" + " " * (MB // 2),
    "many bbox prefixes": "bbox=[1,2," * (MB // 10),
    "digit run": "bbox=[" + "9" * MB,
    "answer of brackets": "<answer>" + "[" * MB + "</answer>",
    "answer of many objects": "<answer>[" + ",".join(['{"bbox_2d":[0,0,1,1]}'] * (MB // 22)) + "]</answer>",
    "unicode": "<think>" + "ß漢🙂" * (MB // 3) + "</think>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_1MB))
def test_parsing_a_hostile_1mb_completion_returns_valid_results(name):
    """Speed (< 1 s per 1 MB, no catastrophic backtracking) is measured by scripts/bench_rewards.py,
    not asserted here: timed unit tests fail on a busy CI machine."""
    text = HOSTILE_1MB[name]
    for tag in ("scene", "focus", "think", "answer"):
        assert_tag_content(text, tag)
    assert all(len(obj["bbox_2d"]) == 4 for obj in parse_answer(text))
    assert all(len(box) == 4 for box in cited_boxes(text))
