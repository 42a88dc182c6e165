"""Training stages: SFT warm-up and GRPO with TRL (PAPER.md section 6)."""
