"""The Compare-runs page, driven by AppTest over fake run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "compare.py")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def with_dataset(monkeypatch, oracle_dataset_factory):
    dataset = oracle_dataset_factory({"PublicTest": 21, "PrivateTest": 14}, wrong_every=3)
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)
    return dataset


def run_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


def test_two_runs_are_tabled_plotted_and_their_confusion_matrices_shown(fake_runs_dir, with_dataset):
    first = sorted(fake_runs_dir.iterdir())[0]
    (first / "evaluation.json").write_text(json.dumps({"PrivateTest": {"accuracy": 0.6543, "macro_f1": 0.6, "n": 3589, "tta": True}}))
    app = run_page()
    table = app.dataframe[0].value
    assert len(table) == 2
    assert set(table["model"]) == {"mini_xception", "fer_vgg"}
    assert set(table["optimizer"]) == {"adam"} and set(table["augment"]) == {"idg"}
    assert set(table["epochs"]) == {"3/3"}
    row = table.set_index("run").loc[first.name]
    assert row["test accuracy"] == "PrivateTest 65.4% (flip TTA)"  # a pre-ten-crop summary: tta True
    assert row["best val accuracy"] == "55.00% (epoch 3)"
    charts = app.get("plotly_chart")
    assert len(charts) == 3  # curves + two confusion matrices
    captions = [caption.value for caption in app.caption]
    assert sum("accuracy 66.67%" in caption for caption in captions) == 2
    # Evaluating on the page records the test accuracy of both runs.
    assert all("PublicTest" in json.loads((run / "evaluation.json").read_text()) for run in fake_runs_dir.iterdir())


def test_choosing_no_runs_and_another_split(fake_runs_dir, with_dataset):
    app = run_page()
    app.multiselect(key="compare_runs").set_value([])
    app.selectbox(key="compare_split").set_value("PrivateTest")
    app.run()
    assert not app.exception
    assert any("Pick runs" in caption.value for caption in app.caption)
    assert len(app.get("plotly_chart")) == 2


def test_no_runs_shows_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "empty"))
    app = run_page()
    assert "No training runs yet" in app.info[0].value
    assert not app.dataframe
