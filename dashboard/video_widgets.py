"""Widgets of the Video and Live pages: stream settings, emotion timelines, a video file's analysis and results.

The analysis runs in a background worker (``core.video_jobs``): this module
starts it for an upload, keeps its id in the URL (``?job=``) so a reload finds
it again, draws its progress (with Cancel) until it ends, then its results.
The same upload with the same settings and model files finds the finished
analysis instead of starting another; a cancelled or failed one stays so until
the user asks for it again ("Analyse again", or a new upload): a rerun never restarts it.
"""

from __future__ import annotations

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
from core.video_jobs import MAX_JOB_FRAMES, VIDEO_FORMATS, VideoJob
from dashboard.charts import CHART_CONFIG
from dashboard.text import literal, quoted
from dashboard.url_state import arrived, remember_choice, url_choice

VIDEO_TYPES = [extension.lstrip(".") for extension in VIDEO_EXTENSIONS]
# The uploader refuses larger files in the browser (max_upload_size); the page checks again.
MAX_VIDEO_MB = 200
UPLOAD_HELP = (f"{VIDEO_FORMATS} up to {MAX_VIDEO_MB} MB; the first {MAX_JOB_FRAMES:,} frames (30 minutes at 30 "
               "frames/s) are analysed; frames larger than 1280 px are downscaled first")
TIMELINE_HEIGHT = 320
# Column widths of the per-face table (pixels): 5 narrow + 8 emotion columns fit the ~940 px of a 1400 px desktop.
SUMMARY_NARROW_PX = 64
SUMMARY_EMOTION_PX = 74


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
        model_path = model_select_ui(f"{prefix}_model")
        if model_path is None:
            return None
        extra = ensemble_select_ui(f"{prefix}_ensemble", model_path)
        detectors = {spec.name: spec for spec in list_detectors()}
        names = list(detectors)
        url_choice(f"{prefix}_detector", names, DEFAULT_VIDEO_DETECTOR, param="detector", noun="face detector")
        detector = st.selectbox("Face detector", names, key=f"{prefix}_detector",
                                format_func=lambda name: detectors[name].label,
                                help=" · ".join(f"{spec.label}: {spec.summary}" for spec in detectors.values()))
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
                                 help="How each face's shown emotion is steadied over time. The number beside a "
                                      "drawn emotion says what backs it: with Vote its votes among the last frames "
                                      "(\"surprise 7/10\"), with EMA the averaged probability, with None the frame's own")
        remember_choice(smoothing, param="smoothing", default=DEFAULT_SMOOTHING)
        url_choice(f"{prefix}_window", list(range(1, 61)), DEFAULT_WINDOW, param="window", noun="smoothing window")
        window = st.slider("Smoothing window (frames)", 1, 60, key=f"{prefix}_window",
                           help="Vote: the most frequent emotion of this many frames (10: the thesis' rule). "
                                "EMA: the average looks back about this many frames")
        remember_choice(window, param="window", default=DEFAULT_WINDOW)
    paths = (str(model_path), *extra)
    return paths, StreamSettings(detector=detector, every=int(interval), smoothing=smoothing, window=int(window))


# Height of the timeline's strip of shown emotions, over the probability lines (0 to 1).
SHOWN_STRIP_Y = 1.12


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
        x=rows["time_s"], y=[SHOWN_STRIP_Y] * len(rows), mode="markers", name="shown",
        marker={"symbol": "square", "size": 7, "color": [f"rgb{EMOTION_COLORS.get(e, (255, 255, 255))}" for e in rows["emotion"]]},
        text=rows["emotion"], hovertemplate="shown: %{text} at %{x:.2f} s<extra></extra>", showlegend=False))
    # The top margin holds Plotly's toolbar (always shown on a touch screen), which lay over the strip's last
    # markers on a phone (walk s22); the strip sits far enough above 100% for its label not to touch that tick.
    figure.update_layout(title=title or None, height=height, margin={"t": 40 if title else 32, "b": 10, "l": 10, "r": 10},
                         # The strip above 100% is named on the axis (walk s10: unexplained squares over the lines).
                         yaxis={"range": [0, SHOWN_STRIP_Y + 0.05], "title": None, "tickvals": [0, 0.5, 1.0, SHOWN_STRIP_Y],
                                "ticktext": ["0%", "50%", "100%", "shown"]},
                         xaxis={"title": "seconds"}, legend={"orientation": "h", "y": -0.25})
    return figure


JOB_PARAM = "job"
_UPLOADED_KEY = "video_had_upload"
_ANALYSIS_KEY = "video_analysis"
_AGAIN_KEY = "video_again"
_UPLOAD_ID_KEY = "video_upload_id"
_STARTED_KEY = "video_started_job"  # the folder of the last analysis this session handed to a worker
_SHOWN_KEY = "video_shown_job"  # the id of the last analysis this session showed: found again on return to the page
_CANCELLED_KEY = "video_cancelled_here"  # the jobs this session cancelled with the Cancel button
CANCELLED_BY_BUTTON = "cancelled with its Cancel button"
CANCELLED_BY_REPLACING = "cancelled when the page that started it took another upload or other settings"
CANCELLED_BY_REMOVING = "cancelled when its upload was removed from the page that started it"


def keep_worker_warm(model_paths: tuple[str, ...], settings: StreamSettings) -> None:
    """Keep a worker with TensorFlow, these models and the chosen detector loaded for the next upload.

    Importing TensorFlow took a cold worker about 10 s before its first frame;
    the standby (``core.video_jobs.warm_standby``) does it while the user picks a file.
    """
    from core.video_jobs import warm_standby

    warm_standby(model_paths, detector=settings.detector)


def start_job_ui(data: bytes, name: str, settings: StreamSettings, model_paths: tuple[str, ...],
                 upload_id: str | None = None) -> VideoJob | None:
    """Start (or find) the background analysis of uploaded video bytes and put its id in the URL (``?job=``).

    A cancelled or failed analysis of the same bytes is found, not restarted,
    unless the user just clicked "Analyse again" (see :func:`video_job_ui`) or
    uploaded the file anew (another ``upload_id``: the uploader's ``file_id``).

    Returns:
        The job; ``None`` with an ``st.error`` for a file that cannot be used.
    """
    import hashlib

    from core.video_jobs import VideoJobsBusy, start_video_job, video_job_id

    st.session_state[_UPLOADED_KEY] = True
    if len(data) > MAX_VIDEO_MB * 1024**2:
        st.error(f"{quoted(name)} is {len(data) / 1024**2:.0f} MB; the limit is {MAX_VIDEO_MB} MB. "
                 "Cut the video, or analyse it from the command line: `python -m core video FILE`.")
        return None
    if Path(name).suffix.lower() not in VIDEO_EXTENSIONS:
        st.error(f"{quoted(name)} is not a video file name (expected {VIDEO_FORMATS}).")
        return None
    asked_again = st.session_state.pop(_AGAIN_KEY, False)
    # A deliberate upload (not a rerun with the same one) analyses anew what was cancelled or failed.
    new_upload = upload_id is not None and st.session_state.get(_UPLOAD_ID_KEY) != upload_id
    digest = hashlib.sha256(data).hexdigest()
    try:
        wanted = video_job_id(digest, settings.validate(), model_paths)
    except ValueError:
        wanted = None  # start_video_job says what is wrong
    # This session's earlier analysis, replaced by another upload or other settings, stops first: nobody waits
    # for it here any more, and it holds one of the server's workers (probe s18: three uploads, three workers).
    cancel_replaced_job_ui(keep=wanted)
    try:
        job = start_video_job(data, name, settings, model_paths, again=asked_again or new_upload, digest=digest)
    except VideoJobsBusy as busy:
        if asked_again:
            st.session_state[_AGAIN_KEY] = True  # still asked when a worker is free
        running = f"{busy.running} analysis is" if busy.running == 1 else f"{busy.running} analyses are"
        st.info(f"Waiting for a free worker to analyse {quoted(name)}: {running} running, the most this server runs "
                "at once. It starts by itself when one ends; keep this page open.",
                icon=":material/hourglass_top:")
        _start_when_a_worker_is_free(busy.limit)
        return None
    except (ValueError, OSError) as error:
        st.error(f"Cannot analyse {quoted(name)}: {literal(error, None)}")
        return None
    if upload_id is not None:
        st.session_state[_UPLOAD_ID_KEY] = upload_id
    if job.started_now:
        st.session_state[_STARTED_KEY] = str(job.folder)
    if st.query_params.get(JOB_PARAM) != job.job_id:
        st.query_params[JOB_PARAM] = job.job_id
    st.session_state[_SHOWN_KEY] = job.job_id
    return job


def cancel_replaced_job_ui(keep: str | None = None, reason: str = CANCELLED_BY_REPLACING) -> None:
    """Cancel the analysis this session last started, unless its id is ``keep`` or it has ended."""
    from core.video_jobs import cancel_video_job, read_video_job

    started = st.session_state.get(_STARTED_KEY)
    if not started or Path(started).name == keep:
        return
    st.session_state.pop(_STARTED_KEY, None)
    folder = Path(started)
    if folder.is_dir() and read_video_job(folder).active:
        cancel_video_job(folder, reason)


@st.fragment(run_every=2.0)
def _start_when_a_worker_is_free(limit: int) -> None:
    """Redraw the page (which starts the waiting upload) once fewer than ``limit`` analyses run."""
    from core.video_jobs import running_jobs

    if len(running_jobs()) < limit:
        st.rerun()


def linked_job_ui() -> VideoJob | None:
    """The analysis named by ``?job=`` (after a reload, or in a shared link); ``None`` when there is none.

    A link to an analysis that is no longer kept gets a warning. When the user
    removed the upload in this session, the link is dropped with it. Back on
    the page from another one (which empties the uploader and, through the
    sidebar, the URL), the analysis this session last showed is shown again.
    """
    from core.video_jobs import read_video_job, video_job_dir

    if arrived():
        # Review s20: the uploader came back empty because another page ran, not because the upload was removed;
        # Back to /video?job=… read that as a removal and cancelled the analysis, and the sidebar's Video link
        # (no ?job=) lost it, though the page says "you can leave this page".
        st.session_state.pop(_UPLOADED_KEY, None)
        if st.query_params.get(JOB_PARAM) is None and st.session_state.get(_SHOWN_KEY):
            st.query_params[JOB_PARAM] = st.session_state[_SHOWN_KEY]
    job_id = st.query_params.get(JOB_PARAM)
    if job_id is None:
        return None
    if st.session_state.pop(_UPLOADED_KEY, False):
        del st.query_params[JOB_PARAM]  # the upload was removed: so is its analysis from the view,
        st.session_state.pop(_SHOWN_KEY, None)
        cancel_replaced_job_ui(reason=CANCELLED_BY_REMOVING)  # and the analysis this session started for it stops
        return None
    try:
        folder = video_job_dir(job_id)
    except ValueError:
        folder = None
    if folder is None or not (folder / "job.json").is_file():
        st.warning(f"The video analysis {quoted(job_id, 60)} in this link is not available "
                   "(analyses are kept for a day after their last use). Upload the video again.",
                   icon=":material/link_off:")
        if st.session_state.get(_SHOWN_KEY) == job_id:
            st.session_state.pop(_SHOWN_KEY, None)
        return None
    st.session_state[_SHOWN_KEY] = job_id
    return read_video_job(folder)


def _frames(window: object) -> str:
    """``10 frames``, ``1 frame``; an old job's odd value as it is."""
    return f"{window} frame" if window == 1 else f"{window} frames"


def _every_text(every: int) -> str:
    return "every frame" if every == 1 else f"every {every}{'nd' if every == 2 else 'rd' if every == 3 else 'th'} frame"


def _detector_label(name: object) -> str:
    """A detector's name for people ("Haar cascade"); a name that is no detector (an old job's) as it is."""
    from core.detect import get_detector

    try:
        return get_detector(str(name)).label
    except ValueError:
        return str(name)


def analysed_with(job: VideoJob) -> tuple[tuple[str, ...], dict] | None:
    """The model files and the settings (``StreamSettings`` as a dict) a job was started with; ``None`` if unknown."""
    from core import runs

    request = runs.read_json(job.folder / "job.json", {}) or {}
    models, settings = request.get("models"), request.get("settings")
    if not isinstance(models, list) or not models or not isinstance(settings, dict):
        return None
    return tuple(str(path) for path in models), settings


def analysed_with_text(models: tuple[str, ...], settings: dict) -> str:
    """``Analysed by fer_studio_swa · Haar cascade detector on every frame · vote over 10 frames``."""
    from dashboard.model_menu import model_name

    names = [model_name(path) for path in dict.fromkeys(models)]
    text = "Analysed by " + (names[0] if len(names) == 1 else " + ".join(names) + " (probabilities averaged)")
    text += f" · {_detector_label(settings.get('detector'))} detector on {_every_text(int(settings.get('every', 1)))}"
    smoothing = settings.get("smoothing")
    if smoothing == "none":
        return text + " · no smoothing"
    return text + f" · {smoothing} smoothing over {_frames(settings.get('window'))}"


def settings_differences(models: tuple[str, ...], settings: dict, current_models: tuple[str, ...],
                         current: StreamSettings) -> list[str]:
    """What the sidebar now says that a job's results were not made with (``detector: Haar cascade, now MTCNN``)."""
    from dashboard.model_menu import model_name

    differences = []
    if [str(Path(path)) for path in models] != [str(Path(path)) for path in current_models]:
        shown = " + ".join(model_name(path) for path in current_models)
        differences.append(f"model: {' + '.join(model_name(path) for path in models)} here, {shown} in the sidebar")
    if settings.get("detector") != current.detector:
        differences.append(f"detector: {_detector_label(settings.get('detector'))} here, "
                           f"{_detector_label(current.detector)} in the sidebar")
    if settings.get("every") != current.every:
        differences.append(f"detection: {_every_text(int(settings.get('every', 1)))} here, {_every_text(current.every)} "
                           "in the sidebar")
    if settings.get("smoothing") != current.smoothing or (current.smoothing != "none"
                                                           and settings.get("window") != current.window):
        differences.append(f"smoothing: {settings.get('smoothing')} over {_frames(settings.get('window'))} here, "
                           f"{current.smoothing} over {current.window} in the sidebar")
    return differences


def video_job_ui(job: VideoJob, *, can_restart: bool = False,
                 current: tuple[tuple[str, ...], StreamSettings] | None = None) -> None:
    """A running job's progress (refreshed twice a second, with Cancel); a finished job's results or its error.

    A cancelled or failed job is watched every 2 s: started again from another session, it is redrawn running.

    Args:
        job: The job.
        can_restart: The upload is still there: a cancelled or failed job gets
            an "Analyse again" button (the next :func:`start_job_ui` restarts it).
    """
    if job.active:
        _job_progress_panel(job.folder)
        return
    if job.state in ("failed", "cancelled"):
        if job.state == "failed":
            st.error(f"Cannot analyse {quoted(job.source)}: {literal(job.message, None)}")
        else:
            st.info(cancelled_text(job), icon=":material/cancel:")
        if can_restart:
            st.button("Analyse again", key="video_again_button", icon=":material/replay:",
                      on_click=_ask_again,
                      help="Analyse this upload from the start with the settings in the sidebar")
        else:
            st.caption("Upload the video again to analyse it again.")
        _rerun_when_restarted(job.folder)
    else:
        analysis = job_analysis(job)
        if analysis is None:
            st.error(f"The results of {quoted(job.source)} cannot be read; upload the video again.")
        else:
            # Walk s18: reopened from its link, the results did not say which video they were for.
            st.subheader(f"Results for {quoted(job.source)}", divider="gray")
            # Walk s19: reopened from its link after the detector was changed, Haar's results stood under an MTCNN
            # sidebar with nothing saying which settings made them.
            request = analysed_with(job)
            if request is not None:
                st.caption(literal(analysed_with_text(*request), None))
                differences = settings_differences(*request, *current) if current is not None else []
                if differences:
                    st.info("These results were made with other settings than the sidebar's ("
                            + "; ".join(literal(difference, None) for difference in differences)
                            + "). Upload the video again to analyse it with the sidebar's.", icon=":material/tune:")
            video_results_ui(analysis)


def cancelled_text(job: VideoJob) -> str:
    """Who cancelled the job, as far as this session knows: itself, or another tab or viewer (and how)."""
    if job.folder.name in st.session_state.get(_CANCELLED_KEY, ()):
        return f"You cancelled the analysis of {quoted(job.source)}."
    if job.message in (CANCELLED_BY_BUTTON, CANCELLED_BY_REPLACING, CANCELLED_BY_REMOVING):
        # Analyses of the same video and settings are shared: another session may have ended this one.
        return (f"The analysis of {quoted(job.source)} was {job.message}, in another tab or by another person "
                "using this server.")
    return f"The analysis of {quoted(job.source)} was cancelled."


def _ask_again() -> None:
    st.session_state[_AGAIN_KEY] = True  # read by the next start_job_ui, before anything is drawn


@st.fragment(run_every=2.0)
def _rerun_when_restarted(folder: Path) -> None:
    """Redraw the page once the cancelled or failed job shown is started again (from another session or tab).

    Only then: a job removed meanwhile (kept a day, under the size cap) must not redraw a page that still
    holds the upload, which would start it anew without being asked.
    """
    from core.video_jobs import read_video_job

    if read_video_job(folder).active:
        st.rerun()


@st.fragment(run_every=0.5)
def _job_progress_panel(folder: Path) -> None:
    from core.video_jobs import cancel_video_job, read_video_job

    job = read_video_job(folder)
    if not job.active:
        st.rerun()  # draw the results (or the error) with the whole page
    if job.frames_done:
        progress = job.progress
        total = f" of {job.frames_total}" if job.frames_total else ""
        eta = f", about {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
        speed = f"{progress.fps:.1f} frames/s{eta}" if progress.measured else "measuring the speed"
        text = f"Analysing {quoted(job.source)}: frame {job.frames_done}{total} · {speed}"
    else:
        text = f"Analysing {quoted(job.source)}: {literal(job.message)}…"
    st.progress(job.fraction, text=text)
    st.caption("The analysis runs in the background: you can leave this page or reload it, the link keeps it.")
    if st.button("Cancel", key="video_cancel", icon=":material/cancel:", help="Stop this analysis; nothing is kept"):
        cancel_video_job(folder, CANCELLED_BY_BUTTON)
        st.session_state.setdefault(_CANCELLED_KEY, set()).add(folder.name)
        st.rerun()


def job_analysis(job: VideoJob) -> VideoAnalysis | None:
    """A finished job's report, table and files, read once per session and job; ``None`` if they are unreadable."""
    import pandas as pd

    from core.video_jobs import load_report

    cached = st.session_state.get(_ANALYSIS_KEY)
    if cached is not None and cached[0] == job.job_id:
        return cached[1]
    try:
        report = load_report(job.folder)
        csv_bytes = (job.folder / "faces.csv").read_bytes()
        video_path = job.folder / "annotated.mp4"
        video_bytes = video_path.read_bytes() if video_path.exists() else b""
        table = pd.read_csv(job.folder / "faces.csv")
    except (ValueError, OSError):
        return None
    analysis = VideoAnalysis(report, table, csv_bytes, video_bytes)
    st.session_state[_ANALYSIS_KEY] = (job.job_id, analysis)
    return analysis


def video_results_ui(analysis: VideoAnalysis, *, key: str = "video") -> None:
    """Headline numbers, warnings, the annotated video, per-face timelines, the summary table and downloads."""
    from core.video import summary_table

    report = analysis.report
    for warning in report.warnings:
        st.warning(warning)
    columns = st.columns(4)
    columns[0].metric("Frames", f"{report.frames}", help=f"{report.size_text().replace('x', '×')}, {report.fps:g} fps, {report.duration_s:.1f} s")
    brief = len(report.brief_face_ids)
    columns[1].metric("Faces (ids)", f"{report.face_ids}", f"{brief} brief" if brief else None, delta_color="off",
                      delta_arrow="off", help=report.describe_face_ids() + "; brief ones stay in the table and the CSV")
    columns[2].metric("Frames with a face", f"{report.frames_with_faces / max(report.frames, 1):.0%}")
    columns[3].metric("Analysis speed", f"{report.analysis_fps:.1f} frames/s", help=f"{report.elapsed_s:.1f} s in all")
    stem = Path(report.source).stem or "video"
    # The video beside its downloads; the per-face table below at full width, its columns sized so that all
    # thirteen fit a 1400 px desktop without a horizontal scroll.
    video_column, download_column = st.columns([2, 1])
    with video_column:
        if analysis.video_bytes:
            st.video(analysis.video_bytes, format="video/mp4")
    # A video over 1280 px is analysed downscaled: the CSV's boxes are in the file's pixels, the annotated video is
    # at the analysed size; say so where the two are downloaded (review s22).
    shrunk = bool(report.analysed_width) and (report.analysed_width, report.analysed_height) != (report.width,
                                                                                                report.height)
    with download_column:
        st.download_button("Download CSV", analysis.csv_bytes, file_name=f"{stem}_emotions.csv", mime="text/csv",
                           key=f"{key}_csv", icon=":material/download:", width="stretch",
                           help=f"One row per face per frame; boxes in the video's own pixels ({report.width}×"
                                f"{report.height})")
        if analysis.video_bytes:
            st.download_button("Download annotated video", analysis.video_bytes, file_name=f"{stem}_annotated.mp4",
                               mime="video/mp4", key=f"{key}_mp4", icon=":material/download:", width="stretch",
                               help=(f"At the analysed size, {report.analysed_width}×{report.analysed_height}"
                                     if shrunk else None))
    # A short heading: a data grid's toolbar, always shown on a touch screen, lies over the right end of the line
    # above it, and cut "share of it per emotion" at "share of i" on a phone (walk s22).
    st.markdown("**Per face**")
    number = st.column_config.NumberColumn
    columns = {"face_id": number("face", format="#%d", width=SUMMARY_NARROW_PX),
               "seconds": number("seconds", format="%.1f", width=SUMMARY_NARROW_PX),
               "frames": number("frames", width=SUMMARY_NARROW_PX),
               "first_s": number("first s", format="%.1f", width=SUMMARY_NARROW_PX),
               "last_s": number("last s", format="%.1f", width=SUMMARY_NARROW_PX),
               "dominant": st.column_config.TextColumn("dominant", width=SUMMARY_EMOTION_PX)}
    # Whole percents in every row: the "percent" preset printed "100%" beside "35.71%" (walk s21).
    columns.update({name: st.column_config.ProgressColumn(name, format="%.0f%%", min_value=0, max_value=100,
                                                           width=SUMMARY_EMOTION_PX) for name in CLASS_NAMES})
    shown = summary_table(report.faces)
    shown[list(CLASS_NAMES)] = shown[list(CLASS_NAMES)] * 100
    st.dataframe(shown, hide_index=True, width="stretch", column_config=columns)
    st.caption("Each face's time on screen, and the share of that time per emotion shown")
    if report.faces:
        face_ids = [face.face_id for face in report.faces]
        longest = max(report.faces, key=lambda face: face.seconds).face_id
        chosen = st.selectbox("Emotion timeline of face", face_ids, index=face_ids.index(longest), key=f"{key}_face",
                              format_func=lambda face_id: f"#{face_id}",
                              help="The longest-seen face first; lines are the model's probabilities per frame, "
                                   "the strip on top the smoothed emotion shown in the video")
        st.plotly_chart(emotion_timeline_figure(analysis.table, chosen), key=f"{key}_timeline", config=CHART_CONFIG)
