"""The Video page in a real browser: upload a video, watch the annotated result play, and survive a broken file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def two_face_mp4(tmp_path_factory, two_face_video_writer):
    """24 frames (2.4 s), 320x240, two astronaut heads drifting apart, H.264 MP4."""
    return two_face_video_writer(tmp_path_factory.mktemp("upload") / "two faces.mp4", 24, 10)


@pytest.fixture(scope="module")
def text_as_mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("upload-bad") / "notes.mp4"
    path.write_text("this is not a video\n" * 40)
    return path


def _upload(page, path, *, refused: bool = False) -> None:
    """Upload ``path`` and wait for its outcome: the metrics, or (``refused``) the error that names the file.

    A refused file after an analysed one must wait for its own error: the
    earlier upload's metrics are still on the page until the rerun ends.
    """
    harness.file_uploader(page, "Video").set_input_files(str(path))
    if refused:
        page.locator("[data-testid='stAlert']", has_text=path.name).first.wait_for()
    else:
        page.locator("[data-testid='stMetric']").first.wait_for()
    harness.wait_for_app(page)


def test_upload_plays_annotated_video_with_summary_timeline_and_downloads(app_server, predict_model_run, page,
                                                                           two_face_mp4, text_as_mp4):
    step = harness.StepClock("video")
    harness.goto_page(page, app_server, "video", "Video")
    harness.assert_no_exception(page)
    step("page open")

    _upload(page, two_face_mp4)
    step("analysed")
    harness.assert_no_exception(page)
    assert not harness.error_texts(page), harness.error_texts(page)
    metrics = page.locator("[data-testid='stMetric']").all_inner_texts()
    assert any(re.match(r"Frames\s+24", text) for text in metrics), metrics
    assert any(re.match(r"Faces \(ids\)\s+2", text) for text in metrics), metrics
    video = page.locator("[data-testid='stVideo']")
    video.wait_for()
    # The annotated H.264 MP4 plays in Chromium: it loads its metadata with the right size and duration.
    page.wait_for_function("() => { const v = document.querySelector('[data-testid=stVideo]');"
                           " return v && v.readyState >= 1 && v.videoWidth === 320 && v.duration > 2; }")
    video.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('[data-testid=stVideo]').currentTime > 0.5")
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    names = chart.evaluate("el => el.data.map(trace => trace.name)")
    assert names[:7] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"], names
    buttons = page.locator("[data-testid='stDownloadButton']").all_inner_texts()
    assert any("CSV" in text for text in buttons) and any("annotated video" in text for text in buttons), buttons
    harness.save_screenshot(page, "video_upload")
    step("results checked")

    # The analysis ran in a background worker and its id is in the URL: a reload shows it again.
    # The browser writes the URL after drawing the results: on a busy machine a moment later.
    page.wait_for_url(re.compile(r"[?&]job=[0-9a-f]{16}"))
    # It was the standby worker the page kept warm, TensorFlow imported before the upload.
    job_id = re.search(r"[?&]job=([0-9a-f]{16})", page.url).group(1)
    log = (app_server.cache_dir / "video-jobs" / job_id / "worker.log").read_text()
    assert "the standby worker" in log and "took this job" in log, log
    page.reload()
    harness.wait_for_app(page)
    # The reloaded page draws the finished analysis; wait for its metric rather than read the first one drawn.
    page.locator("[data-testid='stMetric']").filter(has_text=re.compile(r"^Frames\s*24")).first.wait_for()
    page.locator("[data-testid='stVideo']").wait_for()
    harness.assert_no_exception(page)
    step("reload keeps the analysis")

    _upload(page, text_as_mp4, refused=True)
    errors = harness.error_texts(page)
    assert len(errors) == 1 and "notes.mp4" in errors[0] and "not a readable video" in errors[0], errors
    harness.assert_no_exception(page)
    step("broken file refused")


def test_a_cancelled_analysis_on_the_page_follows_a_restart_from_another_session(app_server, page):
    """One tab shows a cancelled analysis; another session starts it again: the first shows the progress by itself."""
    job_id = "0a1b2c3d4e5f6a7b"
    folder = app_server.cache_dir / "video-jobs" / job_id
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"source": "clip.mp4", "input": "input.mp4", "settings": {},
                                                 "models": []}))
    (folder / "status.json").write_text(json.dumps({"state": "cancelled", "message": "cancelled", "pid": None}))
    worker = None
    try:
        harness.goto_page(page, app_server, f"video?job={job_id}", "Video")
        page.locator("[data-testid='stAlert']", has_text="was cancelled").wait_for()
        harness.assert_no_exception(page)
        # Another session's "Analyse again": a worker of this folder (here one that sleeps) is analysing it.
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(folder)],
                                  start_new_session=True)
        (folder / "status.json").write_text(json.dumps({"state": "running", "message": "analysing",
                                                        "pid": worker.pid}))
        progress = page.locator("[data-testid='stProgress']")
        progress.wait_for(timeout=harness.APP_TIMEOUT_MS)  # the page checks every 2 s; a loaded server reruns slowly
        assert "Analysing “clip.mp4”" in progress.inner_text()
        assert not page.locator("[data-testid='stAlert']", has_text="was cancelled").count()
        harness.assert_no_exception(page)
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
        shutil.rmtree(folder, ignore_errors=True)
