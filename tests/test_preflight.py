"""What a GPU job checks before its hours start: CUDA (before anything loads), disk, weights present
locally, and image tokens lined up with the attention mask on a real batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from transformers import AutoModelForImageTextToText

from regionreasoner import preflight
from regionreasoner.cli import main
from regionreasoner.config import PreflightError, load_config
from regionreasoner.models.processor import load_processor
from regionreasoner.models.prompts import PromptConfig, build_messages
from regionreasoner.models.tiny import TinyModelConfig, build_tiny_model
from tests.conftest import REPO

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
QUESTIONS = ["the dog", "the small striped cat sitting right of bbox=[0,0,28,28] on the grey mat"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny model and a training-turns file of two turns of different lengths, with images."""
    root = tmp_path_factory.mktemp("tiny")
    image = root / "img.png"
    Image.new("RGB", (112, 112), "white").save(image)
    turns = [
        {
            "problem": q,
            "image_path": str(image),
            "solution": [],
            "scene": "s",
            "focus": "f",
            "target": "t",
            "relation": None,
            "reference_boxes": [],
        }
        for q in QUESTIONS
    ]
    (root / "turns.jsonl").write_text("".join(json.dumps(t) + "\n" for t in turns))
    build_tiny_model(root / "turns.jsonl", root / "model", TinyModelConfig(), PromptConfig(), frame=112, seed=0)
    return root


def _gpu_config(tmp_path: Path, stage: str) -> Path:
    raw = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    raw[stage]["gpus"] = 1
    raw["results"] = str(tmp_path / "results")
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@needs_no_cuda
@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_training_on_gpus_without_cuda_stops_before_any_model_load(stage, tmp_path, monkeypatch, capsys):
    import transformers

    from regionreasoner.train import grpo

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", loaded)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", loaded)
    monkeypatch.setattr(grpo, "TermLoggingGRPOTrainer", loaded)  # the class itself: trl's is its base
    args = [
        stage,
        "--config",
        str(_gpu_config(tmp_path, stage)),
        "--model",
        str(tmp_path / "m"),
        "--train",
        str(tmp_path / "t.jsonl"),
        "--out",
        str(tmp_path / "out"),
        "--metrics",
        str(tmp_path / "c.csv"),
        "--kept",
        str(tmp_path / "kept"),
    ]
    assert main(args + (["--variant", "full"] if stage == "grpo" else [])) == 1
    message = capsys.readouterr().err
    assert f"{stage}.gpus = 1 but torch can use 0 GPU(s)" in message
    assert f"torch {torch.__version__}" in message and "NVIDIA driver" in message and "CUDA" in message


@needs_no_cuda
def test_evaluation_on_a_gpu_without_cuda_stops_before_any_model_load(tmp_path, monkeypatch, capsys):
    from regionreasoner.evaluate import dialogue

    monkeypatch.setattr(dialogue.Generator, "load", classmethod(lambda *a, **k: pytest.fail("model loaded")))
    args = [
        "evaluate",
        "--config",
        str(_gpu_config(tmp_path, "evaluate")),
        "--model",
        str(tmp_path / "m"),
        "--run",
        f"b.multi={tmp_path / 'b.json'}",
        "--out-dir",
        str(tmp_path / "out"),
    ]
    assert main(args) == 1
    assert "evaluate.gpus = 1 but torch can use 0 GPU(s)" in capsys.readouterr().err


def _texts(processor) -> list[str]:
    return [
        processor.apply_chat_template(build_messages(q, PromptConfig()), add_generation_prompt=True, tokenize=False)
        for q in QUESTIONS
    ]


def test_left_padded_batch_has_every_image_token_attended_and_typed(tiny):
    processor = load_processor(tiny / "model", 112)
    images = [Image.new("RGB", (112, 112))] * 2
    found = preflight.batch_alignment(processor, _texts(processor), images)
    assert found.padding_side == "left" and found.image_tokens == found.expected_tokens == [16, 16]
    assert found.typed and found.misplaced_type_ids == 0
    preflight.check_batch_alignment(found)


class _WithoutTypeIds:
    """The tiny model's processor, minus the mm_token_type_ids in what it returns."""

    def __init__(self, processor) -> None:
        self._processor = processor

    def __getattr__(self, name: str):
        return getattr(self._processor, name)

    def __call__(self, *args, **kwargs):
        out = self._processor(*args, **kwargs)
        out.pop("mm_token_type_ids")
        return out


def test_processor_without_multimodal_token_types_fails_the_alignment_check(tiny):
    processor = _WithoutTypeIds(load_processor(tiny / "model", 112))
    found = preflight.batch_alignment(processor, _texts(processor), [Image.new("RGB", (112, 112))] * 2)
    assert not found.typed and found.masked_image_tokens == 0
    with pytest.raises(PreflightError, match="no mm_token_type_ids"):
        preflight.check_batch_alignment(found)


def test_qwen_vl_positions_of_image_tokens_need_the_multimodal_token_types(tiny):
    """Why the check above exists: without mm_token_type_ids transformers gives image tokens text
    positions, and the model's outputs change (when this fails, transformers no longer needs them)."""
    processor = load_processor(tiny / "model", 112)
    model = AutoModelForImageTextToText.from_pretrained(tiny / "model").eval()
    batch = processor(text=_texts(processor)[:1], images=[Image.new("RGB", (112, 112), "red")], return_tensors="pt")
    with torch.no_grad():
        typed = model(**batch).logits
        batch.pop("mm_token_type_ids")
        untyped = model(**batch).logits
    assert not torch.allclose(typed, untyped, atol=1e-4)


def test_right_padding_processor_fails_the_alignment_check(tiny):
    """The mismatch of TRL GitHub issue #5785: the processor pads one way, the trainer's prompt ids the other."""
    processor = load_processor(tiny / "model", 112)
    processor.tokenizer.padding_side = "right"
    found = preflight.batch_alignment(processor, _texts(processor), [Image.new("RGB", (112, 112))] * 2)
    assert found.masked_image_tokens > 0 and found.misplaced_type_ids > 0
    with pytest.raises(PreflightError, match="attention mask"):
        preflight.check_batch_alignment(found)


def test_preflight_command_passes_on_the_tiny_model(tiny, capsys):
    assert (
        main(
            [
                "preflight",
                "--configfile",
                str(REPO / "config" / "test.yaml"),
                "--stage",
                "grpo",
                "--model",
                str(tiny / "model"),
                "--train",
                str(tiny / "turns.jsonl"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ok: image tokens and attention mask line up" in out and "ok: disk:" in out


def test_preflight_stops_when_the_disk_the_run_needs_is_not_free(tiny, capsys):
    assert (
        main(
            [
                "preflight",
                "--configfile",
                str(REPO / "config" / "test.yaml"),
                "--stage",
                "grpo",
                "--model",
                str(tiny / "model"),
                "--train",
                str(tiny / "turns.jsonl"),
                "--disk-gb",
                "1e9",
            ]
        )
        == 1
    )
    assert "GB free, the run needs 1000000000.0 GB" in capsys.readouterr().err


def test_checkpoints_kept_must_fit_the_disk_budget(tiny):
    section = load_config(REPO / "config" / "paper.yaml").grpo
    needed = preflight.training_disk_bytes(tiny / "model", section)
    params = preflight.parameter_count(tiny / "model")
    assert needed == (section.save_total_limit + 1) * 16 * params + 2 * params
    preflight.check_disk_budget(needed, section, "grpo")
    # 8.3B parameters (Qwen2.5-VL-7B): one kept checkpoint, one being written, the final model and
    # the four curve steps' weights of grpo-full
    assert preflight.training_disk_bytes(tiny / "model", section, kept=4) == needed + 4 * 2 * params
    paper = 2 * 16 * 8_300_000_000 + 5 * 2 * 8_300_000_000
    assert paper <= section.disk_gb * preflight.GB
    with pytest.raises(PreflightError, match="grpo.disk_gb = 360 but grpo.save_total_limit = 1 checkpoints, the curve"):
        preflight.check_disk_budget(int(section.disk_gb * preflight.GB) + 1, section, "grpo")


def test_evaluation_needs_the_sam2_weights_fetched_beforehand(tiny, tmp_path):
    cfg = load_config(REPO / "config" / "paper.yaml").model_copy()
    cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"gpus": 0})})
    with pytest.raises(PreflightError, match="no SAM2 weights here.*fetch_segmenter"):
        preflight.preflight_evaluation(cfg, tiny / "model", tmp_path / "segmenter")
    (tmp_path / "segmenter").mkdir()
    (tmp_path / "segmenter" / "sam2_hiera_large.pt").write_bytes(b"weights")
    assert "SAM2 weights in" in preflight.preflight_evaluation(cfg, tiny / "model", tmp_path / "segmenter")[-1]
