"""Benchmark of the RegionDial builders at RefCOCOg scale (not a test).

Writes a synthetic refer set shaped like RefCOCOg umd (25,799 images of 640x480, ~7 annotated
objects per image as in COCO, 49,822 referred objects with 95,010 expressions in all) to a
temporary directory (no images), then builds RegionDial-Bench dialogues and training turns from
every split, each in its own process, and prints wall time and peak RSS of each build.

    .venv/bin/python scripts/bench_dialogs.py [--images 25799] [--expressions 95010]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPLITS = ("train", "val", "test")


def write_refcocog_sized(root: Path, images: int, objects: int, expressions: int, seed: int) -> None:
    """instances.json + refs(umd).p with random boxes and 16-gon masks; image files are not written."""
    rng = random.Random(seed)
    image_rows, anns, refs = [], [], []
    refs_per_image = objects / images
    for image_id in range(1, images + 1):
        image_rows.append(
            {"id": image_id, "file_name": f"COCO_train2014_{image_id:012d}.jpg", "width": 640, "height": 480}
        )
        first_ann = len(anns) + 1
        for _ in range(7):
            w, h = rng.uniform(20, 300), rng.uniform(20, 300)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            poly = [
                round(v, 2)
                for k in range(16)
                for v in (x + w / 2 + w / 2 * math.cos(k * math.pi / 8), y + h / 2 + h / 2 * math.sin(k * math.pi / 8))
            ]
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": rng.randint(1, 80),
                    "bbox": [x, y, w, h],
                    "area": math.pi * w * h / 4,
                    "segmentation": [poly],
                    "iscrowd": 0,
                }
            )
        count = int(refs_per_image * image_id) - int(refs_per_image * (image_id - 1))
        split = SPLITS[0 if image_id % 20 < 17 else 1 if image_id % 20 == 17 else 2]
        for ann_id in rng.sample(range(first_ann, first_ann + 7), max(count, 1)):
            refs.append(
                {
                    "ref_id": len(refs),
                    "ann_id": ann_id,
                    "image_id": image_id,
                    "split": split,
                    "category_id": anns[ann_id - 1]["category_id"],
                    "sentences": [],
                }
            )
    for index in range(expressions):
        ref = refs[index % len(refs)]
        sent = f"the {rng.choice(['tall', 'small', 'red', 'left'])} object number {index}"
        ref["sentences"].append({"sent_id": index, "sent": sent, "raw": sent, "tokens": sent.split()})
    categories = [{"id": i, "name": f"category{i}", "supercategory": "thing"} for i in range(1, 81)]
    (root / "instances.json").write_text(
        json.dumps({"images": image_rows, "annotations": anns, "categories": categories})
    )
    (root / "refs(umd).p").write_bytes(pickle.dumps(refs, protocol=2))
    print(f"refer set: {images} images, {len(anns)} annotations, {len(refs)} refs, {expressions} expressions")


def timed(code: str) -> tuple[float, float]:
    """Run ``code`` in a fresh interpreter; wall seconds and peak RSS (MiB) of that process alone."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"build failed: {code}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=25799)
    parser.add_argument("--objects", type=int, default=49822)
    parser.add_argument("--expressions", type=int, default=95010)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_refcocog_sized(root, args.images, args.objects, args.expressions, args.seed)
        refs, instances = str(root / "refs(umd).p"), str(root / "instances.json")
        inputs = f"Path({refs!r}), Path({instances!r}), None, Path('images'), {list(SPLITS)!r}"
        builds = {
            "build_bench (all splits, datasheet)": "from regionreasoner.dialogs.bench import build_bench; "
            f"build_bench({inputs}, Path({str(root / 'bench.json')!r}), datasheet=Path({str(root / 'sheet.md')!r}))",
            "build_train (all splits, frame 840)": "from regionreasoner.dialogs.train import build_train; "
            f"build_train({inputs}, Path({str(root / 'train.jsonl')!r}), frame=840)",
        }
        print("| build | wall s | peak RSS MiB | output MiB |\n|---|---|---|---|")
        for (name, call), out in zip(builds.items(), ("bench.json", "train.jsonl"), strict=True):
            wall, rss = timed("from pathlib import Path; " + call)
            print(f"| {name} | {wall:.1f} | {rss:.0f} | {(root / out).stat().st_size / 2**20:.0f} |", flush=True)


if __name__ == "__main__":
    main()
