"""The Live page: renders, and its self-refreshing panel shows frames/s, faces now, a timeline and the CSV.

AppTest has no browser, so the WebRTC component is replaced by a stub and
frames are fed to the page's LiveSession directly, as the WebRTC thread would.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "live.py")


@pytest.fixture
def bundled(monkeypatch, tmp_path, tiny_model_path):
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", tiny_model_path)
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    calls = []
    monkeypatch.setattr("dashboard.live_widgets.stream_ui", lambda session: calls.append(session))
    return calls


def face_frame(shift: int = 0) -> np.ndarray:
    from skimage import data

    head = data.astronaut()[18:208, 129:319]
    canvas = np.full((240, 320, 3), 100, np.uint8)
    canvas[50 + shift:190 + shift, 90:230] = cv2.resize(head, (140, 140), interpolation=cv2.INTER_AREA)
    return canvas


def test_page_waits_for_the_camera_then_shows_fps_faces_timeline_and_csv(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    assert not app.exception and not app.error
    assert app.title[0].value == "Live" and len(bundled) == 1
    assert any("no frame yet — press Start" in markdown.value for markdown in app.markdown)
    session = app.session_state["live_session"][1]
    for index in range(6):
        drawn = session.analyze(face_frame(index))
        assert drawn.shape == (240, 320, 3)
    app.run()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Frames"] == "6"
    assert any("**Now:** #1 " in markdown.value for markdown in app.markdown)
    assert len(app.get("plotly_chart")) == 1 and len(app.get("download_button")) == 1
    # Walk s21: "last 60 s" over a face seen for a moment; the title says how long the chart holds.
    import json

    title = json.loads(app.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
    assert title.startswith("Face #1, seen for ") and title.endswith(" s")
    app.button(key="live_reset").click().run()
    assert session.snapshot().frames == 0


def test_changing_a_setting_starts_a_new_session(bundled):
    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    first = app.session_state["live_session"][1]
    app.selectbox(key="live_smoothing").set_value("ema").run()
    second = app.session_state["live_session"][1]
    assert second is not first and second.settings.smoothing == "ema"
    assert not [b for b in app.get("download_button") if "before the settings changed" in b.label]  # nothing recorded


def test_a_settings_change_keeps_the_rows_recorded_before_it(bundled):
    # Review s20: moving a slider started a new session, and every row recorded until then went without a word.
    import io

    import pandas as pd

    from dashboard.live_widgets import earlier_parts_csv

    app = AppTest.from_file(PAGE, default_timeout=120)
    app.run()
    first = app.session_state["live_session"][1]
    for index in range(4):
        first.analyze(face_frame(index))
    recorded = len(first.snapshot().rows)
    assert recorded >= 1
    app.selectbox(key="live_smoothing").set_value("ema").run()
    assert not app.exception
    assert any(f"the {recorded} rows recorded before it are kept apart" in caption.value for caption in app.caption)
    [earlier] = [b for b in app.get("download_button") if b.label == "Download the CSV from before the settings changed"]
    table = pd.read_csv(io.BytesIO(earlier_parts_csv(app.session_state["live_earlier_parts"])))
    assert len(table) == recorded and table.columns[0] == "part" and set(table["part"]) == {1}
    app.button(key="live_reset").click().run()  # Clear forgets the earlier parts too
    assert not [b for b in app.get("download_button") if "before the settings changed" in b.label]


def test_session_measures_fps_and_keeps_csv_rows(tiny_loaded_model):
    from core.video import CSV_COLUMNS, StreamSettings
    from dashboard.live_widgets import LiveSession, prominent_face

    import time

    session = LiveSession(tiny_loaded_model, StreamSettings(detector="haar"))
    start = time.monotonic() - 0.4
    for index in range(11):
        session.analyze(face_frame(), now=start + index * 0.04)  # 25 frames/s, the last one now
    # Read as of the last frame: on a loaded machine the 11 analyses can take over 2 s of real time,
    # which made a snapshot taken "now" read the stream as stopped (0 frames/s).
    snapshot = session.snapshot(now=start + 10 * 0.04)
    assert snapshot.frames == 11 and snapshot.fps == pytest.approx(25.0, rel=0.01)
    stopped = session.snapshot(now=start + 10 * 0.04 + 2.5)
    assert stopped.fps == 0.0 and stopped.stalled and not snapshot.stalled  # no frame for 2.5 s: stopped
    # One row per frame from frame 1 (a face is shown once found on two frames in a row).
    assert len(snapshot.rows) == 10 and set(snapshot.rows[0]) == set(CSV_COLUMNS)
    assert prominent_face(snapshot.rows) == 1


def test_ice_servers_default_to_none_and_come_from_the_environment(monkeypatch):
    from dashboard.live_widgets import ICE_SERVERS_ENV, ice_servers

    monkeypatch.delenv(ICE_SERVERS_ENV, raising=False)
    assert ice_servers() == []
    monkeypatch.setenv(ICE_SERVERS_ENV, json.dumps([{"urls": ["stun:stun.example.org:3478"]}]))
    assert ice_servers() == [{"urls": ["stun:stun.example.org:3478"]}]
    monkeypatch.setenv(ICE_SERVERS_ENV, "stun:oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        ice_servers()
    monkeypatch.setenv(ICE_SERVERS_ENV, json.dumps([{"username": "x"}]))
    with pytest.raises(ValueError, match="urls"):
        ice_servers()


def test_webrtc_loads_after_tensorflow_without_crashing():
    """libsrtp (aiortc) loaded after TensorFlow bound to TF's BoringSSL and crashed the process in srtp_init."""
    import subprocess
    import sys

    code = ("import tensorflow; from dashboard.live_widgets import load_webrtc; load_webrtc(); "
            "from pylibsrtp import Policy; print('loaded')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr[-2000:]


def test_the_rate_is_not_shown_from_a_few_frames(tiny_loaded_model):
    # Walk s9: two frames after a restart read "14.3 fps" beside "634 ms per frame".
    import time

    from core.video import StreamSettings
    from dashboard.live_widgets import MIN_FPS_FRAMES, LiveSession

    session = LiveSession(tiny_loaded_model, StreamSettings(detector="haar"))
    start = time.monotonic()
    for index in range(MIN_FPS_FRAMES - 1):
        session.analyze(face_frame(), now=start + index * 0.07)
    assert session.snapshot(now=start + 0.5).fps == 0.0  # shown as "—"
    session.analyze(face_frame(), now=start + (MIN_FPS_FRAMES - 1) * 0.07)
    assert session.snapshot(now=start + 0.5).fps == pytest.approx(1 / 0.07, rel=0.01)


def test_the_delay_behind_the_camera_is_measured_from_the_frames_own_timestamps(tiny_loaded_model):
    # Walk s9: the page gave the analysis time per frame but not how far the returned video lags behind.
    from fractions import Fraction

    import av

    from core.video import StreamSettings
    from dashboard.live_widgets import MIN_FPS_FRAMES, LiveSession

    readings = []
    session = LiveSession(tiny_loaded_model, StreamSettings(detector="haar"), clock=lambda: readings.pop(0))

    def send(index: int, *, transit: float, analysis: float = 0.1) -> None:
        frame = av.VideoFrame.from_ndarray(face_frame(), format="rgb24")
        frame.pts, frame.time_base = index * 3000, Fraction(1, 90000)  # RTP's 90 kHz clock, 30 frames/s
        arrived = 5000.0 + float(frame.time) + transit  # the server's clock has its own start
        readings.extend([arrived, arrived + analysis])
        out = session.process_frame(frame)
        assert out.pts == frame.pts and not readings

    for index in range(MIN_FPS_FRAMES - 1):
        send(index, transit=0.02 if index % 2 == 0 else 0.05)
    assert session.snapshot(now=5000.5).delay_ms == 0.0  # too few frames: shown as "—"
    for index in range(MIN_FPS_FRAMES - 1, 10):
        send(index, transit=0.02 if index % 2 == 0 else 0.05)
    # Even frames came the quickest way and waited for nothing but their 100 ms analysis; odd ones 30 ms later.
    assert session.snapshot(now=5000.5).delay_ms == pytest.approx(115.0)
    assert session.snapshot(now=5003.0).delay_ms == 0.0  # no frame for 2 s: stopped
    for index in range(MIN_FPS_FRAMES):  # a new stream: its timestamps start again, and so does the measurement
        send(index, transit=0.3, analysis=0.2)
    assert session.snapshot(now=5000.5).delay_ms == pytest.approx(200.0)
    # Stop, then Start 20 s later: the new stream's timestamps start 5 s above the old ones, so its transit looks
    # 15 s longer; measured against the old stream's quickest it would read 15 s behind.
    for index in range(MIN_FPS_FRAMES):
        send(index + 150, transit=15.3, analysis=0.05)
    assert session.snapshot(now=5020.5).delay_ms == pytest.approx(50.0)
