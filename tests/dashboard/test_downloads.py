"""What the download buttons hand out: a model with its card, per-image predictions, the confusion matrix."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from core.evaluate import score_predictions
from core.labels import CLASS_NAMES
from dashboard.downloads import confusion_frame, model_package, model_package_name, predictions_frame


def result():
    labels = np.array([0, 3, 3, 6])
    probabilities = np.full((4, 7), 0.01, np.float32)
    probabilities[[0, 1, 2, 3], [0, 3, 4, 6]] = 0.94  # the third image (true happy) is predicted sad
    return score_predictions("PublicTest", labels, probabilities, np.array(["a.jpg", "b.jpg", "c.jpg", "d.jpg"]))


def test_predictions_csv_has_file_true_predicted_and_seven_probabilities():
    frame = pd.read_csv(io.StringIO(predictions_frame(result()).to_csv(index=False)))
    assert list(frame.columns) == ["file", "true", "predicted", "confidence", *CLASS_NAMES]
    assert frame.loc[2, ["file", "true", "predicted"]].tolist() == ["c.jpg", "happy", "sad"]
    assert frame.loc[2, "sad"] == 0.94 and len(frame) == 4


def test_confusion_csv_is_named_by_class_true_in_rows():
    frame = pd.read_csv(io.StringIO(confusion_frame(result()).to_csv()), index_col=0)
    assert list(frame.index) == list(CLASS_NAMES) == list(frame.columns)
    assert frame.loc["happy", "sad"] == 1 and frame.loc["happy", "happy"] == 1 and int(frame.to_numpy().sum()) == 4


def test_a_run_model_downloads_with_its_settings_curves_and_scores(tmp_path):
    run = tmp_path / "20250101-000000-fer_vgg-abcd"
    run.mkdir()
    (run / "best.keras").write_bytes(b"weights")
    (run / "config.json").write_text(json.dumps({"config": {"model": "fer_vgg"}}))
    (run / "metrics.csv").write_text("epoch,loss\n1,1.0\n")
    (run / "last.keras").write_bytes(b"not this one")
    with zipfile.ZipFile(io.BytesIO(model_package(run / "best.keras"))) as archive:
        assert sorted(archive.namelist()) == ["best.keras", "config.json", "metrics.csv"]
        assert archive.read("best.keras") == b"weights"
    assert model_package_name(run / "best.keras") == "20250101-000000-fer_vgg-abcd.zip"


def test_the_bundled_model_downloads_with_its_card(tmp_path):
    model = tmp_path / "fer_studio_default.keras"
    model.write_bytes(b"weights")
    model.with_suffix(".json").write_text("{}")
    with zipfile.ZipFile(io.BytesIO(model_package(model))) as archive:
        assert sorted(archive.namelist()) == ["fer_studio_default.json", "fer_studio_default.keras"]
    assert model_package_name(model) == "fer_studio_default.zip"




def test_the_evaluation_and_training_pages_offer_the_downloads(fake_runs_dir, monkeypatch, oracle_dataset_factory):
    from pathlib import Path

    dataset = oracle_dataset_factory({"PublicTest": 14})
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)
    pages = Path(__file__).resolve().parents[2] / "pages"
    app = AppTest.from_file(str(pages / "evaluation.py"), default_timeout=60).run()
    assert not app.exception
    labels = [button.proto.label for button in app.get("download_button")]
    assert labels == ["Model (.keras + card)", "Per-image predictions (CSV)", "Confusion matrix (CSV)"]
    app = AppTest.from_file(str(pages / "training.py"), default_timeout=60).run()
    assert [button.proto.label for button in app.get("download_button")] == ["metrics.csv", "Model (.keras + card)"]
