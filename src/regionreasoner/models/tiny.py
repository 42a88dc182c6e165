"""A tiny Qwen2.5-VL built locally: the embedded default's model (one code path with paper scale).

The paper fine-tunes Qwen2.5-VL-7B-Instruct. The embedded default keeps the same architecture
class, processor, chat template and output format but at about a million parameters with random
weights and a byte-level BPE tokenizer trained here on the training turns, so every trainer and the
evaluator run their real code paths offline on a CPU. Coordinates and the answer's JSON scaffolding
are single tokens, which is what lets such a small model learn to ground within minutes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
)

from regionreasoner.io import atomic_path, read_jsonl
from regionreasoner.models.processor import CHAT_TEMPLATE, RegionProcessor, make_image_processor
from regionreasoner.models.prompts import TAGS, PromptConfig, render_target, user_text

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
ANSWER_PIECES = ['[{"bbox_2d":[', '],"point_2d":[', "]}]", ']},{"bbox_2d":[', "bbox=["]


@dataclass(frozen=True)
class TinyModelConfig:
    """Sizes and init of the tiny model (``model.tiny`` of the config).

    ``initializer_range`` is the std of the random weights: at the library's 0.02 the tiny model
    learns the answer format and a prior over cells but never makes its choice depend on the query
    within CPU minutes; a larger init lets attention follow the query word (docs/benchmarks.md).
    """

    image_size: int = 112
    text_hidden: int = 128
    text_layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    mlp: int = 256
    rope_theta: float = 10.0
    mrope_section: tuple[int, ...] = (8, 4, 4)
    vision_depth: int = 2
    vision_hidden: int = 128
    vision_heads: int = 4
    initializer_range: float = 0.02
    vocab_size: int = 400

    def __post_init__(self) -> None:
        head_dim = self.text_hidden // self.heads
        if sum(self.mrope_section) * 2 != head_dim:
            raise ValueError(
                f"model.tiny.mrope_section {list(self.mrope_section)} must sum to head_dim/2 = {head_dim // 2}"
            )


def added_tokens(frame: int) -> list[str]:
    """Tags, answer scaffolding and every integer coordinate of the frame as single tokens."""
    tags = [f"<{t}>" for t in TAGS] + [f"</{t}>" for t in TAGS]
    return tags + ANSWER_PIECES + [str(v) for v in range(frame + 1)]


CHAT_ROLES = ("system\n", "user\n", "assistant\n")
"""Role lines the chat template writes after ``<|im_start|>``."""


def corpus_from_turns(turns: Iterable[dict[str, Any]], prompt: PromptConfig) -> Iterable[str]:
    """The texts the tokenizer is trained on: every text of each training sequence.

    The role lines and the system message come once per turn, as often as they occur in training,
    so that BPE merges them like the turns' own words: seen once, they stayed single bytes and a
    round-1 prompt took 63 tokens instead of 34.
    """
    for turn in turns:
        yield from CHAT_ROLES
        yield prompt.system
        yield user_text(turn["problem"], prompt)
        yield render_target(turn)


def train_tokenizer(corpus: Iterable[str], frame: int, vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on ``corpus``, with Qwen2.5-VL's special tokens and chat template."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )
    fast.add_tokens(added_tokens(frame))  # non-special: they survive skip_special_tokens=True
    fast.padding_side = "left"
    return fast


def build_model_config(sizes: TinyModelConfig, tokenizer: PreTrainedTokenizerFast) -> Qwen2_5_VLConfig:
    """A Qwen2.5-VL config at tiny size (transformers 5 wants rope_parameters in the text config)."""
    ids = tokenizer.convert_tokens_to_ids
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": sizes.text_hidden,
        "intermediate_size": sizes.mlp,
        "num_hidden_layers": sizes.text_layers,
        "num_attention_heads": sizes.heads,
        "num_key_value_heads": sizes.kv_heads,
        "max_position_embeddings": 2048,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": sizes.rope_theta,
            "mrope_section": list(sizes.mrope_section),
        },
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": ids("<|endoftext|>"),
        "initializer_range": sizes.initializer_range,
    }
    vision = {
        "depth": sizes.vision_depth,
        "hidden_size": sizes.vision_hidden,
        "intermediate_size": 2 * sizes.vision_hidden,
        "num_heads": sizes.vision_heads,
        "out_hidden_size": sizes.text_hidden,
        "window_size": sizes.image_size,
        "fullatt_block_indexes": list(range(sizes.vision_depth)),
        "initializer_range": sizes.initializer_range,
    }
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    config.bos_token_id = text["bos_token_id"]
    config.eos_token_id = text["eos_token_id"]
    config.pad_token_id = text["pad_token_id"]
    return config


def build_tiny_model(
    turns_path: Path,
    out_dir: Path,
    sizes: TinyModelConfig,
    prompt: PromptConfig,
    frame: int,
    seed: int,
) -> None:
    """Train the tokenizer on the training turns, build a random-init model, save the folder atomically."""
    turns = read_jsonl(turns_path, ("problem",), allow_empty=False)  # the tokenizer is trained on the questions
    tokenizer = train_tokenizer(corpus_from_turns(turns, prompt), frame, sizes.vocab_size)
    processor = RegionProcessor(make_image_processor(sizes.image_size), tokenizer, CHAT_TEMPLATE)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(build_model_config(sizes, tokenizer))
    with atomic_path(out_dir, directory=True) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        params = sum(p.numel() for p in model.parameters())
        card = {"kind": "tiny-qwen2.5-vl", "parameters": params, "vocab": len(tokenizer), "seed": seed}
        (tmp / "model_card.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    print(f"built tiny Qwen2.5-VL ({params / 1e6:.2f} M parameters, vocab {len(tokenizer)}) -> {out_dir}")
