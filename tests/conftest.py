"""Shared pytest fixtures. Helpers append their own fixtures here, with unique names."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.labels import CLASS_NAMES

SHARED_FER2013 = Path(__file__).resolve().parent.parent.parent / "shared" / "fer2013"


# ---------------------------------------------------------------- dataset loading (core.data)


@pytest.fixture(scope="session")
def shared_fer2013(tmp_path_factory: pytest.TempPathFactory):
    """The shared FER2013 image folders (``../shared/fer2013``) as a ``FerDataset``.

    Loaded once per test session, cached under a temporary folder (never
    ``~/.cache``). Skips, saying why, when the data is not there.
    """
    if not (SHARED_FER2013 / "train").is_dir():
        pytest.skip(f"the shared FER2013 data is not at {SHARED_FER2013} (integration test)")
    from core.data import load_fer2013

    return load_fer2013(SHARED_FER2013, cache_dir=tmp_path_factory.mktemp("fer2013-cache"))


TINY_TRAIN_PER_CLASS = 3
TINY_TEST_PER_CLASS = 2


def tiny_face(label: int, index: int) -> np.ndarray:
    """A deterministic 48x48 uint8 image whose brightness grows with the label."""
    rows, cols = np.mgrid[0:48, 0:48]
    base = 20 + 30 * label + 5 * index
    return np.clip(base + (rows + cols) // 4, 0, 255).astype(np.uint8)


@pytest.fixture
def tiny_fer_folder(tmp_path: Path) -> Path:
    """A miniature image-folder release in a temporary folder; returns its root.

    ``<root>/train/<class>/Training_<n>.jpg`` (3 per class, 21 in all) and
    ``<root>/test/<class>/PublicTest_<n>.jpg`` (2 per class, 14 in all),
    48x48 gray JPEGs written with ``cv2.imwrite`` (lossy: pixels differ a
    little from :func:`tiny_face`). Class folders use the FER2013 names.
    """
    root = tmp_path / "fer2013"
    for split_folder, prefix, count in (("train", "Training", TINY_TRAIN_PER_CLASS), ("test", "PublicTest", TINY_TEST_PER_CLASS)):
        for label, name in enumerate(CLASS_NAMES):
            folder = root / split_folder / name
            folder.mkdir(parents=True)
            for index in range(count):
                cv2.imwrite(str(folder / f"{prefix}_{1000 + 10 * label + index}.jpg"), tiny_face(label, index))
    return root
