"""Trainer configs, distributed launch and checkpoint discovery (docs/method.md section 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import trl.trainer.utils as trl_utils
import yaml
from trl.kernels import ChunkedLogProbFunction

from regionreasoner.config import load_config
from regionreasoner.train.checkpoints import latest_checkpoint
from regionreasoner.train.configs import grpo_config, sft_config
from regionreasoner.train.data import prompt_pool
from regionreasoner.train.runner import score_labelled_positions_only
from tests.conftest import REPO

PAPER = load_config(REPO / "config" / "paper.yaml")


def test_paper_grpo_config_pins_every_value_of_section_6(tmp_path):
    args = grpo_config(PAPER, "full", tmp_path, reward_weights=[1.0, 1.0, 1.0, 1.0, 1.0])
    assert args.num_generations == 8  # group size
    # global batch 16 prompts x 8 rollouts = the authors' micro-batch 2 x 4 GPUs x 16 accumulation steps
    assert args.per_device_train_batch_size == 2
    assert args.per_device_train_batch_size * PAPER.grpo.gpus * args.gradient_accumulation_steps == 16 * 8
    assert args.learning_rate == 1e-6 and args.lr_scheduler_type.value == "constant"
    assert (args.adam_beta1, args.adam_beta2, args.weight_decay, args.max_grad_norm) == (0.9, 0.999, 0.01, 1.0)
    assert args.beta == 0.01  # KL coefficient, TRL's k3 (low-variance) estimator
    assert args.epsilon == 0.2  # PPO clip
    assert args.loss_type == "bnpo"  # veRL token-mean: per micro-batch, divided by the accumulation steps
    assert args.entropy_coef == 1e-3
    assert args.temperature == 1.0 and args.max_completion_length == 2000
    assert args.seed == 42
    assert PAPER.grpo.prompts is None  # one episode over every training turn
    assert PAPER.grpo.bf16 and PAPER.grpo.gradient_checkpointing
    assert not PAPER.sft.enabled  # the paper trains GRPO straight from the base model


def test_prompt_pool_is_a_seeded_sample_in_file_order():
    turns = [{"id": i} for i in range(100)]
    pool = prompt_pool(turns, 16, seed=42)
    assert pool == prompt_pool(turns, 16, seed=42)
    assert len(pool) == 16 and [t["id"] for t in pool] == sorted(t["id"] for t in pool)
    assert pool != prompt_pool(turns, 16, seed=43)
    assert prompt_pool(turns, None, seed=42) is turns
    with pytest.raises(ValueError, match="grpo.prompts = 101"):
        prompt_pool(turns, 101, seed=42)


def test_embedded_default_trains_on_cpu(tmp_path):
    cfg = load_config(REPO / "config" / "config.yaml")
    args = sft_config(cfg, tmp_path)
    assert args.use_cpu and not args.bf16 and args.completion_only_loss


@pytest.mark.parametrize("name", ["single_gpu", "ddp", "deepspeed_zero2", "deepspeed_zero3"])
def test_accelerate_configs_parse_with_accelerate(name):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(REPO / "envs" / "accelerate" / f"{name}.yaml"))
    assert cfg.mixed_precision == "bf16"
    if name.startswith("deepspeed"):
        stage = int(name[-1])
        assert cfg.deepspeed_config["zero_stage"] == stage
        from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

        assert DeepSpeedZeroConfig(stage=cfg.deepspeed_config["zero_stage"]).stage == stage


def test_paper_config_names_an_existing_accelerate_config():
    assert (REPO / PAPER.grpo.accelerate_config).is_file()


def _checkpoint(root: Path, step: int, complete: bool) -> None:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"x")
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if complete:
        (path / "optimizer.pt").write_bytes(b"x")


def test_resume_skips_a_checkpoint_killed_while_saving(tmp_path):
    _checkpoint(tmp_path, 4, complete=True)
    _checkpoint(tmp_path, 10, complete=True)
    _checkpoint(tmp_path, 12, complete=False)
    assert latest_checkpoint(tmp_path).name == "checkpoint-10"
    assert latest_checkpoint(tmp_path / "missing") is None


def test_grpo_stage_uses_the_reward_terms_of_the_configured_variant(monkeypatch, tmp_path):
    """Wiring, not the functions: the variant named in the config decides what GRPOTrainer gets."""
    import regionreasoner.train.grpo as grpo

    captured = {}

    class FakeTrainer:
        def __init__(self, *, reward_funcs, args, **kwargs):
            self.args = args
            captured["names"] = [getattr(f, "__name__", None) or f.func.__name__ for f in reward_funcs]
            captured["weights"] = list(args.reward_weights)

    monkeypatch.setattr(grpo, "TermLoggingGRPOTrainer", FakeTrainer)
    monkeypatch.setattr(grpo, "load_processor", lambda path, frame: None)
    monkeypatch.setattr(grpo, "grpo_dataset", lambda *a: None)
    monkeypatch.setattr(grpo, "train_and_save", lambda *a: None)
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["grpo"]["variants"]["mine"] = {"rewards": "ref_cite", "alpha": 0.25}
    from regionreasoner.config import validate_config

    cfg = validate_config(raw)
    grpo.run_grpo(cfg, "mine", tmp_path, tmp_path / "t.jsonl", tmp_path / "out", tmp_path / "m.csv", tmp_path / "kept")
    assert captured["names"] == ["format_reward", "non_repeat_reward", "accuracy_reward", "citation_reward"]
    assert captured["weights"] == [1.0, 1.0, 1.0, 0.25]
    grpo.run_grpo(
        cfg, "base_only", tmp_path, tmp_path / "t.jsonl", tmp_path / "out", tmp_path / "m.csv", tmp_path / "kept"
    )
    assert "citation_reward" not in captured["names"]


def _sft_learning_rates(cfg, tmp_path, steps: int) -> list[float]:
    """Learning rate at each step of the SFT schedule that the trainer builds from ``cfg``."""
    import torch
    from transformers import get_scheduler

    args = sft_config(cfg, tmp_path)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=args.warmup_steps,
        num_training_steps=args.max_steps,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def test_truncated_sft_schedule_follows_the_start_of_the_longer_one(tmp_path):
    cfg = load_config(REPO / "config" / "config.yaml")
    full = cfg.model_copy(update={"sft": cfg.sft.model_copy(update={"max_steps": 160, "schedule_steps": None})})
    truncated = cfg.model_copy(update={"sft": cfg.sft.model_copy(update={"max_steps": 120, "schedule_steps": 160})})
    assert _sft_learning_rates(truncated, tmp_path, 120) == pytest.approx(_sft_learning_rates(full, tmp_path, 120))
    # an untruncated schedule ends at the floor: min_lr_rate x the peak rate
    assert _sft_learning_rates(full, tmp_path, 161)[-1] == pytest.approx(cfg.sft.min_lr_rate * cfg.sft.learning_rate)


def test_schedule_shorter_than_training_is_rejected():
    from regionreasoner.config import ConfigError, validate_config

    raw = load_config(REPO / "config" / "config.yaml").model_dump()
    raw["sft"]["schedule_steps"] = raw["sft"]["max_steps"] - 1
    with pytest.raises(ConfigError, match="sft: Value error, schedule_steps"):
        validate_config(raw)


def test_gpu_count_is_set_by_the_config_alone():
    """The SLURM profile asks for no GPU count (the rules request the config's) and keeps GPU jobs on one node."""
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    gpu_rules = {rule: res for rule, res in profile["set-resources"].items() if res.get("slurm_partition") == "gpu"}
    assert set(gpu_rules) == {
        "sft",
        "grpo",
        "evaluate",
        "probe",
        "evaluate_vstar",
        "evaluate_checkpoint",
        "probe_checkpoint",
    }
    assert all("gpu" not in res and "gres" not in res and res["nodes"] == 1 for res in gpu_rules.values())
    names = ("sft", "grpo", "evaluate", "curves")
    rules = {name: (REPO / "workflow" / "rules" / f"{name}.smk").read_text() for name in names}
    assert "gpu=CFG.sft.gpus" in rules["sft"] and "gpu=CFG.grpo.gpus" in rules["grpo"]
    assert rules["evaluate"].count("gpu=CFG.evaluate.gpus") == 3  # evaluate, probe and evaluate_vstar
    assert rules["curves"].count("gpu=CFG.evaluate.gpus") == 2  # evaluate_checkpoint and probe_checkpoint


def _fused_head_loss_and_grads(monkeypatch, use_triton) -> tuple[torch.Tensor, list[torch.Tensor], list[int]]:
    """Loss, gradients and the rows TRL's fused LM head projected, for one fixed tiny LM and batch."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    model = Qwen2ForCausalLM(config)
    trl_utils.add_fused_lm_head(model)
    monkeypatch.setattr(trl_utils, "_use_triton", use_triton)
    rows: list[int] = []
    projection = ChunkedLogProbFunction

    class CountingProjection:
        @staticmethod
        def apply(hidden, *args):
            rows.append(hidden.shape[0])
            return projection.apply(hidden, *args)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", CountingProjection)
    input_ids = torch.randint(0, 64, (3, 12))
    labels = input_ids.clone()
    labels[:, :7] = -100  # a prompt of 7 positions, then the scored completion
    labels[2, 10:] = -100  # padding
    out = model(input_ids=input_ids, labels=labels, fused_lm_head=True)
    out.loss.backward()
    return out.loss.detach(), [p.grad.clone() for p in model.parameters()], rows


def test_scoring_only_labelled_positions_on_cpu_gives_the_same_loss_and_gradients(monkeypatch):
    from trl.kernels.chunked_logprob import _use_triton

    monkeypatch.setattr(trl_utils, "_use_triton", _use_triton)  # restored after the test
    full_loss, full_grads, full_rows = _fused_head_loss_and_grads(monkeypatch, _use_triton)
    score_labelled_positions_only()
    compact = trl_utils._use_triton
    assert compact is not _use_triton
    loss, grads, rows = _fused_head_loss_and_grads(monkeypatch, compact)
    assert full_rows == [3 * 11]  # every position after the shift, prompt and padding included
    assert rows == [5 + 5 + 3]  # the labelled positions alone (labels shift by one)
    assert torch.allclose(loss, full_loss, atol=1e-6)
    for grad, full in zip(grads, full_grads, strict=True):
        assert torch.allclose(grad, full, atol=1e-6)
