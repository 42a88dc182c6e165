"""RegionDial dialogues: the benchmark and training turns built from refer data (PAPER.md sections 2-3)."""
