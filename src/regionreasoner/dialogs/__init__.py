"""RegionDial dialogues: the benchmark and training turns built from refer data (docs/method.md sections 2-3)."""
