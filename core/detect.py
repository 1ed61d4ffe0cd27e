"""Face detection that works offline: OpenCV's Haar cascade and MTCNN behind one call.

Both detectors ship their weights inside their wheels (``cv2.data.haarcascades``
and ``mtcnn/assets``), so nothing is downloaded at run time. Each detector is
created once per process and reused; MTCNN (which imports TensorFlow) is only
imported when it is first used.

Measured with ``bench/bench_detect.py`` on composed 1280x720 photos: "LFW"
has 100 faces of ``skimage.data.lfw_subset()`` pasted at 60-220 px among 100
non-face patches on 20 backgrounds; "hard" has them rotated by up to +-25
degrees and mirrored, at 40-200 px. Found = IoU >= 0.3. Latency: median of 21
runs on a 1280x720 photo with three faces, on the 2-core dev box while a
training job ran (load average 6.4, so wall times are inflated; CPU ms is
steadier)::

    detector                               LFW recall  FP  hard recall  FP  3-face  wall ms  CPU ms
    mtcnn (this module: 640 px, compiled)     0.98      1     0.92       0    3/3      212      67
    haar  (this module: 640 px, 1.1 / 4)      0.95      4     0.69       2    3/3      378     125
    Haar, fer package settings (full size,    0.96     10     0.73       9    3/3      721     241
      1.1 / 5 / min 50)
    Haar, PyTorch seed's webcam settings      0.91      2     0.56       5    3/3      479     159
      (full size, 1.3 / 5)
    Haar + profile + mirrored profile, NMS    0.95      5     0.73       4    3/3     1790     580
    MTCNN package defaults (full, eager)      0.98      1     0.92       0    3/3     1324     426

MTCNN finds a third more of the tilted faces, and run as compiled graphs on
the image shrunk to 640 px it is also faster than Haar, so it is the
default. Haar stays as the seeds' detector. OpenCV's profile cascade added
to Haar cost 4.6x the time for +0.04 hard recall, so it is not offered.

Boxes are framed the way FER2013's faces are: on 400 FER2013 training faces
(upscaled 4x inside a border) the Haar box's side was 0.97 of the FER2013
crop and the longer side of MTCNN's box (its height) 1.04, both centred
within 1%, so a crop is the box's longer side times 1.03 (Haar) or 0.96
(MTCNN) (:attr:`DetectorSpec.padding`; ``bench/bench_detect.py`` measures it).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from core.preprocess import to_uint8

# Detection runs on the image downscaled so that its longer side is at most this:
# both detectors then find faces down to ~20 px there (40 px in a 1280 px photo),
# MTCNN is 2-3x faster than at 1280 px and recall on the bench sets is unchanged.
DEFAULT_MAX_SIDE: int = 640
DEFAULT_MIN_CONFIDENCE: float = 0.5
DEFAULT_DETECTOR: str = "mtcnn"

# A raw detection: (x, y, w, h, score in [0, 1]) in the coordinates of the image given.
RawBox = tuple[float, float, float, float, float]


@dataclass(frozen=True)
class FaceBox:
    """A detected face in original-image pixel coordinates.

    Attributes:
        x, y: Top-left corner.
        w, h: Width and height (the detector's own box, before framing).
        score: Detector confidence in [0, 1].
        detector: Name of the detector that found it.
    """

    x: int
    y: int
    w: int
    h: int
    score: float
    detector: str

    @property
    def xywh(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector.

    Attributes:
        name: Registry key.
        summary: One line for menus.
        label: Its name for people ("Haar cascade", "MTCNN").
        padding: Square side = ``max(w, h) * padding`` frames a box like a FER2013 face.
        create: Builds the detection function ``(rgb_uint8_image) -> list[RawBox]``;
            called once per instance.
        instances: How many instances may run at the same time, one per
            thread (Haar: independent, cheap cascades; MTCNN: one, its
            TensorFlow models are shared and calls queue).
    """

    name: str
    summary: str
    padding: float
    create: Callable[[], Callable[[np.ndarray], list[RawBox]]]
    instances: int = 1
    label: str = ""


_REGISTRY: dict[str, DetectorSpec] = {}


def _register(name: str, summary: str, padding: float, instances: int = 1, label: str = ""):
    def decorate(create: Callable) -> Callable:
        _REGISTRY[name] = DetectorSpec(name, summary, padding, create, instances, label or name)
        return create

    return decorate


def list_detectors() -> list[DetectorSpec]:
    """Every registered detector, the default first."""
    return sorted(_REGISTRY.values(), key=lambda spec: (spec.name != DEFAULT_DETECTOR, spec.name))


def get_detector(name: str) -> DetectorSpec:
    """Return the detector registered under ``name``.

    Raises:
        ValueError: For an unknown name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown face detector {name!r}; known detectors: {known}") from None


def detect_faces(
    image: np.ndarray,
    detector: str = DEFAULT_DETECTOR,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> list[FaceBox]:
    """Find faces in an image.

    Args:
        image: ``(H, W)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA; uint8
            (uint16 and float in [0, 1] are converted).
        detector: A name from :func:`list_detectors`.
        min_confidence: Faces scoring below this (in [0, 1]) are dropped.
        max_side: The image is downscaled so its longer side is at most this
            before detection (``None``: never); boxes are mapped back.

    Returns:
        Faces sorted left to right, boxes in ``image``'s pixel coordinates and
        clipped to it.

    Raises:
        ValueError: Unknown detector, or not an image array.
    """
    spec = get_detector(detector)
    rgb = to_rgb_uint8(image)
    height, width = rgb.shape[:2]
    scale = 1.0
    if max_side is not None and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    with _detector_pool(spec.name).borrow() as find:
        raw = find(rgb)
    faces = []
    for x, y, w, h, score in raw:
        if score < min_confidence:
            continue
        x0, y0 = max(0, math.floor(x / scale)), max(0, math.floor(y / scale))
        x1, y1 = min(width, math.ceil((x + w) / scale)), min(height, math.ceil((y + h) / scale))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            faces.append(FaceBox(x0, y0, x1 - x0, y1 - y0, float(score), spec.name))
    return sorted(faces, key=lambda face: (face.x, face.y))


def square_box(box: FaceBox | tuple[int, int, int, int], image_shape: tuple[int, ...], padding: float | None = None) -> tuple[int, int, int, int]:
    """The square region cropped for the classifier, framed like a FER2013 face.

    The square is centred on the box with side ``max(w, h) * padding``. Near an
    edge it is moved (not cut) to lie inside the image, so the crop keeps its
    aspect ratio; only a square larger than the image is clipped.

    Args:
        box: A :class:`FaceBox` or ``(x, y, w, h)``.
        image_shape: ``image.shape`` of the image the box refers to.
        padding: Side multiplier; ``None`` takes the box's detector's
            :attr:`DetectorSpec.padding` (1.0 for a plain tuple).

    Returns:
        ``(x0, y0, x1, y1)`` with ``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``.
    """
    if isinstance(box, FaceBox):
        x, y, w, h = box.xywh
        if padding is None:
            padding = get_detector(box.detector).padding if box.detector in _REGISTRY else 1.0
    else:
        x, y, w, h = box
    padding = 1.0 if padding is None else padding
    height, width = image_shape[:2]
    side = max(2, round(max(w, h) * padding))
    center_x, center_y = x + w / 2.0, y + h / 2.0
    x0 = _fit(round(center_x - side / 2.0), side, width)
    y0 = _fit(round(center_y - side / 2.0), side, height)
    return x0, y0, min(width, x0 + side), min(height, y0 + side)


def _fit(start: int, side: int, limit: int) -> int:
    if side >= limit:
        return 0
    return min(max(start, 0), limit - side)


def crop_face(image: np.ndarray, box: FaceBox | tuple[int, int, int, int], padding: float | None = None) -> np.ndarray:
    """The pixels of :func:`square_box` (a view of ``image``), ready for ``prepare_face``."""
    x0, y0, x1, y1 = square_box(box, image.shape, padding)
    return image[y0:y1, x0:x1]


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Convert gray, RGB or RGBA of any common dtype to ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: For an empty array or one that is not an image.
    """
    image = np.asarray(image)
    if image.size == 0 or image.ndim not in (2, 3):
        raise ValueError(f"expected an image array (H, W) or (H, W, C), got shape {image.shape}")
    image = to_uint8(image)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    raise ValueError(f"expected a gray, RGB or RGBA image, got {image.shape[2]} channels")


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3) -> list[int]:
    """Indices of the boxes to keep, best first; ``boxes`` is ``(N, 4)`` ``x, y, w, h``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = list(np.argsort(-np.asarray(scores, dtype=np.float64)))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        if not order:
            break
        rest = boxes[order]
        ix = np.clip(np.minimum(boxes[best, 0] + boxes[best, 2], rest[:, 0] + rest[:, 2]) - np.maximum(boxes[best, 0], rest[:, 0]), 0, None)
        iy = np.clip(np.minimum(boxes[best, 1] + boxes[best, 3], rest[:, 1] + rest[:, 3]) - np.maximum(boxes[best, 1], rest[:, 1]), 0, None)
        inter = ix * iy
        union = boxes[best, 2] * boxes[best, 3] + rest[:, 2] * rest[:, 3] - inter
        order = [index for index, overlap in zip(order, inter / np.maximum(union, 1e-9)) if overlap < iou_threshold]
    return keep


class DetectorPool:
    """Instances of one detector shared by threads: a call borrows an instance no other thread is using.

    Neither ``CascadeClassifier`` nor MTCNN promises thread safety, so an
    instance serves one call at a time. While every instance is busy, a new
    one is created, up to ``limit``; past that, calls wait. So Streamlit
    sessions, and the video pipeline's detection threads, run Haar side by
    side, while MTCNN (``limit`` 1) serialises them.
    """

    def __init__(self, create: Callable[[], Callable[[np.ndarray], list[RawBox]]], limit: int) -> None:
        self._create = create
        self.limit = max(1, int(limit))
        self.created = 0
        self._free: list[Callable[[np.ndarray], list[RawBox]]] = []
        self._condition = threading.Condition()

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Callable[[np.ndarray], list[RawBox]]]:
        """``with pool.borrow() as find: find(rgb)``."""
        with self._condition:
            while not self._free and self.created >= self.limit:
                self._condition.wait()
            find = self._free.pop() if self._free else None
            if find is None:
                self.created += 1
        if find is None:
            try:
                find = self._create()
            except BaseException:
                with self._condition:
                    self.created -= 1
                    self._condition.notify()
                raise
        try:
            yield find
        finally:
            with self._condition:
                self._free.append(find)
                self._condition.notify()


@functools.lru_cache(maxsize=None)
def _detector_pool(name: str) -> DetectorPool:
    spec = _REGISTRY[name]
    return DetectorPool(spec.create, spec.instances)


# ---------------------------------------------------------------- detectors

# Haar cascade settings: scaleFactor 1.1 as the `fer` package, 4 neighbours (one
# fewer than fer) plus the score threshold below gave the best recall/false
# positive balance on the bench sets.
HAAR_SCALE_FACTOR = 1.1
HAAR_MIN_NEIGHBORS = 4
HAAR_MIN_SIZE = 20
# OpenCV's level weight (the last stage's sum) for true faces was median 6.4,
# for false positives median 2; the logistic puts weight 1 at score 0.5.
HAAR_WEIGHT_AT_HALF = 1.0


# Haar cascades are independent and cheap (a 1 MB XML): up to this many run side by side.
HAAR_INSTANCES = 4


@_register("haar", "OpenCV Haar cascade, frontal faces (the seeds' detector): no TensorFlow needed, misses tilted faces",
           padding=1.03, instances=HAAR_INSTANCES, label="Haar cascade")
def _create_haar() -> Callable[[np.ndarray], list[RawBox]]:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise ValueError("OpenCV's Haar cascade file is missing: reinstall opencv-python-headless")

    def find(rgb: np.ndarray) -> list[RawBox]:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        boxes, _, weights = cascade.detectMultiScale3(
            gray, HAAR_SCALE_FACTOR, HAAR_MIN_NEIGHBORS, minSize=(HAAR_MIN_SIZE, HAAR_MIN_SIZE), outputRejectLevels=True
        )
        return [
            (float(x), float(y), float(w), float(h), 1.0 / (1.0 + math.exp(-(float(weight) - HAAR_WEIGHT_AT_HALF))))
            for (x, y, w, h), weight in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights))
        ]

    return find


@_register("mtcnn", "MTCNN, three small TensorFlow networks: finds tilted and small faces; default", padding=0.96,
           label="MTCNN")
def _create_mtcnn() -> Callable[[np.ndarray], list[RawBox]]:
    from mtcnn import MTCNN

    detector = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
    _compile_mtcnn_stages(detector)

    def find(rgb: np.ndarray) -> list[RawBox]:
        # min_face_size stays at its default 20: mtcnn 1.0.0 builds an empty
        # pyramid level (and finds nothing) for larger values; downscaling
        # the image (max_side) is the knob instead.
        found = detector.detect_faces(rgb, box_format="xywh")
        return [(*map(float, face["box"]), float(face["confidence"])) for face in found]

    return find


def _compile_mtcnn_stages(detector) -> None:
    """Run MTCNN's three networks as compiled TensorFlow graphs (2.5x faster than eager, same boxes).

    ``reduce_retracing`` makes the second traced shape generic, so the varying
    pyramid and batch sizes do not trigger a new trace per image. An empty
    batch (no proposals left) is answered without running the graph, which
    would fail on it and log an error. Relies on the pinned mtcnn==1.0.0 keeping
    each stage's network in ``stage._model``; otherwise the stages stay eager.
    """
    import tensorflow as tf

    output_widths = {0: None, 1: (4, 2), 2: (4, 10, 2)}
    for position, stage in enumerate(getattr(detector, "stages", [])):
        model = getattr(stage, "_model", None)
        if model is None or position not in output_widths:
            return
        compiled = tf.function(model, reduce_retracing=True)
        widths = output_widths[position]
        if widths is None:
            stage._model = compiled
            continue

        def call(patches, compiled=compiled, widths=widths):
            if int(patches.shape[0]) == 0:
                return tuple(tf.zeros((0, width)) for width in widths)
            return compiled(patches)

        stage._model = call

