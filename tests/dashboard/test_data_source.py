"""Data source helpers: uploads saved once by content, cache keys."""

from __future__ import annotations

import numpy as np

from core.dataset import FerDataset, LoadReport
from dashboard.data_source import dataset_key, save_upload, upload_dir


def test_save_upload_writes_once_per_content(tmp_path):
    first = save_upload("fer2013.csv", b"emotion,pixels,Usage\n", tmp_path)
    assert first.read_bytes() == b"emotion,pixels,Usage\n"
    assert first.parent.parent == tmp_path
    mtime = first.stat().st_mtime_ns
    assert save_upload("fer2013.csv", b"emotion,pixels,Usage\n", tmp_path) == first
    assert first.stat().st_mtime_ns == mtime  # not rewritten
    other = save_upload("fer2013.csv", b"different", tmp_path)
    assert other != first and other.name == "fer2013.csv"
    assert save_upload("../../evil.zip", b"x", tmp_path).parent.parent == tmp_path  # no path escape


def test_upload_dir_follows_the_core_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path))
    assert upload_dir() == tmp_path / "uploads"


def test_dataset_key_prefers_the_content_hash():
    def dataset(content_hash: str) -> FerDataset:
        return FerDataset(
            np.zeros((1, 48, 48), np.uint8),
            np.zeros(1, np.int64),
            np.array(["Training"]),
            np.array(["a"]),
            LoadReport("src", "csv", 1, content_hash=content_hash),
        )

    assert dataset_key(dataset("abc")) == "abc"
    assert dataset_key(dataset("")) == "src|csv|1"
