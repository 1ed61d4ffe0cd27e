"""Widgets of the Video and Live pages: stream settings, emotion timelines, a video file's analysis and results.

The analysis itself is ``core.video.analyze_video``; this module gives it an
upload (written to a temporary folder that is removed afterwards), draws a
progress bar, and keeps the outcome in the session, keyed by the file's
digest, the settings and the model file's version, so clicks on the results
do not analyse again.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from core.detect import list_detectors
from core.labels import CLASS_NAMES
from core.predict import EMOTION_COLORS
from core.smoothing import DEFAULT_SMOOTHING, DEFAULT_WINDOW, SMOOTHING_LABELS, SMOOTHING_MODES
from core.video import DEFAULT_VIDEO_DETECTOR, StreamSettings
from core.video_io import VIDEO_EXTENSIONS
from dashboard.url_state import remember_choice, url_choice

VIDEO_TYPES = [extension.lstrip(".") for extension in VIDEO_EXTENSIONS]
# Uploads above this are refused with a message (the server accepts up to its own maxUploadSize).
MAX_VIDEO_MB = 200
TIMELINE_HEIGHT = 320


@dataclass(frozen=True)
class VideoAnalysis:
    """A finished analysis: the report, the per-frame table and the two files' bytes."""

    report: object  # core.video.VideoReport
    table: object  # pandas.DataFrame with core.video.CSV_COLUMNS
    csv_bytes: bytes
    video_bytes: bytes


def stream_settings_sidebar_ui(prefix: str, *, every: bool = True) -> tuple[tuple[str, ...], StreamSettings] | None:
    """Model (and models to average it with), detector, detection interval, smoothing and window in the sidebar.

    The model, detector, interval, smoothing and window are in the URL
    (``?model=``, ``?detector=``, ``?every=``, ``?smoothing=``, ``?window=``;
    defaults are left out), so a reload or a shared link shows the same setup.

    Returns:
        ``(model paths, StreamSettings)``: one path, or several for an
        ensemble; ``None`` (with an explanation) when no model exists.
    """
    from dashboard.model_menu import ensemble_select_ui, model_select_ui

    with st.sidebar:
        st.subheader("Analysis")
        model_path = model_select_ui(f"{prefix}_model", help="The bundled model or a finished run's best.keras")
        if model_path is None:
            return None
        extra = ensemble_select_ui(f"{prefix}_ensemble", model_path)
        detectors = {spec.name: spec.summary for spec in list_detectors()}
        names = list(detectors)
        url_choice(f"{prefix}_detector", names, DEFAULT_VIDEO_DETECTOR, param="detector", noun="face detector")
        detector = st.selectbox("Face detector", names, key=f"{prefix}_detector", format_func=str.upper,
                                help=" · ".join(f"{name.upper()}: {summary}" for name, summary in detectors.items()))
        remember_choice(detector, param="detector", default=DEFAULT_VIDEO_DETECTOR)
        interval = 1
        if every:
            url_choice(f"{prefix}_every", list(range(1, 11)), 1, param="every", noun="detection interval")
            interval = st.slider("Detect faces every N-th frame", 1, 10, key=f"{prefix}_every",
                                 help="Between detections the tracker follows each face; 2-3 is about twice as fast "
                                      "(MTCNN gains most)")
            remember_choice(interval, param="every", default=1)
        url_choice(f"{prefix}_smoothing", list(SMOOTHING_MODES), DEFAULT_SMOOTHING, param="smoothing", noun="smoothing")
        smoothing = st.selectbox("Smoothing", SMOOTHING_MODES, key=f"{prefix}_smoothing", format_func=SMOOTHING_LABELS.get,
                                 help="How each face's shown emotion is steadied over time")
        remember_choice(smoothing, param="smoothing", default=DEFAULT_SMOOTHING)
        url_choice(f"{prefix}_window", list(range(1, 61)), DEFAULT_WINDOW, param="window", noun="smoothing window")
        window = st.slider("Smoothing window (frames)", 1, 60, key=f"{prefix}_window",
                           help="Vote: the most frequent emotion of this many frames (10: the thesis' rule). "
                                "EMA: the average looks back about this many frames")
        remember_choice(window, param="window", default=DEFAULT_WINDOW)
    paths = (str(model_path), *extra)
    return paths, StreamSettings(detector=detector, every=int(interval), smoothing=smoothing, window=int(window))


def emotion_timeline_figure(table, face_id: int, *, height: int = TIMELINE_HEIGHT, title: str = "") -> go.Figure:
    """Probabilities of the seven emotions over time for one face (lines), the shown emotion as a coloured strip.

    Args:
        table: Rows with ``core.video.CSV_COLUMNS`` (a DataFrame).
        face_id: The face to plot.
    """
    rows = table[table["face_id"] == face_id].sort_values("time_s")
    figure = go.Figure()
    for name in CLASS_NAMES:
        figure.add_trace(go.Scatter(x=rows["time_s"], y=rows[name], mode="lines", name=name,
                                    line={"color": f"rgb{EMOTION_COLORS[name]}", "width": 2},
                                    hovertemplate=f"{name} %{{y:.0%}} at %{{x:.2f}} s<extra></extra>"))
    figure.add_trace(go.Scatter(
        x=rows["time_s"], y=[1.06] * len(rows), mode="markers", name="shown",
        marker={"symbol": "square", "size": 7, "color": [f"rgb{EMOTION_COLORS.get(e, (255, 255, 255))}" for e in rows["emotion"]]},
        text=rows["emotion"], hovertemplate="shown: %{text} at %{x:.2f} s<extra></extra>", showlegend=False))
    figure.update_layout(title=title or None, height=height, margin={"t": 40 if title else 10, "b": 10, "l": 10, "r": 10},
                         yaxis={"range": [0, 1.1], "tickformat": ".0%", "title": None},
                         xaxis={"title": "seconds"}, legend={"orientation": "h", "y": -0.25})
    return figure


def upload_digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:16]


def analyze_upload(data: bytes, name: str, loaded, settings: StreamSettings, model_paths: tuple[str, ...]) -> VideoAnalysis | None:
    """Analyse uploaded video bytes with a progress bar; ``st.error`` and ``None`` for a file that cannot be used.

    The upload and both outputs live in a temporary folder removed before
    this returns, whatever happens. The result is kept in the session.
    """
    import pandas as pd

    from core.video import analyze_video

    if len(data) > MAX_VIDEO_MB * 1024**2:
        st.error(f"`{name}` is {len(data) / 1024**2:.0f} MB; the limit is {MAX_VIDEO_MB} MB. "
                 "Cut the video, or analyse it from the command line: `python -m core video FILE`.")
        return None
    suffix = Path(name).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        st.error(f"`{name}` is not a video file name (expected {', '.join(VIDEO_TYPES)}).")
        return None
    from dashboard.predict_widgets import model_stamp

    key = ("video_analysis", upload_digest(data), settings, tuple(model_paths), model_stamp(tuple(model_paths)))
    cached = st.session_state.get("video_analysis")
    if cached is not None and cached[0] == key:
        return cached[1]
    progress = st.progress(0.0, text=f"Analysing {name}…")

    def show(update) -> None:
        fraction = update.frames_done / update.frames_total if update.frames_total else 0.0
        eta = f", about {update.eta_s:.0f} s left" if update.eta_s is not None else ""
        if update.frames_done % 5 == 0 or fraction >= 1:
            progress.progress(min(1.0, fraction), text=f"Analysing {name}: frame {update.frames_done}"
                              f"{f' of {update.frames_total}' if update.frames_total else ''} · {update.fps:.1f} frames/s{eta}")

    try:
        with tempfile.TemporaryDirectory(prefix="fer-video-") as folder:
            source = Path(folder) / f"upload{suffix}"
            source.write_bytes(data)
            csv_path, video_path = Path(folder) / "faces.csv", Path(folder) / "annotated.mp4"
            report = analyze_video(source, loaded, settings, csv_path=csv_path, annotated_path=video_path, progress=show)
            report = _renamed(report, name)
            csv_bytes = csv_path.read_bytes()
            video_bytes = video_path.read_bytes() if video_path.exists() else b""
            table = pd.read_csv(csv_path)
    except (ValueError, FileNotFoundError, OSError) as error:
        progress.empty()
        st.error(f"Cannot analyse `{name}`: {error}")
        return None
    progress.empty()
    analysis = VideoAnalysis(report, table, csv_bytes, video_bytes)
    st.session_state["video_analysis"] = (key, analysis)
    return analysis


def _renamed(report, name: str):
    from dataclasses import replace

    return replace(report, source=name, csv_path=None, annotated_path=None)


def video_results_ui(analysis: VideoAnalysis, *, key: str = "video") -> None:
    """Headline numbers, warnings, the annotated video, per-face timelines, the summary table and downloads."""
    from core.video import summary_table

    report = analysis.report
    for warning in report.warnings:
        st.warning(warning)
    columns = st.columns(4)
    columns[0].metric("Frames", f"{report.frames}", help=f"{report.width}×{report.height}, {report.fps:g} fps, {report.duration_s:.1f} s")
    columns[1].metric("Faces (ids)", f"{report.face_ids}")
    columns[2].metric("Frames with a face", f"{report.frames_with_faces / max(report.frames, 1):.0%}")
    columns[3].metric("Analysis speed", f"{report.analysis_fps:.1f} frames/s", help=f"{report.elapsed_s:.1f} s in all")
    stem = Path(report.source).stem or "video"
    video_column, table_column = st.columns([3, 2])
    with video_column:
        if analysis.video_bytes:
            st.video(analysis.video_bytes, format="video/mp4")
    with table_column:
        st.markdown("**Per face**: time on screen and share of it per emotion")
        st.dataframe(summary_table(report.faces), hide_index=True, width="stretch",
                     column_config={name: st.column_config.ProgressColumn(name, format="percent", min_value=0, max_value=1)
                                    for name in CLASS_NAMES})
        buttons = st.columns(2)
        buttons[0].download_button("Download CSV", analysis.csv_bytes, file_name=f"{stem}_emotions.csv", mime="text/csv",
                                   key=f"{key}_csv", icon=":material/download:")
        if analysis.video_bytes:
            buttons[1].download_button("Download annotated video", analysis.video_bytes, file_name=f"{stem}_annotated.mp4",
                                       mime="video/mp4", key=f"{key}_mp4", icon=":material/download:")
    if report.faces:
        face_ids = [face.face_id for face in report.faces]
        longest = max(report.faces, key=lambda face: face.seconds).face_id
        chosen = st.selectbox("Emotion timeline of face", face_ids, index=face_ids.index(longest), key=f"{key}_face",
                              format_func=lambda face_id: f"#{face_id}",
                              help="The longest-seen face first; lines are the model's probabilities per frame, "
                                   "the strip on top the smoothed emotion shown in the video")
        st.plotly_chart(emotion_timeline_figure(analysis.table, chosen), key=f"{key}_timeline")
