"""The frame pipeline shared by the Live page, the Video page and ``python -m core video``.

::

    frames -> detect faces (every k-th frame; the tracker carries boxes in between)
           -> track (stable face ids) -> square_box + prepare_face (the one preprocessing path)
           -> ONE batched model call for all faces of the frame
           -> per-face smoothing (none | vote | ema) -> FrameResult

Any iterable of frames works: a webcam callback feeds one frame at a time
to :class:`FrameAnalyzer`, a file goes through :func:`analyze_video`, a test
passes a list of arrays to :func:`analyze_frames`.

Detection runs on the frame shrunk to :data:`DEFAULT_DETECT_SIDE` pixels
(longer side): webcam and video faces are rarely below 40 px in a 640 px
frame, and the Haar cascade is about 3x faster there than at 640 px. Raise it
for small faces in large frames.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from core.detect import DEFAULT_MIN_CONFIDENCE, detect_faces, get_detector, square_box
from core.files import give_ordinary_mode, temporary_file
from core.labels import CLASS_NAMES
from core.model_io import LoadedModel, predict_probabilities
from core.preprocess import prepare_face
from core.smoothing import DEFAULT_SMOOTHING, DEFAULT_WINDOW, EmotionSmoother, normalize_smoothing
from core.tracking import DEFAULT_MEMORY, FaceTracker
from core.video_io import MAX_FRAME_SIDE, VideoFrame, VideoReader, VideoWriter
from core.wording import counted

DEFAULT_VIDEO_DETECTOR: str = "haar"
DEFAULT_DETECT_SIDE: int = 320
# A new face is shown once the detector has found it on this many detection
# rounds in a row: on the benchmark video this removed every box the Haar
# cascade put on the background, for one frame of delay (bench/bench_video.py).
DEFAULT_STREAM_CONFIRM: int = 2
# Threads that decode and detect ahead of the model for files (process_ahead); two keep both cores of a
# small machine busy, since detection is the slowest stage.
DETECTION_THREADS: int = 2
CSV_COLUMNS: tuple[str, ...] = ("frame", "time_s", "face_id", "x", "y", "w", "h", "emotion", *CLASS_NAMES)


@dataclass(frozen=True)
class StreamSettings:
    """How a stream of frames is analysed; frozen, so it can key caches and travel to a worker.

    Attributes:
        detector: Face detector name (``core.detect.list_detectors``).
        every: Run the detector on every ``every``-th frame; the tracker carries the boxes in between.
        smoothing: ``vote``, ``ema`` or ``none`` (``core.smoothing``).
        window: Frames the smoothing looks back (10: the thesis' most-frequent-of-10 rule).
        min_confidence: Detector score threshold in [0, 1].
        detect_side: Detection runs on the frame shrunk to this longer side.
        memory: Frames a face may go undetected and keep its id.
        confirm: Detection rounds in a row before a new face is shown (1: at once).
    """

    detector: str = DEFAULT_VIDEO_DETECTOR
    every: int = 1
    smoothing: str = DEFAULT_SMOOTHING
    window: int = DEFAULT_WINDOW
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    detect_side: int = DEFAULT_DETECT_SIDE
    memory: int = DEFAULT_MEMORY
    confirm: int = DEFAULT_STREAM_CONFIRM

    def validate(self) -> "StreamSettings":
        """Return ``self`` if every field is usable.

        Raises:
            ValueError: Naming the field, the value and the accepted range.
        """
        get_detector(self.detector)
        normalize_smoothing(self.smoothing)
        if int(self.every) < 1:
            raise ValueError(f"--every must be 1 or more (detect on every N-th frame), got {self.every}")
        if int(self.window) < 1:
            raise ValueError(f"the smoothing window must be at least 1 frame, got {self.window}")
        if not 0.0 <= float(self.min_confidence) <= 1.0:
            raise ValueError(f"the detector confidence must be between 0 and 1, got {self.min_confidence}")
        if int(self.detect_side) < 64:
            raise ValueError(f"the detection size must be at least 64 pixels, got {self.detect_side}")
        if int(self.memory) < 0:
            raise ValueError(f"the tracker memory must be 0 frames or more, got {self.memory}")
        if int(self.confirm) < 1:
            raise ValueError(f"--confirm must be 1 or more (detection rounds before a face is shown), got {self.confirm}")
        return self


@dataclass(frozen=True)
class FaceRecord:
    """One tracked face on one frame.

    Attributes:
        face_id: Stable id within the stream, from 1.
        box: ``(x, y, w, h)`` in frame pixels.
        probabilities: ``(7,)`` float32, this frame's model output in FER2013 order.
        emotion: The smoothed emotion (what is drawn and written to the CSV).
        detected: ``True`` if the detector found the face on this frame, ``False`` if the tracker carried it.
        support: What backs ``emotion`` in the smoothing's terms (``7/10`` votes, an average's ``48%``;
            :meth:`core.smoothing.EmotionSmoother.support_text`); ``None``: this frame's probability of it.
    """

    face_id: int
    box: tuple[int, int, int, int]
    probabilities: np.ndarray
    emotion: str
    detected: bool
    support: str | None = None

    @property
    def frame_emotion(self) -> str:
        """This frame's own top emotion, before smoothing."""
        return CLASS_NAMES[int(np.argmax(self.probabilities))]


@dataclass(frozen=True)
class FrameResult:
    """Everything found on one frame.

    Attributes:
        index: Frame number in the stream.
        time_s: Its time in seconds.
        faces: By face id.
        detected: Whether the detector ran on this frame.
        seconds: Wall time spent on this frame (detection/tracking, cropping, model, smoothing).
    """

    index: int
    time_s: float
    faces: tuple[FaceRecord, ...]
    detected: bool
    seconds: float


class FrameAnalyzer:
    """Stateful per-stream analysis: feed frames in order, get :class:`FrameResult` objects.

    One instance per stream (webcam session, file); it holds the tracker and
    each face's smoother. Not thread-safe: one caller at a time.

    Args:
        loaded: A model from ``core.model_io.load_model`` (or an ensemble).
        settings: :class:`StreamSettings`.

    Raises:
        ValueError: Invalid settings.
    """

    def __init__(self, loaded: LoadedModel, settings: StreamSettings = StreamSettings()) -> None:
        self.loaded = loaded
        self.settings = settings.validate()
        self.tracker = FaceTracker(memory=max(int(settings.memory), 2 * int(settings.every)),
                                   confirm=int(settings.confirm))
        self._smoothers: dict[int, EmotionSmoother] = {}
        self._index = 0

    def reset(self) -> None:
        """Start a new stream: forget faces, ids and smoothing."""
        self.tracker.reset()
        self._smoothers.clear()
        self._index = 0

    def needs_detection(self, index: int) -> bool:
        """Whether frame ``index`` is a detection round (every ``settings.every``-th frame)."""
        return index % int(self.settings.every) == 0

    def detect(self, image: np.ndarray) -> list:
        """Run the detector on a frame (thread-safe; :meth:`process` can take the result as ``boxes``)."""
        settings = self.settings
        return detect_faces(image, settings.detector, min_confidence=settings.min_confidence, max_side=settings.detect_side)

    def process(self, image: np.ndarray, time_s: float | None = None, index: int | None = None,
                boxes: list | None = None) -> FrameResult:
        """Analyse the next frame.

        Args:
            image: ``(H, W, 3)`` uint8 RGB (gray and RGBA also work).
            time_s: The frame's time; default ``index / 30``.
            index: The frame's number; default one more than the last.
            boxes: This frame's :meth:`detect` result, when it was computed
                ahead (in another thread); ``None`` detects here if needed.

        Returns:
            The frame's faces with stable ids and smoothed emotions.
        """
        start = time.perf_counter()
        index = self._index if index is None else int(index)
        self._index = index + 1
        time_s = index / 30.0 if time_s is None else float(time_s)
        settings = self.settings
        gray = _gray(image)
        run_detector = self.needs_detection(index)
        if run_detector:
            boxes = self.detect(image) if boxes is None else boxes
            tracked = self.tracker.update(index, boxes, gray if settings.every > 1 else None)
        else:
            tracked = self.tracker.carry(index, gray)
        padding = get_detector(settings.detector).padding
        crops = [square_box(face.box, image.shape, padding) for face in tracked]
        faces = (np.stack([prepare_face(image[y0:y1, x0:x1]) for x0, y0, x1, y1 in crops])
                 if tracked else np.zeros((0, 48, 48), np.uint8))
        probabilities = predict_probabilities(self.loaded, faces) if tracked else np.zeros((0, len(CLASS_NAMES)), np.float32)
        records = []
        for face, row in zip(tracked, probabilities):
            smoother = self._smoothers.get(face.face_id)
            if smoother is None:
                smoother = self._smoothers[face.face_id] = EmotionSmoother(settings.smoothing, settings.window)
            emotion = smoother.update(row)
            records.append(FaceRecord(face.face_id, face.box, row, emotion, face.detected,
                                      smoother.support_text(row, emotion)))
        if run_detector:
            active = set(self.tracker.active_ids)
            for face_id in [face_id for face_id in self._smoothers if face_id not in active]:
                del self._smoothers[face_id]
        return FrameResult(index, time_s, tuple(records), run_detector, time.perf_counter() - start)


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    code = cv2.COLOR_RGBA2GRAY if image.shape[2] == 4 else cv2.COLOR_RGB2GRAY
    return cv2.cvtColor(image, code)


def analyze_frames(
    frames: Iterable[np.ndarray | VideoFrame],
    loaded: LoadedModel,
    settings: StreamSettings = StreamSettings(),
    *,
    fps: float = 30.0,
) -> Iterator[FrameResult]:
    """Analyse frames in order; arrays get times ``index / fps``, :class:`VideoFrame` objects keep theirs.

    Raises:
        ValueError: Invalid settings, or a frame that is not an image array.
    """
    analyzer = FrameAnalyzer(loaded, settings)

    def as_video_frames() -> Iterator[VideoFrame]:
        for position, frame in enumerate(frames):
            if isinstance(frame, VideoFrame):
                yield frame
                continue
            image = np.asarray(frame)
            if image.ndim not in (2, 3) or image.size == 0:
                raise ValueError(f"frame {position} is not an image array (shape {image.shape})")
            yield VideoFrame(position, position / fps, image)

    for _, result in process_ahead(analyzer, as_video_frames()):
        yield result


def process_ahead(analyzer: FrameAnalyzer, frames: Iterable[VideoFrame],
                  depth: int | None = None, workers: int | None = None) -> Iterator[tuple[VideoFrame, FrameResult]]:
    """Analyse frames in order while the next frames are decoded and searched for faces in other threads.

    Decoding and detection (OpenCV, FFmpeg) and the model call (TensorFlow)
    release the GIL, so the stages overlap. Frames are decoded one at a time
    (in order) by whichever detection thread is free, and detected by up to
    ``workers`` threads side by side: detection is the slowest stage, and a
    detector whose instances may run in parallel (Haar) gets one per thread.
    Results are the same as calling :meth:`FrameAnalyzer.process` frame by
    frame: tracking, classification and smoothing stay in order in the
    calling thread.

    Args:
        analyzer: The stream's analyzer.
        frames: :class:`VideoFrame` objects in order.
        depth: Frames decoded and detected ahead (default ``workers + 1``).
        workers: Detection threads (default :data:`DETECTION_THREADS`, or 1
            for a detector that serialises its calls, such as MTCNN).

    Yields:
        ``(frame, result)`` pairs in frame order.
    """
    from concurrent.futures import ThreadPoolExecutor

    if workers is None:
        workers = min(DETECTION_THREADS, get_detector(analyzer.settings.detector).instances)
    workers = max(1, int(workers))
    depth = max(1, int(depth if depth is not None else workers + 1))
    iterator = iter(frames)
    decoding = threading.Lock()
    sequence = itertools.count()

    def next_detected() -> tuple[int, VideoFrame | None, list | None]:
        with decoding:  # frames leave the decoder in order, each with its place in the stream
            frame = next(iterator, None)
            position = next(sequence)
        if frame is None:
            return position, None, None
        return position, frame, (analyzer.detect(frame.image) if analyzer.needs_detection(frame.index) else None)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fer-detect") as pool:
        pending = [pool.submit(next_detected) for _ in range(depth)]
        ready: dict[int, tuple[VideoFrame | None, list | None]] = {}
        expected = 0
        while pending or expected in ready:
            while expected not in ready:
                position, frame, boxes = pending.pop(0).result()
                ready[position] = (frame, boxes)
            frame, boxes = ready.pop(expected)
            expected += 1
            if frame is None:
                for future in pending:  # the rest are past the end too
                    future.result()
                break
            pending.append(pool.submit(next_detected))
            yield frame, analyzer.process(frame.image, frame.time_s, frame.index, boxes=boxes)


# ---------------------------------------------------------------- drawing


def face_label(face: FaceRecord) -> str:
    """``#6 surprise 7/10``: the face id, the smoothed emotion and what backs it.

    With vote smoothing that is the emotion's votes among the last frames, with EMA the moving average's
    probability of it, without smoothing the frame's own probability (:attr:`FaceRecord.support`). The number
    must belong to the name beside it and say why it is shown: the top class's probability read "surprise 61%"
    on a frame that was fear 61% (walk s9); this frame's probability of the vote winner read "surprise 13%" on a
    frame the model called fear 52% (walk s21).
    """
    if face.support is not None:
        return f"#{face.face_id} {face.emotion} {face.support}"
    probability = float(face.probabilities[CLASS_NAMES.index(face.emotion)]) if face.emotion in CLASS_NAMES else None
    return f"#{face.face_id} {face.emotion}" + (f" {probability:.0%}" if probability is not None else "")


def draw_frame(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """Boxes, face ids and smoothed emotions drawn on a copy of an RGB frame, as photos are labelled."""
    from core.predict import EMOTION_COLORS, draw_labelled_box, label_style

    canvas = np.array(image, dtype=np.uint8, copy=True)
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)
    style = label_style(canvas.shape)
    for face in result.faces:
        draw_labelled_box(canvas, tuple(face.box), face_label(face), EMOTION_COLORS.get(face.emotion, (255, 255, 255)),
                          style)
    return canvas


# ---------------------------------------------------------------- records, CSV, summary


def frame_rows(result: FrameResult, frame: VideoFrame | None = None) -> list[dict]:
    """CSV rows (:data:`CSV_COLUMNS`) for one frame: one per face, probabilities rounded to 4 places.

    Boxes are in the pixels of the file's frame (``frame.source_size``), not of the smaller frame analysed:
    a 4K video's boxes overlay the 4K picture (probe s22: they were half-scale for a 2560x1440 file).
    """
    rows = []
    for face in result.faces:
        x, y, w, h = face.box if frame is None else source_box(face.box, frame)
        row = {"frame": result.index, "time_s": round(result.time_s, 3), "face_id": face.face_id,
               "x": x, "y": y, "w": w, "h": h, "emotion": face.emotion}
        row.update({name: round(float(p), 4) for name, p in zip(CLASS_NAMES, face.probabilities)})
        rows.append(row)
    return rows


def source_box(box: tuple[int, int, int, int], frame: VideoFrame) -> tuple[int, int, int, int]:
    """``box`` (x, y, w, h on ``frame.image``) in the pixels of the file's own frame, kept inside it."""
    if frame.source_size is None:
        return tuple(int(value) for value in box)
    source_width, source_height = frame.source_size
    height, width = frame.image.shape[:2]
    if (width, height) == (source_width, source_height):
        return tuple(int(value) for value in box)
    scale_x, scale_y = source_width / width, source_height / height
    left, top = round(box[0] * scale_x), round(box[1] * scale_y)
    right, bottom = round((box[0] + box[2]) * scale_x), round((box[1] + box[3]) * scale_y)
    left, top = min(max(left, 0), source_width - 1), min(max(top, 0), source_height - 1)
    right, bottom = min(max(right, left + 1), source_width), min(max(bottom, top + 1), source_height)
    return left, top, right - left, bottom - top


class CsvRecorder:
    """Write :data:`CSV_COLUMNS` rows as frames arrive, to a file or to memory (``path=None``)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._handle = open(self.path, "w", newline="", encoding="utf-8") if self.path else io.StringIO()
        self._writer = csv.DictWriter(self._handle, fieldnames=CSV_COLUMNS)
        self._writer.writeheader()
        self.rows = 0

    def add(self, result: FrameResult, frame: VideoFrame | None = None) -> None:
        """Write ``result``'s rows; with the ``frame`` it came from, boxes in the file's pixels (:func:`frame_rows`)."""
        rows = frame_rows(result, frame)
        self._writer.writerows(rows)
        self.rows += len(rows)

    def text(self) -> str:
        """The CSV so far (in-memory recorders only)."""
        if not isinstance(self._handle, io.StringIO):
            raise ValueError("text() is only available for an in-memory CSV recorder")
        return self._handle.getvalue()

    def close(self) -> None:
        if self.path is not None and not self._handle.closed:
            self._handle.close()


# A face id shown on fewer analysed frames than this is counted apart as likely not a face.
BRIEF_FACE_FRAMES = 3


@dataclass(frozen=True)
class FaceSummary:
    """One face id over the whole stream.

    Attributes:
        face_id: The track's id.
        first_s, last_s: Times of the first and last frame it was on.
        seconds: Time on screen (each analysed frame counts until the next one).
        frames: Analysed frames it was on.
        shares: Share of its time per smoothed emotion, FER2013 order, sums to 1.
        dominant: The emotion with the largest share.
    """

    face_id: int
    first_s: float
    last_s: float
    seconds: float
    frames: int
    shares: dict[str, float]
    dominant: str


class SummaryBuilder:
    """Accumulate per-face time and emotion shares from :class:`FrameResult` objects in order."""

    def __init__(self) -> None:
        self._seconds: dict[int, Counter] = defaultdict(Counter)
        self._frames: Counter = Counter()
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._previous: FrameResult | None = None
        self._step = 1.0 / 30.0

    def add(self, result: FrameResult) -> None:
        if self._previous is not None:
            self._step = max(1e-6, result.time_s - self._previous.time_s)
            self._credit(self._previous, self._step)
        self._previous = result

    def _credit(self, result: FrameResult, duration: float) -> None:
        for face in result.faces:
            self._seconds[face.face_id][face.emotion] += duration
            self._frames[face.face_id] += 1
            self._first.setdefault(face.face_id, result.time_s)
            self._last[face.face_id] = result.time_s

    def summaries(self) -> list[FaceSummary]:
        """One :class:`FaceSummary` per face id, by id (the last frame counts one frame interval)."""
        seconds = {face_id: counter.copy() for face_id, counter in self._seconds.items()}
        frames, first, last = self._frames.copy(), dict(self._first), dict(self._last)
        if self._previous is not None:
            for face in self._previous.faces:
                seconds.setdefault(face.face_id, Counter())[face.emotion] += self._step
                frames[face.face_id] += 1
                first.setdefault(face.face_id, self._previous.time_s)
                last[face.face_id] = self._previous.time_s
        result = []
        for face_id in sorted(seconds):
            total = sum(seconds[face_id].values())
            shares = {name: (seconds[face_id][name] / total if total else 0.0) for name in CLASS_NAMES}
            result.append(FaceSummary(face_id, round(first[face_id], 3), round(last[face_id], 3), round(total, 3),
                                      frames[face_id], shares, max(CLASS_NAMES, key=lambda name: shares[name])))
        return result


def summary_table(summaries: Sequence[FaceSummary]):
    """A ``pandas.DataFrame``: face id, seconds, first/last seen, dominant emotion, share per emotion."""
    import pandas as pd

    rows = [{"face_id": s.face_id, "seconds": s.seconds, "frames": s.frames, "first_s": s.first_s, "last_s": s.last_s,
             "dominant": s.dominant, **{name: round(s.shares[name], 4) for name in CLASS_NAMES}} for s in summaries]
    return pd.DataFrame(rows, columns=["face_id", "seconds", "frames", "first_s", "last_s", "dominant", *CLASS_NAMES])


# ---------------------------------------------------------------- whole files


# The speed and the time left are estimated from this many frames on (see VideoProgress.measured).
ESTIMATE_AFTER_FRAMES = 10


@dataclass(frozen=True)
class VideoProgress:
    """Progress of :func:`analyze_video`, passed to its callback after each frame.

    Attributes:
        frames_done: Frames analysed so far.
        frames_total: Frames expected (``0`` when the file does not say).
        elapsed_s: Wall time so far.
    """

    frames_done: int
    frames_total: int
    elapsed_s: float

    @property
    def fps(self) -> float:
        return self.frames_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def measured(self) -> bool:
        """Whether enough frames are done for :attr:`fps` and :attr:`eta_s` to mean something.

        The first frames carry the warm-up (the first predict call builds its function): a 96 s analysis
        (15.7 frames/s) read "2.9 frames/s, about 523 s left" at its first frame.
        """
        return self.frames_done >= ESTIMATE_AFTER_FRAMES and self.elapsed_s > 0

    @property
    def eta_s(self) -> float | None:
        """Seconds left, at the speed so far; ``None`` until :attr:`measured`, or when the total is not known."""
        if not self.frames_total or not self.measured:
            return None
        return max(0.0, (self.frames_total - self.frames_done) / self.fps)


@dataclass(frozen=True)
class VideoReport:
    """The outcome of :func:`analyze_video`.

    Attributes:
        source: The input file's name.
        width, height: Size of the file's frames, turned upright (the pixels the CSV's boxes are in).
        fps: The file's average frame rate.
        duration_s: Time of the last frame plus one frame.
        frames: Frames analysed.
        frames_with_faces: Frames with at least one face.
        face_ids: Distinct face ids seen.
        elapsed_s: Wall time of the analysis (decoding, analysis, writing).
        analysis_fps: ``frames / elapsed_s``.
        faces: Per-face summaries.
        settings: The :class:`StreamSettings` used, as a dict.
        warnings: Problems that did not stop the analysis (a truncated file, no face at all).
        csv_path, annotated_path: Files written, if asked for.
        analysed_width, analysed_height: Size of the frames analysed and of the annotated video, when it
            differs from the file's (frames over 1280 px are shrunk while decoding; sizes are made even);
            ``None`` when the same, and in reports written before 2026-12-08, whose width and height were these.
    """

    source: str
    width: int
    height: int
    fps: float
    duration_s: float
    frames: int
    frames_with_faces: int
    face_ids: int
    elapsed_s: float
    analysis_fps: float
    faces: tuple[FaceSummary, ...]
    settings: dict
    warnings: tuple[str, ...] = ()
    csv_path: str | None = None
    annotated_path: str | None = None
    analysed_width: int | None = None
    analysed_height: int | None = None

    def size_text(self) -> str:
        """``2560x1440, analysed at 1280x720``, or ``640x480`` when the frames were analysed at their size."""
        text = f"{self.width}x{self.height}"
        if self.analysed_width and (self.analysed_width, self.analysed_height) != (self.width, self.height):
            text += f", analysed at {self.analysed_width}x{self.analysed_height}"
        return text

    @property
    def brief_face_ids(self) -> tuple[int, ...]:
        """Face ids shown on fewer than :data:`BRIEF_FACE_FRAMES` analysed frames: most are not faces.

        A detector's false box that lasts the confirmation rounds is shown for
        a frame or two (walk s9: three one-frame "neutral 48%" boxes on a
        space-shuttle background in a 12 s clip). They stay in the CSV and the
        table (every record is reported); the summaries count them apart.
        """
        return tuple(face.face_id for face in self.faces if face.frames < BRIEF_FACE_FRAMES)

    def describe_face_ids(self) -> str:
        """``7 face ids, 3 of them on fewer than 3 frames (likely not faces)``."""
        brief = len(self.brief_face_ids)
        ids = counted(self.face_ids, "face id")
        if brief == 1:
            return f"{ids}, 1 on fewer than {BRIEF_FACE_FRAMES} frames (likely not a face)"
        if brief:
            return f"{ids}, {brief} of them on fewer than {BRIEF_FACE_FRAMES} frames (likely not faces)"
        return counted(self.face_ids, "face id")

    def to_dict(self) -> dict:
        """JSON-ready dict (``brief_face_ids`` included; it is derived, so reading it back ignores it)."""
        payload = asdict(self)
        payload["faces"] = [asdict(face) for face in self.faces]
        payload["brief_face_ids"] = list(self.brief_face_ids)
        return payload

    @classmethod
    def from_dict(cls, data: dict) -> "VideoReport":
        """The report :meth:`to_dict` wrote (read back from JSON).

        Raises:
            ValueError: A field is missing or of the wrong kind.
        """
        try:
            faces = tuple(FaceSummary(**face) for face in data["faces"])
            fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data and name != "faces"}
            return cls(**{**fields, "faces": faces, "warnings": tuple(data.get("warnings", ()))})
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a video report ({error})") from error


def analyze_video(
    path: str | os.PathLike,
    loaded: LoadedModel,
    settings: StreamSettings = StreamSettings(),
    *,
    csv_path: str | os.PathLike | None = None,
    annotated_path: str | os.PathLike | None = None,
    progress: Callable[[VideoProgress], None] | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    max_side: int = MAX_FRAME_SIDE,
    max_frames: int | None = None,
) -> VideoReport:
    """Analyse a video file: per-frame records to CSV, an annotated H.264 MP4, per-face summaries.

    Output files are written to temporary names beside their destination and
    renamed at the end, so a failed or interrupted run leaves no partial file.

    Args:
        path: The video (MP4, WebM, MOV, AVI, ... anything FFmpeg decodes).
        loaded: The model.
        settings: Detector, detection interval, smoothing.
        csv_path: Where to write :data:`CSV_COLUMNS` rows, or ``None``.
        annotated_path: Where to write the annotated ``.mp4``, or ``None``.
        progress: Called after every frame with a :class:`VideoProgress`.
        on_frame: Called with every :class:`FrameResult` (for timelines).
        max_side: Frames are shrunk to this longer side while decoding.
        max_frames: Analyse at most this many frames (``None``: all); a longer video ends there with a warning.

    Returns:
        A :class:`VideoReport`.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: Not a readable video, no frames, invalid settings or output path.
    """
    settings = settings.validate()
    if annotated_path is not None and Path(annotated_path).suffix.lower() != ".mp4":
        raise ValueError(f"the annotated video must be an .mp4 file, got {Path(annotated_path).name}")
    start = time.perf_counter()
    temporary: list[tuple[Path, Path]] = []

    def scratch(destination: str | os.PathLike) -> Path:
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        name = temporary_file(destination.parent, destination.stem, destination.suffix)  # killed writers' go first
        temporary.append((name, destination))
        return name

    recorder = writer = None
    summary = SummaryBuilder()
    frames = frames_with_faces = 0
    last_time = 0.0
    face_ids: set[int] = set()
    source_size = analysed = None
    try:
        with VideoReader(path, max_side=max_side) as reader:
            info = reader.info
            recorder = CsvRecorder(scratch(csv_path)) if csv_path is not None else None
            analyzer = FrameAnalyzer(loaded, settings)
            cut_at: list[float] = []  # the time of the first frame left out, when max_frames cut the video

            def limited(frames: Iterable[VideoFrame]) -> Iterator[VideoFrame]:
                for count, frame in enumerate(frames):
                    if max_frames is not None and count >= max_frames:
                        cut_at.append(frame.time_s)
                        return
                    yield frame

            for frame, result in process_ahead(analyzer, limited(reader)):
                if annotated_path is not None:
                    if writer is None:
                        height, width = frame.image.shape[:2]
                        writer = VideoWriter(scratch(annotated_path), width, height, fps=info.fps or 30.0)
                    writer.write(draw_frame(frame.image, result), frame.time_s)
                if recorder is not None:
                    recorder.add(result, frame)
                if analysed is None:  # the first frame's, upright (a phone video's stored frames lie on their side)
                    analysed = (frame.image.shape[1], frame.image.shape[0])
                    source_size = frame.source_size or analysed
                summary.add(result)
                if on_frame is not None:
                    on_frame(result)
                frames += 1
                frames_with_faces += bool(result.faces)
                face_ids.update(face.face_id for face in result.faces)
                last_time = frame.time_s
                if progress is not None:
                    total = min(info.frame_count, max_frames) if max_frames is not None and info.frame_count else info.frame_count
                    progress(VideoProgress(frames, total, time.perf_counter() - start))
            warnings = list(reader.warnings)
            if cut_at:
                length = f"{cut_at[0]:.1f} s" if cut_at[0] < 100 else f"{cut_at[0] / 60:.1f} min"
                warnings.append(f"only the first {max_frames:,} frames ({length}) were analysed: that is "
                                f"the most one analysis here takes; `python -m core video` has no such limit")
        if writer is not None:
            writer.close()
        if recorder is not None:
            recorder.close()
        for scratch_path, destination in temporary:
            give_ordinary_mode(scratch_path)
            os.replace(scratch_path, destination)
        temporary.clear()
    except OSError as error:
        # A failed write names the output the user gave, not its hidden temporary (probe s19: ".x-jhmq3czc.mp4").
        for scratch_path, destination in temporary:
            if error.filename is not None and Path(error.filename) == scratch_path:
                raise OSError(error.errno, error.strerror, str(destination)) from error
        folders = {destination.parent for _, destination in temporary}
        if error.filename is None and len(folders) == 1:  # a failed write() names no file: name the folder
            raise OSError(error.errno, error.strerror, str(folders.pop())) from error
        raise
    finally:
        # Closing again after a failed write (a full disk) may fail again: the temporaries go all the same
        # (probe s19: both were left behind, taking the rest of the disk).
        for output in (writer, recorder):
            if output is not None:
                with contextlib.suppress(Exception):
                    output.close()
        for scratch_path, _ in temporary:
            scratch_path.unlink(missing_ok=True)
    rounds = -(-frames // max(1, int(settings.every)))  # frames the detector ran on
    if not face_ids and frames and rounds < int(settings.confirm):
        # Probe s19: the advice below was wrong when the faces were found but could never be confirmed.
        warnings.append(f"no face was shown: a face must be found in {settings.confirm} detection rounds in a row "
                        f"(--confirm), and the detector ran on only {rounds} of the {frames} frames (every "
                        f"{settings.every}); lower --confirm or --every")
    elif not face_ids:
        warnings.append(f"no face was found in any of the {frames} frames (detector {settings.detector}, "
                        f"confidence >= {settings.min_confidence:g}); try the other detector or a lower confidence")
    elapsed = time.perf_counter() - start
    step = 1.0 / info.fps if info.fps else 0.0
    analysed = analysed or (info.frame_width, info.frame_height)
    width, height = source_size or (info.width, info.height)
    return VideoReport(
        source=Path(path).name, width=int(width), height=int(height), fps=round(info.fps, 3),
        duration_s=round(last_time + step, 3), frames=frames, frames_with_faces=frames_with_faces,
        face_ids=len(face_ids), elapsed_s=round(elapsed, 3), analysis_fps=round(frames / elapsed, 2) if elapsed else 0.0,
        faces=tuple(summary.summaries()), settings=asdict(settings), warnings=tuple(warnings),
        csv_path=str(csv_path) if csv_path is not None else None,
        annotated_path=str(annotated_path) if annotated_path is not None else None,
        analysed_width=analysed[0] if analysed != (width, height) else None,
        analysed_height=analysed[1] if analysed != (width, height) else None,
    )
