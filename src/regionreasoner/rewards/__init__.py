"""Reward functions of RegionReasoner (PAPER.md section 5), one plain TRL function per term.

Paper terms: ``format_reward``, ``non_repeat_reward``, ``accuracy_reward`` (R_base),
``citation_reward`` (R_ref), ``consistency_reward`` (R_cons with the logic prior); the released
code's terms live in ``released_code``. Variants by name: ``reward_functions`` in ``variants``.
"""

from regionreasoner.rewards.accuracy import accuracy_reward
from regionreasoner.rewards.citation import citation_reward
from regionreasoner.rewards.consistency import consistency_reward
from regionreasoner.rewards.format import format_reward, non_repeat_reward
from regionreasoner.rewards.nouns import key_nouns
from regionreasoner.rewards.parsing import cited_boxes, extract_tag, parse_answer
from regionreasoner.rewards.variants import VARIANTS, reward_file, reward_functions, score_completions

__all__ = [
    "VARIANTS",
    "accuracy_reward",
    "cited_boxes",
    "citation_reward",
    "consistency_reward",
    "extract_tag",
    "format_reward",
    "key_nouns",
    "non_repeat_reward",
    "parse_answer",
    "reward_file",
    "reward_functions",
    "score_completions",
]
