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


def _sidebar_app() -> None:
    import streamlit as st

    from dashboard.data_source import data_source_sidebar, get_dataset

    data_source_sidebar()
    dataset = get_dataset()
    if dataset is not None:
        st.metric("Images", len(dataset))


def _tiny_csv() -> bytes:
    lines = ["emotion,pixels,Usage"]
    for row in range(6):
        pixels = " ".join(str((row * 40 + k) % 256) for k in range(48 * 48))
        lines.append(f"{row % 7},{pixels},{'Training' if row < 4 else 'PublicTest'}")
    return ("\n".join(lines) + "\n").encode()


def test_uploaded_csv_is_saved_under_the_cache_and_loaded(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    at = AppTest.from_function(_sidebar_app, default_timeout=60).run()
    assert "No FER2013 data yet" in at.info[0].value
    at.sidebar.get("file_uploader")[0].upload("fer2013.csv", _tiny_csv(), "text/csv").run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "6"
    saved = list((tmp_path / "uploads").glob("*/fer2013.csv"))
    assert len(saved) == 1 and saved[0].read_bytes() == _tiny_csv()
    assert "upload" in at.sidebar.caption[0].value
