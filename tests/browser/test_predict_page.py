"""The Predict page in a real browser: a photo upload, a broken upload, and a webcam snapshot.

The model is whatever the page picks by default: the bundled model when it
exists, else the only run's ``best.keras`` (an untrained mini-Xception made by
the ``predict_model_run`` fixture). The test checks that a box and the
probabilities appear, not which emotion wins.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser


def _photo_results(page) -> str:
    """Caption of the annotated photo, e.g. ``astronaut.png · 1 face · detection …``."""
    caption = page.locator("[data-testid='stImageCaption']").filter(has_text=re.compile(r"\d+ faces? ·"))
    caption.first.wait_for()
    return caption.first.inner_text()


def _upload_photo(page, path) -> None:
    """Upload ``path`` and wait for this file's outcome: its result caption or an alert naming it.

    Replacing a file can rerun the page twice (old file removed, new one
    added), so waiting for "a rerun" is not enough.
    """
    harness.file_uploader(page, "Photo").set_input_files(str(path))
    outcome = page.locator("[data-testid='stImageCaption']", has_text=path.name).or_(
        page.locator("[data-testid='stAlert']", has_text=path.name))
    outcome.first.wait_for()
    harness.wait_for_app(page)


def _assert_face_predicted(page, name: str) -> None:
    caption = _photo_results(page)
    assert caption.startswith(name), caption
    faces = int(re.search(r"(\d+) faces? ·", caption).group(1))
    assert faces >= 1, f"no face found in the astronaut photo: {caption}"
    assert page.get_by_text(re.compile(r"^Face 1: \w+")).count() == 1
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    bars = chart.evaluate("el => el.data[0]")
    assert bars["x"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert abs(sum(bars["y"]) - 1.0) < 1e-3, bars["y"]


def test_photo_upload_shows_boxes_and_probabilities_and_survives_a_broken_file(
        app_server, predict_model_run, page, astronaut_png, text_as_jpg):
    step = harness.StepClock("predict")
    harness.goto_page(page, app_server, "predict", "Predict")
    step("page open")
    harness.assert_no_exception(page)
    assert not harness.error_texts(page), harness.error_texts(page)

    _upload_photo(page, astronaut_png)
    _assert_face_predicted(page, "astronaut.png")
    step("astronaut predicted")
    harness.save_screenshot(page, "predict_photo")
    harness.assert_no_exception(page)

    _upload_photo(page, text_as_jpg)
    errors = harness.error_texts(page)
    harness.save_screenshot(page, "predict_broken_file")
    assert len(errors) == 1 and "notes.jpg" in errors[0], errors
    assert "Traceback" not in errors[0] and len(errors[0]) < 400, errors[0]
    harness.assert_no_exception(page)
    step("broken file refused")

    _upload_photo(page, astronaut_png)
    _assert_face_predicted(page, "astronaut.png")
    assert not harness.error_texts(page)
    harness.assert_no_exception(page)
    step("astronaut again")


# ---------------------------------------------------------------- webcam


def write_y4m(path, rgb: np.ndarray, frames: int = 5) -> None:
    """Write a YUV4MPEG2 (4:2:0) video of ``frames`` copies of ``rgb`` for Chromium's fake camera.

    ``rgb`` is ``(480, 640, 3)`` uint8; full-range BT.601, matching ``C420jpeg``.
    """
    height, width = rgb.shape[:2]
    pixels = rgb.astype(np.float32)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

    def half(plane):
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in (y, half(u), half(v))]
    with open(path, "wb") as stream:
        stream.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            stream.write(b"FRAME\n")
            for plane in planes:
                stream.write(plane)


@pytest.fixture(scope="module")
def fake_camera_video(tmp_path_factory):
    """The astronaut, resized to 480x480 and centred on a 640x480 gray frame, as a .y4m file."""
    import cv2
    from skimage import data

    frame = np.full((480, 640, 3), 128, np.uint8)
    frame[:, 80:560] = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("camera") / "face.y4m"
    write_y4m(path, frame)
    return path


@pytest.fixture(scope="module")
def camera_browser(fake_camera_video):
    browser = harness.launch_chromium([
        *harness.FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={fake_camera_video}",
    ])
    yield browser
    browser.close()


def _take_snapshot(page, camera) -> None:
    """Click Take Photo until a snapshot shows (a camera that just (re)started its stream can grab no frame)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    clear = page.get_by_role("button", name=re.compile("Clear photo"))
    take = camera.get_by_role("button", name="Take Photo")
    for _attempt in range(3):
        take.click()
        try:
            clear.wait_for(timeout=30_000)
            break
        except PlaywrightTimeout:
            if not take.is_visible():  # the snapshot is on its way: wait for it, not for a new one
                clear.wait_for()
                break
    try:  # a busy machine can take longer than the 30 s per click to show it
        clear.wait_for(timeout=harness.APP_TIMEOUT_MS)
    except PlaywrightTimeout:
        harness.save_screenshot(page, "predict_webcam_failed")
        state = page.evaluate("() => { const v = document.querySelector('[data-testid=stCameraInput] video');"
                              " return v && {ready: v.readyState, width: v.videoWidth, time: v.currentTime}; }")
        pytest.fail(f"Take Photo produced no snapshot after 3 clicks; video: {state}")
    harness.wait_for_app(page)


def test_webcam_snapshot_is_predicted(app_server, predict_model_run, camera_browser):
    page = harness.new_page(camera_browser, permissions=["camera"])
    try:
        harness.goto_page(page, app_server, "predict", "Predict")
        page.get_by_role("tab", name="Webcam").click()  # tabs switch in the browser, no rerun
        camera = page.locator("[data-testid='stCameraInput']")
        camera.wait_for()
        # Take Photo grabs the current video frame: wait until the fake camera has been playing for a moment.
        page.wait_for_function(
            "() => { const v = document.querySelector('[data-testid=stCameraInput] video');"
            " return v && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 1; }")
        _take_snapshot(page, camera)
        if re.search(r"\b0 faces ·", _photo_results(page)):
            # Seen once with a second test worker busy beside it: Chromium handed over a frame without the
            # picture. Keep what the page showed, then take one more snapshot; a second miss fails below.
            harness.save_screenshot(page, "predict_webcam_no_face")
            with harness.expect_rerun(page):
                page.get_by_role("button", name=re.compile("Clear photo")).click()
            _take_snapshot(page, camera)
        _assert_face_predicted(page, "webcam snapshot")
        harness.save_screenshot(page, "predict_webcam")
        harness.assert_no_exception(page)
    finally:
        page.context.close()
