"""Data-quality scan: duplicates, leakage, blank images and label conflicts."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from core.labels import PUBLIC_TEST, TRAINING
from core.quality import compute_phash, find_near_pairs, hamming_distance, scan_quality


def make_faces(count: int, seed: int = 0) -> np.ndarray:
    """Smooth random 48x48 images: distinct, with image-like low-frequency content."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 60, (count, 48, 48)).astype(np.float32)
    smooth = np.stack([cv2.GaussianBlur(image, (0, 0), 2.0) for image in noise])
    smooth = (smooth - smooth.mean(axis=(1, 2), keepdims=True)) * 4 + 128
    return np.clip(smooth, 0, 255).astype(np.uint8)


def scan(images: np.ndarray, labels=None, splits=None, **kwargs):
    n = len(images)
    labels = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels)
    splits = np.array([TRAINING] * n) if splits is None else np.asarray(splits)
    ids = np.array([f"img_{i}.jpg" for i in range(n)])
    return scan_quality(images, labels, splits, ids, **kwargs)


def test_distinct_images_give_no_pairs_and_no_blanks():
    report = scan(make_faces(300))
    assert report.groups == ()
    assert report.exact_pairs == 0 and report.near_pairs == 0
    assert len(report.blank) == 0
    assert report.split_pair_counts == {}


def test_exact_copy_across_training_and_public_test_is_reported_as_leakage():
    images = make_faces(20)
    images[15] = images[3]
    splits = np.array([TRAINING] * 10 + [PUBLIC_TEST] * 10)
    report = scan(images, splits=splits)
    assert len(report.groups) == 1
    group = report.groups[0]
    assert group.indices == (3, 15) and group.exact and group.crosses_splits
    assert group.ids == ("img_3.jpg", "img_15.jpg")
    assert report.split_pair_counts == {"Training–PublicTest": {"exact": 1, "near": 0}}
    assert report.leaked == {PUBLIC_TEST: 1}
    assert report.exact_pairs == 1 and report.near_pairs == 0


def test_slightly_noised_copy_is_a_near_duplicate_not_an_exact_one():
    images = make_faces(30)
    noise = np.random.default_rng(5).normal(0, 2, (48, 48))
    images[20] = np.clip(images[7] + noise, 0, 255).astype(np.uint8)
    report = scan(images, near_threshold=6)
    assert [group.indices for group in report.groups] == [(7, 20)]
    assert not report.groups[0].exact
    assert report.near_pairs == 1 and report.exact_pairs == 0
    assert report.pair_distance[0] <= 6
    # Threshold 0 keeps only identical hashes; the pair may or may not survive, but never as exact.
    assert scan(images, near_threshold=0).exact_pairs == 0


def test_flat_images_are_blank_and_not_grouped_as_duplicates():
    images = make_faces(10)
    images[2] = 0
    images[5] = 0
    images[8] = 200
    images[8, 0, 0] = 201  # near-constant still counts as blank
    report = scan(images)
    assert report.blank.tolist() == [2, 5, 8]
    assert report.groups == ()


def test_label_conflict_is_detected():
    images = make_faces(10)
    images[6] = images[1]
    labels = np.array([0, 3, 0, 0, 0, 0, 4, 0, 0, 0])
    report = scan(images, labels=labels)
    assert [group.indices for group in report.conflict_groups] == [(1, 6)]
    assert report.conflict_groups[0].labels == (3, 4)


def test_groups_of_three_copies_count_three_pairs():
    images = make_faces(10)
    images[4] = images[0]
    images[9] = images[0]
    report = scan(images)
    assert report.groups[0].indices == (0, 4, 9)
    assert report.exact_pairs == 3
    assert report.duplicated_images == 3


def test_report_to_dict_is_json_and_names_classes():
    images = make_faces(5)
    images[4] = images[0]
    data = json.loads(json.dumps(scan(images, labels=[3, 0, 0, 0, 3]).to_dict()))
    assert data["exact_pairs"] == 1
    assert data["groups"][0]["labels"] == ["happy", "happy"]


def test_phash_matches_opencv_reference():
    images = make_faces(20, seed=3)
    hashes = compute_phash(images)
    for image, value in zip(images, hashes, strict=True):
        small = cv2.resize(image.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
        low = cv2.dct(small)[:8, :8].ravel()
        # Coefficients within float noise of the median may flip: allow a bit or two.
        expected = int("".join("1" if c > np.median(low) else "0" for c in low), 2)
        assert bin(int(value) ^ expected).count("1") <= 2


@pytest.mark.parametrize("threshold", [0, 3, 4, 8])
def test_near_pair_search_equals_brute_force(threshold):
    rng = np.random.default_rng(threshold)
    base = rng.integers(0, 2**63, 400, dtype=np.uint64)
    # Plant close copies: flip 0..threshold+2 random bits of some hashes.
    copies = base[:100].copy()
    for k in range(len(copies)):
        for bit in rng.choice(64, rng.integers(0, threshold + 3), replace=False):
            copies[k] ^= np.uint64(1) << np.uint64(bit)
    hashes = np.r_[base, copies]
    first, second, distance, skipped = find_near_pairs(hashes, threshold)
    left, right = np.triu_indices(len(hashes), 1)
    close = hamming_distance(hashes[left], hashes[right]) <= threshold
    assert skipped == 0
    assert set(zip(first.tolist(), second.tolist())) == set(zip(left[close].tolist(), right[close].tolist()))
    assert (distance <= threshold).all()


def test_bad_inputs_raise_value_error():
    images = make_faces(3)
    with pytest.raises(ValueError, match="labels has 2 rows"):
        scan_quality(images, [0, 1], ["Training"] * 3, ["a", "b", "c"])
    with pytest.raises(ValueError, match="near_threshold"):
        scan(images, near_threshold=40)
    with pytest.raises(ValueError, match="uint8"):
        scan(images.astype(np.float32))


def test_empty_dataset_gives_empty_report():
    report = scan(np.zeros((0, 48, 48), dtype=np.uint8))
    assert report.n_images == 0 and report.groups == () and len(report.blank) == 0
