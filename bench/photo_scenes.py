"""Composed test photos with known face boxes, from images that ship with scikit-image (no download).

* :func:`lfw_scenes`: 1280x720 photos, each with 5 LFW faces
  (``skimage.data.lfw_subset()``, 25x25 crops upscaled to 40-220 px) and 5
  LFW non-face patches of the same sizes, on natural backgrounds.
* :func:`hard_scenes`: the same with every face rotated by up to +-25
  degrees in the image plane and mirrored half of the time.
* :func:`three_face_photo`: the astronaut's head (``skimage.data.astronaut()``)
  pasted at 360, 240 and 150 px on a 1280x720 coffee photo.

Used by ``bench_detect.py`` and ``bench_predict.py``; scikit-image is a dev dependency.
"""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]
# Backgrounds without people (the cat's face is a fair false-positive test).
BACKGROUNDS = ("coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "brick", "grass", "gravel", "coins",
               "page", "horse", "moon", "retina", "chelsea", "clock", "cell", "text")
SIZE = (1280, 720)


def background(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    if image.dtype != np.uint8:
        image = (image * 255 if image.max() <= 1 else image).astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return cv2.resize(np.ascontiguousarray(image[..., :3]), SIZE, interpolation=cv2.INTER_LINEAR)


def lfw_patches() -> tuple[np.ndarray, np.ndarray]:
    """100 faces and 100 non-faces, 25x25 uint8."""
    from skimage import data

    patches = (data.lfw_subset() * 255).astype(np.uint8)
    return patches[:100], patches[100:]


def _place(canvas: np.ndarray, patch: np.ndarray, occupied: list[Box], rng: np.random.Generator, size: int) -> Box | None:
    height, width = canvas.shape[:2]
    for _ in range(200):
        x, y = int(rng.integers(0, width - size)), int(rng.integers(0, height - size))
        if all(x + size + 10 < ox or ox + ow + 10 < x or y + size + 10 < oy or oy + oh + 10 < y for ox, oy, ow, oh in occupied):
            resized = cv2.resize(patch, (size, size), interpolation=cv2.INTER_CUBIC)
            canvas[y:y + size, x:x + size] = resized[..., None] if resized.ndim == 2 else resized
            occupied.append((x, y, size, size))
            return (x, y, size, size)
    return None


def _rotate(patch: np.ndarray, angle: float) -> np.ndarray:
    height, width = patch.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(patch, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def lfw_scenes(count: int = 20, per_scene: int = 5, seed: int = 0, sizes: tuple[int, int] = (60, 220),
               max_angle: float = 0.0, first_background: int = 0) -> list[tuple[np.ndarray, list[Box]]]:
    """Photos of LFW faces among non-face patches; returns ``(RGB image, face boxes)`` pairs."""
    rng = np.random.default_rng(seed)
    faces, non_faces = lfw_patches()
    scenes, face_index = [], 0
    for scene in range(count):
        canvas = background(BACKGROUNDS[(scene + first_background) % len(BACKGROUNDS)])
        occupied: list[Box] = []
        boxes = []
        for _ in range(per_scene):
            face = faces[(face_index * 7) % 100]
            face_index += 1
            if max_angle:
                face = _rotate(cv2.resize(face, (100, 100), interpolation=cv2.INTER_CUBIC), float(rng.uniform(-max_angle, max_angle)))
                if rng.random() < 0.5:
                    face = np.ascontiguousarray(face[:, ::-1])
            box = _place(canvas, face, occupied, rng, int(rng.integers(*sizes)))
            if box:
                boxes.append(box)
        for k in range(per_scene):
            _place(canvas, non_faces[(scene * per_scene + k + 37 * bool(max_angle)) % 100], occupied, rng, int(rng.integers(*sizes)))
        scenes.append((canvas, boxes))
    return scenes


def hard_scenes(count: int = 20) -> list[tuple[np.ndarray, list[Box]]]:
    """:func:`lfw_scenes` with faces rotated up to +-25 degrees and mirrored, 40-200 px."""
    return lfw_scenes(count, seed=1, sizes=(40, 200), max_angle=25.0, first_background=3)


def three_face_photo() -> tuple[np.ndarray, list[Box]]:
    """A 1280x720 photo with the astronaut's head at three scales, and the three face boxes."""
    from skimage import data

    photo = data.astronaut()
    head = photo[113 - 95:113 + 95, 224 - 95:224 + 95]  # twice the face's Haar box, centred on it
    canvas = background("coffee")
    boxes = []
    for x, y, side in ((80, 120, 360), (560, 200, 240), (980, 300, 150)):
        canvas[y:y + side, x:x + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
        boxes.append((x + side // 4, y + side // 4, side // 2, side // 2))
    return canvas, boxes


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


def match(found: list[Box], truth: list[Box], threshold: float = 0.3) -> tuple[int, int]:
    """``(true positives, false positives)``: each true box matched to at most one found box with IoU >= threshold."""
    used: set[int] = set()
    hits = 0
    for expected in truth:
        candidates = [(iou(box, expected), index) for index, box in enumerate(found) if index not in used]
        best = max(candidates, default=(0.0, -1))
        if best[0] >= threshold:
            used.add(best[1])
            hits += 1
    return hits, len(found) - len(used)
