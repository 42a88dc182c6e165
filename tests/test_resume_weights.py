"""Resuming a plain checkpoint restores its weights, not only its step count."""

from __future__ import annotations

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Trainer, TrainingArguments

from regionreasoner.train.runner import CheckpointWeightsMixin


class ResumingTrainer(CheckpointWeightsMixin, Trainer):
    """The mixin on the Trainer that SFTTrainer and GRPOTrainer both derive from."""


def _qwen2_5_vl(seed: int) -> Qwen2_5_VLForConditionalGeneration:
    torch.manual_seed(seed)
    text = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": 100,
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 2, 4]},
    }
    vision = {
        "depth": 1,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 32,
        "fullatt_block_indexes": [0],
    }
    return Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(text_config=text, vision_config=vision))


def test_resume_loads_every_weight_of_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "checkpoint-2"
    saved = _qwen2_5_vl(seed=0)
    saved.save_pretrained(checkpoint)  # what Trainer writes into checkpoint-N (hub key names)
    live = _qwen2_5_vl(seed=1)
    trainer = ResumingTrainer(model=live, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]))
    expected = saved.state_dict()
    assert any(not torch.equal(value, expected[name]) for name, value in live.state_dict().items())

    trainer._load_from_checkpoint(str(checkpoint))

    loaded = live.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[name], expected[name]) for name in expected)
