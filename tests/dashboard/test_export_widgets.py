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


def test_the_export_picker_starts_on_the_pages_model_and_follows_it(fake_runs_dir):
    # Walk s12: with a run chosen on the page, Export exported the bundled model (its picker's first entry).
    from dashboard.model_menu import model_menu

    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    menu = model_menu()
    first, second = list(menu)[:2]
    assert app.selectbox(key="eval_model").value == first
    assert app.selectbox(key="export_model").value == menu[first][0]
    app.selectbox(key="eval_model").set_value(second).run()
    assert app.selectbox(key="export_model").value == menu[second][0]
    # Picked here and exported: it stays while the page's model stays.
    app.selectbox(key="export_model").set_value(menu[first][0])
    app.button[[b.label for b in app.button].index("Export")].click()
    app.run()
    app.selectbox(key="eval_split").set_value(app.selectbox(key="eval_split").options[-1]).run()
    assert not app.exception and not app.error
    assert app.selectbox(key="export_model").value == menu[first][0]
    exported = app.session_state["export_result"]
    # Named after the run (every run's model is best.keras), not "best.onnx.zip" (review s20).
    assert exported["name"] == f"{Path(menu[first][1]).parent.name}-best.onnx.zip"
    assert f"Download {exported['name']}" in [b.label for b in app.get("download_button")]
    app.selectbox(key="eval_model").set_value(first).run()
    app.selectbox(key="eval_model").set_value(second).run()
    assert not app.exception
    assert app.selectbox(key="export_model").value == menu[second][0]
    # Review s20: the first model's parity and download stayed under a picker naming the second.
    assert not [metric for metric in app.metric if metric.label == "Top-1 agreement"]
    assert not [b for b in app.get("download_button") if b.label.startswith("Download ") and "onnx" in b.label]
    assert any(caption.value.startswith("The last export here was of") for caption in app.caption)


def test_the_export_zip_names_the_model_once():
    # Walk s21: a bundled model's download was fer_studio_swa-fer_studio_swa.onnx.zip.
    from dashboard.export_widgets import export_zip_name

    assert export_zip_name("fer_studio_swa", "fer_studio_swa.onnx") == "fer_studio_swa.onnx.zip"
    assert export_zip_name("fer_studio_swa", "fer_studio_swa_dynamic.tflite") == "fer_studio_swa_dynamic.tflite.zip"
    assert export_zip_name("fer_studio_swa", "fer_studio_swa_saved_model") == "fer_studio_swa_saved_model.zip"
    assert export_zip_name("20261207-233805-fer_vgg-4ee1", "best.onnx") == "20261207-233805-fer_vgg-4ee1-best.onnx.zip"
    assert export_zip_name("fer_studio_c", "fer_studio_cx.onnx") == "fer_studio_c-fer_studio_cx.onnx.zip"
