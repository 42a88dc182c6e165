"""Data layer: downloads, safe refer loading and synthetic scenes (docs/method.md section 1)."""
