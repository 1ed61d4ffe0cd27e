"""The Predict page: renders without uploads, and its handlers turn bad input into st.error, never a traceback.

AppTest cannot upload files, so the photo and batch handlers are driven
directly with bytes through ``AppTest.from_function``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.dashboard.inert_markdown import live_markup, shown_text

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "predict.py")


def encode(image: np.ndarray, format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format)
    return buffer.getvalue()


@pytest.fixture
def bundled(monkeypatch, tmp_path, tiny_model_path):
    """The tiny model stands in for the bundled one; no runs."""
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", tiny_model_path)
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    return tiny_model_path


def photo_script(data: bytes, name: str, model_path: str, detector: str = "haar") -> None:
    from dashboard import predict_widgets as widgets

    loaded = widgets.load_model_ui(model_path)
    if loaded is not None:
        settings = widgets.PredictSettings(model_path, detector)
        widgets.photo_ui(data, name, loaded, settings, key="test")


def batch_script(files: list, model_path: str) -> None:
    from dashboard import predict_widgets as widgets

    loaded = widgets.load_model_ui(model_path)
    widgets.batch_ui(files, loaded, widgets.PredictSettings(model_path, "haar"))


def run_photo(data: bytes, name: str, model_path, **kwargs) -> AppTest:
    app = AppTest.from_function(photo_script, args=(data, name, str(model_path)), kwargs=kwargs, default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    return app


def test_page_renders_tabs_and_uploaders_without_an_upload(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    assert [tab.label for tab in app.tabs] == ["Photo", "Webcam", "Batch"]
    assert app.selectbox(key="predict_model").value == "bundled"  # the id that goes into the URL
    assert app.selectbox(key="predict_model").options == ["tiny · bundled"]
    assert app.selectbox(key="predict_detector").value == "mtcnn"
    assert app.selectbox(key="predict_detector").options == ["MTCNN", "Haar cascade"]  # read "HAAR" before
    assert app.slider(key="predict_confidence").value == 0.5


def test_page_without_any_model_explains_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", tmp_path / "missing.keras")
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception and not app.error
    assert any("No model yet" in info.value for info in app.info)
    assert not app.tabs


def test_a_photo_shows_boxes_crops_grad_cam_and_bars(three_face_photo, tiny_model_path):
    app = run_photo(encode(three_face_photo[0]), "three.jpg", tiny_model_path)
    assert not app.error
    assert "3 faces" in shown_text(app.get("image")[0].captions[0])
    assert len(app.get("plotly_chart")) == 3
    # The annotated photo, then per face the 48x48 crop and its Grad-CAM overlay.
    assert len(app.get("image")) == 1 + 3 * 2
    assert sum("**Face" in markdown.value for markdown in app.markdown) == 3


def whole_box(app: AppTest):
    """The "Classify the whole image as one face" checkbox (its key carries the photo's digest)."""
    boxes = [box for box in app.checkbox if box.label == "Classify the whole image as one face"]
    assert len(boxes) == 1, [box.label for box in app.checkbox]
    return boxes[0]


def test_no_face_offers_the_whole_image(tiny_model_path):
    app = run_photo(encode(np.full((120, 160, 3), 90, np.uint8)), "wall.jpg", tiny_model_path)
    assert any("No face found" in warning.value for warning in app.warning)
    whole_box(app).check().run()
    assert not app.exception and not app.warning
    assert len(app.get("plotly_chart")) == 1


def two_photos_script(photos: list, model_path: str) -> None:
    import streamlit as st

    from dashboard import predict_widgets as widgets

    data, name = photos[st.session_state.get("photo_number", 0)]
    loaded = widgets.load_model_ui(model_path)
    widgets.photo_ui(data, name, loaded, widgets.PredictSettings(model_path, "haar"), key="photo")


def test_whole_image_choice_stays_with_its_photo(three_face_photo, tiny_model_path):
    """Ticking "whole image" for a faceless photo must not classify the next photo whole (issue 17, item 1)."""
    photos = [(encode(np.full((120, 160, 3), 90, np.uint8)), "wall.jpg"), (encode(three_face_photo[0]), "three.jpg")]
    app = AppTest.from_function(two_photos_script, args=(photos, str(tiny_model_path)), default_timeout=120)
    app.run()
    whole_box(app).check().run()
    assert "1 face" in shown_text(app.get("image")[0].captions[0])
    app.session_state["photo_number"] = 1  # the user uploads another photo
    app.run()
    assert not app.exception
    assert "three.jpg · 3 faces" in shown_text(app.get("image")[0].captions[0])
    assert not [box for box in app.checkbox if box.label.startswith("Classify the whole")]  # faces found: no box
    app.session_state["photo_number"] = 0  # back to the first photo: its choice is still there
    app.run()
    assert whole_box(app).value and "wall.jpg · 1 face" in shown_text(app.get("image")[0].captions[0])


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "0-byte"),
        (b"%PDF-1.7 not a photo", "not an image"),
        (encode(np.zeros((64, 64, 3), np.uint8))[:200], "truncated"),
    ],
    ids=["empty", "not-an-image", "truncated-jpeg"],
)
def test_bad_photos_are_an_error_message(data, message, tiny_model_path):
    app = run_photo(data, "upload.jpg", tiny_model_path)
    assert len(app.error) == 1 and message in shown_text(app.error[0].value) and "“upload.jpg”" in shown_text(app.error[0].value)


@pytest.mark.parametrize("side, format", [(10_000, "JPEG"), (8_000, "PNG")], ids=["10000px-jpeg", "8000px-png"])
def test_a_huge_photo_is_downscaled_not_refused(tiny_model_path, side, format):
    huge = np.zeros((side, side), np.uint8)
    cv2.circle(huge, (side // 2, side // 2), side * 3 // 10, 200, -1)
    app = run_photo(encode(huge, format), f"huge.{format.lower()}", tiny_model_path)
    assert not app.error
    assert f"huge.{format.lower()}" in shown_text(app.get("image")[0].captions[0])


def test_a_model_that_does_not_load_is_an_error_message(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    app = run_photo(encode(np.zeros((64, 64, 3), np.uint8)), "x.jpg", broken)
    assert len(app.error) == 1 and "Cannot load the model" in app.error[0].value


def test_batch_lists_faces_errors_and_offers_csv(three_face_photo, tiny_model_path):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("inside/three.png", encode(three_face_photo[0], "PNG"))
        archive.writestr("readme.txt", "skipped")
    files = [("three.jpg", encode(three_face_photo[0])), ("broken.jpg", b"garbage"), ("photos.zip", buffer.getvalue()),
             ("evil.zip", b"PK\x03\x04 broken")]
    app = AppTest.from_function(batch_script, args=(files, str(tiny_model_path)), default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    assert list(table["file"]).count("three.jpg") == 3
    assert list(table["file"]).count("photos.zip/inside/three.png") == 3
    notes = dict(zip(table["file"], table["note"]))
    assert notes["broken.jpg"].startswith("error: not an image") and notes["evil.zip"].startswith("error: not a readable zip")
    assert notes["photos.zip/readme.txt"] == "error: not an image file name (expected .jpg, .png, .webp, .bmp, .gif or .tif)"
    # The reasons are also spelled out above the table, where they cannot scroll off-screen.
    assert len(app.warning) == 1
    skipped = shown_text(app.warning[0].value)
    assert "“broken.jpg”: not an image" in skipped and "“evil.zip”: not a readable zip" in skipped
    assert "“photos.zip/readme.txt”: not an image file name" in skipped
    # Walk s21: the emotion first, the box last (at 1400 px the emotion was off-screen behind x, y, w, h and a note).
    assert list(app.dataframe[0].proto.column_order[:5]) == ["file", "face", "emotion", "confidence", "note"]
    assert list(app.dataframe[0].proto.column_order[-5:]) == ["x", "y", "w", "h", "detector_score"]
    assert len(app.get("download_button")) == 1


def test_batch_table_shows_empty_cells_not_none(tiny_model_path):
    files = [("wall.jpg", encode(np.full((120, 160, 3), 90, np.uint8))), ("broken.jpg", b"garbage")]
    app = AppTest.from_function(batch_script, args=(files, str(tiny_model_path)), default_timeout=120)
    app.run()
    assert not app.exception
    table = app.dataframe[0].value
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    assert "nan" not in table.astype(str).to_numpy().ravel().tolist()


def test_the_batch_table_converts_to_arrow_with_faces_and_empty_rows_together(three_face_photo, tiny_model_path):
    # Walk s19: a file with faces beside one without put "" in the int "face" column; Arrow's conversion failed
    # and Streamlit logged a traceback on every rerun before showing the table as text.
    import pyarrow

    from core.model_io import load_model
    from core.predict import predict_image, predictions_table
    from dashboard.predict_widgets import table_for_display

    faces = predict_image(three_face_photo[0], load_model(tiny_model_path), detector="haar")
    table = predictions_table([("three.jpg", faces), ("notes.jpg", "not an image")])
    shown = table_for_display(table)
    assert pyarrow.Table.from_pandas(shown).num_rows == len(table) == 4
    assert shown["face"].tolist() == ["1", "2", "3", ""] and shown["note"].iloc[3] == "error: not an image"


def test_one_click_on_an_example_photo_predicts_it_and_the_url_names_it(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert [option for option in app.get("button_group")[0].proto.options] and not app.get("image")
    app.session_state["predict_example"] = "three-faces"  # what a click on the pill sets
    app.run()
    assert not app.exception and not app.error
    assert "three_faces.jpg" in shown_text(app.get("image")[0].captions[0])
    assert app.query_params["example"] == "three-faces"


def test_a_link_with_settings_and_an_example_restores_them(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.query_params.update({"example": "astronaut", "detector": "haar", "tta": "flip", "model": "no-such-run"})
    app.run()
    assert not app.exception
    assert app.selectbox(key="predict_detector").value == "haar" and app.selectbox(key="predict_tta").value == "flip"
    assert any("“no-such-run”" in shown_text(warning.value) for warning in app.warning)
    assert "astronaut.jpg · 1 face" in shown_text(app.get("image")[0].captions[0])
    # The caption says how the numbers were made: the model and the test-time augmentation (walk s10).
    assert ", flip TTA · first analysed in: detection" in shown_text(app.get("image")[0].captions[0])


def ensemble_photo_script(data: bytes, name: str, model_paths: list) -> None:
    from dashboard import predict_widgets as widgets

    settings = widgets.PredictSettings(model_paths[0], "haar", ensemble=tuple(model_paths[1:]))
    loaded = widgets.load_model_ui(settings.model_paths)
    if loaded is not None:
        import streamlit as st

        st.session_state["members"] = len(getattr(loaded, "members", [loaded]))
        widgets.photo_ui(data, name, loaded, settings, key="test")


def test_the_sidebar_averages_the_chosen_models(monkeypatch, fake_runs_dir, tiny_model_path):
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", tiny_model_path)
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    ensemble = app.multiselect(key="predict_ensemble")
    assert len(ensemble.options) == 2 and all(option.startswith("Run ") for option in ensemble.options)
    ensemble.select(ensemble.options[0]).run()
    assert not app.exception and not app.error
    assert len(app.multiselect(key="predict_ensemble").value) == 1


def test_a_photo_through_an_ensemble_shows_every_face_and_its_grad_cam(three_face_photo, tiny_model_path, tmp_path):
    import keras

    from core import model_io, models

    keras.utils.set_random_seed(3)
    other = model_io.export_model(models.build("mini_xception"), tmp_path / "other.keras")
    app = AppTest.from_function(ensemble_photo_script, args=(encode(three_face_photo[0]), "three.jpg",
                                                              [str(tiny_model_path), str(other)]), default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    assert app.session_state["members"] == 2
    assert "3 faces" in shown_text(app.get("image")[0].captions[0])
    assert len(app.get("image")) == 1 + 3 * 2  # the photo, then each face's crop and Grad-CAM


def test_a_result_through_an_ensemble_names_its_models(three_face_photo, tiny_model_path, tmp_path):
    # Walk s8 bug 6: the caption and the face headers looked like one model's result.
    import keras

    from core import model_io, models

    keras.utils.set_random_seed(3)
    other = model_io.export_model(models.build("mini_xception"), tmp_path / "fer_studio_c.keras")
    app = AppTest.from_function(ensemble_photo_script, args=(encode(three_face_photo[0]), "three.jpg",
                                                              [str(tiny_model_path), str(other)]), default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    assert "tiny + fer_studio_c, probabilities averaged" in shown_text(app.get("image")[0].captions[0])
    headers = [markdown.value for markdown in app.markdown if markdown.value.startswith("**Face")]
    assert len(headers) == 3 and all("average of 2 models" in header for header in headers)
    single = run_photo(encode(three_face_photo[0]), "three.jpg", tiny_model_path)
    assert "three.jpg · 3 faces · tiny · first analysed in: detection" in shown_text(single.get("image")[0].captions[0])
    assert not any("average of" in markdown.value for markdown in single.markdown)


def test_a_second_bundled_model_is_offered_to_average_with_and_has_its_own_link_id(monkeypatch, tmp_path, tiny_model_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("fer_studio_default", "fer_studio_b"):
        (folder / f"{name}.keras").write_bytes(tiny_model_path.read_bytes())
        (folder / f"{name}.json").write_text("{}")
    # The second model's card has held-out scores: its menu label shows them, so the bundled models can be told apart.
    (folder / "fer_studio_b.json").write_text(json.dumps({"evaluation": {
        "PublicTest": {"n": 3589, "accuracy": 0.6904}, "PublicTest + flip TTA": {"n": 3589, "accuracy": 0.6996},
        "PublicTest + ten-crop TTA": {"n": 3589, "accuracy": 0.7035}}}))
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", folder / "fer_studio_default.keras")
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    assert app.multiselect(key="predict_ensemble").options == [
        "fer_studio_b · test 69.04% · bundled"]
    linked = AppTest.from_file(PAGE, default_timeout=120)
    linked.query_params["model"] = "bundled-fer_studio_b"
    linked.run()
    assert not linked.exception and not linked.warning
    assert linked.selectbox(key="predict_model").value == "bundled-fer_studio_b"
    # The sidebar cuts long labels short: the chosen bundled model's scores are written out under the menu.
    assert ("fer_studio_b.keras (bundled) · PublicTest (held out): 69.04% single pass · 69.96% flip · 70.35% ten-crop"
            in [shown_text(caption.value) for caption in linked.sidebar.caption])
    assert "**fer\\_studio\\_b\\.keras** (bundled)" in linked.sidebar.caption[0].value  # the name in bold
    assert not any("PublicTest (held out)" in caption.value for caption in app.sidebar.caption)  # its card has none
    assert linked.multiselect(key="predict_ensemble").options == ["fer_studio_default · bundled"]


def test_a_link_naming_the_default_model_by_its_stem_still_chooses_it(monkeypatch, tmp_path, tiny_model_path):
    # fer_studio_swa became the default (id "bundled"); links made before named it "bundled-fer_studio_swa".
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("fer_studio_swa", "fer_studio_c", "fer_studio_fast"):
        (folder / f"{name}.keras").write_bytes(tiny_model_path.read_bytes())
        (folder / f"{name}.json").write_text("{}")
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", folder / "fer_studio_swa.keras")
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    linked = AppTest.from_file(PAGE, default_timeout=120)
    linked.query_params["model"] = "bundled-fer_studio_c"
    linked.query_params["ensemble"] = "bundled-fer_studio_swa,bundled-fer_studio_fast"
    linked.run()
    assert not linked.exception and not linked.warning
    assert linked.selectbox(key="predict_model").value == "bundled-fer_studio_c"
    assert linked.multiselect(key="predict_ensemble").value == ["bundled", "bundled-fer_studio_fast"]
    assert linked.query_params["ensemble"] == "bundled,bundled-fer_studio_fast"
    default = AppTest.from_file(PAGE, default_timeout=120)
    default.query_params["model"] = "bundled-fer_studio_swa"
    default.run()
    assert not default.exception and not default.warning
    assert default.selectbox(key="predict_model").value == "bundled"


def test_the_bundled_models_are_told_apart_in_a_narrow_menu_and_the_chosen_one_is_named(monkeypatch, tmp_path,
                                                                                       tiny_model_path):
    # Walk s8 bug 7: four labels cut to "Bundled model (fer_studio_defa…"; the caption gave scores but no name.
    folder = tmp_path / "models"
    folder.mkdir()
    names = ("fer_studio_default", "fer_studio_c", "fer_studio_distilled", "fer_studio_swa")
    for name in names:
        (folder / f"{name}.keras").write_bytes(tiny_model_path.read_bytes())
        (folder / f"{name}.json").write_text(json.dumps({"evaluation": {"PublicTest": {"n": 3589, "accuracy": 0.6796}}}))
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", folder / "fer_studio_default.keras")
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    menu = app.selectbox(key="predict_model")
    shown = [label[:24] for label in menu.options]  # about what the sidebar shows before "…"
    assert len(set(shown)) == 4 and all(label.startswith(name) for label, name in zip(shown, names))
    menu.set_value("bundled-fer_studio_swa").run()
    assert not app.exception
    assert any("fer_studio_swa.keras" in shown_text(caption.value) for caption in app.sidebar.caption)


def four_bundled_models(monkeypatch, tmp_path, tiny_model_path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("fer_studio_default", "fer_studio_c", "fer_studio_distilled"):
        (folder / f"{name}.keras").write_bytes(tiny_model_path.read_bytes())
        (folder / f"{name}.json").write_text("{}")
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", folder / "fer_studio_default.keras")
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))


def test_the_ensemble_and_the_detector_confidence_are_kept_in_the_url(monkeypatch, tmp_path, tiny_model_path):
    # Walk s8: the URL stayed ?model=…, so a reload or a shared link silently lost the ensemble.
    four_bundled_models(monkeypatch, tmp_path, tiny_model_path)
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert "ensemble" not in app.query_params and "confidence" not in app.query_params  # defaults stay out
    app.multiselect(key="predict_ensemble").set_value(["bundled-fer_studio_c", "bundled-fer_studio_distilled"])
    app.slider(key="predict_confidence").set_value(0.35)
    app.run()
    assert not app.exception and not app.error
    assert app.query_params["ensemble"] == "bundled-fer_studio_c,bundled-fer_studio_distilled"
    assert app.query_params["confidence"] == "0.35"
    assert app.slider(key="predict_confidence").value == pytest.approx(0.35)  # not snapped back to the default

    linked = AppTest.from_file(PAGE, default_timeout=120)
    linked.query_params.update({"ensemble": app.query_params["ensemble"], "confidence": "0.35"})
    linked.run()
    assert not linked.exception and not linked.error and not linked.warning
    assert linked.multiselect(key="predict_ensemble").value == ["bundled-fer_studio_c", "bundled-fer_studio_distilled"]
    assert linked.slider(key="predict_confidence").value == pytest.approx(0.35)


def test_a_link_naming_a_removed_ensemble_member_drops_it_with_a_note(monkeypatch, tmp_path, tiny_model_path):
    four_bundled_models(monkeypatch, tmp_path, tiny_model_path)
    linked = AppTest.from_file(PAGE, default_timeout=120)
    linked.query_params.update({"ensemble": "bundled-fer_studio_c,20991231-deleted-run", "confidence": "banana"})
    linked.run()
    assert not linked.exception and not linked.error
    assert linked.multiselect(key="predict_ensemble").value == ["bundled-fer_studio_c"]
    warnings = " ".join(shown_text(warning.value) for warning in linked.warning)
    assert "“20991231-deleted-run”" in warnings and "“banana”" in warnings
    assert linked.slider(key="predict_confidence").value == 0.5
    assert linked.query_params["ensemble"] == "bundled-fer_studio_c" and "confidence" not in linked.query_params


# ---------------------------------------------------------------- security s9, findings 1 and 2: no markup from outside

# What the probe's links carried (a backtick closes a code span, then a phishing link and a remote image).
LINK_MODEL = "x` [Click here to re-enter your password](https://evil.example/login) ![t](https://evil.example/pixel.png) `"
LINK_EXAMPLE = "x`\n\n# Session expired\n\n[Sign in again](https://evil.example/login)\n\n`"
ZIP_MEMBER = "x` [Your session expired - sign in again](https:evil.example) ![p](https:evil.example?zip-pixel) `.jpg"


def test_a_crafted_link_is_named_in_plain_text(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.query_params.update({"model": LINK_MODEL, "example": LINK_EXAMPLE, "ensemble": f"{LINK_MODEL},www.evil.example"})
    app.run()
    assert not app.exception and not app.error
    warnings = [warning.value for warning in app.warning]
    assert len(warnings) == 3
    for warning in warnings:
        assert live_markup(warning) == [], warning
        assert "](" not in warning.replace(r"\]\(", "") and "\n" not in warning
    assert any(r"\[Click here to re\-enter your password\]\(https\:" in warning for warning in warnings)
    assert any(r"\# Session expired \[Sign in again\]" in warning for warning in warnings)


def test_names_from_an_upload_and_a_zip_are_plain_text(tiny_model_path):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(ZIP_MEMBER, b"not an image")
    files = [("photos.zip", buffer.getvalue()), (ZIP_MEMBER, b"garbage")]
    app = AppTest.from_function(batch_script, args=(files, str(tiny_model_path)), default_timeout=120)
    app.run()
    assert not app.exception and len(app.warning) == 1
    skipped = app.warning[0].value
    assert live_markup(skipped, allowed={"bullet_list_open"}) == [] and r"\[Your session expired" in skipped
    assert f"“photos.zip/{ZIP_MEMBER[:50]}" in shown_text(skipped)

    wall = run_photo(encode(np.full((120, 160, 3), 90, np.uint8)), ZIP_MEMBER, tiny_model_path, detector="haar")
    (no_face,) = wall.warning
    assert "No face found in" in no_face.value and live_markup(no_face.value) == []
    caption = wall.get("image")[0].captions[0]
    assert live_markup(caption) == [] and shown_text(caption).startswith(ZIP_MEMBER[:60])
    broken = run_photo(b"garbage", ZIP_MEMBER, tiny_model_path)
    assert "Cannot read" in broken.error[0].value and live_markup(broken.error[0].value) == []


def test_the_last_photo_chosen_is_shown_an_upload_unselects_the_example_and_an_example_clears_the_upload():
    # Walk s19: an example pill stayed selected while an uploaded photo was shown, and after a refused upload the
    # URL named the example again. The callbacks of the uploader and the pills keep one photo chosen.
    from streamlit.testing.v1 import AppTest

    def script() -> None:
        import streamlit as st

        from dashboard import predict_widgets as widgets

        upload = st.file_uploader("Photo", key=f"predict_photo_{widgets.upload_round()}",
                                  on_change=widgets.unselect_example)
        st.pills("Examples", ["astronaut", "cameraman"], key="predict_example", on_change=widgets.clear_upload)
        st.markdown(f"uploader predict_photo_{widgets.upload_round()}, upload {upload is not None}")

    app = AppTest.from_function(script, default_timeout=30).run()
    assert app.markdown[0].value == "uploader predict_photo_0, upload False"
    app.get("button_group")[0].set_value("cameraman").run()
    assert app.markdown[0].value == "uploader predict_photo_1, upload False"  # a new, empty uploader
    app.get("button_group")[0].set_value(None).run()  # unselecting an example clears nothing
    assert app.markdown[0].value == "uploader predict_photo_1, upload False"
