"""Names of the reward variants, importable without loading the reward terms.

The config schema validates ``grpo.variants.*.rewards`` against these names before any job runs,
and must not pay for spaCy and SciPy to do so; ``variants.reward_functions`` builds the terms.
"""

PAPER_VARIANTS = ("paper", "full", "base_only", "ref_cite", "ref_cite_consist")
"""The paper's reward (``paper``, alias ``full``) and its ablations (Tables 3-4)."""

VARIANTS = (*PAPER_VARIANTS, "released_code")
"""Every variant ``reward_functions`` accepts; ``released_code`` is the authors' released total."""
