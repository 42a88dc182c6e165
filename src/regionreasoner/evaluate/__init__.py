"""Evaluation: turn-by-turn dialogue runs, segmenters and the metrics of docs/method.md section 7."""
