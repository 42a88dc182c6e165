"""Each model is asked with its own prompt at paper scale; ``show-prompt`` prints it without weights."""

from __future__ import annotations

import json

import jinja2
import pytest
import yaml

from regionreasoner.cli import main
from regionreasoner.config import ConfigError, load_config, validate_config
from regionreasoner.models.processor import CHAT_TEMPLATE
from regionreasoner.models.prompts import build_messages, prompt_for_model, training_prompt
from tests.conftest import REPO

PAPER = REPO / "config" / "paper.yaml"


def _show_prompt(capsys, *args):
    assert main(["show-prompt", "--configfile", str(PAPER), *args]) == 0
    out = capsys.readouterr().out
    header = [line for line in out.splitlines() if line.startswith("#")]
    return header, json.loads("\n".join(line for line in out.splitlines() if not line.startswith("#")))


def test_show_prompt_fills_the_released_template_as_the_authors_evaluation_does(capsys):
    section = yaml.safe_load(PAPER.read_text())["prompt"]["models"]["released-regionreasoner"]
    question = "Find the cat to the LEFT of the one in <box>{context_bbox}</box>."
    header, messages = _show_prompt(
        capsys, "--model", "released-regionreasoner", "--question", question, "--cited-box", "13,117,219,197"
    )
    # the authors' evaluation: the placeholder becomes str(box), then the question is lower-cased and
    # stripped of . " ? ! and formatted into DETECTION_TEMPLATE with their example answer; no system message
    theirs = question.replace("<box>{context_bbox}</box>", str([13, 117, 219, 197])).lower().strip('."?!')
    expected = section["template"].format(Question=theirs, Answer=section["fill"]["Answer"])
    assert messages == [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": expected}]}]
    assert expected.startswith('Please find "find the cat to the left of the one in [13, 117, 219, 197]" with bboxs')
    assert "f34dbfcbc9871121bcb5fe48c26da61b828aa4e6" in header[0]


def test_our_grpo_models_share_the_released_evaluation_prompt_and_train_with_the_training_prompt():
    cfg = load_config(PAPER)
    released = build_messages("a dog.", prompt_for_model(cfg, "released-regionreasoner"))
    assert build_messages("a dog.", prompt_for_model(cfg, "grpo-full")) == released
    system, user = build_messages("A Dog.", training_prompt(cfg))
    assert system["content"][0]["text"] == "You are a helpful assistant."
    # rl_dataset.py: "<image>\n" + template; the image goes first, the newline stays; .lower().strip(".")
    assert user["content"][1]["text"].startswith('\nPlease find "a dog" with bboxs and points.\n')


def test_models_without_a_prompt_of_their_own_get_the_default(capsys):
    header, messages = _show_prompt(capsys, "--model", "sft", "--question", "the man")
    assert "default prompt" in header[0]
    assert messages[0] == {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]}


REGIONREASONER_EXAMPLE = (
    '[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, {"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]'
)
SEGZERO_EXAMPLE = "{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}"


def _as_the_authors_ask(model: str, template: str, question: str) -> list[dict]:
    """The messages each model's own evaluation code sends, filled as that code fills them."""
    if model in ("released-regionreasoner", "released-visionreasoner", "grpo-full"):
        text = template.format(Question=question.lower().strip('."?!'), Answer=REGIONREASONER_EXAMPLE)
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    if model == "released-segzero":  # Seg-Zero evaluation.py: .lower().strip("."), its one-object example
        text = template.format(Question=question.lower().strip("."), Answer=SEGZERO_EXAMPLE)
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    # qwen_vl.py: DETECTION_PROMPT.format(query=query), system "You are a helpful assistant"
    return [
        {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant"}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": template.format(query=question)}]},
    ]


@pytest.mark.parametrize(
    "model",
    ["released-qwen2vl", "base", "released-segzero", "released-visionreasoner", "released-regionreasoner", "grpo-full"],
)
def test_every_table_1_2_model_is_asked_with_its_authors_template(capsys, model):
    paper = yaml.safe_load(PAPER.read_text())
    assert model in paper["report"]["table1_rows"]
    models = paper["prompt"]["models"]
    section = models.get(model) or models["grpo-*"]
    question = 'The Man in a "Red" shirt?.'
    header, messages = _show_prompt(capsys, "--model", model, "--question", question)
    assert messages == _as_the_authors_ask(model, section["template"], question)
    assert section["source"] in header[0] and "@" in section["source"]


def test_qwen_templates_are_the_authors_own_literals_and_ask_at_native_resolution(capsys):
    header, messages = _show_prompt(capsys, "--model", "released-qwen2vl", "--question", "the dog")
    text = messages[1]["content"][1]["text"]
    assert text.startswith('\n            Please identify "the dog" in the image. \n')
    assert '{"bbox": [x1, y1, x2, y2], "label": label}' in text  # the literal's doubled braces, formatted
    assert "own resolution" in header[1] and "qwen2_vl (boxes in thousandths)" in header[2]
    header, messages = _show_prompt(capsys, "--model", "base", "--question", "the dog")
    assert messages[1]["content"][1]["text"] == (
        '\n            Locate "the dog", report the bboxes coordinates in JSON format.\n            '
    )
    assert "qwen2_5_vl (boxes in pixels)" in header[2]


def test_unknown_model_id_is_an_error(capsys):
    assert main(["show-prompt", "--configfile", str(PAPER), "--model", "nope", "--question", "x"]) == 1
    assert "unknown model id 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("box", ["1,2,3", "a,b,c,d"])
def test_cited_box_needs_four_numbers(capsys, box):
    args = ["--model", "base", "--question", "x {ref_box}", "--cited-box", box]
    assert main(["show-prompt", "--configfile", str(PAPER), *args]) == 1
    assert "--cited-box expects x1,y1,x2,y2" in capsys.readouterr().err


def _render(messages):
    return jinja2.Template(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)


def test_no_system_message_renders_as_the_default_system_message():
    cfg = load_config(PAPER)
    released = build_messages("a dog", prompt_for_model(cfg, "released-regionreasoner"))
    explicit = [{"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]}, *released]
    assert _render(released) == _render(explicit)


def test_training_prompt_renders_as_the_authors_image_token_prompt():
    cfg = load_config(PAPER)
    section = cfg.prompt.train.model_dump()
    # rl_dataset.py: user text "<image>\n..." whose <image> becomes the vision tokens
    theirs = (
        section["template"]
        .format(Question="a dog", **section["fill"])
        .replace("<image>", "<|vision_start|><|image_pad|><|vision_end|>")
    )
    expected = (
        f"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n{theirs}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert _render(build_messages("A dog.", training_prompt(cfg))) == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda models: models["released-visionreasoner"].update(question_field="query"), "has no placeholder {query}"),
        (
            lambda models: models.update({"released-nothing": dict(models["released-visionreasoner"])}),
            "matches no model id",
        ),
    ],
)
def test_model_prompts_that_cannot_apply_are_config_errors(change, message):
    raw = yaml.safe_load(PAPER.read_text())
    change(raw["prompt"]["models"])
    with pytest.raises(ConfigError, match=message):
        validate_config(raw, "paper.yaml")
