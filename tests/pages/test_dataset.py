"""The Dataset page: metrics, class chart, samples, mean faces and histograms, with and without data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.inert_markdown import shown_text

from core.dataset import FerDataset, LoadReport

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "dataset.py")
TIMEOUT_S = 60


def make_dataset(train_per_class: int = 6, test_per_class: int = 2, tag: str = "dataset-page") -> FerDataset:
    """An in-memory dataset with every class in Training and PublicTest; disgust rarer in Training."""
    rng = np.random.default_rng(0)
    labels, splits = [], []
    for split, per_class in (("Training", train_per_class), ("PublicTest", test_per_class)):
        for label in range(7):
            count = 1 if (label == 1 and split == "Training") else per_class
            labels += [label] * count
            splits += [split] * count
    n = len(labels)
    return FerDataset(
        images=rng.integers(0, 256, (n, 48, 48), dtype=np.uint8),
        labels=np.array(labels, dtype=np.int64),
        splits=np.array(splits),
        ids=np.array([f"{split}_{i}.jpg" for i, split in enumerate(splits)]),
        report=LoadReport(source="memory", kind="image-folders", loaded=n, content_hash=f"{tag}-{n}"),
    )


def plotly_charts(at: AppTest) -> list:
    return at.get("plotly_chart")


@pytest.fixture
def with_dataset(monkeypatch):
    dataset = make_dataset()
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)
    return dataset


def test_without_data_the_page_explains_how_to_get_it(monkeypatch):
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert "No FER2013 data yet" in at.info[0].value
    assert not plotly_charts(at)


def test_page_shows_split_sizes_imbalance_and_charts(with_dataset):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["51", "37", "14"]
    assert len(plotly_charts(at)) == 2  # class distribution + intensity histogram
    # Two toolbar icons, not nine over the titles on a phone (walk s19).
    toolbars = [json.loads(chart.proto.config)["modeBarButtons"] for chart in plotly_charts(at)]
    assert toolbars == [[["toImage", "resetScale2d"]]] * 2
    text = " ".join(m.value for m in at.markdown)
    assert "**6.0x** disgust" in text  # Training: 6 per class vs 1 disgust
    # 7 sample rows + the mean faces, each one st.image list.
    assert len(at.image) == 8
    # The faces' captions ("Training 95667267") are file names; walk s15 read the number as unexplained.
    assert any("Under each face: its file's name" in caption.value for caption in at.caption)


def test_class_filter_and_reshuffle_change_the_samples(with_dataset):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    at.button_group(key="classes").set_value(["happy", "angry"]).run()
    rows = [m.value for m in at.markdown if " shown" in m.value]
    assert rows == ["**angry** · 8 shown", "**happy** · 8 shown"]  # FER2013 order, not click order
    at.button[0].click().run()
    assert at.number_input(key="seed").value == 1
    at.selectbox(key="split").set_value("PublicTest").run()
    assert [m.value for m in at.markdown if " shown" in m.value] == ["**angry** · 2 shown", "**happy** · 2 shown"]
    at.toggle(key="share").set_value(True).run()
    assert not at.exception
    captions = [caption for image in at.image for caption in image.captions]
    assert captions and all("_" not in caption for caption in captions[:4])  # "PublicTest 1234": wraps at the space


def test_a_link_with_filters_shows_the_same_faces(with_dataset):
    # The filters are bound to the URL (?split=...&classes=...&per_class=...&seed=...), so a reload keeps them.
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.query_params.update({"split": "PublicTest", "classes": ["fear", "sad"], "per_class": "1", "seed": "3"})
    at.run()
    assert not at.exception
    assert [m.value for m in at.markdown if " shown" in m.value] == ["**fear** · 1 shown", "**sad** · 1 shown"]
    assert at.number_input(key="seed").value == 3


def test_full_shared_dataset_renders_every_chart(shared_fer2013, monkeypatch):
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: shared_fer2013)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert at.metric[0].value == "32,298"
    assert len(plotly_charts(at)) == 2
    text = " ".join(m.value for m in at.markdown)
    assert "happy (7,215) is **16.5x** disgust (436)" in text


def test_mean_faces_follow_the_class_filter_and_no_class_says_how_to_pick_one(with_dataset):
    # Walk s8: deselected classes still had a mean face, and with none chosen the sections were empty, with no hint.
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    at.button_group(key="classes").set_value(["sad", "angry"]).run()
    assert not at.exception
    mean_faces = [shown_text(caption) for caption in at.image[-1].captions]
    assert mean_faces == ["angry (n=8)", "sad (n=8)"]
    at.button_group(key="classes").set_value([]).run()
    assert not at.exception
    hints = [info.value for info in at.info if "No class is chosen" in info.value]
    assert len(hints) == 2  # under Sample faces and under Mean face per class
    assert not at.image


def test_folders_named_by_digits_get_a_warning_in_view(monkeypatch):
    # Probe s19: digit folders are read in FER2013's order; an AffectNet-style export got wrong labels unseen.
    import dataclasses

    dataset = make_dataset()
    numbered = dataclasses.replace(dataset, report=dataclasses.replace(dataset.report, numbered_folders=("0", "3")))
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: numbered)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    (warning,) = at.warning
    assert shown_text(warning.value).startswith("folders named by a number were read in FER2013's order (0 angry")
