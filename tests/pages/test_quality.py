"""The Data-quality page: leakage, conflicts and blank images found and shown, with and without data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.dataset import FerDataset, LoadReport

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "quality.py")
TIMEOUT_S = 60


def make_dataset(tag: str) -> FerDataset:
    """40 distinct smooth faces; row 30 (PublicTest) copies row 3 (Training) with another label; row 12 is blank."""
    rng = np.random.default_rng(1)
    noise = rng.normal(128, 60, (40, 48, 48)).astype(np.float32)
    images = np.stack([cv2.GaussianBlur(image, (0, 0), 2.0) for image in noise])
    images = np.clip((images - images.mean(axis=(1, 2), keepdims=True)) * 4 + 128, 0, 255).astype(np.uint8)
    images[30] = images[3]
    images[12] = 0
    labels = np.arange(40, dtype=np.int64) % 7
    splits = np.array(["Training"] * 25 + ["PublicTest"] * 15)
    return FerDataset(
        images=images,
        labels=labels,
        splits=splits,
        ids=np.array([f"{split}_{i}.jpg" for i, split in enumerate(splits)]),
        report=LoadReport(source="memory", kind="image-folders", loaded=40, content_hash=f"quality-page-{tag}"),
    )


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture
def with_dataset(monkeypatch, request):
    dataset = make_dataset(request.node.name)
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)
    return dataset


def test_without_data_the_page_explains_how_to_get_it(monkeypatch):
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert "No FER2013 data yet" in at.info[0].value


def test_page_reports_leakage_conflict_and_blank_image(with_dataset):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert metric(at, "Duplicate groups") == "1"
    assert metric(at, "Leaked test images") == "1"
    assert metric(at, "Label conflicts") == "1"
    assert metric(at, "Blank images") == "1"
    assert len(at.get("plotly_chart")) == 1  # duplicate pairs by split
    table = at.dataframe[0].value
    assert table.iloc[0]["splits"] == "Training, PublicTest"
    assert table.iloc[0]["kind"] == "exact"
    # One image list for the group, one for the blank images.
    assert len(at.image) == 2
    assert "1 group. Select rows to see their images; otherwise all of them show." in [c.value for c in at.caption]
    # Review s20: rows are chosen by position, so the table's key holds the scan's settings: a new scan starts with
    # no rows chosen instead of showing other groups at the chosen positions.
    before = at.dataframe[0].proto.id
    at.slider(key="quality_threshold").set_value(6).run()
    assert at.dataframe[0].proto.id != before


def test_filters_and_threshold_keep_the_page_alive(with_dataset):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    at.radio(key="quality_filter").set_value("near").run()
    assert not at.exception
    assert "0 groups" in " ".join(c.value for c in at.caption)
    assert at.query_params.get("show") == "near"  # walk s19: the filter was not in the link
    at.slider(key="quality_threshold").set_value(0).run()
    at.number_input(key="quality_blank_std").set_value(0.0).run()
    assert not at.exception
    assert metric(at, "Blank images") == "0"
    # Walk s18: the scan settings were not in the link, so a reload went back to the defaults.
    assert (at.query_params.get("threshold"), at.query_params.get("blank")) == ("0", "0.0")
    linked = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    linked.query_params.update({"threshold": "6", "blank": "2.5", "show": "conflicts"})
    linked.run()
    assert not linked.exception and not linked.warning
    assert linked.radio(key="quality_filter").value == "conflicts" and "Label conflicts" in linked.radio[0].options
    assert (linked.slider(key="quality_threshold").value, linked.number_input(key="quality_blank_std").value) == (6, 2.5)
    at.slider(key="quality_threshold").set_value(4).run()
    at.number_input(key="quality_blank_std").set_value(3.0).run()
    assert "threshold" not in at.query_params and "blank" not in at.query_params  # the defaults stay out of the link


def test_full_shared_dataset_finds_train_test_leakage(shared_fer2013, monkeypatch):
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: shared_fer2013)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert int(metric(at, "Leaked test images").replace(",", "")) > 100
    assert int(metric(at, "Blank images")) >= 10
    assert len(at.get("plotly_chart")) == 1
