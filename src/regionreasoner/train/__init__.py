"""Training stages: SFT warm-up and GRPO with TRL (docs/method.md section 6)."""
