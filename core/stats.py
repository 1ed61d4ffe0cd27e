"""Descriptive statistics of a face dataset: class counts, mean faces, intensity histograms."""

from __future__ import annotations

import numpy as np

from core.labels import CLASS_NAMES, NUM_CLASSES


def mean_faces(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return the average face of each class.

    Args:
        images: ``(N, 48, 48)`` uint8 faces.
        labels: ``(N,)`` class indices in FER2013 order.

    Returns:
        ``(7, 48, 48)`` uint8, row ``k`` the mean of class ``k``; a class with
        no images gives a mid-gray face.

    Raises:
        ValueError: If the shapes do not line up.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or len(images) != len(labels):
        raise ValueError(f"expected (N, H, W) images and N labels, got {images.shape} and {labels.shape}")
    faces = np.full((NUM_CLASSES, *images.shape[1:]), 128.0)
    for index in range(NUM_CLASSES):
        members = images[labels == index]
        if len(members):
            faces[index] = members.sum(axis=0, dtype=np.int64) / len(members)
    return np.clip(np.rint(faces), 0, 255).astype(np.uint8)


def intensity_histogram(images: np.ndarray, bins: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Return the share of pixels in each intensity bin.

    Args:
        images: ``(N, H, W)`` uint8 images.
        bins: Number of equal-width bins over 0..255 (must divide 256).

    Returns:
        ``(edges, fractions)``: ``(bins,)`` left edges (int) and ``(bins,)``
        float64 fractions that sum to 1 (all zeros for no images).

    Raises:
        ValueError: If ``bins`` does not divide 256.
    """
    if bins <= 0 or 256 % bins:
        raise ValueError(f"bins must divide 256 (e.g. 32, 64, 256), got {bins}")
    images = np.asarray(images, dtype=np.uint8)
    counts = np.zeros(256, dtype=np.float64)
    for start in range(0, len(images), 2048):  # bincount widens to int64: keep the copy small
        counts += np.bincount(images[start : start + 2048].ravel(), minlength=256)
    binned = counts.reshape(bins, 256 // bins).sum(axis=1)
    total = binned.sum()
    return np.arange(0, 256, 256 // bins), binned / total if total else binned


def imbalance(counts: dict[str, int]) -> tuple[str, str, float] | None:
    """Return ``(largest class, smallest class, ratio)`` of a ``{class: count}`` mapping.

    Classes are considered in FER2013 order, so ties resolve the same way
    every time. Returns ``None`` when the smallest count is zero or there is
    nothing to compare.
    """
    present = [name for name in CLASS_NAMES if name in counts]
    if len(present) < 2:
        return None
    largest = max(present, key=lambda name: counts[name])
    smallest = min(present, key=lambda name: counts[name])
    if counts[smallest] == 0:
        return None
    return largest, smallest, counts[largest] / counts[smallest]



def sample_per_class(
    labels: np.ndarray,
    splits: np.ndarray,
    *,
    per_class: int,
    seed: int,
    split: str | None = None,
    classes: list[int] | None = None,
) -> dict[int, np.ndarray]:
    """Pick up to ``per_class`` random rows of each class, reproducibly.

    Args:
        labels: ``(N,)`` class indices.
        splits: ``(N,)`` split names.
        per_class: Rows wanted per class.
        seed: Seed of the draw; the same seed gives the same rows.
        split: Only rows of this split; None for all.
        classes: Class indices to sample, in the order wanted; None for all in FER2013 order.

    Returns:
        ``{class_index: rows}`` (int64 rows in draw order; empty for an absent class).

    Each class is drawn on its own, from ``(seed, class)``: which other classes are
    asked for does not change its faces (walk s22: turning "angry" off replaced
    every disgust face), and asking for more faces keeps the first ones.
    """
    labels, splits = np.asarray(labels), np.asarray(splits)
    allowed = np.ones(len(labels), dtype=bool) if split is None else splits == split
    result: dict[int, np.ndarray] = {}
    for index in range(NUM_CLASSES) if classes is None else classes:
        rows = np.flatnonzero(allowed & (labels == index))
        order = np.random.default_rng([int(seed), int(index)]).permutation(len(rows))
        result[index] = rows[order[:per_class]].astype(np.int64)
    return result
