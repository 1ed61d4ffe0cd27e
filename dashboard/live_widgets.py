"""Widgets of the Live page: the browser camera over WebRTC, analysed frame by frame, and a live panel.

``streamlit-webrtc`` sends the camera's frames to the server (aiortc), where
:meth:`LiveSession.process_frame` runs ``core.video.FrameAnalyzer`` on each
one, draws boxes, face ids, smoothed emotions, the measured frames/s and
how far behind the camera it is, and returns the frame to the browser. That runs in the WebRTC worker thread; the
page reads the session's numbers and rows through a lock, in a fragment that
reruns about once a second, so the stream is never blocked by the page.

No STUN or TURN server is used by default (``iceServers: []``): the browser
and the server find each other through their host addresses, which works on
the same machine and on a LAN without internet. For remote use, set ICE
servers in ``FER_STUDIO_ICE_SERVERS`` (JSON) or in ``.streamlit/secrets.toml``
(``ice_servers``); see docs/live.md.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import streamlit as st

from core.predict import label_style
from core.video import CSV_COLUMNS, FrameAnalyzer, FrameResult, StreamSettings, draw_frame, frame_rows
from core.wording import counted
from dashboard.charts import CHART_CONFIG
from dashboard.text import literal

ICE_SERVERS_ENV = "FER_STUDIO_ICE_SERVERS"
LOOPBACK_ENV = "FER_STUDIO_WEBRTC_LOOPBACK"
# Rows kept for the timeline and the CSV: about 30 minutes of two faces at 30 frames/s.
MAX_ROWS = 120_000
TIMELINE_SECONDS = 60.0
FPS_WINDOW = 30
# Frames a rate is measured over before it is shown: fewer give numbers no one can trust.
MIN_FPS_FRAMES = 8
# Frames whose arrival sets the quickest transit a delay is measured from: about 10-20 s of analysed frames,
# long enough to hold a frame that did not wait, short enough that the two clocks' drift does not build up.
TRANSIT_WINDOW = 300
# No frame for this long: the stream stopped (its rate reads 0, and its delay is measured afresh after it).
STALLED_SECONDS = 2.0


def ice_servers() -> list[dict]:
    """ICE servers for WebRTC: ``FER_STUDIO_ICE_SERVERS`` (JSON list), else secrets' ``ice_servers``, else none.

    Raises:
        ValueError: A setting that is not a list of ``{"urls": ...}`` objects.
    """
    raw = os.environ.get(ICE_SERVERS_ENV, "").strip()
    servers = None
    if raw:
        try:
            servers = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ValueError(f"{ICE_SERVERS_ENV} is not valid JSON ({error}); expected e.g. "
                             '[{"urls": ["stun:stun.example.org:3478"]}]') from None
    else:
        try:
            servers = st.secrets.get("ice_servers")
        except (FileNotFoundError, KeyError, ValueError, AttributeError, OSError):
            servers = None
        except Exception as error:  # noqa: BLE001 - a missing secrets.toml raises Streamlit's own error type
            if "secret" not in type(error).__name__.lower():
                raise
            servers = None
    if servers is None:
        return []
    servers = [dict(server) for server in servers] if isinstance(servers, (list, tuple)) else servers
    if not isinstance(servers, list) or not all(isinstance(server, dict) and server.get("urls") for server in servers):
        raise ValueError(f"ICE servers must be a list of objects with 'urls', got {servers!r}")
    return servers


def load_webrtc():
    """Import ``streamlit_webrtc``, loading aiortc's libsrtp so that it keeps its own OpenSSL symbols.

    TensorFlow loads its libraries with ``RTLD_GLOBAL``, so its BoringSSL
    symbols become global; ``pylibsrtp`` (statically linked OpenSSL) loaded
    after it binds to those and crashes the process in ``srtp_init``.
    ``RTLD_DEEPBIND`` makes it prefer its own symbols, whatever was loaded first.
    """
    if "pylibsrtp" not in sys.modules:
        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | getattr(os, "RTLD_DEEPBIND", 0))
        try:
            import pylibsrtp  # noqa: F401
        finally:
            sys.setdlopenflags(flags)
    import streamlit_webrtc

    return streamlit_webrtc


def allow_loopback_candidates() -> None:
    """Let aiortc offer 127.0.0.1 as an ICE candidate (it skips loopback addresses).

    Only for a machine whose only network interface is loopback (a CI
    container); Chromium then also needs ``--allow-loopback-in-peer-connection``.
    Enabled by ``FER_STUDIO_WEBRTC_LOOPBACK=1``.
    """
    from aioice import ice

    if getattr(ice.get_host_addresses, "fer_studio_loopback", False):
        return
    original = ice.get_host_addresses

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        return addresses + ["127.0.0.1"] if use_ipv4 and "127.0.0.1" not in addresses else addresses

    with_loopback.fer_studio_loopback = True
    ice.get_host_addresses = with_loopback


@dataclass(frozen=True)
class LiveSnapshot:
    """What the live panel shows, copied out of the session under its lock."""

    frames: int
    fps: float
    analysis_ms: float
    delay_ms: float
    latest: FrameResult | None
    rows: list[dict]
    error: str
    stalled: bool = False  # no frame for STALLED_SECONDS: the stream stopped (or froze)


class LiveSession:
    """One browser stream's analysis state, shared by the WebRTC thread and the page.

    Args:
        loaded: The model.
        settings: Detector, interval, smoothing.
        max_rows: Per-face rows kept (oldest dropped first).
        clock: Seconds, monotonic (``time.monotonic``; a test's own clock).
    """

    def __init__(self, loaded, settings: StreamSettings, *, max_rows: int = MAX_ROWS,
                 clock=time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._analyzer = FrameAnalyzer(loaded, settings)
        self._lock = threading.Lock()
        self._rows: deque[dict] = deque(maxlen=max_rows)
        self._times: deque[float] = deque(maxlen=FPS_WINDOW)
        self._costs: deque[float] = deque(maxlen=FPS_WINDOW)
        self._transits: deque[float] = deque(maxlen=TRANSIT_WINDOW)
        self._delays: deque[float] = deque(maxlen=FPS_WINDOW)
        self._last_source_time: float | None = None
        self._last_arrival = 0.0
        self._start: float | None = None
        self._frames = 0
        self._latest: FrameResult | None = None
        self._error = ""

    def analyze(self, image: np.ndarray, now: float | None = None) -> np.ndarray:
        """Analyse one RGB frame and return it annotated (boxes, ids, emotions, frames/s, delay)."""
        now = self._clock() if now is None else now
        with self._lock:
            if self._start is None:
                self._start = now
            try:
                result = self._analyzer.process(image, now - self._start)
            except ValueError as error:
                self._error = str(error)
                return image
            self._times.append(now)
            self._costs.append(result.seconds)
            self._frames += 1
            self._latest = result
            self._rows.extend(frame_rows(result))
            fps = self._fps()
            delay = self._delay()
        canvas = draw_frame(image, result)
        text = f"{fps:.1f} fps" + (f", {delay * 1000:.0f} ms behind" if delay is not None else "")
        _, font_scale, thin = label_style(canvas.shape)  # the size of the face labels: readable on a phone too
        corner = (8, 8 + round(22 * font_scale))
        cv2.putText(canvas, text, corner, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thin + 3, cv2.LINE_AA)
        cv2.putText(canvas, text, corner, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255), thin, cv2.LINE_AA)
        return canvas

    def process_frame(self, frame):
        """``video_frame_callback`` for ``webrtc_streamer``: ``av.VideoFrame`` in, annotated ``av.VideoFrame`` out."""
        import av

        arrived = self._clock()
        canvas = self.analyze(frame.to_ndarray(format="rgb24"), now=arrived)
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas), format="rgb24")
        out.pts, out.time_base = frame.pts, frame.time_base
        self.record_delay(arrived, self._clock(), frame.time)
        return out

    def record_delay(self, arrived: float, done: float, source_time: float | None) -> None:
        """Count how long the frame stamped ``source_time`` waited and was worked on before its annotated copy was ready.

        ``source_time`` is the frame's own timestamp (RTP, seconds, with an
        unknown start), so ``arrived - source_time`` is the transit from the
        camera plus a constant. The quickest transit of the last
        ``TRANSIT_WINDOW`` frames stands for "no wait" (with asynchronous
        processing the newest queued frame is taken, so frames that did not
        wait come often); each frame's delay is how much later than that
        its annotated copy was ready: waiting for the network beyond the
        quickest frame's transit, for the analysis of the frame before, and
        its own analysis. Encoding, the network's fixed transit and the
        browser's display add their own, which the server cannot see.
        A new stream (Stop, then Start) has timestamps from a new random
        start, so timestamps that go back, or a frame after 2 s without one,
        start the measurement again.
        """
        if source_time is None:
            return
        source_time = float(source_time)
        with self._lock:
            restarted = self._last_source_time is not None and (
                source_time < self._last_source_time or arrived - self._last_arrival > STALLED_SECONDS)
            if restarted:
                self._transits.clear()
                self._delays.clear()
            self._last_source_time, self._last_arrival = source_time, arrived
            self._transits.append(arrived - source_time)
            self._delays.append(max(0.0, done - source_time - min(self._transits)))

    def _fps(self) -> float:
        if len(self._times) < MIN_FPS_FRAMES:
            return 0.0  # two frames after a (re)start gave "14.3 fps" beside 634 ms per frame (walk s9)
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)

    def _delay(self) -> float | None:
        if len(self._delays) < MIN_FPS_FRAMES:
            return None
        return float(np.median(self._delays))

    def snapshot(self, now: float | None = None) -> LiveSnapshot:
        """A consistent copy of the counters, the latest frame's result and the rows.

        The frame rate reads 0 when no frame came for 2 s before ``now``
        (the session's clock by default): the stream stopped. The delay
        (median of the last ``FPS_WINDOW`` frames, see :meth:`record_delay`)
        reads 0 until ``MIN_FPS_FRAMES`` frames are measured, and when stopped.
        """
        with self._lock:
            now = self._clock() if now is None else now
            stale = bool(self._times) and now - self._times[-1] > STALLED_SECONDS
            cost = 1000.0 * float(np.median(self._costs)) if self._costs else 0.0
            delay = self._delay()
            delay_ms = 0.0 if stale or delay is None else 1000.0 * delay
            return LiveSnapshot(self._frames, 0.0 if stale else self._fps(), cost, delay_ms, self._latest,
                                list(self._rows), self._error, stale)

    def reset(self) -> None:
        """Forget faces, rows and timing (a new recording)."""
        with self._lock:
            self._analyzer.reset()
            self._rows.clear()
            self._times.clear()
            self._costs.clear()
            self._transits.clear()
            self._delays.clear()
            self._last_source_time = None
            self._start, self._frames, self._latest, self._error = None, 0, None, ""


# The rows of the session's earlier parts: a settings change starts a new LiveSession (new face ids, new
# smoothing), and its rows used to go with the old one without a word (review s20). Kept for the CSV, capped.
EARLIER_PARTS_KEY = "live_earlier_parts"


def live_session(loaded, model_paths: tuple[str, ...], settings: StreamSettings) -> LiveSession:
    """The page's :class:`LiveSession`, rebuilt when the model(s) or the settings change; the rows recorded under the
    earlier settings are kept as an earlier part of the session's CSV (:func:`earlier_parts_csv`)."""
    key = (tuple(model_paths), settings)
    stored = st.session_state.get("live_session")
    if stored is None or stored[0] != key:
        if stored is not None:
            rows = stored[1].snapshot().rows
            if rows:
                parts = st.session_state.setdefault(EARLIER_PARTS_KEY, [])
                parts.append(rows)
                while sum(len(part) for part in parts) > MAX_ROWS and len(parts) > 1:
                    parts.pop(0)  # the oldest part goes first, as the oldest rows do within a part
        stored = (key, LiveSession(loaded, settings))
        st.session_state["live_session"] = stored
    return stored[1]


def earlier_parts_csv(parts: list[list[dict]]) -> bytes:
    """The earlier parts' rows as one CSV, with a first column ``part`` (1 = the oldest kept)."""
    import pandas as pd

    tables = [pd.DataFrame(rows, columns=CSV_COLUMNS).assign(part=number) for number, rows in enumerate(parts, start=1)]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=[*CSV_COLUMNS, "part"])
    return table[["part", *CSV_COLUMNS]].to_csv(index=False).encode("utf-8")


def prominent_face(rows: list[dict]) -> int | None:
    """The face id with the largest box on the latest frame that has faces (the person nearest the camera)."""
    if not rows:
        return None
    last_frame = rows[-1]["frame"]
    latest = [row for row in rows[-20:] if row["frame"] == last_frame]
    return max(latest, key=lambda row: row["w"] * row["h"])["face_id"]


def stream_ui(session: LiveSession):
    """The camera stream (start/stop in the component); returns the ``webrtc_streamer`` context, or ``None``."""
    from dashboard.access import camera_blocked_ui

    camera_blocked_ui()  # the component itself would only say "navigator.mediaDevices is undefined"
    webrtc = load_webrtc()
    if os.environ.get(LOOPBACK_ENV) == "1":
        allow_loopback_candidates()
    try:
        servers = ice_servers()
    except ValueError as error:
        st.error(f"Cannot start the camera stream: {literal(error, None)}")
        return None
    return webrtc.webrtc_streamer(
        key="live_camera",
        mode=webrtc.WebRtcMode.SENDRECV,
        rtc_configuration={"iceServers": servers},
        media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
        video_frame_callback=session.process_frame,
        async_processing=True,
    )


@st.fragment(run_every=1.0)
def live_panel_ui() -> None:
    """Measured frames/s, the faces now, the most prominent face's timeline and the CSV; refreshes itself each second."""
    import pandas as pd

    from dashboard.video_widgets import emotion_timeline_figure

    stored = st.session_state.get("live_session")
    if stored is None:
        return
    snapshot = stored[1].snapshot()
    if snapshot.error:
        st.warning(f"A frame could not be analysed: {literal(snapshot.error, 300)}")
    columns = st.columns(3)
    columns[0].metric("fps", f"{snapshot.fps:.1f}" if snapshot.fps else "—",
                      help=f"Frames analysed per second, over the last {FPS_WINDOW} (shown from the {MIN_FPS_FRAMES}th)")
    columns[1].metric("Behind", f"{snapshot.delay_ms:.0f} ms" if snapshot.delay_ms else "—",
                      help="How long after a camera frame reached the server its annotated copy was ready, beyond the "
                           f"quickest frame's transit (median of the last {FPS_WINDOW}): waiting for the frame being "
                           "analysed, then its own analysis. The network's transit, video encoding and the browser's "
                           "display add their own (tens of ms on this machine or a LAN)")
    columns[2].metric("Frames", f"{snapshot.frames}")
    if snapshot.frames:
        st.caption(f"Analysis: {snapshot.analysis_ms:.0f} ms per frame (median of the last {FPS_WINDOW}); "
                   "frames arriving while one is analysed are skipped")
    faces = snapshot.latest.faces if snapshot.latest is not None else ()
    now_text = ", ".join(f"#{face.face_id} {face.emotion}" for face in faces) if faces else "no face"
    if snapshot.stalled:  # after Stop, "Now: #6 happy" read as a face still seen (walk s21)
        now_text = f"no frame for {STALLED_SECONDS:.0f} s (stopped); the last one had {now_text}"
    st.markdown(f"**Now:** {now_text}" if snapshot.frames
                else "**Now:** no frame yet — press Start and allow the camera (an error above the video says why "
                     "none comes)")
    face_id = prominent_face(snapshot.rows)
    if face_id is not None:
        table = pd.DataFrame(snapshot.rows, columns=CSV_COLUMNS)
        table = table[table["time_s"] >= table["time_s"].max() - TIMELINE_SECONDS]
        seen = table.loc[table["face_id"] == face_id, "time_s"]
        span = float(seen.max() - seen.min()) if len(seen) else 0.0
        # The span the chart holds: "last 60 s" over a face id first seen 2 s ago promised more (walk s21).
        title = (f"Face #{face_id}, last {TIMELINE_SECONDS:.0f} s" if span >= TIMELINE_SECONDS - 1
                 else f"Face #{face_id}, seen for {span:.0f} s")
        st.plotly_chart(emotion_timeline_figure(table, face_id, title=title),
                        key="live_timeline", config=CHART_CONFIG)
    if snapshot.rows:
        csv_bytes = pd.DataFrame(snapshot.rows, columns=CSV_COLUMNS).to_csv(index=False).encode("utf-8")
        st.download_button("Download this session's CSV", csv_bytes, file_name="live_emotions.csv", mime="text/csv",
                           key="live_csv", on_click="ignore", icon=":material/download:")
    parts = st.session_state.get(EARLIER_PARTS_KEY) or []
    if parts:
        rows = sum(len(part) for part in parts)
        st.caption(f"The settings changed {'once' if len(parts) == 1 else f'{len(parts)} times'} during this session: "
                   f"the counts, timeline and CSV above start from the last change, and the "
                   f"{counted(rows, 'row')} recorded before it are kept apart.")
        st.download_button("Download the CSV from before the settings changed", lambda: earlier_parts_csv(parts),
                           file_name="live_emotions_earlier.csv", mime="text/csv", key="live_csv_earlier",
                           on_click="ignore", icon=":material/download:")
