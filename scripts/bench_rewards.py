"""Benchmark the reward variants: completions scored per second on one core, and 1 MB completions.

Usage: python scripts/bench_rewards.py [--count 4000] [--batch 64] [--seed 0]

Completions are synthetic but realistic (four tagged blocks, a 60-150 word reasoning that cites
boxes, one or two answer objects, some malformed), all distinct so the key-noun cache does not
flatter the figures; they are scored in TRL-sized batches through ``score_completions``. The
``paper`` variants use the offline lexicon noun extractor (``spacy_model=None``). Targets:
>= 2,000 completions/s for ``paper``, >= 10,000/s for ``released_code``, < 1 s per 1 MB completion.
Rates use the process's CPU time (robust to other jobs on a shared machine); wall-clock rates are
printed beside them. Not a test: figures depend on the machine; record them in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

from regionreasoner.rewards import VARIANTS, score_completions

SHAPES = ["circle", "square", "triangle", "person", "dog", "cup", "chair", "car"]
COLOURS = ["red", "green", "blue", "yellow"]
FILLER = (
    "the object is located in the region to the left of the reference so we compare it with "
    "the nearby shapes and select the best match based on the coordinates"
).split()
MB = 1_000_000


def make_row(rng: random.Random, index: int) -> dict:
    """One distinct, plausible training-time completion with its turn columns."""
    objects = rng.sample(SHAPES, 3)
    colours = rng.sample(COLOURS, 3)
    ref = [rng.randrange(0, 84), rng.randrange(0, 84)]
    ref_box = [ref[0], ref[1], ref[0] + 28, ref[1] + 28]
    target = [rng.randrange(0, 84), rng.randrange(0, 84)]
    target_box = [target[0], target[1], target[0] + 28, target[1] + 28]
    jitter = [v + rng.randint(-3, 3) for v in target_box]
    scene = f"The image {index} shows " + ", ".join(f"a {c} {o}" for c, o in zip(colours, objects)) + "."
    focus = f"a {colours[0]} {objects[0]} inside the reference box"
    words = [rng.choice(FILLER) for _ in range(rng.randint(60, 150))]
    words.insert(rng.randrange(len(words)), f"bbox=[{','.join(map(str, ref_box))}]")
    words.insert(rng.randrange(len(words)), f"the {colours[1]} {objects[1]} #{index}")
    answer = [{"bbox_2d": jitter, "point_2d": [jitter[0] + 14, jitter[1] + 14]}]
    if rng.random() < 0.2:
        answer.append({"bbox_2d": [1, 2, 3], "point_2d": None})
    text = (
        f"<scene>{scene}</scene><focus>{focus}</focus><think>{' '.join(words)}.</think>"
        f"<answer>{json.dumps(answer)}</answer>"
    )
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text))]  # truncated generation
    return {
        "completion": text,
        "problem": f"the {colours[1]} {objects[1]}, next to bbox=[{','.join(map(str, ref_box))}]",
        "solution": [{"bbox_2d": target_box, "point_2d": [target[0] + 14, target[1] + 14]}],
    }


def one_megabyte_rows() -> dict[str, dict]:
    """A well-formed 1 MB completion (long reasoning) and hostile 1 MB ones."""
    solution = [{"bbox_2d": [28, 0, 56, 28], "point_2d": [42, 14]}]
    problem = "the blue square, next to bbox=[0,0,28,28]"
    long_think = ("the red circle is left of the blue square near bbox=[0,0,28,28]. " * (MB // 64))[:MB]
    texts = {
        "well-formed, long think": (
            f"<scene>a red circle and a blue square</scene><focus>a red circle</focus>"
            f"<think>{long_think}</think><answer>{json.dumps(solution)}</answer>"
        ),
        "repeated <think>": "<think>" * (MB // 7),
        "unclosed answer + spaces": "<answer>" + " " * MB,
        "bbox + spaces": "bbox" + " " * MB,
        "10^4 answer objects": "<answer>[" + ",".join([json.dumps(solution[0])] * (MB // 45)) + "]</answer>",
        "deep JSON nesting": "<answer>" + "[" * MB + "</answer>",
    }
    return {name: {"completion": t, "problem": problem, "solution": solution} for name, t in texts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    print(f"{'variant':<18}{'completions/s (CPU)':>20}{'(wall)':>10}{'mean total':>12}")
    for number, variant in enumerate(VARIANTS):
        rng = random.Random(f"{args.seed}/{variant}")  # fresh rows per variant: no warm caches
        rows = [make_row(rng, number * args.count + i) for i in range(args.count)]
        score_completions(variant, [make_row(random.Random(-1), -1)])  # load spaCy once, untimed
        cpu, wall = time.process_time(), time.perf_counter()
        totals = [
            r["total"]
            for i in range(0, len(rows), args.batch)
            for r in score_completions(variant, rows[i : i + args.batch])
        ]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"{variant:<18}{len(rows) / cpu:>20,.0f}{len(rows) / wall:>10,.0f}{sum(totals) / len(totals):>12.3f}")
    print(f"\n{'1 MB completion (CPU s)':<28}" + "".join(f"{v:>18}" for v in VARIANTS))
    for name, row in one_megabyte_rows().items():
        times = []
        for number, variant in enumerate(VARIANTS):
            fresh = dict(row, completion=row["completion"] + " " * number)  # defeat the parse caches
            start = time.process_time()
            score_completions(variant, [fresh])
            times.append(time.process_time() - start)
        print(f"{name:<28}" + "".join(f"{t:>17.3f}s" for t in times))


if __name__ == "__main__":
    main()
