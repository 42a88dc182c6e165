"""Property tests: no generated or adversarial completion crashes a reward or leaves its range.

Each hypothesis example is a batch of BATCH completions, scored by every variant through
``score_completions`` (the TRL functions, batched as in training); MAX_EXAMPLES * BATCH >= 10,000
completions per variant. Generation is derandomized so a failure reproduces. The 1 MB completions
are a fixed list scored by every variant in their own test (hypothesis cannot shrink them quickly).
Ranges are the registry's (``rewards.registry.TERMS``, documented in docs/rewards.md) and hold up
to floating-point rounding (TOLERANCE): the released answer validity is a running sum of 1/n terms
that can exceed 2 by ~1e-12 on thousands of items, exactly as the released code does.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regionreasoner.rewards import TERMS, VARIANTS, parse_answer, score_completions
from regionreasoner.rewards.parsing import cited_boxes
from regionreasoner.rewards.registry import variant_total_range
from tests.conftest import assert_tag_content

BATCH = 25
MAX_EXAMPLES = 420  # 420 * 25 = 10,500 completions per variant

# Each variant once (an alias is the same registry entry), with its total's bound from its terms' ranges.
VARIANT_TOTAL = {name: variant_total_range(name)[1] for name in {id(v): n for n, v in VARIANTS.items()}.values()}
TOLERANCE = 1e-9

MB = 1_000_000
HUGE = [
    "<think>" * (MB // 7),
    "<scene>" + "circle left " * (MB // 12) + "</scene><think>" + "bbox=[0,0,28,28] " * 1000 + "</think>",
    "<answer>" + "[" * MB + "</answer>",
    "<answer>[" + ",".join(['{"bbox_2d":[28,0,56,28],"point_2d":[42,14]}'] * (MB // 45)) + "]</answer>",
    "bbox" + " " * MB,
    "<think>" + "bbox=[" + "9" * MB + ",0,1,1]</think>",
    "A. " * (MB // 3),
]

numbers = st.one_of(
    st.integers(-50, 200),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([True, False, None, "7", [], 10**400]),
)
boxes = st.one_of(
    st.lists(numbers, min_size=4, max_size=4),
    st.lists(numbers, max_size=6),
    st.sampled_from([[28, 0, 56, 28], [56, 28, 28, 0], [0, 0, 28, 28], [27, 1, 55, 29]]),
    numbers,
)
objects = st.one_of(
    st.fixed_dictionaries(
        {}, optional={"bbox_2d": boxes, "point_2d": st.lists(numbers, max_size=3), "label": st.text(max_size=5)}
    ),
    st.builds(lambda b, p: {"bbox_2d": b, "point_2d": p}, boxes, st.lists(numbers, min_size=2, max_size=2)),
    st.sampled_from(["bbox_2d", "point_2d", ["bbox_2d"], 5, None, 1.5]),
)
json_payloads = st.one_of(
    st.lists(objects, max_size=5).map(json.dumps),
    objects.map(json.dumps),  # JSON that is not a list
    st.recursive(
        st.none() | st.integers() | st.text(max_size=4),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=8,
    ).map(json.dumps),
    st.lists(objects, max_size=4).map(json.dumps).flatmap(lambda s: st.integers(0, len(s)).map(lambda i: s[:i])),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * (n // 2)),
    st.text(max_size=20),
)
WORDS = [
    "bbox",
    "bbox=[0,0,28,28]",
    "BBOX [0, 0, 28, 28]",
    "bbox=[1.5,2,3,4]",
    "bbox=[-1,2,3,4]",
    "bounding box",
    "coordinates",
    "left",
    "next to",
    "compare",
    "region",
    "reference",
    "circle",
    "squares",
    "people",
    "the",
    "a",
    ".",
    "image",
    "shows",
    "<think>",
    "</think>",
    "<answer>",
    "İ",
    "漢字",
    "\u200b",
    "\x00",
    "\n",
]
prose = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), max_size=15).map(" ".join)


@st.composite
def completions(draw):
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:
        return draw(st.text(max_size=8)) * draw(st.integers(0, 2000))  # long repeated fragments
    parts = []
    for tag in ("scene", "focus", "think", "answer"):
        body = draw(json_payloads if tag == "answer" else prose)
        shape = draw(st.integers(0, 9))
        if shape <= 5:
            parts.append(f"<{tag}>{body}</{tag}>")
        elif shape == 6:
            parts.append(f"<{tag}>{body}")  # unclosed
        elif shape == 7:
            parts.append(f"<{tag}><{tag}>{body}</{tag}></{tag}>")  # nested
        elif shape == 8:
            parts.append(f"</{tag}>{body}<{tag}>")  # inverted
    if draw(st.booleans()):
        parts = draw(st.permutations(parts))
    text = draw(st.sampled_from(["", "\n", " junk "])).join(parts)
    if kind == 2:
        return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
    return text


problems = st.sampled_from(
    [
        "the red circle",
        "the blue square, next to bbox=[0,0,28,28]",
        "",
        "bbox=[0,0,28,28] and bbox=[28,0,56,28]",
        "which one? BBOX=[1,2,3,4]",
    ]
)
solutions = st.sampled_from(
    [
        [{"bbox_2d": [28, 0, 56, 28], "point_2d": [42, 14]}],
        [{"bbox_2d": [0, 0, 28, 28], "point_2d": [14, 14]}, {"bbox_2d": [28, 0, 56, 28], "point_2d": [42, 14]}],
    ]
)
rows = st.builds(lambda c, p, s: {"completion": c, "problem": p, "solution": s}, completions(), problems, solutions)


def assert_in_range(name: str, value: float) -> None:
    low, high = TERMS[name].low, TERMS[name].high
    assert isinstance(value, float) and math.isfinite(value), (name, value)
    assert low - TOLERANCE <= value <= high + TOLERANCE, (name, value)


@pytest.mark.slow
@settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
@given(st.lists(rows, min_size=BATCH, max_size=BATCH))
def test_every_variant_scores_hostile_completions_finitely_within_range(batch):
    for variant, bound in VARIANT_TOTAL.items():
        for result in score_completions(variant, batch, iou_threshold=0.5):
            for name, value in result["terms"].items():
                assert_in_range(name, value)
            assert math.isfinite(result["total"]) and 0.0 <= result["total"] <= bound + TOLERANCE


@pytest.mark.parametrize("index", range(len(HUGE)))
def test_every_variant_scores_a_1mb_completion_within_range(index):
    """The < 1 s speed target for a 1 MB completion is measured by scripts/bench_rewards.py
    (docs/benchmarks.md), not asserted here: timed unit tests fail on a busy CI machine."""
    row = {
        "completion": HUGE[index],
        "problem": "the blue square, next to bbox=[0,0,28,28]",
        "solution": [{"bbox_2d": [28, 0, 56, 28], "point_2d": [42, 14]}],
    }
    for number, variant in enumerate(VARIANTS):
        fresh = dict(row, completion=row["completion"] + " " * number)  # not served from the parse caches
        result = score_completions(variant, [fresh])[0]
        for name, value in result["terms"].items():
            assert_in_range(name, value)


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(completions())
def test_parsers_never_raise_and_return_valid_objects(completion):
    text = completion if isinstance(completion, str) else completion[0]["content"][0]["text"]
    for tag in ("scene", "focus", "think", "answer"):
        assert_tag_content(text, tag)
    for obj in parse_answer(text):
        x1, y1, x2, y2 = obj["bbox_2d"]
        assert all(math.isfinite(v) for v in obj["bbox_2d"]) and x1 < x2 and y1 < y2
        assert obj["point_2d"] is None or all(math.isfinite(v) for v in obj["point_2d"])
    for box in cited_boxes(text):
        assert len(box) == 4 and all(isinstance(v, int) and abs(v) <= 10**9 for v in box)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_citation_is_exactly_one_without_a_reference(thinks):
    rows_ = [{"completion": f"<think>{t}</think>", "problem": "the red circle", "solution": []} for t in thinks]
    assert all(r["terms"]["citation_reward"] == 1.0 for r in score_completions("ref_cite", rows_))
