"""Data-quality scan: exact and near duplicates, train/test leakage, blank images.

FER2013 is known to hold the same face more than once, sometimes in both
Training and a test split (leakage that inflates test accuracy) and sometimes
with two different labels. This module finds those in a few seconds for the
whole data set:

* exact duplicates: identical pixels, grouped by their bytes;
* near duplicates: a 64-bit DCT perceptual hash (pHash) per distinct image,
  pairs within ``near_threshold`` bits of Hamming distance. Candidates come
  from band buckets: the 64 bits are cut into ``near_threshold + 1`` bands,
  and two hashes that differ in at most ``near_threshold`` bits agree on at
  least one band (pigeonhole), so comparing within band buckets misses no pair;
* blank or near-constant images (pixel standard deviation below a threshold),
  listed apart and left out of the duplicate search (their hashes are noise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from core.labels import CLASS_NAMES, IMAGE_SIZE, KNOWN_SPLITS, TRAINING

ProgressCallback = Callable[[float, str], None]

HASH_BITS = 64
MAX_NEAR_THRESHOLD = 10
# A band bucket larger than this holds near-identical low-detail faces rather
# than copies; comparing all its pairs would cost O(size^2), so it is skipped
# and counted in ``QualityReport.skipped_buckets``.
DEFAULT_MAX_BUCKET = 2000
# Chunk size for the vectorised hashing, to bound temporary memory.
_HASH_CHUNK = 8192


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are copies of each other (a connected set of duplicate pairs).

    Attributes:
        indices: Row indices into the scanned arrays, ascending.
        ids: The images' ids, aligned with ``indices``.
        splits: The images' splits, aligned with ``indices``.
        labels: The images' class indices, aligned with ``indices``.
        exact: True when every image in the group has identical pixels.
        max_distance: Largest pHash Hamming distance between two members.
    """

    indices: tuple[int, ...]
    ids: tuple[str, ...]
    splits: tuple[str, ...]
    labels: tuple[int, ...]
    exact: bool
    max_distance: int

    @property
    def label_conflict(self) -> bool:
        """True when the copies carry more than one label."""
        return len(set(self.labels)) > 1

    @property
    def crosses_splits(self) -> bool:
        """True when the copies sit in more than one split (leakage when one is Training)."""
        return len(set(self.splits)) > 1

    def to_dict(self) -> dict:
        """Return a JSON-serialisable view with class names spelled out."""
        return {
            "ids": list(self.ids),
            "splits": list(self.splits),
            "labels": [CLASS_NAMES[label] for label in self.labels],
            "exact": self.exact,
            "max_distance": self.max_distance,
            "label_conflict": self.label_conflict,
        }


@dataclass(frozen=True)
class QualityReport:
    """What :func:`scan_quality` found.

    Attributes:
        n_images: Number of images scanned.
        near_threshold: Largest pHash Hamming distance counted as a near duplicate.
        blank_std: Images whose pixel standard deviation is below this are blank.
        groups: Duplicate groups, largest first.
        pair_first, pair_second: ``(M,)`` int64 row indices of every duplicate
            pair, ``pair_first < pair_second``.
        pair_distance: ``(M,)`` int64 pHash Hamming distance of each pair.
        pair_exact: ``(M,)`` bool, True when the pair's pixels are identical.
        blank: ``(B,)`` int64 row indices of blank images.
        split_pair_counts: ``{"Training–PublicTest": {"exact": n, "near": m}}``
            for every pair of splits that shares at least one duplicate pair.
        leaked: ``{split: count}`` for each split other than Training: how many
            of its images have a copy in Training.
        skipped_buckets: Band buckets larger than the cap that were not compared.
        seconds: Wall time of the scan.
    """

    n_images: int
    near_threshold: int
    blank_std: float
    groups: tuple[DuplicateGroup, ...]
    pair_first: np.ndarray
    pair_second: np.ndarray
    pair_distance: np.ndarray
    pair_exact: np.ndarray
    blank: np.ndarray
    split_pair_counts: dict[str, dict[str, int]]
    leaked: dict[str, int]
    skipped_buckets: int
    seconds: float

    @property
    def exact_pairs(self) -> int:
        """Number of pixel-identical pairs."""
        return int(self.pair_exact.sum())

    @property
    def near_pairs(self) -> int:
        """Number of near-duplicate pairs that are not pixel-identical."""
        return int((~self.pair_exact).sum())

    @property
    def duplicated_images(self) -> int:
        """Number of images that belong to some duplicate group."""
        return sum(len(group.indices) for group in self.groups)

    @property
    def conflict_groups(self) -> tuple[DuplicateGroup, ...]:
        """Groups whose copies carry different labels."""
        return tuple(group for group in self.groups if group.label_conflict)

    def to_dict(self) -> dict:
        """Return a JSON-serialisable summary with every group spelled out."""
        return {
            "n_images": self.n_images,
            "near_threshold": self.near_threshold,
            "blank_std": self.blank_std,
            "exact_pairs": self.exact_pairs,
            "near_pairs": self.near_pairs,
            "duplicated_images": self.duplicated_images,
            "label_conflicts": len(self.conflict_groups),
            "split_pair_counts": self.split_pair_counts,
            "leaked": self.leaked,
            "blank": self.blank.tolist(),
            "skipped_buckets": self.skipped_buckets,
            "seconds": round(self.seconds, 3),
            "groups": [group.to_dict() for group in self.groups],
        }


def _hash_projection() -> np.ndarray:
    """Return the ``(8, 48)`` matrix ``P`` with ``P @ X @ P.T`` = top-left 8x8 DCT of the 32x32 resize.

    Area resizing and the DCT are both linear and separable, so one small
    matrix does both for the whole stack at once; it equals
    ``cv2.dct(cv2.resize(x, (32, 32), interpolation=cv2.INTER_AREA))[:8, :8]``.
    """
    resize = cv2.resize(np.eye(IMAGE_SIZE, dtype=np.float32), (IMAGE_SIZE, 32), interpolation=cv2.INTER_AREA)
    # DCT of each row of the identity = the columns of the DCT matrix, so transpose.
    dct = cv2.dct(np.eye(32, dtype=np.float32), flags=cv2.DCT_ROWS).T
    return (dct[:8] @ resize).astype(np.float32)


def compute_phash(images: np.ndarray) -> np.ndarray:
    """Compute the 64-bit DCT perceptual hash of each image.

    Each 48x48 face is area-resized to 32x32, transformed with a 2-D DCT, and
    the 8x8 lowest frequencies are compared with their median: bit ``k`` (most
    significant first, row-major over the 8x8 block) is set when coefficient
    ``k`` is above the median.

    Args:
        images: ``(N, 48, 48)`` uint8 faces.

    Returns:
        ``(N,)`` uint64 hashes.

    Raises:
        ValueError: If ``images`` is not a ``(N, 48, 48)`` stack.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected images of shape (N, 48, 48), got {images.shape}")
    projection = _hash_projection()
    hashes = np.empty(len(images), dtype=np.uint64)
    for start in range(0, len(images), _HASH_CHUNK):
        chunk = images[start : start + _HASH_CHUNK].astype(np.float32)
        coefficients = (projection @ chunk @ projection.T).reshape(len(chunk), HASH_BITS)
        bits = coefficients > np.median(coefficients, axis=1, keepdims=True)
        hashes[start : start + len(chunk)] = np.packbits(bits, axis=1).view(">u8")[:, 0]
    return hashes


def pixel_std(images: np.ndarray) -> np.ndarray:
    """Return the ``(N,)`` float32 standard deviation of each image's pixels."""
    flat = np.asarray(images).reshape(len(images), IMAGE_SIZE * IMAGE_SIZE)
    result = np.empty(len(flat), dtype=np.float32)
    for start in range(0, len(flat), _HASH_CHUNK):
        result[start : start + _HASH_CHUNK] = flat[start : start + _HASH_CHUNK].astype(np.float32).std(axis=1)
    return result


def hamming_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Return the number of differing bits between uint64 hashes, element-wise (int64)."""
    return np.bitwise_count(np.bitwise_xor(first, second)).astype(np.int64)


def _band_masks(near_threshold: int) -> list[tuple[int, int]]:
    """Split the 64 bits into ``near_threshold + 1`` bands; return ``(shift, mask)`` per band."""
    bands = near_threshold + 1
    widths = [HASH_BITS // bands + (1 if k < HASH_BITS % bands else 0) for k in range(bands)]
    result, shift = [], 0
    for width in widths:
        result.append((shift, (1 << width) - 1))
        shift += width
    return result


def find_near_pairs(
    hashes: np.ndarray,
    near_threshold: int,
    *,
    max_bucket: int = DEFAULT_MAX_BUCKET,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Find every pair of hashes within ``near_threshold`` bits of each other.

    Args:
        hashes: ``(N,)`` uint64 hashes.
        near_threshold: Largest Hamming distance reported, 0..10.
        max_bucket: Band buckets with more members are skipped (see module doc).
        progress: Optional ``progress(fraction, message)`` callback.

    Returns:
        ``(first, second, distance, skipped_buckets)``: int64 arrays of the
        pairs (``first < second``) and the number of skipped buckets.

    Raises:
        ValueError: If ``near_threshold`` is outside 0..10.
    """
    if not 0 <= near_threshold <= MAX_NEAR_THRESHOLD:
        raise ValueError(f"near_threshold must be between 0 and {MAX_NEAR_THRESHOLD} bits, got {near_threshold}")
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    found: list[np.ndarray] = []
    skipped = 0
    bands = _band_masks(near_threshold)
    for band_number, (shift, mask) in enumerate(bands):
        keys = (hashes >> np.uint64(shift)) & np.uint64(mask)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, n])
        skipped += int((sizes > max_bucket).sum())
        candidates_first, candidates_second = [], []
        for size in np.unique(sizes[(sizes >= 2) & (sizes <= max_bucket)]):
            # All buckets of one size at once: (buckets, size) members -> pairs.
            members = order[starts[sizes == size][:, None] + np.arange(size)]
            left, right = np.triu_indices(size, 1)
            candidates_first.append(members[:, left].ravel())
            candidates_second.append(members[:, right].ravel())
        if candidates_first:
            first = np.concatenate(candidates_first)
            second = np.concatenate(candidates_second)
            close = hamming_distance(hashes[first], hashes[second]) <= near_threshold
            low, high = np.minimum(first[close], second[close]), np.maximum(first[close], second[close])
            found.append(low.astype(np.int64) * n + high)
        if progress is not None:
            progress((band_number + 1) / len(bands), f"compared hash band {band_number + 1} of {len(bands)}")
    codes = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
    first, second = codes // max(n, 1), codes % max(n, 1)
    return first, second, hamming_distance(hashes[first], hashes[second]), skipped


def _expand_pairs(
    rows_by_class: list[np.ndarray], class_first: np.ndarray, class_second: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """List every duplicate pair of rows: same pixel class, or classes that are near duplicates.

    Args:
        rows_by_class: Rows of each identical-pixel class.
        class_first, class_second: Near-duplicate pairs of classes.
        n: Number of rows (for pair codes).

    Returns:
        ``(first, second)`` int64 rows, ``first < second``, sorted.
    """
    sizes = np.array([len(rows) for rows in rows_by_class], dtype=np.int64)
    parts: list[np.ndarray] = []
    for rows in (rows_by_class[c] for c in np.flatnonzero(sizes >= 2)):
        left, right = np.triu_indices(len(rows), 1)
        parts.append(np.c_[rows[left], rows[right]])
    # Most near pairs join two single images; only the rest need expanding.
    single = (sizes[class_first] == 1) & (sizes[class_second] == 1)
    if single.any():
        heads = np.array([rows[0] for rows in rows_by_class], dtype=np.int64)
        parts.append(np.c_[heads[class_first[single]], heads[class_second[single]]])
    for a, b in zip(class_first[~single].tolist(), class_second[~single].tolist(), strict=True):
        rows_a, rows_b = np.meshgrid(rows_by_class[a], rows_by_class[b], indexing="ij")
        parts.append(np.c_[rows_a.ravel(), rows_b.ravel()])
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    pairs = np.concatenate(parts).astype(np.int64)
    codes = np.sort(pairs.min(axis=1) * n + pairs.max(axis=1))
    return codes // n, codes % n


def _cluster_around_centres(
    n_classes: int, rep_first: np.ndarray, rep_second: np.ndarray, class_sizes: np.ndarray
) -> list[list[int]]:
    """Group pixel classes into duplicate groups, each around one centre class.

    Grouping by connected components would chain a~b~c~... into groups of
    unrelated faces; instead the class with the most near duplicates takes all
    its still-ungrouped neighbours, then the next, so every member of a group
    is within the threshold of its centre.

    Returns:
        Lists of class numbers, one per group of two or more images.
    """
    neighbours: list[list[int]] = [[] for _ in range(n_classes)]
    for a, b in zip(rep_first.tolist(), rep_second.tolist(), strict=True):
        neighbours[a].append(b)
        neighbours[b].append(a)
    degree = np.bincount(np.r_[rep_first, rep_second], minlength=n_classes)
    grouped = np.zeros(n_classes, dtype=bool)
    clusters: list[list[int]] = []
    for centre in np.lexsort((np.arange(n_classes), -degree)).tolist():
        if grouped[centre] or (degree[centre] == 0 and class_sizes[centre] < 2):
            continue
        cluster = [centre] + [other for other in neighbours[centre] if not grouped[other]]
        grouped[cluster] = True
        if len(cluster) > 1 or class_sizes[centre] > 1:
            clusters.append(cluster)
    return clusters


def _split_pair_name(first: str, second: str) -> str:
    """Name a pair of splits in canonical order, e.g. ``Training–PublicTest``."""
    rank = {name: position for position, name in enumerate(KNOWN_SPLITS)}
    a, b = sorted((first, second), key=lambda name: (rank.get(name, len(rank)), name))
    return f"{a}–{b}"


def scan_quality(
    images: np.ndarray,
    labels: np.ndarray,
    splits: np.ndarray,
    ids: np.ndarray,
    *,
    near_threshold: int = 4,
    blank_std: float = 3.0,
    max_bucket: int = DEFAULT_MAX_BUCKET,
    progress: ProgressCallback | None = None,
) -> QualityReport:
    """Find duplicates (within and across splits), leakage, label conflicts and blank images.

    Args:
        images: ``(N, 48, 48)`` uint8 faces.
        labels: ``(N,)`` class indices.
        splits: ``(N,)`` split names.
        ids: ``(N,)`` image ids.
        near_threshold: Largest pHash Hamming distance (bits, 0..10) counted
            as a near duplicate; 0 keeps only identical hashes.
        blank_std: Pixel standard deviation below which an image is blank.
        max_bucket: Cap on hash band buckets (see :func:`find_near_pairs`).
        progress: Optional ``progress(fraction, message)`` callback.

    Returns:
        A :class:`QualityReport`; indices in it refer to rows of the inputs.

    Raises:
        ValueError: If shapes disagree or ``near_threshold`` is out of range.
    """
    started = time.perf_counter()
    report_progress = progress or (lambda fraction, message: None)
    images = np.asarray(images)
    labels, splits, ids = np.asarray(labels), np.asarray(splits).astype(str), np.asarray(ids).astype(str)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, 48, 48), got {images.dtype} {images.shape}")
    n = len(images)
    for name, array in (("labels", labels), ("splits", splits), ("ids", ids)):
        if len(array) != n:
            raise ValueError(f"{name} has {len(array)} rows but images has {n}; pass aligned arrays")
    if not 0 <= near_threshold <= MAX_NEAR_THRESHOLD:
        raise ValueError(f"near_threshold must be between 0 and {MAX_NEAR_THRESHOLD} bits, got {near_threshold}")

    report_progress(0.0, "looking for blank images")
    flat = images.reshape(n, IMAGE_SIZE * IMAGE_SIZE)
    blank_mask = pixel_std(images) < blank_std
    candidates = np.flatnonzero(~blank_mask)

    report_progress(0.1, "grouping identical images")
    raw = np.ascontiguousarray(flat[candidates]).view(np.dtype((np.void, flat.shape[1])))[:, 0]
    _, first_of_class, class_of = np.unique(raw, return_index=True, return_inverse=True)
    representatives = candidates[first_of_class]

    report_progress(0.2, f"hashing {len(representatives):,} distinct images")
    hashes = np.zeros(n, dtype=np.uint64)
    hashes[representatives] = compute_phash(images[representatives])
    hashes[candidates] = hashes[representatives[class_of]]

    def on_band(fraction: float, message: str) -> None:
        report_progress(0.3 + 0.6 * fraction, message)

    rep_first, rep_second, _, skipped = find_near_pairs(
        hashes[representatives], near_threshold, max_bucket=max_bucket, progress=on_band
    )

    report_progress(0.9, "collecting groups")
    # Row -> first row with identical pixels (-1 for blank images, which take no part).
    same_as = np.full(n, -1, dtype=np.int64)
    same_as[candidates] = representatives[class_of]
    # Rows of each identical-pixel class, so a pair or cluster of classes expands to its images.
    rows_by_class = np.split(candidates[np.argsort(class_of, kind="stable")], np.cumsum(np.bincount(class_of))[:-1])
    pair_first, pair_second = _expand_pairs(rows_by_class, rep_first, rep_second, n)
    pair_exact = same_as[pair_first] == same_as[pair_second]
    pair_distance = hamming_distance(hashes[pair_first], hashes[pair_second])

    groups: list[DuplicateGroup] = []
    for cluster in _cluster_around_centres(len(representatives), rep_first, rep_second, np.bincount(class_of)):
        members = np.sort(np.concatenate([rows_by_class[c] for c in cluster]))
        left, right = np.triu_indices(len(members), 1)
        groups.append(
            DuplicateGroup(
                indices=tuple(members.tolist()),
                ids=tuple(ids[members].tolist()),
                splits=tuple(splits[members].tolist()),
                labels=tuple(int(label) for label in labels[members]),
                exact=len(cluster) == 1,
                max_distance=int(hamming_distance(hashes[members[left]], hashes[members[right]]).max()),
            )
        )
    groups.sort(key=lambda group: (-len(group.indices), group.indices[0]))

    split_pair_counts: dict[str, dict[str, int]] = {}
    for first, second, exact in zip(splits[pair_first], splits[pair_second], pair_exact, strict=True):
        counts = split_pair_counts.setdefault(_split_pair_name(first, second), {"exact": 0, "near": 0})
        counts["exact" if exact else "near"] += 1
    leaked: dict[str, int] = {}
    for split in sorted(set(splits.tolist()) - {TRAINING}, key=lambda s: _split_pair_name(s, s)):
        copies = np.r_[
            pair_second[(splits[pair_first] == TRAINING) & (splits[pair_second] == split)],
            pair_first[(splits[pair_second] == TRAINING) & (splits[pair_first] == split)],
        ]
        leaked[split] = int(len(np.unique(copies)))
    report_progress(1.0, "scan finished")
    return QualityReport(
        n_images=n,
        near_threshold=near_threshold,
        blank_std=float(blank_std),
        groups=tuple(groups),
        pair_first=pair_first,
        pair_second=pair_second,
        pair_distance=pair_distance,
        pair_exact=pair_exact,
        blank=np.flatnonzero(blank_mask).astype(np.int64),
        split_pair_counts=split_pair_counts,
        leaked=leaked,
        skipped_buckets=skipped,
        seconds=time.perf_counter() - started,
    )
