"""The Video page: renders without an upload; an analysed upload shows video, table, timeline, downloads; bad files give st.error.

AppTest cannot upload files, so the upload handler is driven directly with bytes through ``AppTest.from_function``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "video.py")


@pytest.fixture(scope="module")
def two_face_mp4(tmp_path_factory, two_face_video_writer) -> bytes:
    return two_face_video_writer(tmp_path_factory.mktemp("page-video") / "two.mp4", 10, 10).read_bytes()


@pytest.fixture
def bundled(monkeypatch, tmp_path, tiny_model_path):
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", tiny_model_path)
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    return tiny_model_path


def upload_script(data: bytes, name: str, model_path: str | list) -> None:
    from core.video import StreamSettings
    from dashboard import predict_widgets
    from dashboard import video_widgets as widgets

    model_paths = (model_path,) if isinstance(model_path, str) else tuple(model_path)
    loaded = predict_widgets.load_model_ui(model_paths)
    analysis = widgets.analyze_upload(data, name, loaded, StreamSettings(detector="haar"), model_paths)
    if analysis is not None:
        widgets.video_results_ui(analysis)


def run_upload(data: bytes, name: str, model_path) -> AppTest:
    model_path = str(model_path) if isinstance(model_path, (str, Path)) else [str(path) for path in model_path]
    app = AppTest.from_function(upload_script, args=(data, name, model_path), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    return app


def test_page_renders_settings_and_uploader_without_an_upload(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    assert app.title[0].value == "Video"
    assert app.selectbox(key="video_detector").value == "haar"
    assert app.selectbox(key="video_smoothing").value == "vote"
    assert app.slider(key="video_window").value == 10 and app.slider(key="video_every").value == 1


def test_an_upload_shows_metrics_video_summary_timeline_and_downloads(two_face_mp4, tiny_model_path, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    app = run_upload(two_face_mp4, "two faces.mp4", tiny_model_path)
    assert not app.error and not app.warning
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Frames"] == "10" and metrics["Faces (ids)"] == "2" and metrics["Frames with a face"] == "90%"  # from frame 1: a face is confirmed on its second detection
    assert len(app.get("video")) == 1
    summary = app.dataframe[0].value
    assert list(summary["face_id"]) == [1, 2] and list(summary.columns[:6]) == ["face_id", "seconds", "frames", "first_s", "last_s", "dominant"]
    assert app.selectbox(key="video_face").options == ["#1", "#2"]
    assert len(app.get("plotly_chart")) == 1
    assert len(app.get("download_button")) == 2
    assert list(tmp_path.iterdir()) == []  # the upload and the outputs' temporary folder are gone
    app.selectbox(key="video_face").set_value(2).run()  # picking another face does not analyse again
    assert not app.exception and len(app.get("plotly_chart")) == 1


@pytest.mark.parametrize("data, name, message", [
    (b"this is not a video" * 100, "clip.mp4", "not a readable video"),
    (b"", "clip.webm", "empty"),
    (b"\x00" * 100, "clip.txt", "not a video file name"),
])
def test_bad_uploads_show_an_error_and_leave_no_files(data, name, message, tiny_model_path, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    app = run_upload(data, name, tiny_model_path)
    assert len(app.error) == 1 and message in app.error[0].value
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_upload_is_analysed_up_to_the_cut_with_a_warning(two_face_mp4, tiny_model_path):
    app = run_upload(two_face_mp4[:len(two_face_mp4) * 19 // 20], "cut.mp4", tiny_model_path)
    assert not app.error and any("truncated" in warning.value for warning in app.warning)


def test_an_upload_over_the_limit_is_refused(two_face_mp4, tiny_model_path, monkeypatch):
    monkeypatch.setattr("dashboard.video_widgets.MAX_VIDEO_MB", 0.001)
    app = run_upload(two_face_mp4, "two.mp4", tiny_model_path)
    assert len(app.error) == 1 and "the limit is" in app.error[0].value


def test_the_sidebar_offers_an_ensemble_and_a_video_goes_through_it(two_face_mp4, fake_runs_dir, tiny_model_path, monkeypatch, tmp_path):
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", tiny_model_path)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    ensemble = app.multiselect(key="video_ensemble")
    assert len(ensemble.options) == 2
    ensemble.select(ensemble.options[0]).run()
    assert not app.exception and not app.error
    import keras

    from core import model_io, models

    keras.utils.set_random_seed(7)
    other = model_io.export_model(models.build("mini_xception"), tmp_path / "other.keras")
    app = run_upload(two_face_mp4, "two.mp4", [tiny_model_path, other])
    assert not app.error
    assert app.get("video")  # the annotated video of the ensemble's analysis


def test_the_settings_come_from_the_url_and_go_back_into_it(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.query_params.update({"detector": "mtcnn", "every": "3", "smoothing": "ema", "window": "25", "model": "no-such-run"})
    app.run()
    assert not app.exception and not app.error
    assert app.selectbox(key="video_detector").value == "mtcnn" and app.slider(key="video_every").value == 3
    assert app.selectbox(key="video_smoothing").value == "ema" and app.slider(key="video_window").value == 25
    assert len(app.warning) == 1 and "no-such-run" in app.warning[0].value  # the unknown model is named
    app.slider(key="video_window").set_value(12).run()
    assert app.query_params["window"] == "12"
    app.selectbox(key="video_smoothing").set_value("vote").run()  # back to the default: left out of the URL
    assert "smoothing" not in app.query_params and app.query_params["detector"] == "mtcnn"
