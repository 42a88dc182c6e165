"""Datasheet of a RegionDial-Bench build: the statistics of the paper's Table 6 and more.

Reviewers asked for the construction protocol and the statistics of the benchmark (paper
section 2, docs/method.md); the released files also differ from Table 6. The datasheet is computed from the
written dialogues themselves, so it describes exactly what the evaluator reads, and it prints the
reported Table 6 numbers beside ours when they are given.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from regionreasoner.dialogs.relations import RELATIONS, question_template
from regionreasoner.io import atomic_write_json, atomic_write_text
from regionreasoner.report import tables

PAPER_ROUNDS = 7
"""Table 6 reports rounds R1..R7."""


def _lengths(texts: list[str]) -> dict[str, float]:
    words = [len(text.split()) for text in texts]
    return {
        "mean": round(statistics.fmean(words), 2),
        "median": statistics.median(words),
        "min": min(words),
        "max": max(words),
    }


def _is_unique_citation(turn: Mapping[str, Any]) -> bool:
    """Whether a cited turn asks "the object <relation> {ref_box}" (the relation alone identifies it).

    Released questions are free text: a turn whose relation phrase is unknown is never unique.
    """
    relation = turn["relation"]
    return relation in RELATIONS and turn["question_template"] == question_template(relation, "", unique=True)


def describe_bench(
    dialogues: list[dict[str, Any]],
    categories: Mapping[int, str],
    settings: Mapping[str, Any],
    reported: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Statistics of bench dialogues; ``categories`` maps each target ann_id to its category name."""
    turns = [turn for dialogue in dialogues for turn in dialogue["conversational_turns"]]
    lengths = Counter(len(d["conversational_turns"]) for d in dialogues)
    max_len = max(lengths)
    per_round = [sum(n for length, n in lengths.items() if length > r) for r in range(max(max_len, PAPER_ROUNDS))]
    later = [t for d in dialogues for t in d["conversational_turns"][1:]]
    cited = [t for t in later if t["context_from_turn"] is not None]
    distances = Counter(
        index - turn["context_from_turn"]
        for d in dialogues
        for index, turn in enumerate(d["conversational_turns"])
        if turn["context_from_turn"] is not None
    )
    relation_counts = Counter(t["relation"] for t in cited)
    category_counts = Counter(categories[t["ann_ids"][0]] for t in turns)
    stats: dict[str, Any] = {
        "settings": dict(settings),
        "images": len({d["image_id"] for d in dialogues}),
        "dialogues": len(dialogues),
        "turns": len(turns),
        "turns_per_round": per_round,
        "dialogue_lengths": {str(k): lengths[k] for k in sorted(lengths)},
        "later_turns": len(later),
        "cited_turns": len(cited),
        "uncited_later_turns": len(later) - len(cited),
        "unique_citations": sum(_is_unique_citation(t) for t in cited),
        "cited_without_relation_phrase": relation_counts.get(None, 0),
        "cited_turn_distance": {str(k): distances[k] for k in sorted(distances)},
        "relation_templates": {key: relation_counts.get(key, 0) for key in RELATIONS},
        "categories": dict(sorted(category_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "expression_words": _lengths([t["sent"] for t in turns]),
        "question_words": _lengths([t["question"] for t in turns]),
    }
    if reported is not None:
        stats["reported"] = {key: reported[key] for key in ("images", "turns", "rounds") if key in reported}
    return stats


def table6(stats: Mapping[str, Any]) -> str:
    """Turns per round R1..R7 in the layout of the paper's Table 6, the reported numbers beside
    when known (the same renderer as the report's ``table6_bench_stats``)."""
    rounds = max(PAPER_ROUNDS, len(stats["turns_per_round"]))
    table = tables.bench_stats_table(
        rounds,
        [("this build", stats, stats.get("reported"))],
        "Images, turns and turns per round (the paper's Table 6 layout).",
    )
    return tables.render_markdown(table).rstrip("\n")


def _counts_table(title: str, counts: Mapping[str, int]) -> list[str]:
    total = sum(counts.values()) or 1
    lines = [f"| {title} | count | share |", "|---|---|---|"]
    lines += [f"| {name} | {n} | {100 * n / total:.1f} % |" for name, n in counts.items()]
    return lines


def _provenance(s: Mapping[str, Any]) -> str:
    if s.get("source") == "released":
        counts = ", ".join(f"{key.replace('_', ' ')}: {n}" for key, n in s.get("citations", {}).items())
        return (
            f"Converted from the authors' released file `{s['file']}` (`bench.source: released`). Citations: {counts}."
        )
    return (
        f"Built from `{s['refs']}` + `{s['instances']}`, splits {', '.join(s['splits'])}, seed {s['seed']}, "
        f"{s['min_rounds']} to {s['max_rounds']} rounds, relations: {', '.join(s['relations'])}. "
        "Construction protocol: docs/data.md."
    )


def render_markdown(stats: Mapping[str, Any]) -> str:
    """Human-readable datasheet (the JSON beside it holds the same numbers)."""
    lines = [
        "# RegionDial-Bench datasheet",
        "",
        _provenance(stats["settings"]),
        "",
        "## Turns per round",
        "",
        table6(stats),
        "",
        f"Later turns: {stats['later_turns']}; citing an earlier turn: {stats['cited_turns']} "
        f"(the relation alone identifies the target in {stats['unique_citations']}); asked plainly "
        f"(no relation holds with any earlier target): {stats['uncited_later_turns']}. Cited turns whose "
        f"question uses none of the eight relation phrases: {stats['cited_without_relation_phrase']}.",
        "",
        "## Relation templates",
        "",
        *_counts_table("relation", {RELATIONS[k]: n for k, n in stats["relation_templates"].items()}),
        "",
        "## Dialogue lengths (turns)",
        "",
        *_counts_table("turns", stats["dialogue_lengths"]),
        "",
        "## How far back a citation reaches (turns)",
        "",
        *_counts_table("distance", stats["cited_turn_distance"]),
        "",
        "## Target categories",
        "",
        *_counts_table("category", stats["categories"]),
        "",
        "## Lengths (words)",
        "",
        "| text | mean | median | min | max |",
        "|---|---|---|---|---|",
    ]
    for name, key in (("referring expression", "expression_words"), ("question", "question_words")):
        v = stats[key]
        lines.append(f"| {name} | {v['mean']} | {v['median']} | {v['min']} | {v['max']} |")
    return "\n".join(lines) + "\n"


def datasheet_json(path: Path) -> Path:
    """Where the datasheet's JSON goes: beside its Markdown, with the suffix replaced."""
    return Path(path).with_suffix(".json")


def check_datasheet_paths(path: Path, *outputs: Path) -> None:
    """Refuse a datasheet whose Markdown or JSON would overwrite another output of the same command.

    ``--datasheet X.md --out X.json`` would otherwise write the datasheet's JSON over the benchmark.
    """
    written = {Path(path).resolve(): str(path), datasheet_json(path).resolve(): str(datasheet_json(path))}
    for output in outputs:
        if Path(output).resolve() in written:
            raise ValueError(
                f"datasheet {path} would write {written[Path(output).resolve()]}, which is also the "
                f"output {output}; give the datasheet another name"
            )


def write_datasheet(path: Path, stats: Mapping[str, Any]) -> None:
    """Write the datasheet as Markdown at ``path`` and JSON at ``path.with_suffix('.json')``."""
    atomic_write_text(path, render_markdown(stats))
    atomic_write_json(datasheet_json(path), stats)
    print(table6(stats))
    print(f"wrote datasheet to {path} and {datasheet_json(path)}")
