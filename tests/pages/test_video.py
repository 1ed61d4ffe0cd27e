"""The Video page: renders without an upload; an analysed upload shows video, table, timeline, downloads; bad files give st.error.

AppTest cannot upload files, so the upload handler is driven directly with bytes through ``AppTest.from_function``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.inert_markdown import shown_text

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
    from dashboard import video_widgets as widgets

    model_paths = (model_path,) if isinstance(model_path, str) else tuple(model_path)
    job = widgets.start_job_ui(data, name, StreamSettings(detector="haar"), model_paths)
    if job is not None:
        widgets.video_job_ui(job)


def wait_for_job(app: AppTest, timeout: float = 120.0) -> AppTest:
    """Rerun the page until the analysis named in its URL has ended (AppTest does not tick ``run_every`` fragments)."""
    from core.video_jobs import read_video_job, video_job_dir

    job_id = app.query_params.get("job")
    if job_id is None:
        return app
    folder = video_job_dir(job_id)
    deadline = time.monotonic() + timeout
    while read_video_job(folder).active and time.monotonic() < deadline:
        time.sleep(0.2)
    app.run()
    assert not app.exception, app.exception
    return app


def run_upload(data: bytes, name: str, model_path) -> AppTest:
    model_path = str(model_path) if isinstance(model_path, (str, Path)) else [str(path) for path in model_path]
    app = AppTest.from_function(upload_script, args=(data, name, model_path), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    return wait_for_job(app)


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    """Video analyses go to this test's own cache folder (the worker inherits the variable)."""
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def job_files(cache: Path) -> list[str]:
    return sorted(path.name for path in (cache / "video-jobs").glob("*/*"))


def test_page_renders_settings_and_uploader_without_an_upload(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    assert app.title[0].value == "Video"
    assert app.selectbox(key="video_detector").value == "haar"
    assert app.selectbox(key="video_smoothing").value == "vote"
    assert app.slider(key="video_window").value == 10 and app.slider(key="video_every").value == 1


def test_an_upload_shows_metrics_video_summary_timeline_and_downloads(two_face_mp4, tiny_model_path, private_cache):
    app = run_upload(two_face_mp4, "two faces.mp4", tiny_model_path)
    assert not app.error and not app.warning
    metrics = {metric.label: metric.value for metric in app.metric}
    # 90%: from frame 1, as a face is confirmed on its second detection
    assert metrics["Frames"] == "10" and metrics["Faces (ids)"] == "2" and metrics["Frames with a face"] == "90%"
    assert len(app.get("video")) == 1
    summary = app.dataframe[0].value
    assert list(summary["face_id"]) == [1, 2] and list(summary.columns[:6]) == ["face_id", "seconds", "frames", "first_s", "last_s", "dominant"]
    assert app.selectbox(key="video_face").options == ["#1", "#2"]
    assert len(app.get("plotly_chart")) == 1
    assert len(app.get("download_button")) == 2
    # The upload is deleted once analysed; the results stay in the job folder for the link.
    assert job_files(private_cache) == ["annotated.mp4", "faces.csv", "job.json", "progress.json", "report.json",
                                        "status.json", "worker.lock", "worker.log"]
    app.selectbox(key="video_face").set_value(2).run()  # picking another face does not analyse again
    assert not app.exception and len(app.get("plotly_chart")) == 1


def test_a_reload_finds_the_analysis_through_the_link_and_a_stale_link_is_named(two_face_mp4, bundled, private_cache):
    first = run_upload(two_face_mp4, "two faces.mp4", bundled)
    job_id = first.query_params["job"]
    app = AppTest.from_file(PAGE, default_timeout=120)  # a new browser session: no upload, only the URL
    app.query_params["job"] = job_id
    app.run()
    assert not app.exception and not app.error and not app.warning
    assert {metric.label: metric.value for metric in app.metric}["Faces (ids)"] == "2"
    assert shown_text(app.subheader[0].value) == "Results for “two faces.mp4”"  # walk s18: the link named no file
    # Walk s19: which settings made the results is said, and a sidebar that no longer matches them is named.
    assert any(shown_text(caption.value) == "Analysed by tiny · Haar cascade detector on every frame · vote smoothing "
               "over 10 frames" for caption in app.caption)
    assert not app.info
    app.query_params["detector"] = "mtcnn"
    app.query_params["every"] = "3"
    app.run()
    (note,) = app.info
    assert shown_text(note.value) == ("These results were made with other settings than the sidebar's (detector: Haar "
                                      "cascade here, MTCNN in the sidebar; detection: every frame here, every 3rd frame "
                                      "in the sidebar). Upload the video again to analyse it with the sidebar's.")
    assert {metric.label: metric.value for metric in app.metric}["Faces (ids)"] == "2"  # still shown
    stale = AppTest.from_file(PAGE, default_timeout=120)
    stale.query_params["job"] = "0123456789abcdef"
    stale.run()
    assert len(stale.warning) == 1 and "0123456789abcdef" in stale.warning[0].value and not stale.metric
    hostile = AppTest.from_file(PAGE, default_timeout=120)
    hostile.query_params["job"] = "../../etc"
    hostile.run()
    assert not hostile.exception and len(hostile.warning) == 1 and not hostile.metric


@pytest.mark.parametrize("data, name, message", [
    (b"this is not a video" * 100, "clip.mp4", "not a readable video"),
    (b"", "clip.webm", "empty"),
    (b"\x00" * 100, "clip.txt", "not a video file name"),
])
def test_bad_uploads_show_an_error_and_leave_no_files(data, name, message, tiny_model_path, private_cache):
    app = run_upload(data, name, tiny_model_path)
    assert len(app.error) == 1 and message in app.error[0].value
    assert job_files(private_cache) == []


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
    assert len(app.warning) == 1 and "“no-such-run”" in shown_text(app.warning[0].value)  # the unknown model is named
    app.slider(key="video_window").set_value(12).run()
    assert app.query_params["window"] == "12"
    app.selectbox(key="video_smoothing").set_value("vote").run()  # back to the default: left out of the URL
    assert "smoothing" not in app.query_params and app.query_params["detector"] == "mtcnn"


def test_a_running_analysis_shows_its_progress_and_cancel_stops_its_worker(bundled, private_cache):
    import json
    import subprocess

    folder = private_cache / "video-jobs" / "00000000000000aa"
    folder.mkdir(parents=True)
    import sys

    # stands in for the analysis worker (which names its job folder in its command line)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(folder)], start_new_session=True)
    try:
        (folder / "job.json").write_text(json.dumps({"source": "long.mp4", "input": "input.mp4"}))
        (folder / "input.mp4").write_bytes(b"video")
        (folder / "status.json").write_text(json.dumps({"state": "running", "message": "analysing", "pid": worker.pid}))
        (folder / "progress.json").write_text(json.dumps({"frames_done": 50, "frames_total": 200, "elapsed_s": 2.0}))
        app = AppTest.from_file(PAGE, default_timeout=120)
        app.query_params["job"] = folder.name
        app.run()
        assert not app.exception and not app.error
        (bar,) = app.get("progress")
        assert "frame 50 of 200" in bar.proto.text and "25.0 frames/s" in bar.proto.text and "6 s left" in bar.proto.text
        app.button(key="video_cancel").click().run()
        assert worker.wait(timeout=10) != 0  # ended by the Cancel
        assert not app.exception and app.info[0].value.startswith("You cancelled the analysis of ")
        assert not (folder / "input.mp4").exists()
        # Another session showing the same analysis (its link) is told it was cancelled elsewhere, and how.
        other = AppTest.from_file(PAGE, default_timeout=120)
        other.query_params["job"] = folder.name
        other.run()
        assert not other.exception and "was cancelled with its Cancel button, in another tab or by another person" \
            in other.info[0].value
    finally:
        worker.kill()


@pytest.fixture
def stand_in_workers(monkeypatch):
    """Analysis workers sleep instead of analysing (seconds, not a model load); yields their Popen objects."""
    import subprocess
    import sys

    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen(command, **options):
        started.append(real_popen(command, **options))
        return started[-1]

    monkeypatch.setattr("core.video_jobs._worker_command",
                        lambda folder: [sys.executable, "-c", "import time; time.sleep(60)", str(folder)])
    monkeypatch.setattr("core.video_jobs.subprocess.Popen", popen)
    yield started
    for process in started:
        process.kill()
        process.wait()


def test_cancel_on_an_uploaded_video_ends_it_a_rerun_does_not_restart_it_and_analyse_again_does(
        two_face_mp4, bundled, stand_in_workers):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    app.file_uploader(key="video_upload").set_value(("long.mp4", two_face_mp4, "video/mp4")).run()
    assert not app.exception and len(stand_in_workers) == 1 and app.get("progress")
    first = stand_in_workers[0]
    app.button(key="video_cancel").click().run()
    # The worker is ending when the page answers (its code no longer runs: /proc shows no command line); the
    # kernel may need a moment more to reap it, so wait briefly rather than poll once (poll raced under load).
    assert first.wait(timeout=10) is not None
    assert not app.exception and not app.get("progress") and "cancelled" in app.info[0].value
    for _ in range(2):  # reruns with the upload still there: nothing starts, the page still says cancelled
        app.run()
        assert "cancelled" in app.info[0].value and not app.get("progress")
    assert len(stand_in_workers) == 1
    app.button(key="video_again_button").click().run()
    assert not app.exception and not app.info and app.get("progress")
    assert len(stand_in_workers) == 2 and stand_in_workers[1].poll() is None  # exactly one new worker
    app.run()
    assert len(stand_in_workers) == 2
    app.button(key="video_cancel").click().run()
    assert stand_in_workers[1].wait(timeout=10) is not None and "cancelled" in app.info[0].value
    # Uploading the file anew is deliberate too: one new worker.
    app.file_uploader(key="video_upload").set_value(None).run()
    app.file_uploader(key="video_upload").set_value(("long.mp4", two_face_mp4, "video/mp4")).run()
    assert not app.exception and app.get("progress") and len(stand_in_workers) == 3
    assert [process.poll() is None for process in stand_in_workers] == [False, False, True]


def test_a_failed_analysis_of_an_upload_is_offered_again_not_restarted(two_face_mp4, bundled, stand_in_workers):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    app.file_uploader(key="video_upload").set_value(("clip.mp4", two_face_mp4, "video/mp4")).run()
    stand_in_workers[0].kill()  # the worker dies without a word
    stand_in_workers[0].wait()
    app.run()
    assert len(app.error) == 1 and "worker" in app.error[0].value and len(stand_in_workers) == 1
    app.run()
    assert len(stand_in_workers) == 1 and app.button(key="video_again_button")
    # Reopened from its link without the upload: no button (the video is gone), a hint to upload it again.
    linked = AppTest.from_file(PAGE, default_timeout=120)
    linked.query_params["job"] = app.query_params["job"]
    linked.run()
    assert len(linked.error) == 1 and not [button for button in linked.button if button.key == "video_again_button"]
    assert any("Upload the video again" in caption.value for caption in linked.caption)


def test_the_error_and_the_uploader_name_the_same_formats(tiny_model_path):
    from core.video_jobs import VIDEO_FORMATS

    app = run_upload(b"this is not a video" * 100, "clip.mkv", tiny_model_path)
    assert len(app.error) == 1 and VIDEO_FORMATS in shown_text(app.error[0].value)
    assert "MKV or M4V" in VIDEO_FORMATS
    page = AppTest.from_file(PAGE, default_timeout=120)
    page.run()
    uploader = page.file_uploader(key="video_upload")
    assert VIDEO_FORMATS in uploader.help
    named = VIDEO_FORMATS.replace(" or ", ", ").split(", ")
    # Streamlit adds its own aliases (.mpeg4 for .mp4); every format named is accepted
    assert {f".{name.lower()}" for name in named} <= set(uploader.allowed_type)


def test_the_timeline_names_its_strip_of_shown_emotions():
    # Walk s10: a row of coloured squares above 100% that nothing explained.
    import pandas as pd

    from core.labels import CLASS_NAMES
    from core.video import CSV_COLUMNS
    from dashboard.video_widgets import emotion_timeline_figure

    rows = [{**{column: 0 for column in CSV_COLUMNS}, "face_id": 1, "time_s": t / 10, "emotion": "happy",
             **{name: 1 / 7 for name in CLASS_NAMES}} for t in range(5)]
    figure = emotion_timeline_figure(pd.DataFrame(rows, columns=CSV_COLUMNS), 1)
    strip = [trace for trace in figure.data if trace.mode == "markers"][0]
    labels = dict(zip(figure.layout.yaxis.tickvals, figure.layout.yaxis.ticktext))
    assert labels[strip.y[0]] == "shown" and labels[1.0] == "100%"


def test_a_replaced_upload_stops_its_analysis_and_a_busy_server_makes_an_upload_wait(
        two_face_mp4, two_face_video_writer, tmp_path, bundled, stand_in_workers, monkeypatch):
    # Probe s18: each upload of a tab started a worker and left the one before running, and nothing capped how
    # many ran at once (four tabs, four workers, 4.6 GB).
    monkeypatch.setenv("FER_STUDIO_VIDEO_WORKERS", "1")
    other_mp4 = two_face_video_writer(tmp_path / "other.mp4", 14, 10).read_bytes()
    first = AppTest.from_file(PAGE, default_timeout=120)
    first.run()
    first.file_uploader(key="video_upload").set_value(("a.mp4", two_face_mp4, "video/mp4")).run()
    assert not first.exception and first.get("progress") and len(stand_in_workers) == 1
    # Another session, while the one worker is taken: its upload waits, and says so.
    second = AppTest.from_file(PAGE, default_timeout=120)
    second.run()
    second.file_uploader(key="video_upload").set_value(("b.mp4", other_mp4, "video/mp4")).run()
    assert not second.exception and not second.get("progress") and len(stand_in_workers) == 1
    assert "Waiting for a free worker to analyse “b.mp4”: 1 analysis is running" in shown_text(second.info[0].value)
    # The first session replaces its upload: its first analysis stops, the new one takes the worker.
    first.file_uploader(key="video_upload").set_value(None).run()
    first.file_uploader(key="video_upload").set_value(("b.mp4", other_mp4, "video/mp4")).run()
    assert stand_in_workers[0].wait(timeout=10) is not None
    assert not first.exception and first.get("progress") and len(stand_in_workers) == 2
    # The same video with the same settings is one analysis: the waiting session now follows it.
    second.run()
    assert not second.exception and second.get("progress") and len(stand_in_workers) == 2
    # Removing the upload stops what the session started.
    first.file_uploader(key="video_upload").set_value(None).run()
    assert stand_in_workers[1].wait(timeout=10) is not None and not first.exception


def _linked_job_script() -> None:
    import streamlit as st

    from dashboard import video_widgets

    job = video_widgets.linked_job_ui()
    st.markdown(f"job={job.job_id if job is not None else None}")


@pytest.mark.parametrize("arrived, link, expected", [
    (True, True, "shown"),  # Back from another page to /video?job=…: the empty uploader is no removal
    (True, False, "shown"),  # the sidebar's Video link (no ?job=): this session's last analysis comes back
    (False, True, "removed"),  # on the page itself, an upload that is gone was removed by the user
])
def test_returning_to_the_video_page_keeps_the_analysis_and_only_a_removal_on_the_page_drops_it(
        two_face_mp4, bundled, monkeypatch, arrived, link, expected):
    # Review s20: the page says "you can leave this page", but Back from another page cancelled the analysis (its
    # uploader came back empty, which read as a removal) and the sidebar's link lost it.
    from dashboard import video_widgets

    job_id = run_upload(two_face_mp4, "two faces.mp4", bundled).query_params["job"]
    cancelled = []
    monkeypatch.setattr(video_widgets, "cancel_replaced_job_ui", lambda **options: cancelled.append(options))
    app = AppTest.from_function(_linked_job_script, default_timeout=60)
    app.session_state["video_had_upload"] = True  # the uploader held a file when this session was last here
    app.session_state["video_shown_job"] = job_id
    app.session_state["_url_state_arrived"] = arrived
    if link:
        app.query_params["job"] = job_id
    app.run()
    assert not app.exception and not app.warning
    if expected == "shown":
        assert app.markdown[-1].value == f"job={job_id}" and app.query_params["job"] == job_id and not cancelled
    else:
        assert app.markdown[-1].value == "job=None" and "job" not in app.query_params
        assert cancelled == [{"reason": video_widgets.CANCELLED_BY_REMOVING}]
