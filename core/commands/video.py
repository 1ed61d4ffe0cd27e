"""``python -m core video``: emotions of every face in a video file, per frame, with stable face ids."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from core.commands import OVERWRITE_HELP, refuse_existing_outputs, unwind_on_sigterm
from core.detect import DEFAULT_MIN_CONFIDENCE, list_detectors
from core.labels import CLASS_NAMES
from core.smoothing import DEFAULT_WINDOW, SMOOTHING_MODES
from core.tracking import DEFAULT_MEMORY
from core.video import DEFAULT_DETECT_SIDE, DEFAULT_STREAM_CONFIRM, DEFAULT_VIDEO_DETECTOR
from core.wording import counted

# The progress bar redraws at most this often (seconds); without a terminal a line is printed this often.
PROGRESS_INTERVAL_TTY = 0.2
PROGRESS_INTERVAL_LOG = 5.0


def register(subparsers) -> None:
    """Add the ``video`` subcommand."""
    parser = subparsers.add_parser(
        "video",
        help="track the faces of a video and classify their emotions frame by frame",
        description="Detect, track and classify every face of a video file (MP4, WebM, MOV, AVI, ...). "
        "Writes one CSV row per face per frame and an annotated H.264 MP4 that browsers play, "
        "and prints a summary per face id. A progress bar (frames/s, ETA) goes to stderr.",
    )
    parser.add_argument("input", type=Path, metavar="INPUT", help="the video file")
    parser.add_argument("--csv", type=Path, metavar="OUT.csv",
                        help="write frame,time_s,face_id,x,y,w,h,emotion and the seven probabilities per face per frame")
    parser.add_argument("--annotated", type=Path, metavar="OUT.mp4", help="write the video with boxes, ids and emotions drawn")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="run the face detector on every N-th frame; the tracker carries the boxes in between (default 1)")
    parser.add_argument("--smooth", choices=SMOOTHING_MODES, default="vote",
                        help="per-face smoothing of the shown emotion: vote (most frequent of the last --window frames), "
                             "ema (moving average of the probabilities) or none (default vote)")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW, metavar="FRAMES",
                        help=f"frames the smoothing looks back (default {DEFAULT_WINDOW})")
    parser.add_argument("--detector", default=DEFAULT_VIDEO_DETECTOR, choices=[spec.name for spec in list_detectors()],
                        help=f"face detector (default {DEFAULT_VIDEO_DETECTOR}: the fastest)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help=f"drop faces the detector scores below this, 0..1 (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--detect-side", type=int, default=DEFAULT_DETECT_SIDE, metavar="PIXELS",
                        help=f"detect on the frame shrunk to this longer side; raise it for small faces (default {DEFAULT_DETECT_SIDE})")
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY, metavar="FRAMES",
                        help=f"frames a face may go undetected and keep its id (default {DEFAULT_MEMORY})")
    parser.add_argument("--confirm", type=int, default=DEFAULT_STREAM_CONFIRM, metavar="ROUNDS",
                        help="detection rounds in a row a new face must be found on before it is shown; keeps the "
                             f"detector's one-frame mistakes out (default {DEFAULT_STREAM_CONFIRM}; 1 = at once)")
    parser.add_argument("--model", type=Path, action="append", default=None, metavar="PATH",
                        help="a .keras model (default: the bundled model); repeat it for an ensemble that averages "
                             "the models' probabilities")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object instead of text")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.set_defaults(run=run_video)


def run_video(args: argparse.Namespace) -> int:
    """Analyse the video; 0 on success (warnings such as 'no face found' are printed, not fatal)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from core.ensemble import load_models
    from core.predict import bundled_model_name, default_model_path
    from core.video import StreamSettings, analyze_video

    settings = StreamSettings(detector=args.detector, every=args.every, smoothing=args.smooth, window=args.window,
                              min_confidence=args.min_confidence, detect_side=args.detect_side,
                              memory=args.memory, confirm=args.confirm).validate()
    if args.input.is_dir():
        raise FileNotFoundError(f"{args.input} is a folder; give one video file (each video is analysed on its own)")
    if not args.input.is_file():
        raise FileNotFoundError(f"no video file at {args.input}")
    for output, suffix in ((args.csv, ".csv"), (args.annotated, ".mp4")):
        if output is not None and output.suffix.lower() != suffix:
            raise ValueError(f"{output.name}: the file name must end in {suffix}")
        if output is not None and output.resolve() == args.input.resolve():
            raise ValueError(f"{output.name} is the input video: choose another output file")
    refuse_existing_outputs((args.csv, args.annotated), args.overwrite)
    model_paths = args.model or [default_model_path()]
    if model_paths[0] is None:
        raise FileNotFoundError(f"no model given and no bundled model at {bundled_model_name()}: "
                                "pass --model runs/<id>/best.keras (train one with `python -m core train`)")
    loaded = load_models(model_paths)
    bar = None if args.quiet else ProgressBar(sys.stderr)

    try:
        # A kill (SIGTERM) unwinds through analyze_video, which removes its partial files, as Ctrl-C does.
        with unwind_on_sigterm():
            report = analyze_video(args.input, loaded, settings, csv_path=args.csv, annotated_path=args.annotated,
                                   progress=bar.update if bar else None)
    except KeyboardInterrupt:
        if bar is not None:
            bar.finish()
            bar = None
        outputs = [path for path in (args.csv, args.annotated) if path is not None]
        print("interrupted: " + ("no output was written (files already at those paths are unchanged)" if outputs
                                 else "the analysis was cut short"), file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.finish()
    if args.json:
        model = str(model_paths[0]) if len(model_paths) == 1 else [str(path) for path in model_paths]
        payload = {"model": model, "classes": list(CLASS_NAMES), **report.to_dict()}
        print(json.dumps(payload, indent=2))
    else:
        print_summary(report)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


class ProgressBar:
    """A one-line progress bar with frames/s and ETA (a line every few seconds when not a terminal)."""

    def __init__(self, stream, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.is_tty = hasattr(stream, "isatty") and stream.isatty()
        self._last = 0.0
        self._text = ""

    def update(self, progress) -> None:
        now = time.monotonic()
        interval = PROGRESS_INTERVAL_TTY if self.is_tty else PROGRESS_INTERVAL_LOG
        done, total = progress.frames_done, progress.frames_total
        if now - self._last < interval and not (total and done >= total):
            return
        self._last = now
        eta = progress.eta_s
        eta_text = f"ETA {int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "ETA ?"
        if total:
            filled = min(self.width, int(self.width * done / total))
            head = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} frames"
        else:
            head = f"{done} frames"
        speed = f"{progress.fps:.1f} frames/s" if progress.measured else "measuring speed"
        self._text = f"{head}  {speed}  {eta_text}"
        if self.is_tty:
            self.stream.write("\r" + self._text + "\x1b[K")
        else:
            self.stream.write(self._text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.is_tty and self._text:
            self.stream.write("\n")
            self.stream.flush()


def print_summary(report) -> None:
    """Human-readable end summary: the run, then one line per face id with its share of time per emotion."""
    print(f"{report.source}: {report.frames} frames ({report.size_text()}, {report.fps:g} fps, "
          f"{report.duration_s:.1f} s) analysed in {report.elapsed_s:.1f} s = {report.analysis_fps:.1f} frames/s; "
          f"{report.describe_face_ids()}, faces on {counted(report.frames_with_faces, 'frame')}")
    if report.faces:
        header = "  ".join(f"{name[:7]:>7}" for name in CLASS_NAMES)
        print(f"  {'face':>4}  {'seconds':>7}  {'seen':<13}  {'mostly':<8}  {header}")
        for face in report.faces:
            shares = "  ".join(f"{face.shares[name]:7.0%}" for name in CLASS_NAMES)
            seen = f"{face.first_s:.1f}-{face.last_s:.1f} s"
            print(f"  {face.face_id:>4}  {face.seconds:7.1f}  {seen:<13}  {face.dominant:<8}  {shares}")
    for label, path in (("CSV", report.csv_path), ("annotated video", report.annotated_path)):
        if path:
            print(f"{label}: {path}")
