"""Descriptive statistics: mean faces, intensity histograms, class imbalance."""

from __future__ import annotations

import numpy as np
import pytest

from core.stats import imbalance, intensity_histogram, mean_faces, sample_per_class


def test_mean_faces_average_each_class_in_fer2013_order():
    images = np.stack([np.full((48, 48), value, dtype=np.uint8) for value in (10, 30, 200)])
    faces = mean_faces(images, np.array([3, 3, 6]))
    assert faces.shape == (7, 48, 48) and faces.dtype == np.uint8
    assert faces[3, 0, 0] == 20  # happy: mean of 10 and 30
    assert faces[6, 0, 0] == 200  # neutral
    assert faces[0, 0, 0] == 128  # angry has no images: mid-gray, not NaN


def test_intensity_histogram_sums_to_one_and_bins_pixels():
    images = np.zeros((2, 48, 48), dtype=np.uint8)
    images[1] = 255
    edges, fractions = intensity_histogram(images, bins=4)
    assert edges.tolist() == [0, 64, 128, 192]
    assert fractions.tolist() == [0.5, 0.0, 0.0, 0.5]
    assert intensity_histogram(np.zeros((0, 48, 48), dtype=np.uint8))[1].sum() == 0
    with pytest.raises(ValueError, match="divide 256"):
        intensity_histogram(images, bins=3)


def test_imbalance_names_largest_and_smallest_class():
    assert imbalance({"angry": 10, "disgust": 2, "happy": 33}) == ("happy", "disgust", 16.5)
    assert imbalance({"angry": 10, "disgust": 0}) is None
    assert imbalance({"happy": 3}) is None


def test_sample_per_class_is_reproducible_and_respects_filters():
    labels = np.array([0, 0, 0, 3, 3, 6, 0, 3])
    splits = np.array(["Training"] * 6 + ["PublicTest"] * 2)
    first = sample_per_class(labels, splits, per_class=2, seed=1)
    assert first.keys() == set(range(7)) and len(first[0]) == 2 and len(first[1]) == 0
    again = sample_per_class(labels, splits, per_class=2, seed=1)
    assert all((first[k] == again[k]).all() for k in first)
    only = sample_per_class(labels, splits, per_class=5, seed=0, split="PublicTest", classes=[3, 0])
    assert list(only) == [3, 0]
    assert only[3].tolist() == [7] and only[0].tolist() == [6]


def test_a_class_keeps_its_faces_whichever_other_classes_are_shown():
    # Walk s22: turning "angry" off replaced every disgust face (one generator drew the classes in turn).
    labels = np.repeat(np.arange(7), 50)
    splits = np.array(["Training"] * len(labels))
    every = sample_per_class(labels, splits, per_class=10, seed=3)
    without_angry = sample_per_class(labels, splits, per_class=10, seed=3, classes=[1, 2, 3, 4, 5, 6])
    assert all((every[k] == without_angry[k]).all() for k in without_angry)
    more = sample_per_class(labels, splits, per_class=20, seed=3)  # more faces keep the first ones
    assert all((more[k][:10] == every[k]).all() for k in every)
    assert len(set(every[1].tolist())) == 10 and not (every[1] == sample_per_class(labels, splits, per_class=10, seed=4)[1]).all()
