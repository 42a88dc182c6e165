"""The tiny Qwen2.5-VL: builds offline, reloads, and tokenises the answer format compactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionPatchEmbed

from regionreasoner.models.patch_embed import PATCH_EMBEDS, embed_patches_by_conv, embed_patches_by_matmul
from regionreasoner.models.processor import load_processor
from regionreasoner.models.prompts import PromptConfig, build_messages, render_target
from regionreasoner.models.tiny import TinyModelConfig, build_tiny_model

TURN = {
    "problem": "the object right of bbox=[0,0,28,28]",
    "solution": [{"bbox_2d": [28, 0, 56, 28], "point_2d": [42, 14]}],
    "reference_boxes": [[0, 0, 28, 28]],
    "scene": "a red circle and a blue square on a coloured grid.",
    "focus": "the red circle",
    "target": "the blue square",
    "relation": "right_of",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    (root / "turns.jsonl").write_text(json.dumps(TURN) + "\n")
    build_tiny_model(root / "turns.jsonl", root / "model", TinyModelConfig(), PromptConfig(), frame=112, seed=0)
    return root / "model"


def test_target_has_the_four_parts_and_cites_the_reference():
    target = render_target(TURN)
    assert target.startswith("<scene>a red circle") and "<focus>the red circle</focus>" in target
    assert "to the right of bbox=[0,0,28,28]" in target
    assert target.endswith('<answer>[{"bbox_2d":[28,0,56,28],"point_2d":[42,14]}]</answer>')


def test_varied_targets_cite_and_name_nouns_in_some_turns_and_not_in_others():
    """Across turns, each optional part of the ``varied`` think is present in some and absent in
    others, a present part carries what R_ref and R_cons read, and the answer never varies."""
    targets = [render_target(TURN | {"id": f"1-{i}-r2"}, "varied") for i in range(40)]
    boxes = ["bbox=[0,0,28,28]</think>" in t for t in targets]
    focus_nouns = ["<think>to the right of the red circle" in t for t in targets]
    for present in (boxes, focus_nouns):
        assert 0 < sum(present) < len(targets)
    assert all("<think>to the right of" in t and "<scene></scene>" in t for t in targets)
    assert all(t.endswith('<answer>[{"bbox_2d":[28,0,56,28],"point_2d":[42,14]}]</answer>') for t in targets)
    assert render_target(TURN | {"id": "1-3-r2"}, "varied") == targets[3]  # seeded by the turn id
    uncited = TURN | {"reference_boxes": [], "relation": None, "focus": "", "problem": "the blue square"}
    thinks = [render_target(uncited | {"id": f"1-{i}-r1"}, "varied") for i in range(40)]
    finds = ["<think>find the blue square</think>" in t for t in thinks]
    assert 0 < sum(finds) < len(thinks) and all(f or "<think></think>" in t for f, t in zip(finds, thinks))


def test_coordinates_and_answer_scaffolding_are_single_tokens(tiny):
    tokenizer = load_processor(tiny, 112).tokenizer
    target = render_target(TURN)
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer.decode(ids) == target
    assert {"28", "56", "42", "14", '[{"bbox_2d":[', "<answer>", "</think>"} <= set(tokens)


def test_chat_roles_and_system_message_are_merged_by_bpe(tiny):
    tokenizer = load_processor(tiny, 112).tokenizer
    for text in ("system", "assistant", " helpful", "You"):
        assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == 1, text


def test_model_reloads_offline_and_sees_16_image_tokens(tiny):
    processor = load_processor(tiny, 112)
    model = AutoModelForImageTextToText.from_pretrained(tiny)
    text = processor.apply_chat_template(
        build_messages("the red circle", PromptConfig()), add_generation_prompt=True, tokenize=False
    )
    inputs = processor(text=[text], images=[Image.new("RGB", (112, 112))], return_tensors="pt")
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == 16
    out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3
    card = json.loads((tiny / "model_card.json").read_text())
    assert 0.5e6 < card["parameters"] < 3e6


def test_same_seed_builds_identical_weights(tiny, tmp_path):
    (tmp_path / "turns.jsonl").write_text(json.dumps(TURN) + "\n")
    build_tiny_model(tmp_path / "turns.jsonl", tmp_path / "again", TinyModelConfig(), PromptConfig(), frame=112, seed=0)
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (tiny / "model.safetensors").read_bytes()


def test_mrope_section_must_match_head_dim():
    with pytest.raises(ValueError, match="mrope_section"):
        TinyModelConfig(mrope_section=(8, 8, 8))


def test_initializer_range_sets_the_std_of_text_and_vision_weights(tiny, tmp_path):
    (tmp_path / "turns.jsonl").write_text(json.dumps(TURN) + "\n")
    build_tiny_model(
        tmp_path / "turns.jsonl",
        tmp_path / "wide",
        TinyModelConfig(initializer_range=0.1),
        PromptConfig(),
        frame=112,
        seed=0,
    )
    for path, std in ((tiny, 0.02), (tmp_path / "wide", 0.1)):
        weights = dict(AutoModelForImageTextToText.from_pretrained(path).named_parameters())
        for name in ("model.language_model.layers.0.self_attn.q_proj.weight", "model.visual.blocks.0.attn.qkv.weight"):
            assert weights[name].std().item() == pytest.approx(std, rel=0.1), name


@pytest.fixture
def restored_patch_embeds(monkeypatch):
    """transformers' own patch-embedding forwards for the test (an earlier test in this process may
    have loaded a model the pipeline's way), and the forwards as they were after it."""
    for cls in PATCH_EMBEDS:
        monkeypatch.setattr(cls, "forward", cls.forward)
    embed_patches_by_conv()


def _conv_calls(embed: torch.nn.Module) -> list[str]:
    """The devices of the inputs the Conv3d module itself is called with, as they happen."""
    calls: list[str] = []
    embed.proj.register_forward_pre_hook(lambda module, args: calls.append(args[0].device.type))
    return calls


@pytest.mark.parametrize("cls", PATCH_EMBEDS, ids=["qwen2.5-vl", "qwen2-vl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_patch_embedding_by_matmul_matches_the_conv3d_and_its_weight_gradient(cls, dtype, restored_patch_embeds):
    torch.manual_seed(0)
    embed = cls(patch_size=14, temporal_patch_size=2, in_channels=3, embed_dim=32).to(dtype)
    rows = torch.randn(10, 3 * 2 * 14 * 14)  # float32, as the processor gives them
    calls = _conv_calls(embed)
    by_conv = embed(rows)
    (conv_grad,) = torch.autograd.grad(by_conv.float().square().sum(), embed.proj.weight)
    assert calls == ["cpu"]
    embed_patches_by_matmul()
    by_matmul = embed(rows)
    (matmul_grad,) = torch.autograd.grad(by_matmul.float().square().sum(), embed.proj.weight)
    assert calls == ["cpu"] and by_matmul.dtype == dtype  # the Conv3d module did not run again
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2  # bfloat16 keeps 8 bits of mantissa
    for ours, theirs in ((by_matmul, by_conv), (matmul_grad, conv_grad)):
        assert (ours - theirs).float().norm() <= tolerance * theirs.float().norm()


def test_patch_embedding_off_the_cpu_runs_the_conv3d_module_so_its_hooks_fire(restored_patch_embeds):
    """DeepSpeed ZeRO-3 gathers a module's weight in hooks around that module's own call."""
    embed_patches_by_matmul()
    embed = Qwen2_5_VisionPatchEmbed(patch_size=14, temporal_patch_size=2, in_channels=3, embed_dim=32)
    calls = _conv_calls(embed)
    embed(torch.randn(4, 3 * 2 * 14 * 14))
    assert calls == []
    embed.to("meta")
    assert embed(torch.randn(4, 3 * 2 * 14 * 14, device="meta")).shape == (4, 32)
    assert calls == ["meta"]
