"""The Live page in a real browser: Chromium's fake camera streams FER faces, the page returns the annotated stream.

Chromium plays a ``.y4m`` file as its camera (``--use-file-for-fake-video-capture``);
the page's WebRTC component sends it to the server (aiortc), which analyses
every frame and sends it back. The test sees the returned video play, and the
page's self-refreshing panel show a measured frames/s that changes and a face
with its emotion.

WebRTC connects over host ICE candidates only (no STUN server). This machine
has a non-loopback interface; on a machine whose only interface is loopback
the server needs ``FER_STUDIO_WEBRTC_LOOPBACK=1`` (aiortc then offers
127.0.0.1) and Chromium ``--allow-loopback-in-peer-connection``; both are set
here, so the test also runs there.
"""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from tests.browser import harness
from tests.browser.test_predict_page import write_y4m

pytestmark = pytest.mark.browser

FRAMES = 90  # 3 s at 30 frames/s; Chromium loops the file
WARM_UP_MS = 4000
MEASURE_MS = 5000


def fer_faces_found_by_haar(count: int = 2) -> list[np.ndarray]:
    """``count`` FER2013 PublicTest faces (from ../shared/fer2013) that the Haar cascade finds at 200 px."""
    from core.detect import detect_faces

    files = sorted((harness.SHARED_FER2013 / "test" / "happy").glob("PublicTest_*.jpg"))[:60]
    chosen = []
    for file in files:
        face = cv2.resize(cv2.imread(str(file), cv2.IMREAD_GRAYSCALE), (200, 200), interpolation=cv2.INTER_CUBIC)
        canvas = np.full((300, 300), 128, np.uint8)
        canvas[50:250, 50:250] = face
        if len(detect_faces(canvas, "haar")) == 1:
            chosen.append(face)
        if len(chosen) == count:
            return chosen
    return chosen


def drifting_faces_frames(faces: list[np.ndarray]) -> list[np.ndarray]:
    """:data:`FRAMES` RGB 640x480 frames: two 200x200 gray faces drifting up and down over gray (also ``bench_live``)."""
    frames = []
    for index in range(FRAMES):
        frame = np.full((480, 640), 128, np.uint8)
        shift = int(20 * np.sin(2 * np.pi * index / FRAMES))
        frame[140 + shift:340 + shift, 60:260] = faces[0]
        frame[140 - shift:340 - shift, 380:580] = faces[1]
        frames.append(np.repeat(frame[..., None], 3, axis=2))
    return frames


@pytest.fixture(scope="module")
def fer_camera_video(tmp_path_factory):
    """Two FER2013 faces drifting over a gray 640x480 frame, as a .y4m file for the fake camera."""
    faces = fer_faces_found_by_haar() if (harness.SHARED_FER2013 / "test").is_dir() else []
    if len(faces) < 2:
        from skimage import data

        head = cv2.cvtColor(data.astronaut()[18:208, 129:319], cv2.COLOR_RGB2GRAY)
        faces = [cv2.resize(head, (200, 200), interpolation=cv2.INTER_AREA)] * 2
    path = tmp_path_factory.mktemp("live-camera") / "faces.y4m"
    write_y4m_frames(path, drifting_faces_frames(faces))
    return path


def write_y4m_frames(path, frames: list[np.ndarray]) -> None:
    """Several different frames in one .y4m (``write_y4m`` repeats one frame)."""
    parts = []
    for frame in frames:
        single = path.with_suffix(".one.y4m")
        write_y4m(single, frame, frames=1)
        data = single.read_bytes()
        header, body = data.split(b"\n", 1)
        parts.append(body)
        single.unlink()
    with open(path, "wb") as stream:
        stream.write(header + b"\n")
        for body in parts:
            stream.write(body)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, tiny_model_path):
    harness.require_chromium()
    server = harness.start_streamlit(tmp_path_factory.mktemp("live-app"), env={"FER_STUDIO_WEBRTC_LOOPBACK": "1"})
    harness.make_finished_run(server.runs_dir, tiny_model_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live_browser(fer_camera_video):
    browser = harness.launch_chromium([
        *harness.FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={fer_camera_video}",
        "--allow-loopback-in-peer-connection",
    ])
    yield browser
    browser.close()


def _panel_metrics(page) -> dict[str, str]:
    metrics = page.locator("[data-testid='stMetric']")
    values = {}
    for index in range(metrics.count()):
        text = metrics.nth(index).inner_text()
        label, _, value = text.partition("\n")
        values[label.strip()] = value.strip()
    return values


def _panel_numbers(page) -> tuple[float, int]:
    values = _panel_metrics(page)
    return float(values.get("fps", "0").replace("—", "0") or 0), int(values.get("Frames", "0") or 0)


def test_fake_camera_streams_back_annotated_with_fps_and_emotions(live_server, live_browser):
    page = harness.new_page(live_browser, permissions=["camera"])
    step = harness.StepClock("live")
    try:
        harness.goto_page(page, live_server, "live", "Live")
        harness.assert_no_exception(page)
        component = page.frame_locator("iframe[title*='streamlit_webrtc']")
        component.get_by_role("button", name=re.compile("start", re.I)).click()
        step("start clicked")
        # The returned stream plays in the component's <video> element.
        page.frame_locator("iframe[title*='streamlit_webrtc']").locator("video").first.wait_for()
        frame = page.frame(url=re.compile("streamlit_webrtc|component"))
        assert frame is not None, [f.url for f in page.frames]
        frame.wait_for_function("() => { const v = document.querySelector('video');"
                                " return v && v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 2; }",
                                timeout=120_000)
        step("returned video plays")
        page.get_by_text(re.compile(r"Now: #\d+ \w+")).first.wait_for(timeout=120_000)
        page.wait_for_timeout(WARM_UP_MS)  # the first frames include compiling the model
        # The panel refreshes itself once a second: sample it until frames/s has shown two values
        # and more frames were analysed (on a starved 2-core machine a frame can take a second).
        samples = [_panel_numbers(page)]
        deadline = MEASURE_MS + 60_000
        waited = 0
        while waited < deadline:
            page.wait_for_timeout(1000)
            waited += 1000
            samples.append(_panel_numbers(page))
            if waited >= MEASURE_MS and len({fps for fps, _ in samples}) >= 2 and samples[-1][1] > samples[0][1]:
                break
        (_, first_frames), (_, later_frames) = samples[0], samples[-1]
        now_text = page.get_by_text(re.compile(r"Now: #\d+")).first.inner_text()
        # "—" while no frame has come for 2 s (a starved machine can stall that long): read it until frames flow.
        for _ in range(30):
            behind = _panel_metrics(page).get("Behind", "")
            if re.fullmatch(r"\d+ ms", behind):
                break
            page.wait_for_timeout(1000)
        harness.save_screenshot(page, "live_stream")
        print(page.get_by_text(re.compile("ms per frame")).first.inner_text())
        print(f"live page: fps shown {[fps for fps, _ in samples]}, frames {first_frames} -> {later_frames} "
              f"in {waited / 1000:.0f} s ({(later_frames - first_frames) / (waited / 1000):.1f} frames/s counted); "
              f"behind {behind}; {now_text}")
        assert later_frames > first_frames > 0, samples
        assert len({fps for fps, _ in samples}) >= 2 and max(fps for fps, _ in samples) > 0, samples
        # The delay is measured from the frames' own timestamps: a number once 8 frames are in, never "—" here.
        assert re.fullmatch(r"\d+ ms", behind) and 0 < int(behind.split()[0]) < 30_000, behind
        assert re.search(r"#\d+ (angry|disgust|fear|happy|sad|surprise|neutral)", now_text), now_text
        assert harness.wait_for_count(page.locator(".js-plotly-plot"), 1) >= 1  # the prominent face's timeline
        harness.assert_no_exception(page)
        step("panel updates")
    finally:
        page.context.close()


def test_a_refused_camera_permission_is_shown_in_the_component_without_a_page_error(live_server):
    browser = harness.launch_chromium(["--use-fake-device-for-media-stream"])  # a camera, but no auto-accept
    page = harness.new_page(browser)  # no camera permission: the request is refused
    try:
        harness.goto_page(page, live_server, "live", "Live")
        component = page.frame_locator("iframe[title*='streamlit_webrtc']")
        component.get_by_role("button", name=re.compile("start", re.I)).click()
        component.get_by_text(re.compile("NotAllowedError|Permission denied", re.I)).first.wait_for(timeout=60_000)
        harness.save_screenshot(page, "live_camera_refused")
        harness.assert_no_exception(page)
        assert not harness.error_texts(page), harness.error_texts(page)
        assert page.get_by_text(re.compile("no frame yet — press Start")).count() == 1
    finally:
        page.context.close()
        browser.close()
