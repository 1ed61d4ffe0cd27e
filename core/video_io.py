"""Reading and writing video files with PyAV (FFmpeg), with clear errors for bad files.

Reading yields RGB frames with their presentation time in seconds, so a
variable-frame-rate video (phones, screen recordings) keeps its real timing.
Frames larger than :data:`MAX_FRAME_SIDE` are shrunk while decoding (FFmpeg's
scaler), before any analysis touches them. A file that FFmpeg cannot open, one
without a video stream and one without a single decodable frame raise
``ValueError``; a file cut off in the middle yields the frames before the cut
and says so in :attr:`VideoReader.warnings`.

Writing produces H.264 in MP4 (``yuv420p``, the moov atom at the front), the
combination every browser plays in a ``<video>`` element; PyAV's wheel ships
libx264, so no system FFmpeg is needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

# Frames are decoded at most this large: faces stay sharp enough for 48x48
# crops, and a 4K or 8K file does not cost 4-16x the analysis time.
MAX_FRAME_SIDE: int = 1280
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".webm", ".mov", ".avi", ".mkv", ".m4v")
# The formats the uploader accepts and every error names: one list, from VIDEO_EXTENSIONS.
VIDEO_FORMATS = (", ".join(extension.lstrip(".").upper() for extension in VIDEO_EXTENSIONS[:-1])
                 + f" or {VIDEO_EXTENSIONS[-1].lstrip('.').upper()}")
# Output time base: 1/90000 s (MPEG's clock) keeps variable frame timing exact enough.
OUTPUT_TIME_BASE = Fraction(1, 90_000)


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the file.
        time_s: Presentation time in seconds from the first frame.
        image: ``(H, W, 3)`` uint8 RGB, already downscaled to ``MAX_FRAME_SIDE``.
        source_size: ``(width, height)`` of the frame as the file holds it, turned upright like ``image``
            (``None``: ``image`` is the original). Boxes found on ``image`` are scaled to it for the
            results a user overlays on their own file (:func:`core.video.frame_rows`).
    """

    index: int
    time_s: float
    image: np.ndarray
    source_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (before decoding it).

    Attributes:
        width, height: Stored frame size in pixels.
        frame_width, frame_height: Size of the frames as decoded here (after downscaling; a
            phone video's frames are then turned upright, swapping the two).
        fps: Average frame rate (``0.0`` when the file does not say).
        duration_s: Length in seconds (``0.0`` when unknown).
        frame_count: Frames the container declares, or an estimate from
            duration and rate; ``0`` when unknown.
        codec: Codec name, e.g. ``h264``.
    """

    width: int
    height: int
    frame_width: int
    frame_height: int
    fps: float
    duration_s: float
    frame_count: int
    codec: str


def _av():
    import av

    return av


def _open_error(path: Path, error: Exception) -> ValueError:
    detail = (getattr(error, "strerror", None) or str(error)).strip() or type(error).__name__
    return ValueError(f"{path.name} is not a readable video ({detail}); "
                      f"expected a video file ({VIDEO_FORMATS}) that is not truncated")


class VideoReader:
    """Decode a video file frame by frame.

    Use as a context manager, or call :meth:`close`. Iterating yields
    :class:`VideoFrame` objects.

    Args:
        path: The video file.
        max_side: Longer side of the decoded frames; larger frames are shrunk.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: Not a video FFmpeg can open, no video stream, or an empty file.
    """

    def __init__(self, path: str | os.PathLike, max_side: int = MAX_FRAME_SIDE) -> None:
        av = _av()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no video file at {self.path}")
        if self.path.stat().st_size == 0:
            raise ValueError(f"{self.path.name} is empty (0 bytes)")
        if max_side < 16:
            raise ValueError(f"the frame size limit must be at least 16 pixels, got {max_side}")
        self.max_side = int(max_side)
        self.warnings: list[str] = []
        self.frames_read = 0
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise _open_error(self.path, error) from None
        demuxer = str(getattr(self._container.format, "name", ""))
        if demuxer == "image2" or demuxer.endswith("_pipe"):
            # FFmpeg opens a still photo as a one-frame "video"; analysing it as one would be silently odd.
            self._container.close()
            raise ValueError(f"{self.path.name} is a still image ({demuxer.removesuffix('_pipe')}), not a video: "
                             "photos go to Predict (or `python -m core predict`)")
        if not self._container.streams.video:
            has_streams = bool(self._container.streams)
            self._container.close()
            if has_streams:
                raise ValueError(f"{self.path.name} has no video stream (an audio-only, damaged or truncated file?)")
            raise ValueError(f"{self.path.name} contains no video: a zero-length, empty or truncated file")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.info = self._describe()

    def _describe(self) -> VideoInfo:
        stream = self._stream
        context = stream.codec_context
        width, height = int(context.width or 0), int(context.height or 0)
        if width <= 0 or height <= 0:
            self.close()
            raise ValueError(f"{self.path.name}: the video stream has no frame size (a damaged file?)")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / 1_000_000
        frame_count = int(stream.frames or 0) or (round(duration * fps) if duration and fps else 0)
        frame_width, frame_height = output_size(width, height, self.max_side)
        return VideoInfo(width, height, frame_width, frame_height, fps, duration, frame_count, str(context.name))

    def __iter__(self) -> Iterator[VideoFrame]:
        av = _av()
        first_time: float | None = None
        previous_time = -1.0
        fps = self.info.fps or 30.0
        try:
            for frame in self._container.decode(self._stream):
                # Each frame's own size: a stream that changes size and back was decoded at the smaller size
                # from then on (review s22: 2560x1440 frames at 640x360 after a 640x360 stretch).
                width, height = output_size(frame.width, frame.height, self.max_side)
                image = frame.to_ndarray(format="rgb24", width=width, height=height)
                rotation = _display_rotation(frame)
                image = _rotate(image, rotation)
                source_size = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
                time_s = float(frame.time) if frame.time is not None else self.frames_read / fps
                first_time = time_s if first_time is None else first_time
                time_s -= first_time
                if time_s <= previous_time:  # missing or repeated timestamps: keep time moving forward
                    time_s = previous_time + 1.0 / fps
                previous_time = time_s
                yield VideoFrame(self.frames_read, round(time_s, 6), image, source_size)
                self.frames_read += 1
        except (av.FFmpegError, EOFError) as error:
            if self.frames_read == 0:
                raise _open_error(self.path, error) from None
            self.warnings.append(f"the video stops after frame {self.frames_read} ({error}): the file is probably "
                                 f"truncated; the frames before that were analysed")
        if self.frames_read == 0:
            raise ValueError(f"{self.path.name} contains no video frames (a zero-length or truncated file)")
        declared = self.info.frame_count
        if declared and self.frames_read < 0.9 * declared and not self.warnings:
            self.warnings.append(f"the file ends after {self.frames_read} of the {declared} frames it declares: "
                                 f"it is probably truncated; the frames before the cut were analysed")

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def output_size(width: int, height: int, max_side: int = MAX_FRAME_SIDE) -> tuple[int, int]:
    """``(width, height)`` shrunk so the longer side is at most ``max_side``, both even (H.264 needs even sizes)."""
    scale = min(1.0, max_side / max(width, height, 1))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def _display_rotation(frame) -> int:
    """Clockwise degrees (0, 90, 180, 270) that turn a frame upright, from its display matrix (phone videos)."""
    counterclockwise = getattr(frame, "rotation", 0) or 0
    return int(round(-float(counterclockwise) / 90.0)) * 90 % 360


def _rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(image, k=-1))
    if rotation == 180:
        return np.ascontiguousarray(image[::-1, ::-1])
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(image, k=1))
    return image


@dataclass
class VideoWriter:
    """Write RGB frames as a browser-playable H.264 MP4, keeping each frame's time.

    Args:
        path: Output ``.mp4`` file.
        width, height: Frame size (made even; frames of another size are resized).
        fps: Nominal frame rate (written as the stream's rate).
        crf: x264 quality (lower is better and larger; 23 is x264's default).
        preset: x264 speed preset.
    """

    path: str | os.PathLike
    width: int
    height: int
    fps: float = 30.0
    crf: int = 23
    preset: str = "veryfast"
    frames_written: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        av = _av()
        self.path = Path(self.path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"the annotated video must be an .mp4 file, got {self.path.name}")
        self.width, self.height = output_size(self.width, self.height, max(self.width, self.height))
        rate = Fraction(self.fps).limit_denominator(1001) if self.fps and self.fps > 0 else Fraction(30)
        self._container = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = OUTPUT_TIME_BASE
        self._stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._last_pts = -1

    def write(self, image: np.ndarray, time_s: float | None = None) -> None:
        """Append a ``(H, W, 3)`` uint8 RGB frame shown at ``time_s`` seconds (default: the nominal rate)."""
        av = _av()
        if image.shape[1] != self.width or image.shape[0] != self.height:
            import cv2

            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if time_s is None:
            time_s = self.frames_written / (self.fps or 30.0)
        pts = max(int(round(time_s / OUTPUT_TIME_BASE)), self._last_pts + 1)
        frame.pts, frame.time_base = pts, OUTPUT_TIME_BASE
        self._last_pts = pts
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        container = getattr(self, "_container", None)
        if container is None:
            return
        try:
            for packet in self._stream.encode():
                container.mux(packet)
        finally:
            container.close()
            self._container = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
