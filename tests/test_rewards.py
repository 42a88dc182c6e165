"""Hand-computed cases for every reward term and variant (docs/method.md section 5); arithmetic in comments."""

from __future__ import annotations

import json
import pickle

import pytest

from regionreasoner.config import load_config
from regionreasoner.io import read_jsonl
from regionreasoner.rewards import (
    VARIANTS,
    accuracy_reward,
    citation_reward,
    consistency_reward,
    format_reward,
    key_nouns,
    non_repeat_reward,
    reward_file,
    reward_functions,
    score_completions,
)
from regionreasoner.rewards import released_code as released
from regionreasoner.rewards.consistency import logic_prior
from regionreasoner.rewards.nouns import MissingSpacyModel, noun_extractor, plural_forms
from regionreasoner.rewards.registry import TERMS, variants_table
from regionreasoner.train.grpo import run_grpo
from tests.conftest import REPO

GT = [{"bbox_2d": [28, 0, 56, 28], "point_2d": [42, 14]}]
PROBLEM = "the blue square, to the right of bbox=[0,0,28,28]"
COMPLETION = (
    "<scene>The image shows a red circle and a blue square on a coloured grid.</scene>"
    "<focus>a red circle in the top left cell</focus>"
    "<think>The reference bbox=[0,0,28,28] holds the red circle; the blue square is to the right of it.</think>"
    '<answer>[{"bbox_2d":[28,0,56,28],"point_2d":[42,14]}]</answer>'
)


def answer(*objects: dict) -> str:
    return f"<answer>{json.dumps(list(objects))}</answer>"


def blocks(scene="", focus="", think="", answer_json="[]") -> str:
    return f"<scene>{scene}</scene><focus>{focus}</focus><think>{think}</think><answer>{answer_json}</answer>"


# ------------------------------------------------------------------ format and non-repeat
def test_format_full_marks_for_four_blocks_and_a_valid_answer():
    # structure 1 + answer validity (1 valid box + 1 valid point) / 1 object = 1 + 2 = 3
    assert format_reward([COMPLETION]) == [3.0]


def test_format_without_focus_block_loses_the_structure_point():
    text = COMPLETION.replace("<focus>a red circle in the top left cell</focus>", "")
    assert format_reward([text]) == [2.0]  # 0 + 2


def test_format_text_outside_blocks_loses_the_structure_point():
    assert format_reward(["preamble " + COMPLETION]) == [2.0]  # 0 + 2
    assert format_reward([COMPLETION + " trailing"]) == [2.0]
    assert format_reward(["\n " + COMPLETION + "\n"]) == [3.0]  # whitespace is allowed


def test_format_averages_answer_validity_over_objects():
    # object 1: box and point valid = 2; object 2: inverted box 0 + valid point 1; (2 + 1) / 2 = 1.5
    text = blocks(
        answer_json=json.dumps(
            [
                {"bbox_2d": [0, 0, 10, 10], "point_2d": [5, 5]},
                {"bbox_2d": [10, 0, 0, 10], "point_2d": [5, 5]},
            ]
        )
    )
    assert format_reward([text]) == [1.0 + 1.5]


def test_format_answer_that_is_not_a_list_earns_only_structure():
    assert format_reward([blocks(answer_json='{"bbox_2d": [0, 0, 10, 10]}')]) == [1.0]  # 1 + 0


def test_non_repeat_tolerates_one_repeated_sentence_but_not_two():
    # "A. B. A." -> one repeat -> 1; "A. A. A." -> two repeats -> 0; "A. B. A. B." -> two -> 0
    assert non_repeat_reward(["A. B. A.", "A. A. A.", "A. B. A. B.", ""]) == [1.0, 0.0, 0.0, 1.0]


# ------------------------------------------------------------------ accuracy
def test_accuracy_exact_match_scores_three():
    # IoU 1 > 0.5, L1 0 < 10, point distance 0 < 30 and inside: 3 * 1 - 0 = 3, / max(1, 1) = 3
    assert accuracy_reward([answer(*GT)], solution=[GT]) == [3.0]


def test_accuracy_counts_each_criterion():
    # box [30,2,58,30] vs [28,0,56,28]: intersection 26*26 = 676, union 784 + 784 - 676 = 892,
    # IoU 0.758 > 0.5 -> 1; mean L1 (2+2+2+2)/4 = 2 < 10 -> 1; point (44,16) vs (42,14) at 2.83 px,
    # inside the predicted box -> 1. Total 3.
    shifted = {"bbox_2d": [30, 2, 58, 30], "point_2d": [44, 16]}
    assert accuracy_reward([answer(shifted)], solution=[GT]) == [3.0]
    # the same point outside the predicted box loses the point criterion: 2
    outside = {"bbox_2d": [30, 2, 58, 30], "point_2d": [29, 14]}  # x 29 < x1 30
    assert accuracy_reward([answer(outside)], solution=[GT]) == [2.0]
    # L1 (20+20+20+20)/4 = 20 >= 10 -> 0, IoU 8*8/(784+784-64) = 0.04 -> 0, point (62,34) inside
    # the predicted box at sqrt(20^2 + 20^2) = 28.3 px < 30 -> 1: total 1
    far = {"bbox_2d": [48, 20, 76, 48], "point_2d": [62, 34]}
    assert accuracy_reward([answer(far)], solution=[GT]) == [1.0]


def test_accuracy_divides_by_the_larger_object_count():
    far = {"bbox_2d": [80, 80, 100, 100], "point_2d": [90, 90]}
    # one exact match of 3 among 2 predictions: 3 / max(2, 1) = 1.5
    assert accuracy_reward([answer(GT[0], far)], solution=[GT]) == [1.5]
    # one prediction for 2 targets: 3 / max(1, 2) = 1.5
    assert accuracy_reward([answer(GT[0])], solution=[[GT[0], far]]) == [1.5]
    # an invalid item still counts as predicted: 3 / max(2, 1) = 1.5
    assert accuracy_reward([answer(GT[0], {"bbox_2d": "junk"})], solution=[GT]) == [1.5]


def test_accuracy_uses_the_optimal_assignment_not_a_greedy_one():
    g1 = {"bbox_2d": [0, 0, 100, 100], "point_2d": [50, 50]}
    g2 = {"bbox_2d": [0, 0, 100, 150], "point_2d": [50, 75]}
    a = {"bbox_2d": [0, 0, 100, 100], "point_2d": [50, 50]}
    b = {"bbox_2d": [0, 0, 100, 60], "point_2d": [50, 30]}
    # a-g1: 3. a-g2: IoU 10000/15000 = .67 -> 1, L1 50/4 = 12.5 -> 0, point 25 px inside -> 1: 2.
    # b-g1: IoU 6000/10000 = .6 -> 1, L1 40/4 = 10 (not < 10) -> 0, point 20 px inside -> 1: 2.
    # b-g2: IoU 6000/15000 = .4 -> 0, L1 90/4 -> 0, point 45 px -> 0: 0.
    # greedy a-g1 + b-g2 = 3; optimal a-g2 + b-g1 = 4; reward 4 / max(2, 2) = 2
    assert accuracy_reward([answer(a, b)], solution=[[g1, g2]]) == [2.0]


def test_accuracy_thresholds_are_parameters_for_small_frames():
    # 112 px frame: thresholds 0.5, 10 * 112/840 = 1.33 px, 30 * 112/840 = 4 px
    shifted = {"bbox_2d": [30, 2, 58, 30], "point_2d": [44, 16]}
    # IoU .758 -> 1; L1 2 >= 1.33 -> 0; point 2.83 < 4 inside -> 1: 2
    assert accuracy_reward(
        [answer(shifted)], solution=[GT], l1_threshold=10 * 112 / 840, point_threshold=30 * 112 / 840
    ) == [2.0]


def test_accuracy_of_malformed_answers_is_zero():
    texts = [
        "no answer",
        "<answer>[1, 2</answer>",
        '<answer>{"bbox_2d": [28, 0, 56, 28]}</answer>',
        '<answer>[{"bbox_2d": [56, 0, 28, 28]}]</answer>',
        "<answer>[]</answer>",
    ]
    assert accuracy_reward(texts, solution=[GT] * len(texts)) == [0.0] * len(texts)


def test_accuracy_reads_solution_as_json_text_and_rejects_malformed_solution():
    assert accuracy_reward([answer(*GT)], solution=[json.dumps(GT)]) == [3.0]
    with pytest.raises(ValueError, match="row 0"):
        accuracy_reward([answer(*GT)], solution=[[{"bbox_2d": [1, 2]}]])
    with pytest.raises(ValueError, match="solution"):
        accuracy_reward([answer(*GT)])


# ------------------------------------------------------------------ R_ref
def think(text: str) -> str:
    return f"<think>{text}</think>"


def test_citation_is_one_on_a_turn_without_reference():
    assert citation_reward([think("nothing"), ""], problem=["the red circle", "x"]) == [1.0, 1.0]


def test_citation_rewards_box_word_and_cited_reference():
    texts = [
        think("left of bbox=[0,0,28,28]"),  # kw 1 + 1 * |{ref}| / |{ref}| = 2
        think("bbox=[0,0,28,28] and bbox=[1,1,5,5]"),  # (1 + 1/2) * eta 0.5 = 0.75
        think("bbox=[1,1,5,5]"),  # (1 + 0/1) * 0.5 = 0.5
        think("its coordinates"),  # 1 + 0 / max(0, 1) = 1
        think("to the right"),  # 0 + 0 = 0
        "no think at all",  # 0
    ]
    assert citation_reward(texts, problem=[PROBLEM] * 6) == [2.0, 0.75, 0.5, 1.0, 0.0, 0.0]


def test_citation_prefers_reference_boxes_column_over_the_question():
    # the column says the reference is [1,1,5,5], so citing it earns kw 1 + 1 = 2
    assert citation_reward([think("bbox=[1,1,5,5]")], problem=[PROBLEM], reference_boxes=[[[1, 1, 5, 5]]]) == [2.0]
    assert citation_reward([think("bbox=[1,1,5,5]")], problem=[PROBLEM], reference_boxes=[[]]) == [1.0]


def test_citation_needs_problem_or_reference_boxes():
    with pytest.raises(ValueError, match="reference_boxes"):
        citation_reward(["x"])


# ------------------------------------------------------------------ K(.) and R_cons
def test_lexicon_key_nouns_are_canonical_singulars():
    nouns = key_nouns(["Two red circles, people and a traffic light.", "hot dogs on a sofa", "", "the and of"])
    assert nouns == [
        frozenset({"circle", "person", "traffic light"}),
        frozenset({"hot dog", "couch"}),
        frozenset(),
        frozenset(),
    ]


def test_lexicon_fallback_has_no_part_of_speech_tags():
    # documented limit: "orange" is a COCO category, so an orange shirt yields it
    assert key_nouns(["an orange shirt"]) == [frozenset({"orange", "shirt"})]


def test_extra_nouns_extend_the_lexicon_and_plurals_are_generated():
    assert key_nouns(["three hexagons"], noun_lexicon=["hexagon"]) == [frozenset({"hexagon"})]
    assert plural_forms("bus") == ("bus", "buses")
    assert plural_forms("baseball bat") == ("baseball bat", "baseball bats")
    assert plural_forms("sheep") == ("sheep",)


def test_missing_spacy_pipeline_stops_with_the_install_command():
    with pytest.raises(MissingSpacyModel, match=r"python -m spacy download no_such_spacy_pipeline_xyz"):
        noun_extractor("no_such_spacy_pipeline_xyz", ())


def test_paper_config_noun_step_without_the_spacy_model_stops_before_training(monkeypatch, tmp_path):
    # whether or not en_core_web_sm is installed here, the paper config must refuse to compute K(.)
    # without it rather than switch to the lexicon, and GRPO must stop before it loads anything
    monkeypatch.setattr("regionreasoner.rewards.nouns.is_package", lambda name: False)
    noun_extractor.cache_clear()
    cfg = load_config(REPO / "config" / "paper.yaml")
    assert cfg.rewards.spacy_model == "en_core_web_sm"
    with pytest.raises(MissingSpacyModel, match=r"`python -m spacy download en_core_web_sm`"):
        key_nouns(["a man on a horse"], spacy_model=cfg.rewards.spacy_model)
    with pytest.raises(MissingSpacyModel, match=r"`python -m spacy download en_core_web_sm`"):
        run_grpo(
            cfg,
            "full",
            tmp_path / "no_model",
            tmp_path / "no_turns.jsonl",
            tmp_path / "out",
            tmp_path / "m.csv",
            tmp_path / "kept",
        )
    noun_extractor.cache_clear()


def test_logic_prior_sums_word_classes_and_is_capped():
    assert logic_prior("it is left of the cup") == 0.5  # spatial
    assert logic_prior("compare the region") == 0.3 + 0.2  # comparison + location
    # spatial .5 + comparison .3 + location .2 + reference .2 = 1.2, capped at 1
    assert logic_prior("left, compare, region, bbox") == 1.0
    assert logic_prior("leftover bboxes") == 0.0  # whole words only


def test_consistency_hand_computed():
    text = blocks(scene="a red circle and a blue square", focus="the red circle", think="the circle is left of it")
    # K(scene) = {circle, square}, K(focus) = {circle}, K(think) = {circle}
    # with a reference: 1.0 * 1/2 + 0.6 * 1/1 + 0.4 * logic(left = .5) = 0.5 + 0.6 + 0.2 = 1.3
    # without:          1.0 * 1/2                + 0.4 * 0.5            = 0.7
    # w_l = 0:          0.5 + 0.6 = 1.1
    assert consistency_reward([text, text], problem=[PROBLEM, "the red circle"]) == pytest.approx([1.3, 0.7])
    assert consistency_reward([text], problem=[PROBLEM], w_l=0.0) == pytest.approx([1.1])


def test_consistency_of_empty_or_missing_blocks_is_zero_and_at_most_two():
    assert consistency_reward(["", "<think>x</think>"], problem=[PROBLEM, PROBLEM]) == [0.0, 0.0]
    full = blocks(scene="a circle", focus="a circle", think="circle left compare region bbox")
    # 1 * 1 + 0.6 * 1 + 0.4 * min(1, 1.2) = 2.0, the clip bound
    assert consistency_reward([full], problem=[PROBLEM]) == pytest.approx([2.0])


# ------------------------------------------------------------------ released code
def test_released_code_terms_hand_computed():
    # tags: scene >= 10 chars with "image" 0.5; focus (reference present) 8 words >= 5 -> 0.8 and
    #   copies 1 of 7 question tokens ("the") < 60 %; think 0.5; answer 0.5: 2.3
    # answer validity: (1 + 1) / 1 = 2; citation: "bbox" 1 + 1/1 matched = 2
    # accuracy: IoU 1, L1 0, point 0 px inside: 3 / 1 = 3; non-repeat: no repeated sentence, 1
    # consistency: scene words [image shows red circle blue square coloured grid] -> 4 of 8 in the
    #   think = 0.5; focus words [red circle top left cell] -> 2 of 5 = 0.4 * 0.6 = 0.24;
    #   logic: "right" .5 + "reference"/"bbox" .2 = .7 * .4 = .28; 0.5 + 0.24 + 0.28 = 1.02
    # total 2.3 + 2 + 2 + 3 + 1 + 1.02 = 11.32
    result = score_completions("released_code", [{"completion": COMPLETION, "problem": PROBLEM, "solution": GT}])[0]
    assert result["terms"] == pytest.approx(
        {
            "released_format_reward": 2.3,
            "released_answer_format_reward": 2.0,
            "released_citation_reward": 2.0,
            "released_accuracy_reward": 3.0,
            "released_non_repeat_reward": 1.0,
            "released_consistency_reward": 1.02,
        }
    )
    assert result["total"] == pytest.approx(11.32)


def test_released_accuracy_uses_the_plus_one_pixel_iou():
    # pred [0,0,9,9] vs gt [0,0,9,19]. Continuous IoU 81/171 = .47 < .5; +1 pixel: 100/200 = .5, still
    # not > .5. pred [0,0,10,10] vs gt [0,0,10,19]: continuous 100/190 = .526; +1: 121/220 = .55.
    # pred [0,0,4,4] vs gt [0,0,4,7]: continuous 16/28 = .571 > .5; +1: 25/40 = .625. Both agree there;
    # pred [0,0,1,1] vs gt [0,0,1,2]: continuous 1/2 = .5 (not > .5); +1: 4/6 = .667 > .5.
    gt = [{"bbox_2d": [0, 0, 1, 2], "point_2d": [100, 100]}]
    pred = answer({"bbox_2d": [0, 0, 1, 1], "point_2d": [50, 50]})
    # L1 (0+0+0+1)/4 = .25 < 10 -> 1 in both; point 70.7 px -> 0; IoU: paper 0, released 1
    assert accuracy_reward([pred], solution=[gt]) == [1.0]
    assert released.accuracy_score(pred, gt) == 2.0


def test_released_focus_and_citation_quirks():
    no_ref = "the red circle"
    # without a reference an absent focus earns 0.5 and a present one 0
    assert released._focus_tag("<think>x</think>", no_ref) == 0.5
    assert released._focus_tag("<focus>anything</focus>", no_ref) == 0.0
    # with a reference a focus copying > 60 % of the question tokens earns 0
    assert released._focus_tag(f"<focus>{PROBLEM}</focus>", PROBLEM) == 0.0
    # citation: no <think> -> 0 even without a reference; no problem -> 0; no reference -> 1
    assert released.citation_score("no think", no_ref) == 0.0
    assert released.citation_score("<think>x</think>", None) == 0.0
    assert released.citation_score("<think>x</think>", no_ref) == 1.0
    # decimals are not citations in the released pattern: only the keyword counts
    assert released.citation_score("<think>bbox=[0.0,0,28,28]</think>", PROBLEM) == 1.0


def test_released_answer_validity_stops_where_the_released_loop_raises():
    # items: valid object (2/3), then a bare number (the released membership test raises): 2/3
    text = answer({"bbox_2d": [1, 2, 3, 4], "point_2d": [1, 2]}, 5, {"bbox_2d": [1, 2, 3, 4]})
    assert released.answer_validity_score(text) == pytest.approx(2 / 3)
    # values are not checked: a list of four strings is a "valid" box: (1 + 0) / 1
    assert released.answer_validity_score(answer({"bbox_2d": ["a", "b", "c", "d"]})) == 1.0


# ------------------------------------------------------------------ variants
def test_variants_compose_terms_and_weights():
    names = {v: [f.__name__ for f in reward_functions(v)[0]] for v in VARIANTS}
    base = ["format_reward", "non_repeat_reward", "accuracy_reward"]
    assert names["base_only"] == base
    assert names["ref_cite"] == [*base, "citation_reward"]
    assert (
        names["ref_cite_consist"] == names["paper"] == names["full"] == [*base, "citation_reward", "consistency_reward"]
    )
    assert reward_functions("paper", alpha=1.5, beta=0.5)[1] == [1.0, 1.0, 1.0, 1.5, 0.5]
    assert reward_functions("released_code")[1] == [1.0] * 6


def test_docs_tables_are_the_registry():
    docs = (REPO / "docs" / "rewards.md").read_text()
    assert variants_table() in docs, "copy registry.variants_table() into docs/rewards.md"
    # term rows: | `name` (...) | formula | range (note) |
    rows = {
        line.split("`")[1]: line.strip().strip("|").split("|")[-1].strip()
        for line in docs.splitlines()
        if line.startswith("| `") and "_reward`" in line.split("|")[1]
    }
    assert set(rows) == set(TERMS)
    for name, term in TERMS.items():
        assert rows[name].startswith(term.range_text()), (name, rows[name], term.range_text())


def test_alpha_or_beta_without_a_term_they_weight_is_reported(caplog):
    with caplog.at_level("WARNING"):
        assert reward_functions("released_code", alpha=2.0)[1] == [1.0] * 6
        assert reward_functions("ref_cite", alpha=2.0, beta=0.5)[1] == [1.0, 1.0, 1.0, 2.0]
    assert [r.getMessage() for r in caplog.records] == [
        "reward variant released_code has no term they weight: alpha=2.0 ignored",
        "reward variant ref_cite has no term they weight: beta=0.5 ignored",
    ]


def test_unknown_variant_lists_allowed_names():
    with pytest.raises(ValueError, match="base_only, ref_cite, ref_cite_consist, paper, full, released_code"):
        reward_functions("nope")


def test_ablation_rows_differ_only_by_their_terms():
    row = {"completion": COMPLETION, "problem": PROBLEM, "solution": GT}
    scores = {v: score_completions(v, [row])[0] for v in VARIANTS}
    # base: format 3 + non-repeat 1 + accuracy 3 = 7; + R_ref 2 = 9
    assert scores["base_only"]["total"] == 7.0
    assert scores["ref_cite"]["total"] == 9.0
    # R_cons without logic: K(scene) {circle, square, grid}, K(think) {circle, square}: 2/3;
    # K(focus) {circle, cell}: 1/2 * 0.6 = 0.3; 9 + 0.667 + 0.3 = 9.967
    assert scores["ref_cite_consist"]["total"] == pytest.approx(9 + 2 / 3 + 0.3)
    # logic: "right" .5 + "reference"/"bbox" .2 = .7 * .4 = .28
    assert scores["paper"]["total"] == pytest.approx(9 + 2 / 3 + 0.3 + 0.28)
    assert scores["full"] == scores["paper"]


def test_alpha_and_beta_scale_their_terms():
    row = {"completion": COMPLETION, "problem": PROBLEM, "solution": GT}
    plain = score_completions("paper", [row])[0]
    scaled = score_completions("paper", [row], alpha=1.5, beta=0.5)[0]
    terms = plain["terms"]
    expected = 7.0 + 1.5 * terms["citation_reward"] + 0.5 * terms["consistency_reward"]
    assert scaled["total"] == pytest.approx(expected)


def test_reward_functions_accept_trl_kwargs_and_conversational_completions():
    functions, _ = reward_functions("paper")
    messages = [[{"role": "assistant", "content": [{"type": "text", "text": COMPLETION}]}]]
    extra = {
        "prompts": [[{"role": "user", "content": "q"}]],
        "completion_ids": [[1, 2]],
        "trainer_state": object(),
        "log_extra": print,
        "log_metric": print,
        "image": [None],
        "id": ["x"],
    }
    values = [f(completions=messages, problem=[PROBLEM], solution=[GT], **extra) for f in functions]
    assert values[:4] == [[3.0], [1.0], [3.0], [2.0]]


def test_reward_functions_are_picklable_and_named():
    for variant in VARIANTS:
        for function in reward_functions(variant, iou_threshold=0.4)[0]:
            clone = pickle.loads(pickle.dumps(function))
            assert clone.__name__ == function.__name__


def test_reward_file_scores_each_line_in_order(tmp_path):
    rows = [
        {"completion": COMPLETION, "problem": PROBLEM, "solution": GT},
        {"completion": "garbage", "problem": "the red circle", "solution": GT},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reward_file("base_only", source, tmp_path / "out.jsonl")
    out = read_jsonl(tmp_path / "out.jsonl")
    # garbage: format 0 + non-repeat 1 + accuracy 0 = 1
    assert [r["total"] for r in out] == [7.0, 1.0]
    assert set(out[1]["terms"]) == {"format_reward", "non_repeat_reward", "accuracy_reward"}


def test_reward_file_names_the_file_and_record_of_bad_input(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"completion": "x", "solution": GT}) + "\n" + json.dumps({"completion": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"in\.jsonl: line 2 has no 'solution'"):
        reward_file("paper", source, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()
