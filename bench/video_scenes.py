"""Composed test videos with known faces: FER2013 faces moving over a background, two at a time.

Each face is a "person" that stays on screen for one segment (``segment``
frames), drifting along a slow curve and breathing in size by +-8%, with a
little brightness flicker and sensor noise, so every frame's crop differs
slightly, as in a real video. Then both faces leave, the scene stays empty
for ``gap`` frames, and two new ones arrive elsewhere. So the ground truth per frame is two boxes with known labels and a
known identity (the face index), and a face id that changes inside a segment
is an id switch.

Used by ``bench_video.py``; any square gray faces work (FER2013's or synthetic ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

SIZE = (640, 480)


@dataclass(frozen=True)
class TruthFace:
    """A face on a composed frame: its index in the face list, its label and its pasted box."""

    face: int
    label: int
    box: tuple[int, int, int, int]


def background(size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    """A soft indoor-looking background: a warm gradient with blurred blobs (no face-like structure)."""
    width, height = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 70 + 90 * xx / width + 40 * yy / height
    blobs = cv2.GaussianBlur(rng.normal(0, 40, (height, width)).astype(np.float32), (0, 0), 25)
    gray = np.clip(base + blobs, 0, 255)
    return np.stack([gray, gray * 0.92, gray * 0.8], axis=-1).astype(np.uint8)


def compose_frames(faces: Sequence[np.ndarray], labels: Sequence[int], *, size: tuple[int, int] = SIZE,
                   segment: int = 40, gap: int = 20, side: int = 150, seed: int = 0) -> Iterator[tuple[np.ndarray, list[TruthFace]]]:
    """Yield ``(RGB frame, truth)`` for every frame; two faces per segment, ``len(faces) // 2`` segments.

    Args:
        faces: ``(48, 48)`` (or any square) uint8 gray faces.
        labels: Their FER2013 label indices.
        size: ``(width, height)`` of the frames.
        segment: Frames each pair of faces stays on screen.
        gap: Empty frames between two segments (people leave, others arrive; longer than
            the tracker's memory, so new faces get new ids).
        side: Pasted face size in pixels (it varies by +-8% over time).
        seed: Motion, flicker and noise seed.
    """
    width, height = size
    rng = np.random.default_rng(seed)
    canvas_base = background(size, seed)
    for start in range(0, len(faces) - 1, 2):
        pair = (start, start + 1)
        # Each face keeps to its half of the frame so the two never overlap.
        paths = []
        for slot in range(2):
            lane_x0 = slot * width // 2
            cx = lane_x0 + width / 4 + rng.uniform(-0.05, 0.05) * width
            cy = height / 2 + rng.uniform(-0.1, 0.1) * height
            paths.append((cx, cy, rng.uniform(0, 2 * np.pi), rng.uniform(20, 45), rng.uniform(15, 35)))
        big = [cv2.resize(faces[index], (side * 2, side * 2), interpolation=cv2.INTER_CUBIC) for index in pair]
        for step in range(segment):
            canvas = canvas_base.astype(np.float32)
            truth = []
            for slot, index in enumerate(pair):
                cx, cy, phase, amp_x, amp_y = paths[slot]
                t = step / max(1, segment - 1)
                x = cx + amp_x * np.sin(2 * np.pi * t + phase)
                y = cy + amp_y * np.sin(4 * np.pi * t + phase)
                current = int(round(side * (1.0 + 0.08 * np.sin(2 * np.pi * t * 1.5 + phase))))
                patch = cv2.resize(big[slot], (current, current), interpolation=cv2.INTER_AREA).astype(np.float32)
                patch = patch * (1.0 + rng.uniform(-0.04, 0.04))
                x0 = int(np.clip(round(x - current / 2), 0, width - current))
                y0 = int(np.clip(round(y - current / 2), 0, height - current))
                canvas[y0:y0 + current, x0:x0 + current] = patch[..., None]
                truth.append(TruthFace(index, int(labels[index]), (x0, y0, current, current)))
            canvas += rng.normal(0, 2.0, canvas.shape).astype(np.float32)
            yield np.clip(canvas, 0, 255).astype(np.uint8), truth
        if start + 3 < len(faces):
            for _ in range(gap):
                empty = canvas_base.astype(np.float32) + rng.normal(0, 2.0, canvas_base.shape).astype(np.float32)
                yield np.clip(empty, 0, 255).astype(np.uint8), []


def write_video(path: str | Path, frames: Iterator[tuple[np.ndarray, list[TruthFace]]], fps: float = 25.0,
                crf: int = 18) -> list[list[TruthFace]]:
    """Encode composed frames as H.264 MP4 (``core.video_io.VideoWriter``); return the truth per frame."""
    from core.video_io import VideoWriter

    truths: list[list[TruthFace]] = []
    writer = None
    try:
        for frame, truth in frames:
            if writer is None:
                writer = VideoWriter(path, frame.shape[1], frame.shape[0], fps=fps, crf=crf)
            writer.write(frame, len(truths) / fps)
            truths.append(truth)
    finally:
        if writer is not None:
            writer.close()
    return truths


def load_fer_faces(folder: str | Path, count: int, split_prefix: str = "PublicTest", seed: int = 0) -> tuple[list[np.ndarray], list[int]]:
    """``count`` random FER2013 faces of one split from an image-folder release, and their labels."""
    from core.labels import class_index

    files = sorted(Path(folder).glob(f"*/*/{split_prefix}_*.jpg")) or sorted(Path(folder).glob(f"*/{split_prefix}_*.jpg"))
    if not files:
        raise FileNotFoundError(f"no {split_prefix}_*.jpg files under {folder}")
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in rng.choice(len(files), size=min(count, len(files)), replace=False)]
    faces = [cv2.imread(str(file), cv2.IMREAD_GRAYSCALE) for file in chosen]
    labels = [class_index(file.parent.name) for file in chosen]
    return faces, labels
