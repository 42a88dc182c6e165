"""Box+point prompted segmenters behind one interface (docs/method.md section 4).

The paper turns each answered object into a mask with SAM2 (sam2-hiera-large) prompted with the
object's box and point, keeps the top-scoring mask and ORs the objects' masks. SAM2 needs weights
and, in practice, a GPU; the embedded default uses OpenCV GrabCut seeded the same way (box as
probable foreground, point as sure foreground) so the whole pipeline runs offline on a CPU.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from regionreasoner.paths import SAM2_MODEL


class Segmenter(Protocol):
    """Turns one object's box (and optional point), in image pixels, into a bool (H, W) mask."""

    def segment(self, image: np.ndarray, box: Sequence[float], point: Sequence[float] | None) -> np.ndarray:
        """``image`` is (H, W, 3) uint8 RGB; returns a bool array of shape (H, W)."""
        ...


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel bounds [x1, x2) x [y1, y2) covering the continuous box, clipped to the image."""
    x1 = min(max(math.floor(box[0]), 0), width)
    y1 = min(max(math.floor(box[1]), 0), height)
    x2 = min(max(math.ceil(box[2]), x1), width)
    y2 = min(max(math.ceil(box[3]), y1), height)
    return x1, y1, x2, y2


def box_mask(box: Sequence[float], height: int, width: int) -> np.ndarray:
    """The clipped box itself as a mask: the fallback when a segmenter cannot do better."""
    mask = np.zeros((height, width), dtype=bool)
    x1, y1, x2, y2 = clip_box(box, width, height)
    mask[y1:y2, x1:x2] = True
    return mask


class GrabCutSegmenter:
    """OpenCV GrabCut seeded with the box (probable foreground) and the point (sure foreground).

    GrabCut runs on a crop around the box (``margin`` times the box size on each side) so that the
    background colour model comes from the object's surroundings and large images stay fast. A band
    of ``border`` times the box's shorter side just inside the box starts as probable background:
    loose boxes (the synthetic scenes' cell-aligned boxes) then teach the background model the
    colour around the object, while tight boxes can still win those pixels back as foreground.
    Degenerate or out-of-image boxes are clipped; when GrabCut fails or finds nothing the box
    itself is returned. ``seed`` fixes OpenCV's k-means initialisation so masks are reproducible.
    """

    def __init__(
        self, iterations: int = 5, margin: float = 0.5, border: float = 0.1, point_radius: int = 2, seed: int = 0
    ) -> None:
        self.iterations = iterations
        self.margin = margin
        self.border = border
        self.point_radius = point_radius
        self.seed = seed

    def segment(self, image: np.ndarray, box: Sequence[float], point: Sequence[float] | None) -> np.ndarray:
        height, width = image.shape[:2]
        x1, y1, x2, y2 = clip_box(box, width, height)
        fallback = box_mask(box, height, width)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return fallback
        pad_x = math.ceil(self.margin * (x2 - x1)) + 1
        pad_y = math.ceil(self.margin * (y2 - y1)) + 1
        cx1, cy1 = max(x1 - pad_x, 0), max(y1 - pad_y, 0)
        cx2, cy2 = min(x2 + pad_x, width), min(y2 + pad_y, height)
        crop = np.ascontiguousarray(image[cy1:cy2, cx1:cx2, ::-1])  # OpenCV expects BGR
        seeds = np.full(crop.shape[:2], cv2.GC_BGD, dtype=np.uint8)
        seeds[y1 - cy1 : y2 - cy1, x1 - cx1 : x2 - cx1] = cv2.GC_PR_BGD
        band = max(1, round(self.border * min(x2 - x1, y2 - y1)))
        if min(x2 - x1, y2 - y1) > 2 * band:
            seeds[y1 - cy1 + band : y2 - cy1 - band, x1 - cx1 + band : x2 - cx1 - band] = cv2.GC_PR_FGD
        else:
            seeds[y1 - cy1 : y2 - cy1, x1 - cx1 : x2 - cx1] = cv2.GC_PR_FGD
        if point is not None and x1 <= point[0] < x2 and y1 <= point[1] < y2:
            centre = (int(point[0]) - cx1, int(point[1]) - cy1)
            cv2.circle(seeds, centre, self.point_radius, int(cv2.GC_FGD), thickness=-1)
        if not (seeds == cv2.GC_BGD).any():  # box covers the whole image: let the border be background
            seeds[[0, -1], :] = np.where(seeds[[0, -1], :] == cv2.GC_FGD, cv2.GC_FGD, cv2.GC_PR_BGD)
            seeds[:, [0, -1]] = np.where(seeds[:, [0, -1]] == cv2.GC_FGD, cv2.GC_FGD, cv2.GC_PR_BGD)
        cv2.setRNGSeed(self.seed)
        try:
            cv2.grabCut(
                crop,
                seeds,
                None,
                np.zeros((1, 65), np.float64),
                np.zeros((1, 65), np.float64),
                self.iterations,
                cv2.GC_INIT_WITH_MASK,
            )
        except cv2.error:
            return fallback
        found = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
        if not found.any():
            return fallback
        mask = np.zeros((height, width), dtype=bool)
        mask[cy1:cy2, cx1:cx2] = found
        return mask


class Sam2Segmenter:
    """SAM2 prompted with box + point, top-scoring mask kept (the paper's segmenter).

    The ``sam2`` package and its weights are needed only when this class is instantiated; the image
    embedding is cached so the objects of one turn (and the turns of one dialogue) share it.
    """

    def __init__(
        self,
        model_id: str = SAM2_MODEL,
        device: str | None = None,
        predictor: Any = None,
        weights: Path | None = None,
    ) -> None:
        """``weights``: a local copy of ``model_id``'s hub folder (rule fetch_segmenter), so a GPU job
        never downloads; ``predictor``: an already built ``SAM2ImagePredictor`` instead (scripts/gpu_smoke.sh
        builds one with random weights from the package's own model config)."""
        try:
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except ImportError as err:
            raise RuntimeError(
                "the 'sam2' segmenter needs the SAM2 package: pip install sam2 (weights for "
                f"{model_id} are fetched from the Hugging Face hub on first use); "
                "or set evaluate.segmenter: grabcut to run without weights"
            ) from err
        if predictor is None:
            import torch

            device = device or ("cuda" if torch.cuda.is_available() else "cpu")
            if weights is not None:
                from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES, build_sam2

                config, checkpoint = HF_MODEL_ID_TO_FILENAMES[model_id]
                model = build_sam2(config, ckpt_path=str(Path(weights) / checkpoint), device=device)
                predictor = SAM2ImagePredictor(model)
            else:
                predictor = SAM2ImagePredictor.from_pretrained(model_id, device=device)
        self.predictor = predictor
        self._image_key: str | None = None

    def segment(self, image: np.ndarray, box: Sequence[float], point: Sequence[float] | None) -> np.ndarray:
        key = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()
        if key != self._image_key:
            self.predictor.set_image(image)
            self._image_key = key
        prompts: dict[str, Any] = {"box": np.asarray(box, dtype=np.float32)}
        if point is not None:
            prompts["point_coords"] = np.asarray([point], dtype=np.float32)
            prompts["point_labels"] = np.asarray([1], dtype=np.int32)
        masks, scores, _ = self.predictor.predict(multimask_output=True, **prompts)
        return np.asarray(masks[int(np.argmax(scores))]).astype(bool)


SEGMENTERS = {"grabcut": GrabCutSegmenter, "sam2": Sam2Segmenter}


def make_segmenter(name: str, **kwargs: Any) -> Segmenter:
    """The segmenter named in ``config["evaluate"]["segmenter"]`` (grabcut | sam2)."""
    if name not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {name!r}; choose one of {sorted(SEGMENTERS)}")
    return SEGMENTERS[name](**kwargs)


class RememberingSegmenter:
    """A segmenter that segments each (image, box, point) once and answers repeats from memory.

    An evaluation asks for the same object many times: the single-round runs repeat the objects of
    the multi-round ones, and a dialogue comes back to objects it named before (449 distinct masks
    of 758 in one evaluation of the embedded default). GrabCut is seeded, so a repeat gets the mask
    it would have got; SAM2 answers the same prompt alike. Masks are kept as COCO RLE: small at any
    image size."""

    def __init__(self, segmenter: Segmenter) -> None:
        self.segmenter = segmenter
        self.masks: dict[tuple[Any, ...], dict[str, Any]] = {}

    def segment(self, image: np.ndarray, box: Sequence[float], point: Sequence[float] | None) -> np.ndarray:
        key = (
            hashlib.blake2b(image.tobytes(), digest_size=16).digest(),
            image.shape,
            tuple(float(v) for v in box),
            None if point is None else tuple(float(v) for v in point),
        )
        if key not in self.masks:
            self.masks[key] = _rle(self.segmenter.segment(image, box, point))
        return mask_utils.decode(self.masks[key]).astype(bool)


def segment_objects(
    segmenter: Segmenter,
    image: np.ndarray,
    boxes: Sequence[Sequence[float]],
    points: Sequence[Sequence[float] | None] | None = None,
) -> np.ndarray:
    """One mask per answered object, OR-ed into the turn's mask (docs/method.md section 4).

    ``points[i]`` prompts ``boxes[i]``; missing points (a shorter list or ``None``) prompt by box only.
    """
    points = list(points or [])
    mask = np.zeros(image.shape[:2], dtype=bool)
    for i, box in enumerate(boxes):
        mask |= segmenter.segment(image, box, points[i] if i < len(points) else None)
    return mask


def _rle(mask: np.ndarray) -> dict[str, Any]:
    """pycocotools' RLE of a bool mask (``counts`` as bytes)."""
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE of a bool mask with ``counts`` as str, the form stored in JSON files."""
    rle = _rle(mask)
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
