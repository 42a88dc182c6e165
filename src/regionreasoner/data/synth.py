"""Procedural referring-expression scenes in the real on-disk formats (the embedded default's data).

The embedded default must run the same parser, dialogue builder, trainers and evaluator as the
paper run (docs/method.md section 1), so the scenes are written exactly as COCO train2014 + refer +
captions are: ``images/COCO_train2014_{id:012d}.jpg``, ``instances.json``, ``refs(<splitBy>).p``
and ``captions.json``. The scene recipe is chosen so that a tiny model can learn it on a CPU in
minutes: each cell of a grid has a solid background colour that encodes its position
(R = 60 + 40 * col, G = 60 + 40 * row, B = 128), ``min_objects`` to ``max_objects`` objects (one
to four in the embedded default), one per cell, drawn 4 px inside it, shapes circle / square /
triangle, saturated colours unique within an image, and cell-aligned boxes (the object's box is its cell).
"""

from __future__ import annotations

import io
import json
import math
import pickle
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw
from tqdm import tqdm

from regionreasoner.io import atomic_write_bytes, atomic_write_text

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
}
SHAPES = ("circle", "square", "triangle")
"""Category names; category ids are 1, 2, 3 in this order."""
INSET = 4
"""Pixels between an object and its cell border (7 px stopped the tiny model learning)."""
CIRCLE_SIDES = 24
JPEG_QUALITY = 95
DEFAULT_SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}


@dataclass(frozen=True)
class SceneObject:
    """One drawn object: its grid cell, colour and shape."""

    row: int
    col: int
    colour: str
    shape: str


def cell_background(row: int, col: int) -> tuple[int, int, int]:
    """Background colour of a cell: the position cue that makes the scenes learnable."""
    return (60 + 40 * col, 60 + 40 * row, 128)


def shape_polygon(shape: str, x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """Outline of a shape filling ``[x0, y0, x1, y1]`` as a flat COCO polygon ``[x, y, x, y, ...]``."""
    if shape == "square":
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    elif shape == "triangle":
        points = [((x0 + x1) / 2, y0), (x1, y1), (x0, y1)]
    elif shape == "circle":
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
        points = [
            (cx + r * math.cos(2 * math.pi * k / CIRCLE_SIDES), cy + r * math.sin(2 * math.pi * k / CIRCLE_SIDES))
            for k in range(CIRCLE_SIDES)
        ]
    else:
        raise ValueError(f"unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")
    return [round(v, 2) for point in points for v in point]


def polygon_area(flat: list[float]) -> float:
    """Shoelace area of a flat polygon (COCO ``area`` is the mask area)."""
    xs, ys = flat[0::2], flat[1::2]
    n = len(xs)
    return abs(sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))) / 2


def caption(objects: list[SceneObject]) -> str:
    """Global scene text (the <scene> target, docs/method.md section 5): "a red circle and a blue square on ..."."""
    names = [f"a {obj.colour} {obj.shape}" for obj in objects]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} on a coloured grid."


def sample_scene(rng: random.Random, grid: int, min_objects: int, max_objects: int) -> list[SceneObject]:
    """Objects of one image in row-major cell order: distinct cells, distinct colours."""
    count = rng.randint(min_objects, max_objects)
    cells = sorted(rng.sample(range(grid * grid), count))
    colours = rng.sample(list(COLOURS), count)
    return [
        SceneObject(c // grid, c % grid, colour, rng.choice(SHAPES)) for c, colour in zip(cells, colours, strict=True)
    ]


def render(objects: list[SceneObject], image_size: int, cell: int) -> tuple[bytes, list[list[float]]]:
    """JPEG bytes of the scene and each object's polygon (drawn from the same polygon: masks match pixels)."""
    image = Image.new("RGB", (image_size, image_size))
    draw = ImageDraw.Draw(image)
    grid = image_size // cell
    for row in range(grid):
        for col in range(grid):
            bounds = [col * cell, row * cell, (col + 1) * cell - 1, (row + 1) * cell - 1]
            draw.rectangle(bounds, fill=cell_background(row, col))
    polygons = []
    for obj in objects:
        x0, y0 = obj.col * cell + INSET, obj.row * cell + INSET
        polygon = shape_polygon(obj.shape, x0, y0, x0 + cell - 2 * INSET, y0 + cell - 2 * INSET)
        draw.polygon(polygon, fill=COLOURS[obj.colour])
        polygons.append(polygon)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), polygons


def assign_splits(image_ids: list[int], splits: dict[str, float], rng: random.Random) -> dict[int, str]:
    """Split images (not refs: no image in two splits) by the given fractions, seeded."""
    total = sum(splits.values())
    if any(f < 0 for f in splits.values()) or abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {splits}")
    shuffled = list(image_ids)
    rng.shuffle(shuffled)
    assignment, start, cumulative = {}, 0, 0.0
    for name, fraction in splits.items():
        cumulative += fraction
        end = round(cumulative * len(shuffled))
        assignment.update((image_id, name) for image_id in shuffled[start:end])
        start = end
    return assignment


def _check_recipe(image_size: int, cell: int, min_objects: int, max_objects: int) -> int:
    grid = image_size // cell
    if cell <= 2 * INSET or image_size % cell:
        raise ValueError(f"image_size {image_size} must be a multiple of cell {cell} > {2 * INSET}")
    if 60 + 40 * (grid - 1) > 255:
        raise ValueError(f"a {grid}x{grid} grid does not fit the background colour code (at most 5 cells a side)")
    if not 1 <= min_objects <= max_objects <= min(len(COLOURS), grid * grid):
        raise ValueError(
            f"need 1 <= min_objects <= max_objects <= {min(len(COLOURS), grid * grid)} "
            f"(colours are unique per image), got {min_objects}, {max_objects}"
        )
    return grid


def write_synthetic_refer(
    out_dir: Path,
    images: int,
    seed: int,
    image_size: int = 112,
    cell: int = 28,
    min_objects: int = 2,
    max_objects: int = 4,
    split_by: str = "unc",
    splits: dict[str, float] | None = None,
) -> None:
    """Write a synthetic refer dataset to ``out_dir`` (byte-identical for the same arguments).

    Files: ``images/COCO_train2014_{image_id:012d}.jpg``, ``instances.json``,
    ``refs({split_by}).p`` (protocol-2 pickle like the released files) and ``captions.json``.
    One ref per object with the sentence "the {colour} {shape}"; splits by image.
    """
    grid = _check_recipe(image_size, cell, min_objects, max_objects)
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    categories = [{"id": i + 1, "name": shape, "supercategory": "shape"} for i, shape in enumerate(SHAPES)]
    image_ids = list(range(1, images + 1))
    split_of = assign_splits(image_ids, splits or DEFAULT_SPLITS, random.Random(f"splits/{seed}"))
    image_rows, ann_rows, refs, caption_rows = [], [], [], []
    for image_id in tqdm(image_ids, desc="synthetic scenes", unit="image"):
        objects = sample_scene(rng, grid, min_objects, max_objects)
        jpeg, polygons = render(objects, image_size, cell)
        file_name = f"COCO_train2014_{image_id:012d}.jpg"
        atomic_write_bytes(out_dir / "images" / file_name, jpeg)
        image_rows.append({"id": image_id, "file_name": file_name, "width": image_size, "height": image_size})
        caption_rows.append({"id": image_id, "image_id": image_id, "caption": caption(objects)})
        for obj, polygon in zip(objects, polygons, strict=True):
            ann_id = len(ann_rows) + 1
            ann_rows.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": SHAPES.index(obj.shape) + 1,
                    "bbox": [obj.col * cell, obj.row * cell, cell, cell],
                    "area": polygon_area(polygon),
                    "segmentation": [polygon],
                    "iscrowd": 0,
                }
            )
            sentence = f"the {obj.colour} {obj.shape}"
            sent = {"sent_id": len(refs), "sent": sentence, "raw": sentence, "tokens": sentence.split()}
            refs.append(
                {
                    "ref_id": len(refs),
                    "ann_id": ann_id,
                    "image_id": image_id,
                    "split": split_of[image_id],
                    "category_id": SHAPES.index(obj.shape) + 1,
                    "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
                    "sent_ids": [len(refs)],
                    "sentences": [sent],
                }
            )
    info = {"description": f"regionreasoner synthetic scenes, seed {seed}"}
    instances = {"info": info, "images": image_rows, "annotations": ann_rows, "categories": categories}
    atomic_write_text(out_dir / "instances.json", json.dumps(instances, sort_keys=True))
    atomic_write_bytes(out_dir / f"refs({split_by}).p", pickle.dumps(refs, protocol=2))
    captions = {"info": info, "images": image_rows, "annotations": caption_rows}
    atomic_write_text(out_dir / "captions.json", json.dumps(captions, sort_keys=True))
