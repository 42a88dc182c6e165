"""Models: the tiny local Qwen2.5-VL, the paper-scale registry, and the prompt format."""
