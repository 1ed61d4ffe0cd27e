"""The Export section of the Evaluation page: export, parity figures, a zip with artifact and card."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "evaluation.py")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, fake_runs_dir, oracle_dataset_factory):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("core.predict.default_model_path", lambda: None)
    dataset = oracle_dataset_factory({"Training": 8, "PublicTest": 40}, wrong_every=4)
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)


def export(format: str, quantize: str = "none") -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    app.selectbox(key="export_format").set_value(format)
    app.selectbox(key="export_quantize").set_value(quantize)
    app.button[[b.label for b in app.button].index("Export")].click()  # the form's submit button
    app.run()
    assert not app.exception, app.exception
    return app


def test_export_shows_parity_and_offers_artifact_with_card():
    from dashboard.export_widgets import STATE_KEY

    app = export("onnx")
    assert not app.error
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Top-1 agreement"] == "100.00%" and metrics["Export accuracy"] == "75.00%"
    exported = app.session_state[STATE_KEY]
    with zipfile.ZipFile(io.BytesIO(exported["zip"])) as archive:
        names = archive.namelist()
        card = json.loads(archive.read(next(name for name in names if name.endswith(".onnx.json"))))
    assert any(name.endswith(".onnx") for name in names)
    assert card["parity"]["faces"] == 40 and card["parity"]["passed"]
    assert any("PublicTest: 40 faces" in caption.value for caption in app.caption)


def test_savedmodel_with_quantisation_is_an_error_on_the_page():
    app = export("saved_model", "dynamic")
    assert app.error and "SavedModel keeps float32" in app.error[0].value
