"""Data layer: downloads, safe refer loading and synthetic scenes (PAPER.md section 1)."""
