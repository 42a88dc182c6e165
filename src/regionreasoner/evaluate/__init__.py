"""Evaluation: turn-by-turn dialogue runs, segmenters and the metrics of PAPER.md section 7."""
