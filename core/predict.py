"""Emotion prediction on photos: detect faces, frame them like FER2013, classify, draw.

The pipeline is the same for the Predict page, the ``predict`` command and
the latency benchmark::

    image -> detect_faces -> square_box (FER2013 framing) -> prepare_face (48x48 gray)
          -> one batched model call for all faces -> ImagePrediction

All faces of an image (and their test-time augmented views) go through
the model in one ``model.predict_on_batch`` call: Keras compiles it once
(``tf.function`` / ``jax.jit``), which for 1-10 faces is 4-10x faster than
calling the model eagerly (``model(x)``) and than ``model.predict``, whose
per-call dataset set-up dominates small batches.
"""

from __future__ import annotations

import io
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import cv2
import numpy as np

from core.detect import DEFAULT_DETECTOR, DEFAULT_MAX_SIDE, DEFAULT_MIN_CONFIDENCE, FaceBox, detect_faces, square_box
from core.files import HIDDEN_FILE_REASON, HIDDEN_FOLDER_REASON, is_hidden_data_name, is_hidden_folder
from core.images import IMAGE_EXTENSIONS, decode_image
from core.labels import CLASS_NAMES
from core.model_io import LoadedModel, predict_probabilities
from core.preprocess import prepare_face
from core.smoothing import MajorityVote  # noqa: F401  (moved to core.smoothing; kept importable here)
from core.zips import read_member

REPO_ROOT = Path(__file__).resolve().parent.parent
# The default model: the best single bundled model (docs/benchmarks.md). The others
# beside it: fer_studio_fast (about 1.4x faster to classify a face, 1.3 points lower)
# and the members of the ensemble options.
BUNDLED_MODEL = REPO_ROOT / "models" / "fer_studio_swa.keras"

# Uploaded photos are decoded at most this large (JPEGs are shrunk while
# decoding): enough for sharp 48x48 crops of faces 1/40 of the photo wide.
MAX_IMAGE_SIDE: int = 2048
# Photos up to this many pixels are accepted and downscaled (a 108-megapixel phone
# photo is 12,000 x 9,000); beyond it a file is treated as a decompression bomb.
# A non-JPEG is decoded whole before downscaling, so this bounds memory (450 MB RGB).
MAX_PHOTO_PIXELS: int = 150_000_000
# Batch-mode zip limits.
MAX_ZIP_IMAGES: int = 500
MAX_ZIP_BYTES: int = 500 * 1024**2
MAX_ZIP_RATIO: int = 100
# Why a file of a batch (or a member of its zip) was not predicted, when its name is not an image's.
NOT_AN_IMAGE_NAME = "not an image file name (expected .jpg, .png, .webp, .bmp, .gif or .tif)"

# Box and label colour per emotion (RGB), FER2013 order.
EMOTION_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 57, 70),
    "disgust": (106, 153, 78),
    "fear": (155, 93, 229),
    "happy": (255, 183, 3),
    "sad": (33, 130, 230),
    "surprise": (0, 187, 212),
    "neutral": (200, 200, 200),
}


@dataclass(frozen=True)
class FacePrediction:
    """One classified face.

    Attributes:
        box: The detector's box (or the whole image with ``detect=False``).
        crop_box: ``(x0, y0, x1, y1)`` of the square region given to the model.
        face: ``(48, 48)`` uint8, exactly the model's input.
        probabilities: ``(7,)`` float32 in FER2013 order (``CLASS_NAMES``), sums to 1.
        label: The most probable emotion.
        score: Its probability.
    """

    box: FaceBox
    crop_box: tuple[int, int, int, int]
    face: np.ndarray
    probabilities: np.ndarray
    label: str
    score: float


@dataclass(frozen=True)
class ImagePrediction:
    """Every face of one image, with timings.

    Attributes:
        faces: Left to right.
        image_shape: Shape of the image the boxes refer to.
        detector: Detector name, or ``None`` when the whole image was one face.
        detect_ms, classify_ms: Wall time of detection and of cropping + the model call.
    """

    faces: tuple[FacePrediction, ...]
    image_shape: tuple[int, ...]
    detector: str | None
    detect_ms: float
    classify_ms: float

    @property
    def total_ms(self) -> float:
        return self.detect_ms + self.classify_ms


def default_model_path() -> Path | None:
    """The default bundled model (``BUNDLED_MODEL``, ``models/fer_studio_swa.keras``) if the file exists, else ``None``."""
    return BUNDLED_MODEL if BUNDLED_MODEL.is_file() else None


def bundled_model_name() -> str:
    """Where the default bundled model belongs, for messages: ``models/fer_studio_swa.keras``."""
    try:
        return BUNDLED_MODEL.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(BUNDLED_MODEL)


def bundled_models() -> list[Path]:
    """Every bundled model: the default first, then the other ``.keras`` files beside it that have a card (``.json``).

    The others: ``fer_studio_fast`` (the speed option) and the models the
    default is averaged with in the ensemble option, ``fer_studio_c`` and
    ``fer_studio_distilled`` (``docs/benchmarks.md``).
    """
    default = default_model_path()
    if default is None:
        return []
    others = sorted(path for path in default.parent.glob("*.keras")
                    if path != default and path.is_file() and path.with_suffix(".json").is_file())
    return [default, *others]


def available_models(runs_dir: Path | None = None) -> list[tuple[str, Path]]:
    """``(label, path)`` of every usable model: the bundled ones first, then finished or stopped runs' ``best.keras``
    (each followed by the run's ``averaged.keras`` when it trained with weight averaging)."""
    from core.averaging import AVERAGED_MODEL, averaged_record
    from core.runs import list_runs

    choices = [(f"Bundled model ({path.name})", path) for path in bundled_models()]
    for run in list_runs(runs_dir):
        if run.has_model and run.status.state in ("finished", "stopped"):
            accuracy = f" · val {run.best_val_accuracy:.1%}" if run.best_val_accuracy is not None else ""
            choices.append((f"Run {run.run_id} · {run.model}{accuracy}", run.path / "best.keras"))
            averaged = averaged_record(run.path)
            if averaged is not None:
                first, last = averaged["epochs"]
                choices.append((f"Run {run.run_id} · {run.model} · averaged epochs {first}-{last} · "
                                f"val {averaged['val_accuracy']:.1%}", run.path / AVERAGED_MODEL))
    return choices


def predict_image(
    image: np.ndarray,
    loaded: LoadedModel,
    *,
    detector: str = DEFAULT_DETECTOR,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    tta: str = "none",
    detect: bool = True,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> ImagePrediction:
    """Detect and classify every face of an image.

    Args:
        image: ``(H, W)`` gray or ``(H, W, 3)`` RGB uint8 (RGBA, uint16, float also work).
        loaded: A model from ``core.model_io.load_model``.
        detector: Face detector name (``core.detect.list_detectors``).
        min_confidence: Detector score threshold in [0, 1].
        tta: Test-time augmentation mode, ``none``, ``flip`` or ``crop10``
            (see ``core.tta``).
        detect: ``False`` classifies the whole image as one face (no detection).
        max_side: Detection resolution (see ``core.detect.detect_faces``).

    Returns:
        An :class:`ImagePrediction`; ``faces`` is empty when none was found.

    Raises:
        ValueError: Not an image array, unknown detector, or a model whose
            input is not a 48x48 face.
    """
    image = np.asarray(image)
    start = time.perf_counter()
    if detect:
        boxes = detect_faces(image, detector, min_confidence=min_confidence, max_side=max_side)
    else:
        if image.size == 0 or image.ndim not in (2, 3):
            raise ValueError(f"expected an image array (H, W) or (H, W, C), got shape {image.shape}")
        height, width = image.shape[:2]
        boxes = [FaceBox(0, 0, width, height, 1.0, "whole image")]
    detected = time.perf_counter()
    crop_boxes = [square_box(box, image.shape) for box in boxes]
    faces = np.stack([prepare_face(image[y0:y1, x0:x1]) for x0, y0, x1, y1 in crop_boxes]) if boxes else np.zeros((0, 48, 48), np.uint8)
    probabilities = predict_probabilities(loaded, faces, tta=tta)
    classified = time.perf_counter()
    predictions = tuple(
        FacePrediction(
            box=box,
            crop_box=crop_box,
            face=face,
            probabilities=row,
            label=CLASS_NAMES[int(np.argmax(row))],
            score=float(np.max(row)),
        )
        for box, crop_box, face, row in zip(boxes, crop_boxes, faces, probabilities)
    )
    return ImagePrediction(
        faces=predictions,
        image_shape=tuple(image.shape),
        detector=detector if detect else None,
        detect_ms=(detected - start) * 1000.0,
        classify_ms=(classified - detected) * 1000.0,
    )


def decode_photo(data: bytes) -> np.ndarray:
    """Decode uploaded image bytes for prediction (at most :data:`MAX_IMAGE_SIDE` px on the longer side).

    Photos up to :data:`MAX_PHOTO_PIXELS` are downscaled (JPEGs while decoding).

    Raises:
        ValueError: Empty, truncated, non-image or too large file (message from ``core.images``).
    """
    return decode_image(data, max_side=MAX_IMAGE_SIDE, max_pixels=MAX_PHOTO_PIXELS)


# A drawn label's font scale is the photo's longer side over this (within 0.5-3).
LABEL_SIDE_PER_SCALE = 900


def label_style(shape: tuple[int, ...]) -> tuple[int, float, int]:
    """``(box line width, font scale, text line width)`` for labels on an image of this shape.

    Labels scale with the image, not the face: an image is shown at the page's width (about 360 px on a
    phone), and a label sized by a small face's width drew 4 px letters there. At side / 900 the letters
    are 8-9 px high on a phone and about 20 on a desktop, whatever the image's size, and the labels of
    the three faces of the example photo do not run into each other. Photos and video frames alike (walk
    s19: a 640-pixel webcam frame's labels, drawn at side / 1400, were 5 px letters on a phone).
    """
    height, width = shape[:2]
    font_scale = max(0.5, min(3.0, max(height, width) / LABEL_SIDE_PER_SCALE))
    return max(2, round(max(height, width) / 400)), font_scale, max(1, round(font_scale))


def draw_labelled_box(canvas: np.ndarray, box: tuple[int, int, int, int], text: str, color: tuple[int, int, int],
                      style: tuple[int, float, int]) -> None:
    """Draw a face's box and, above it (below it at the top edge), ``text`` on a band of ``color``, in place.

    The band moves left to keep the whole label in the image when the face is at its right edge.
    """
    thickness, font_scale, text_thickness = style
    height, width = canvas.shape[:2]
    x, y, w, h = box
    cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), color, thickness)
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, text_thickness)
    box_h = text_h + baseline + 4
    top = y - box_h if y - box_h >= 0 else min(y + h, height - box_h)
    top = max(0, top)
    left = max(0, min(x, width - text_w - 4))
    cv2.rectangle(canvas, (left, top), (left + text_w + 4, top + box_h), color, -1)
    cv2.putText(canvas, text, (left + 2, top + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0),
                text_thickness, cv2.LINE_AA)


def draw_predictions(image: np.ndarray, prediction: ImagePrediction) -> np.ndarray:
    """Draw each face's box and top emotion on a copy of the image.

    Returns:
        ``(H, W, 3)`` uint8 RGB; line width and font scale follow the image size (:func:`label_style`).
    """
    from core.detect import to_rgb_uint8

    canvas = to_rgb_uint8(image).copy()
    style = label_style(canvas.shape)
    for index, face in enumerate(prediction.faces, start=1):
        draw_labelled_box(canvas, face.box.xywh, f"{index}. {face.label} {face.score:.0%}",
                          EMOTION_COLORS.get(face.label, (255, 255, 255)), style)
    return canvas


def predictions_table(results: list[tuple[str, ImagePrediction | str]]):
    """One row per face for batch mode and CSV export.

    Args:
        results: ``(file name, prediction)`` pairs; a ``str`` in place of the
            prediction is an error message for a file that could not be read.

    Returns:
        A ``pandas.DataFrame`` with columns ``file, face, x, y, w, h,
        detector_score, emotion, confidence``, the seven probabilities in
        FER2013 order, and ``note`` (an image without faces, or the error,
        gets one row with an empty face).
    """
    import pandas as pd

    columns = ["file", "face", "x", "y", "w", "h", "detector_score", "emotion", "confidence", *CLASS_NAMES, "note"]
    rows = []
    for name, result in results:
        if isinstance(result, str):
            rows.append({"file": name, "note": f"error: {result}"})
            continue
        if not result.faces:
            rows.append({"file": name, "note": "no face found"})
        for index, face in enumerate(result.faces, start=1):
            row = {"file": name, "face": index, "x": face.box.x, "y": face.box.y, "w": face.box.w, "h": face.box.h,
                   "detector_score": round(face.box.score, 4), "emotion": face.label, "confidence": round(face.score, 4), "note": ""}
            row.update({class_name: round(float(p), 4) for class_name, p in zip(CLASS_NAMES, face.probabilities)})
            rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"face": "Int64", "x": "Int64", "y": "Int64", "w": "Int64", "h": "Int64"})


def is_image_name(name: str) -> bool:
    """True for file names with an image extension ``core.images`` can decode."""
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def _zip_image_members(archive: zipfile.ZipFile, max_images: int, max_bytes: int,
                       others: list[tuple[str, str]] | None = None) -> list[zipfile.ZipInfo]:
    """The image members of an open zip, in name order, after every safety check (see :func:`iter_zip_images`).

    ``others``, when given, receives ``(name, reason)`` for the other files (not folders, not OS metadata).
    """
    members = []
    hidden_folders: set[str] = set()
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise ValueError(f"unsafe zip: member {info.filename!r} has an absolute path or '..'")
        if info.is_dir() or "__MACOSX" in parts:
            continue
        folders = parts[:-1]
        hidden = next((index for index, part in enumerate(folders) if part.startswith(".")), None)
        if hidden is not None:
            # Inside a hidden folder: nothing is read, as in a folder walk and the dataset loader (review s22:
            # .hidden/d.jpg and .git/x.png were predicted); the folder is named once, unless it is a tool's own.
            folder = "/".join(folders[:hidden + 1])
            if (others is not None and is_hidden_folder(folders[hidden]) and folder not in hidden_folders
                    and is_image_name(name)):
                hidden_folders.add(folder)
                others.append((folder + "/", HIDDEN_FOLDER_REASON))
            continue
        if PurePosixPath(name).name.startswith("."):
            # A hidden photo is reported like the dataset loader's (probe s22: .b.jpg went without a word);
            # other hidden files (.DS_Store, macOS's ._face.jpg) are the system's, not the user's.
            if others is not None and is_hidden_data_name(PurePosixPath(name).name, IMAGE_EXTENSIONS):
                others.append((info.filename, HIDDEN_FILE_REASON))
            continue
        if not is_image_name(name):
            if others is not None:
                others.append((info.filename, NOT_AN_IMAGE_NAME))
            continue
        if info.file_size > 1024**2 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise ValueError(f"unsafe zip: {info.filename!r} expands more than {MAX_ZIP_RATIO}x (a zip bomb?)")
        members.append(info)
    if len(members) > max_images:
        raise ValueError(f"the zip holds {len(members)} images; the limit is {max_images}: split it into smaller zips")
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        raise ValueError(f"the zip's images add up to {total / 1024**2:.0f} MiB; the limit is {max_bytes / 1024**2:.0f} MiB")
    # Photos are compressed already (about 1x): a high ratio over all images is a bomb of small members, which the
    # per-member check above lets through (probe s11: 500 members of 1 MiB of zeros, a 562 KB zip, held 524 MB).
    packed = sum(info.compress_size for info in members)
    if total > 1024**2 and total > MAX_ZIP_RATIO * max(packed, 1):
        raise ValueError(f"unsafe zip: its images expand {total / max(packed, 1):,.0f} times in all "
                         f"(limit {MAX_ZIP_RATIO}x; a zip bomb?)")
    return sorted(members, key=lambda member: member.filename)


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"not a readable zip archive: {error}") from None


def zip_image_summary(data: bytes, *, max_images: int = MAX_ZIP_IMAGES, max_bytes: int = MAX_ZIP_BYTES) -> tuple[int, int]:
    """``(entries, bytes)``: how many entries :func:`iter_zip_images` will yield (the images, then the files and
    hidden folders it names as not read) and the images' declared size, after its checks (nothing is inflated).

    Raises:
        ValueError: As :func:`iter_zip_images` does before its first member.
    """
    with _open_zip(data) as archive:
        others: list[tuple[str, str]] = []
        members = _zip_image_members(archive, max_images, max_bytes, others)
    # Review s22: counting the images alone, the Batch page's progress read "Predicting… 5/3".
    return len(members) + len(others), sum(info.file_size for info in members)


def iter_zip_images(
    data: bytes, *, max_images: int = MAX_ZIP_IMAGES, max_bytes: int = MAX_ZIP_BYTES
) -> Iterator[tuple[str, bytes | str]]:
    """Yield ``(member name, bytes)`` for the image files of a zip, safely, one member at a time.

    Members are read in memory, never extracted, so a name cannot escape a
    folder; names with ``..`` or an absolute path are refused anyway, as are
    zip bombs (a member expanding more than 100x, all images together more
    than 100x, or more than ``max_bytes`` in total) and more than
    ``max_images`` images. OS metadata (``__MACOSX/``, ``._*``, ``.DS_Store``)
    is skipped; after the images come hidden photos (``.face.jpg``) with
    :data:`~core.files.HIDDEN_FILE_REASON`, hidden folders holding photos
    (``.trip/``, not a tool's own such as ``.git/``) with
    :data:`~core.files.HIDDEN_FOLDER_REASON`, and every other member that is
    not an image file with :data:`NOT_AN_IMAGE_NAME` as its reason.

    A member that cannot be read (a broken CRC, a damaged or encrypted
    entry) is yielded with a ``str`` saying why in place of its bytes, as in
    :func:`predictions_table`, and the members after it are still read.

    Raises:
        ValueError: Not a zip, an unsafe member name, or a limit exceeded
            (all checked before the first member is yielded).
    """
    with _open_zip(data) as archive:
        others: list[tuple[str, str]] = []
        for info in _zip_image_members(archive, max_images, max_bytes, others):
            try:
                payload: bytes | str = read_member(archive, info)  # bounded: the declared sizes may lie
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error) as error:
                # RuntimeError: an encrypted member; NotImplementedError: an unknown compression method.
                payload = f"could not be read from the zip: {error}"
            yield info.filename, payload
        for name, reason in sorted(others):  # every member is predicted or reported (walk s21: notes.txt vanished)
            yield name, reason

