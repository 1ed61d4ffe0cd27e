"""Evaluating a saved model on the splits of a dataset, with a prediction cache.

Metrics are computed per split (PublicTest and PrivateTest are never merged)
with scikit-learn, always over the seven FER2013 classes in canonical order.
Predictions are the expensive part, so each (model file, split content, TTA)
is predicted once and kept on disk: next to the run for a run's
``best.keras`` (``runs/<id>/predictions/``), otherwise under
``$FER_STUDIO_CACHE/predictions/`` (default ``~/.cache/fer-studio``). A cached
file remembers the model file's size and modification time, so a new
``best.keras`` is predicted again.

A labeled folder of ordinary photos (another dataset's class folders) can be
turned into faces first with :func:`load_labeled_photos`, which runs the same
face detection and FER2013 framing as prediction.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core import model_io
from core.dataset import FerDataset, LoadReport, SkippedRecord
from core.files import give_ordinary_mode
from core.labels import ALL, CLASS_NAMES, NUM_CLASSES, TRAINING, class_index
from core.model_io import LoadedModel
from core.tta import TTA_MODES, VIEW_COUNTS, normalize_tta

CACHE_VERSION = 1
EVALUATION_FILE = "evaluation.json"


@dataclass(frozen=True, eq=False)
class SplitEvaluation:
    """Metrics and predictions of one model on one split.

    Per-class tuples and the confusion matrix follow ``CLASS_NAMES`` (FER2013
    order) and always have all 7 classes, zeros for a class that is absent.
    Rows of ``probabilities``, ``labels`` and ``ids`` are aligned with
    ``dataset.subset(split)``.

    Attributes:
        split: Split name (``PublicTest``, ``PrivateTest``, ``test``, ``all`` ...).
        n: Number of images.
        accuracy: Fraction right; equals ``trace(confusion) / n``.
        macro_f1: Mean F1 over the classes present in the split's labels.
        precision, recall, f1: Per class, 7 floats each.
        support: Images per true class, 7 ints.
        confusion: ``(7, 7)`` int64; rows are true classes, columns predicted.
        probabilities: ``(n, 7)`` float32 in FER2013 column order.
        labels: ``(n,)`` int64 true classes.
        ids: ``(n,)`` str image ids.
        tta: Test-time augmentation used, a mode of ``core.tta.TTA_MODES``.
    """

    split: str
    n: int
    accuracy: float
    macro_f1: float
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    support: tuple[int, ...]
    confusion: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    tta: str = "none"

    @property
    def predictions(self) -> np.ndarray:
        """``(n,)`` int64 predicted classes (argmax of ``probabilities``)."""
        return self.probabilities.argmax(axis=1).astype(np.int64)

    @property
    def confidences(self) -> np.ndarray:
        """``(n,)`` float32 probability of the predicted class."""
        return self.probabilities.max(axis=1)

    def per_class(self) -> dict[str, dict[str, float]]:
        """Return ``{class: {precision, recall, f1, support}}`` in FER2013 order."""
        return {
            name: {"precision": self.precision[i], "recall": self.recall[i], "f1": self.f1[i], "support": self.support[i]}
            for i, name in enumerate(CLASS_NAMES)
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-image arrays)."""
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "tta": self.tta,
            "per_class": self.per_class(),
            "confusion_matrix": self.confusion.tolist(),
        }


def score_predictions(split: str, labels: np.ndarray, probabilities: np.ndarray, ids: np.ndarray | None = None, *, tta: str | bool = "none") -> SplitEvaluation:
    """Compute every metric of one split from its labels and probabilities.

    Args:
        split: Split name to record.
        labels: ``(n,)`` int true classes in FER2013 order.
        probabilities: ``(n, 7)`` float class probabilities, FER2013 columns.
        ids: ``(n,)`` image ids (default: row numbers).
        tta: The test-time augmentation mode to record (a bool means flip or none).

    Raises:
        ValueError: If the split is empty or the shapes disagree.
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    n = len(labels)
    if n == 0:
        raise ValueError(f"split {split!r} has no images to evaluate")
    if probabilities.shape != (n, NUM_CLASSES):
        raise ValueError(f"probabilities must be ({n}, {NUM_CLASSES}), got {probabilities.shape}")
    ids = np.asarray(ids if ids is not None else np.arange(n).astype(str))
    classes = list(range(NUM_CLASSES))
    predictions = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predictions, labels=classes, zero_division=0)
    confusion = confusion_matrix(labels, predictions, labels=classes).astype(np.int64)
    # A class with no true images (a cross-dataset folder without "disgust")
    # would add an F1 of 0 that says nothing about the model; leave it out.
    present = sorted(set(labels.tolist()))
    macro_f1 = float(f1_score(labels, predictions, labels=present, average="macro", zero_division=0))
    return SplitEvaluation(
        split=split,
        n=n,
        accuracy=float(np.trace(confusion) / n),
        macro_f1=macro_f1,
        precision=tuple(float(v) for v in precision),
        recall=tuple(float(v) for v in recall),
        f1=tuple(float(v) for v in f1),
        support=tuple(int(v) for v in support),
        confusion=confusion,
        probabilities=probabilities,
        labels=labels,
        ids=ids,
        tta=normalize_tta(tta),
    )


def choose_splits(dataset: FerDataset, splits: list[str] | None = None) -> list[str]:
    """Return the splits to evaluate: ``splits`` as given, else every split but Training.

    Raises:
        ValueError: If a named split is missing, or only Training is present and
            none was named (the message says how to ask for it).
    """
    present = dataset.split_names
    if splits:
        missing = [name for name in splits if name not in present]
        if missing:
            raise ValueError(f"split {', '.join(missing)} is not in this dataset; present: {', '.join(present)}")
        return list(dict.fromkeys(splits))
    chosen = [name for name in present if name != TRAINING]
    if not chosen:
        raise ValueError(f"this dataset only has the {TRAINING} split, and no held-out split to evaluate on; "
                         f"evaluate on training data by asking for it (`python -m core evaluate --split {TRAINING}`), "
                         "or load data with PublicTest or PrivateTest")
    return chosen


def content_digest(faces: np.ndarray, ids: np.ndarray) -> str:
    """Hex digest of a split's pixels and ids: what its predictions depend on."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(faces).tobytes())
    digest.update("\n".join(np.asarray(ids).astype(str).tolist()).encode("utf-8"))
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """FER Studio's cache folder: ``$FER_STUDIO_CACHE`` or ``~/.cache/fer-studio``."""
    return Path(os.environ.get("FER_STUDIO_CACHE") or Path.home() / ".cache" / "fer-studio")


def run_dir_of(model_path: str | os.PathLike) -> Path | None:
    """The run folder when ``model_path`` is a run's ``best.keras``, else ``None``."""
    path = Path(model_path)
    if path.name == "best.keras" and (path.parent / "config.json").is_file():
        return path.parent
    return None


def prediction_cache_path(model_path: str | os.PathLike, split: str, digest: str, tta: str | bool) -> Path:
    """Where the predictions of ``model_path`` on one split (with one TTA mode) are cached."""
    name = f"{split}-{digest[:12]}-tta-{normalize_tta(tta)}.npz"
    run_dir = run_dir_of(model_path)
    if run_dir is not None:
        return run_dir / "predictions" / name
    model_key = hashlib.blake2b(str(Path(model_path).resolve()).encode("utf-8"), digest_size=6).hexdigest()
    return default_cache_dir() / "predictions" / model_key / name


def _model_stamp(model_path: str | os.PathLike) -> tuple[int, int]:
    stat = Path(model_path).stat()
    return int(stat.st_mtime_ns), int(stat.st_size)


def read_cached_predictions(cache_path: Path, model_path: str | os.PathLike, ids: np.ndarray) -> np.ndarray | None:
    """Return cached ``(n, 7)`` probabilities, or ``None`` if missing, stale or corrupt."""
    try:
        with np.load(cache_path, allow_pickle=False) as data:
            stamp = (int(data["model_mtime_ns"]), int(data["model_size"]))
            if int(data["version"]) != CACHE_VERSION or stamp != _model_stamp(model_path):
                return None
            if not np.array_equal(data["ids"], np.asarray(ids).astype(str)):
                return None
            probabilities = np.asarray(data["probabilities"], dtype=np.float32)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return probabilities if probabilities.shape == (len(ids), NUM_CLASSES) else None


def write_cached_predictions(cache_path: Path, model_path: str | os.PathLike, ids: np.ndarray, probabilities: np.ndarray) -> None:
    """Write predictions atomically (temporary file + rename)."""
    mtime_ns, size = _model_stamp(model_path)
    buffer = io.BytesIO()
    np.savez(buffer, version=CACHE_VERSION, model_mtime_ns=mtime_ns, model_size=size,
             ids=np.asarray(ids).astype(str), probabilities=np.asarray(probabilities, dtype=np.float32))
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=cache_path.parent, prefix=f".{cache_path.name}-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(buffer.getvalue())
        give_ordinary_mode(tmp_name)
        os.replace(tmp_name, cache_path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


# Images predicted between two progress reports in a single pass: about a second of work on a 2-core CPU. With
# test-time augmentation the chunk shrinks by the views still to predict, so that the bar moves about as often
# (ten-crop's 512-image chunks stood still for 20 s each: walk s19).
PROGRESS_CHUNK = 512


def progress_chunk(tta: str, first_view: int = 0) -> int:
    """Images between two progress reports: :data:`PROGRESS_CHUNK` over the views left to predict."""
    from core.tta import VIEW_COUNTS, normalize_tta

    views = max(1, VIEW_COUNTS[normalize_tta(tta)] - first_view)
    return max(1, PROGRESS_CHUNK // views)


def _predict_with_progress(loaded: LoadedModel, images: np.ndarray, tta: str,
                           progress: Callable[[int, int], None] | None, first_view: int = 0) -> np.ndarray:
    """``model_io.predict_probabilities`` over ``images``, in chunks that report progress when asked to."""
    if progress is None:
        return model_io.predict_probabilities(loaded, images, tta=tta, first_view=first_view)
    total = len(images)
    progress(0, total)
    parts = []
    chunk = progress_chunk(tta, first_view)
    for start in range(0, total, chunk):
        parts.append(model_io.predict_probabilities(loaded, images[start:start + chunk], tta=tta,
                                                    first_view=first_view))
        progress(min(start + chunk, total), total)
    return np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES), np.float32)


def _cached_smaller_mode(model_path: str, split: str, digest: str, ids: np.ndarray, tta: str) -> tuple[int, np.ndarray | None]:
    """The largest mode below ``tta`` whose predictions are cached: ``(its view count, its probabilities)``.

    ``(0, None)`` when there is none. Its views are the first views of ``tta``
    (``core.tta.VIEW_COUNTS``), so only the rest need predicting: flip after a
    single pass predicts the mirror images only, ten-crop after flip the eight
    corner views.
    """
    for smaller in reversed(TTA_MODES[:TTA_MODES.index(tta)]):
        cached = read_cached_predictions(prediction_cache_path(model_path, split, digest, smaller), model_path, ids)
        if cached is not None:
            return VIEW_COUNTS[smaller], cached
    return 0, None


def evaluate_model(
    model: LoadedModel | str | os.PathLike,
    dataset: FerDataset,
    *,
    splits: list[str] | None = None,
    tta: str | bool = "none",
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, SplitEvaluation]:
    """Evaluate a model on each split of ``dataset`` separately.

    Args:
        model: A :class:`~core.model_io.LoadedModel`, or the path of a
            ``.keras`` file (loaded only if some split is not cached).
        dataset: Any labeled source: FER2013 (PublicTest/PrivateTest/test),
            or a folder of class subfolders (split ``all``). Faces are used as
            loaded (already cropped to 48x48).
        splits: Splits to evaluate; default every split but Training.
        tta: Test-time augmentation: ``none``, ``flip`` or ``crop10`` (see
            ``core.tta``); ``True`` means ``flip``.
        use_cache: Read and write the on-disk prediction cache (needs a model file).
            A mode that is not cached starts from the cached predictions of a
            smaller one when there are some (its views come first, see
            ``core.tta.VIEW_COUNTS``) and predicts only the views it adds.
        progress: Called as ``progress(done, total)`` with the images of the
            split being predicted, every :data:`PROGRESS_CHUNK` images (not for
            cached splits). An exception it raises stops the evaluation, and
            nothing is cached for that split: this is how a caller cancels.

    Returns:
        ``{split: SplitEvaluation}`` in canonical split order.

    Raises:
        FileNotFoundError: If a model path does not exist.
        ValueError: If the model file is not a loadable FER model, a split is
            missing (see :func:`choose_splits`), or ``tta`` is unknown.
    """
    tta = normalize_tta(tta)  # fail fast on an unknown mode, before any prediction
    chosen = choose_splits(dataset, splits)
    model_path = str(model.path if isinstance(model, LoadedModel) else model)
    if not isinstance(model, LoadedModel):
        model_io.read_model_meta(model_path)  # fail fast on a missing or non-model file
    loaded = model if isinstance(model, LoadedModel) else None
    cacheable = use_cache and bool(model_path) and Path(model_path).is_file()
    results: dict[str, SplitEvaluation] = {}
    for split in chosen:
        part = dataset.subset(split)
        probabilities = None
        cache_path = None
        known_views, known = 0, None
        if cacheable:
            digest = content_digest(part.images, part.ids)
            cache_path = prediction_cache_path(model_path, split, digest, tta)
            probabilities = read_cached_predictions(cache_path, model_path, part.ids)
            if probabilities is None:
                known_views, known = _cached_smaller_mode(model_path, split, digest, part.ids, tta)
        if probabilities is None:
            if loaded is None:
                loaded = model_io.load_model(model_path)
            probabilities = _predict_with_progress(loaded, part.images, tta, progress, first_view=known_views)
            if known is not None:  # the mean over all views, from the means over the first ones and the rest
                views = VIEW_COUNTS[tta]
                probabilities = ((known * known_views + probabilities * (views - known_views)) / views).astype(np.float32)
            if cache_path is not None:
                try:
                    write_cached_predictions(cache_path, model_path, part.ids, probabilities)
                except OSError:
                    pass  # a read-only run or cache folder only costs a recompute next time
        results[split] = score_predictions(split, part.labels, probabilities, part.ids, tta=tta)
    run_dir = run_dir_of(model_path) if model_path else None
    if run_dir is not None:
        record_evaluation(run_dir, results, dataset)
    return results


def evaluate_ensemble(
    model_paths: list[str | os.PathLike],
    dataset: FerDataset,
    *,
    splits: list[str] | None = None,
    tta: str | bool = "none",
    use_cache: bool = True,
) -> dict[str, SplitEvaluation]:
    """Evaluate the average of several models' probabilities (see ``core.ensemble``).

    Each member is evaluated (and cached) as by :func:`evaluate_model`, so an
    ensemble of runs that were already evaluated costs no prediction; the
    members' FER2013-ordered probabilities are then averaged and scored.

    Raises:
        FileNotFoundError: If a model path does not exist.
        ValueError: Fewer than two distinct models, a member whose classes are
            not FER2013's seven, or the errors of :func:`evaluate_model`.
    """
    from core.ensemble import check_fer_classes

    paths = list(dict.fromkeys(str(path) for path in model_paths))
    if len(paths) < 2:
        raise ValueError(f"an ensemble needs at least two models, got {len(paths)}")
    for path in paths:
        meta = model_io.read_model_meta(path)
        check_fer_classes(LoadedModel(model=None, class_names=tuple(meta["class_names"]), path=path))
    members = [evaluate_model(path, dataset, splits=splits, tta=tta, use_cache=use_cache) for path in paths]
    results = {}
    for split, first in members[0].items():
        probabilities = np.mean([member[split].probabilities for member in members], axis=0)
        results[split] = score_predictions(split, first.labels, probabilities, first.ids, tta=tta)
    return results


def record_evaluation(run_dir: Path, results: dict[str, SplitEvaluation], dataset: FerDataset) -> None:
    """Merge a summary of ``results`` into ``<run>/evaluation.json``.

    Per split: the latest result at the top level (what older readers
    expect), and under ``modes`` the latest result of each test-time
    augmentation mode on the same data, so a ten-crop evaluation does not
    hide the single pass made before it. A result on other data (another
    content hash) starts the split's ``modes`` again: results on different
    copies of a split do not sit side by side.
    """
    from core import runs

    path = Path(run_dir) / EVALUATION_FILE
    summary = read_evaluation(run_dir)
    for split, result in results.items():
        entry = {
            "accuracy": result.accuracy,
            "macro_f1": result.macro_f1,
            "n": result.n,
            "tta": result.tta,
            "data": dataset.report.source,
            "data_hash": dataset.report.content_hash,
            "evaluated": time.time(),
        }
        previous = summary.get(split, {})
        modes = previous.get("modes") if isinstance(previous.get("modes"), dict) else {}
        if previous.get("data_hash") != entry["data_hash"]:
            modes = {}
        elif not modes and "accuracy" in previous:  # written before modes were kept: keep that one result
            try:
                modes = {normalize_tta(previous.get("tta")): {key: value for key, value in previous.items() if key != "modes"}}
            except ValueError:
                modes = {}
        modes[result.tta] = entry
        summary[split] = {**entry, "modes": modes}
    try:
        runs.write_json_atomic(path, summary)
    except OSError:
        pass  # the summary is a convenience for the Compare page; never fail an evaluation on it


def read_evaluation(run_dir: Path) -> dict[str, dict]:
    """Return ``<run>/evaluation.json`` as ``{split: {accuracy, macro_f1, n, tta, ..., modes}}`` ({} if none)."""
    from core import runs

    data = runs.read_json(Path(run_dir) / EVALUATION_FILE, {})
    return {key: value for key, value in data.items() if isinstance(value, dict)} if isinstance(data, dict) else {}


def recorded_results(run_dir: Path) -> dict[str, dict[str, float]]:
    """``{split: {tta mode: accuracy}}`` from ``evaluation.json``, modes in ``TTA_MODES`` order.

    A split recorded before modes were kept gives its one result; entries
    that do not parse (a hand-edited file) are left out.
    """
    from core.tta import TTA_MODES

    results: dict[str, dict[str, float]] = {}
    for split, entry in read_evaluation(run_dir).items():
        modes = entry.get("modes") if isinstance(entry.get("modes"), dict) else {}
        candidates = [value for value in modes.values() if isinstance(value, dict)] or [entry]
        found: dict[str, float] = {}
        for candidate in candidates:
            try:
                mode = normalize_tta(candidate.get("tta"))  # summaries written before ten-crop hold a bool
                accuracy = float(candidate["accuracy"])
            except (KeyError, TypeError, ValueError):
                continue
            if 0.0 <= accuracy <= 1.0:
                found[mode] = accuracy
        if found:
            results[split] = {mode: found[mode] for mode in TTA_MODES if mode in found}
    return results


def load_labeled_photos(
    source: str | os.PathLike,
    *,
    detector: str | None = None,
    max_side: int = 1280,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[FerDataset, tuple[str, ...]]:
    """Load a folder of class folders of photos, cropping the largest face of each.

    Faces are found with ``core.detect.detect_faces`` and framed like FER2013
    faces (``core.detect.crop_face``), then ``prepare_face`` makes them 48x48.
    A photo where no face is found is used whole, and listed.

    Args:
        source: ``<source>/<class>/**/<image>``; class folder names may be
            synonyms (``happiness``); other folders are ignored.
        detector: A ``core.detect`` detector name (default: its default).
        max_side: Photos are decoded at most this large.
        progress: Called as ``progress(fraction, message)``.

    Returns:
        ``(dataset, without_face)``: every image in split ``all`` (ids are paths
        relative to ``source``), and the ids of the photos used whole.

    Raises:
        FileNotFoundError: If ``source`` is not a folder.
        ValueError: If it holds no image in a class folder, or the detector is unknown.
    """
    from core import detect
    from core.images import IMAGE_EXTENSIONS, decode_image
    from core.preprocess import prepare_face

    detector = detector or detect.DEFAULT_DETECTOR
    detect.get_detector(detector)
    root = Path(source).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{source} is not a folder; face detection needs a folder of class folders (<root>/happy/*.jpg ...)")
    records, ignored = [], []
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")):
        label = class_index(folder.name)
        if label is None:
            ignored.append(folder.name)
            continue
        records += [(path, label) for path in sorted(folder.rglob("*")) if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS]
    if not records:
        raise ValueError(f"no images found in class folders under {source} (expected <root>/<class>/*.jpg with class names "
                         f"such as {', '.join(CLASS_NAMES)})")
    faces, labels, ids, without_face, skipped = [], [], [], [], []
    digest = hashlib.blake2b(f"{detector}|{max_side}".encode(), digest_size=32)
    for number, (path, label) in enumerate(records):
        name = path.relative_to(root).as_posix()
        stat = path.stat()
        digest.update(f"{name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        try:
            image = decode_image(path.read_bytes(), max_side=max_side)
        except (OSError, ValueError) as error:
            skipped.append(SkippedRecord(name, str(error)))
            continue
        boxes = detect.detect_faces(image, detector)
        if boxes:
            crop = detect.crop_face(image, max(boxes, key=lambda box: box.w * box.h))
        else:
            crop = image
            without_face.append(name)
        faces.append(prepare_face(crop))
        labels.append(label)
        ids.append(name)
        if progress:
            progress((number + 1) / len(records), f"{number + 1}/{len(records)} photos")
    if not faces:
        raise ValueError(f"none of the {len(records)} images under {source} could be read: {skipped[0].reason}")
    report = LoadReport(source=str(source), kind=f"class-folders (faces by {detector})", loaded=len(faces),
                        skipped=tuple(skipped), ignored_folders=tuple(ignored), content_hash=digest.hexdigest())
    dataset = FerDataset(np.stack(faces).astype(np.uint8), np.array(labels, dtype=np.int64), np.full(len(faces), ALL),
                         np.array(ids), report)
    return dataset, tuple(without_face)
