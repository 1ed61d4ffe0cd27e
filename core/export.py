"""Export a model to ONNX, LiteRT (TFLite) or a TensorFlow SavedModel, with a card and a parity check.

Keras 3 writes the artifact (``model.export``; ONNX through tf2onnx). Then
the artifact is run by its own runtime (onnxruntime, the LiteRT interpreter,
TensorFlow's SavedModel loader) on a fixed set of faces, PublicTest when a
dataset is at hand, else seeded synthetic faces, and its probabilities are
compared with the ``.keras`` model's: the maximum absolute difference and
the top-1 agreement go into the card, and an export that disagrees is
removed. Dynamic-range quantisation (int8 weights, float activations) is
offered for ONNX (``onnxruntime.quantization.quantize_dynamic``) and LiteRT
(the converter's ``Optimize.DEFAULT``); its parity is judged by top-1
agreement and its accuracy change is reported.

Nothing half-written is left behind: the artifact and its card are written
under temporary names beside the target and renamed into place only after
parity passed. The card (``<artifact>.json``) holds what another program
needs: class names in output order, the input spec, the source model and its
accuracy, the parity figures and six lines of plain Python that use it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.files import temporary_folder
from core.quiet_import import filtered_stderr
from core.labels import CLASS_NAMES, IMAGE_SIZE, PUBLIC_TEST
from core.light import ONNX_META_KEY, card_path_for

FORMATS: dict[str, str] = {
    "onnx": ".onnx",
    "litert": ".tflite",
    "saved_model": "",  # a folder
}
SAVED_MODEL_SUFFIX = "_saved_model"
# What Keras' SavedModel export writes into its folder; anything else there is the user's.
SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb"})
FORMAT_SUMMARIES: dict[str, str] = {
    "onnx": "ONNX: onnxruntime on servers, browsers (onnxruntime-web), C++/C#/Java; the light predictor's format",
    "litert": "LiteRT (TFLite): Android, iOS, Raspberry Pi, microcontrollers (ai-edge-litert / tflite-runtime)",
    "saved_model": "TensorFlow SavedModel: TF Serving, TensorFlow.js converter, TF in other languages (a folder)",
}
QUANTIZE_MODES: tuple[str, ...] = ("none", "dynamic")
# A float export must match the Keras model's probabilities to this (measured: below 1e-6).
FLOAT_TOLERANCE: float = 1e-4
# A dynamically quantised export must pick the same top class on at least this share of the faces.
QUANTIZED_MIN_AGREEMENT: float = 0.95
SYNTHETIC_FACES: int = 64
# How the studio frames a face for the model (core.detect.square_box with each detector's padding): a detector of
# another program should crop the same way, as FER2013's faces were framed.
FACE_FRAMING = ("a square centred on the face's box, side = the box's longer side x 1.03 for an OpenCV Haar cascade "
                "box (x 0.96 for an MTCNN box), moved inside the image near an edge, converted to grayscale and "
                "resized to 48x48 (area averaging when shrinking)")
PARITY_BATCH: int = 256


@dataclass(frozen=True)
class ParitySet:
    """The faces an export is checked on: ``faces`` ``(N, 48, 48)`` uint8, ``labels`` ``(N,)`` or ``None``."""

    faces: np.ndarray
    labels: np.ndarray | None
    source: str


@dataclass(frozen=True)
class Parity:
    """How an export agrees with its ``.keras`` source on a :class:`ParitySet`.

    Attributes:
        faces: Number of faces compared.
        source: Where they came from.
        max_abs_difference: Largest absolute difference of any probability.
        top1_agreement: Share of faces where both pick the same class.
        keras_accuracy, export_accuracy: Accuracies on labelled faces, else ``None``.
        criterion: The rule the export had to meet.
        passed: Whether it met it.
    """

    faces: int
    source: str
    max_abs_difference: float
    top1_agreement: float
    keras_accuracy: float | None
    export_accuracy: float | None
    criterion: str
    passed: bool

    @property
    def accuracy_change(self) -> float | None:
        """Export minus Keras accuracy (``None`` without labels)."""
        if self.keras_accuracy is None or self.export_accuracy is None:
            return None
        return self.export_accuracy - self.keras_accuracy


@dataclass(frozen=True)
class ExportResult:
    """A finished export: ``artifact`` (file or folder), its ``card`` and where the card is."""

    artifact: Path
    card_path: Path
    card: dict
    parity: Parity


def check_format(format: str, quantize: str = "none") -> None:
    """Refuse an unknown format or quantisation, or a combination the format cannot express.

    Raises:
        ValueError: Naming the known formats / modes.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; known formats: {', '.join(FORMATS)}")
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantisation {quantize!r}; known: {', '.join(QUANTIZE_MODES)}")
    if format == "saved_model" and quantize != "none":
        raise ValueError("a SavedModel keeps float32 weights: --quantize dynamic is for --format onnx or litert")


def default_artifact_path(source: str | os.PathLike | Sequence[str | os.PathLike], format: str,
                          quantize: str = "none") -> Path:
    """Beside the source model: ``best.keras`` -> ``best.onnx``, ``best_dynamic.tflite``, ``best_saved_model/``.

    An ensemble (several sources) is named after its first member and its size, ``fer_studio_swa_ensemble3.onnx``,
    so it never takes the name of that member's own export.
    """
    sources = [Path(source)] if isinstance(source, (str, os.PathLike)) else [Path(s) for s in source]
    sources = list(dict.fromkeys(sources))
    first = sources[0]
    stem = first.stem + (f"_ensemble{len(sources)}" if len(sources) > 1 else "")
    stem += "_dynamic" if quantize == "dynamic" else ""
    return first.with_name(stem + (FORMATS[format] or SAVED_MODEL_SUFFIX))


def resolve_artifact_path(out: str | os.PathLike | None, source: str | os.PathLike | Sequence[str | os.PathLike],
                          format: str, quantize: str = "none") -> Path:
    """Where the artifact goes: ``out`` itself, inside ``out`` when it names a folder, or beside the source.

    ``out`` names the artifact itself when it ends in the format's suffix (``.onnx``, ``.tflite``), and for a
    SavedModel (a folder) when its name ends in ``_saved_model`` or it already is a SavedModel; any other ``out``
    is a folder to put the artifact in, created when missing, so the result never depends on whether the folder
    exists yet.

    Raises:
        ValueError: If ``out`` ends in another format's suffix, or names an
            existing file for a SavedModel (which is a folder).
    """
    default = default_artifact_path(source, format, quantize)
    if out is None:
        return default
    out = Path(out)
    suffix = FORMATS[format]
    if suffix:
        if out.is_dir() or not out.suffix:  # an existing folder, or one to be created
            return out / default.name
        if out.suffix.lower() != suffix:
            raise ValueError(f"the {format} export is a {suffix} file, but --out {out} ends in {out.suffix}")
        return out
    if out.is_file():
        raise ValueError(f"a SavedModel is a folder, but --out {out} is an existing file")
    if out.suffix.lower() in {s for s in FORMATS.values() if s} | {".keras", ".json"}:
        raise ValueError(f"a SavedModel is a folder; --out {out} looks like a file name")
    if is_saved_model(out) or (out.name.endswith(SAVED_MODEL_SUFFIX) and not out.is_dir()):
        return out
    return out / default.name  # any other folder, whatever its name, holds the user's files: the export goes inside


def is_saved_model(path: str | os.PathLike) -> bool:
    """True for a folder that holds a SavedModel (its ``saved_model.pb``)."""
    return (Path(path) / "saved_model.pb").is_file()


def check_replaceable(target: Path, card_target: Path) -> None:
    """Refuse, even with ``--overwrite``, to replace what is not an earlier export.

    A card path that holds another JSON (a bundled model's own card ``models/x.json`` for a SavedModel
    ``--out models/x``, a run's ``config.json``) and a SavedModel folder that also holds other files (they
    would be deleted with it) are refused: nothing the user had is lost to an export.

    Raises:
        FileExistsError: Naming what would be lost.
    """
    if card_target.is_file() and not _is_export_card(card_target):
        raise FileExistsError(f"{card_target} exists and is not an export's card (an export would replace it with "
                              "its own); choose another --out")
    if target.is_dir():
        saved_model = is_saved_model(target)
        others = sorted(entry.name for entry in target.iterdir() if not saved_model or entry.name not in SAVED_MODEL_ENTRIES)
        if others:
            listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            held = "a SavedModel and other files" if saved_model else "files but no SavedModel"
            raise FileExistsError(f"{target} holds {held} ({listed}), which an export there would delete; choose "
                                  "another --out, or move them")


def _is_export_card(path: Path) -> bool:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(card, dict) and card.get("format") in FORMATS and isinstance(card.get("parity"), dict)


def load_parity_set(data: str | os.PathLike | None, limit: int | None = None, seed: int = 0) -> ParitySet:
    """The faces an export is checked on.

    Args:
        data: A FER2013 source with a PublicTest split (all its faces are used),
            or ``None`` for :data:`SYNTHETIC_FACES` seeded synthetic faces.
        limit: Use at most this many faces (the first ones, a fixed set).
        seed: Seed of the synthetic faces.

    Raises:
        ValueError: If ``data`` has no PublicTest split.
        FileNotFoundError: If ``data`` does not exist.
    """
    if data is None:
        faces = synthetic_faces(SYNTHETIC_FACES if limit is None else min(limit, SYNTHETIC_FACES), seed)
        return ParitySet(faces, None, f"{len(faces):,} synthetic faces (seed {seed})")
    from core.data import load_fer2013

    dataset = load_fer2013(data)
    if PUBLIC_TEST not in dataset.split_names:
        raise ValueError(f"{data} has no {PUBLIC_TEST} split to check the export on (splits: "
                         f"{', '.join(dataset.split_names)}); pass a FER2013 source, or none for synthetic faces")
    subset = dataset.subset(PUBLIC_TEST)
    faces, labels = subset.images[:limit], subset.labels[:limit]
    return ParitySet(np.ascontiguousarray(faces), np.asarray(labels),
                     f"{PUBLIC_TEST}: {len(faces):,} faces of {_portable_name(Path(data))}")


def parity_set_from_dataset(dataset: Any, limit: int | None = None) -> ParitySet:
    """PublicTest of an already loaded ``core.dataset.FerDataset``, else synthetic faces when it has none."""
    if dataset is None or PUBLIC_TEST not in dataset.split_names:
        return load_parity_set(None, limit)
    subset = dataset.subset(PUBLIC_TEST)
    faces, labels = subset.images[:limit], subset.labels[:limit]
    return ParitySet(np.ascontiguousarray(faces), np.asarray(labels), f"{PUBLIC_TEST}: {len(faces):,} faces of the current dataset")


def synthetic_faces(count: int, seed: int = 0) -> np.ndarray:
    """``(count, 48, 48)`` uint8 smooth random images: face-like intensity statistics, fixed by ``seed``."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, (count, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    smooth = np.stack([cv2.GaussianBlur(image, (0, 0), 3.0) for image in noise])
    smooth = (smooth - smooth.mean(axis=(1, 2), keepdims=True)) / (smooth.std(axis=(1, 2), keepdims=True) + 1e-6)
    return np.clip(128 + 50 * smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.uint8)


def export_model(
    model_paths: str | os.PathLike | Sequence[str | os.PathLike],
    format: str,
    *,
    out: str | os.PathLike | None = None,
    quantize: str = "none",
    data: str | os.PathLike | None = None,
    parity_limit: int | None = None,
    parity_set: ParitySet | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a ``.keras`` model (or an ensemble of several) and check it against the source.

    Args:
        model_paths: One ``.keras`` file, or several: one artifact that
            averages their FER2013-ordered probabilities.
        format: ``onnx``, ``litert`` or ``saved_model``.
        out: Artifact path, or a folder to put it in (default: beside the first model).
        quantize: ``none`` or ``dynamic`` (int8 weights; ONNX and LiteRT).
        data: FER2013 source whose PublicTest faces check parity (``None``: synthetic faces).
        parity_limit: Check on at most this many faces.
        parity_set: Faces to check on, given directly (e.g. :func:`parity_set_from_dataset`);
            overrides ``data``.
        progress: Called with a short message as each step starts.

    Returns:
        The :class:`ExportResult`; the artifact and its card are in place.

    Raises:
        FileNotFoundError: A model file that does not exist.
        ValueError: Not a Keras model, an unknown format, a model the format
            cannot express (conversion fails or the artifact's runtime cannot
            run it), a parity failure, or an output folder that cannot be
            written. Nothing is left at the target in any of these cases.
    """
    say = progress or (lambda message: None)
    check_format(format, quantize)
    paths = [Path(model_paths)] if isinstance(model_paths, (str, os.PathLike)) else [Path(p) for p in model_paths]
    paths = list(dict.fromkeys(paths))
    if not paths:
        raise ValueError("no model given")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
    target = resolve_artifact_path(out, paths, format, quantize)
    card_target = card_path_for(target)
    check_replaceable(target, card_target)
    work = _make_work_dir(target)
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        say("loading the model")
        keras_model, class_names, sources = _load_source(paths)
        parity_set = parity_set or load_parity_set(data, parity_limit)
        # The reference first: the ONNX exporter refuses a model that has never been called.
        reference = _predict_keras(keras_model, parity_set.faces)
        say(f"exporting to {format}")
        float_artifact = work / ("model" + (FORMATS[format] or "_saved_model"))
        _write_float_artifact(keras_model, float_artifact, format, quantize)
        artifact = float_artifact
        if format == "onnx":
            _add_onnx_metadata(float_artifact, class_names)
            if quantize == "dynamic":
                artifact = work / "model_dynamic.onnx"
                _quantize_onnx(float_artifact, artifact)
        say(f"checking parity on {len(parity_set.faces):,} faces")
        try:
            exported = run_artifact(artifact, format, parity_set.faces)
        except ValueError as error:
            raise ValueError(f"this model cannot be expressed as {format}: the converted file does not run "
                             f"({error})") from error
        parity = compare(reference, exported, parity_set, quantize, class_names)
        if not parity.passed:
            raise ValueError(f"the {format} export disagrees with the .keras model ({parity.criterion} not met: max "
                             f"|difference| {parity.max_abs_difference:.2e}, top-1 agreement "
                             f"{parity.top1_agreement:.2%} on {parity.faces} faces); nothing was written")
        card = build_card(target, format, quantize, class_names, sources, parity, keras_model, artifact)
        card_tmp = work / "card.json"
        card_tmp.write_text(json.dumps(card, indent=2), encoding="utf-8")
        say("writing")
        _move_into_place(artifact, target)
        os.replace(card_tmp, card_target)
        return ExportResult(artifact=target, card_path=card_target, card=card, parity=parity)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ValueError(f"cannot write the export to {target.parent}: {error.strerror or error}; choose another "
                         "--out folder") from error
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _make_work_dir(target: Path) -> Path:
    """A hidden temporary folder beside ``target`` (same file system, so the final rename is atomic)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return temporary_folder(target.parent, f"{target.name}-export")  # what a killed export left goes first
    except OSError as error:
        raise ValueError(f"cannot write to {target.parent}: {error.strerror or error}; choose another --out "
                         "folder") from error


def _load_source(paths: list[Path]) -> tuple[Any, tuple[str, ...], list[dict]]:
    """The Keras model to export, its output class names, and a description of each source file."""
    from core.model_io import load_model

    loaded = [load_model(path) for path in paths]
    sources = [_describe_source(member) for member in loaded]
    for member in loaded:
        shape = tuple(member.model.input_shape[1:])
        if shape != (IMAGE_SIZE, IMAGE_SIZE, 1) or len(member.model.inputs) != 1 or len(member.model.outputs) != 1:
            raise ValueError(f"{Path(member.path).name} takes {member.model.input_shape} "
                             f"({len(member.model.inputs)} inputs, {len(member.model.outputs)} outputs); an export card "
                             f"describes one {IMAGE_SIZE}x{IMAGE_SIZE}x1 face input and one probability output")
    if len(loaded) == 1:
        return loaded[0].model, loaded[0].class_names, sources
    from core.ensemble import make_ensemble

    ensemble = make_ensemble(loaded)  # refuses non-FER classes and mixed inputs, naming the file
    return _ensemble_model(ensemble.members), CLASS_NAMES, sources


def _ensemble_model(members: Sequence[Any]) -> Any:
    """One Keras model: each member's outputs put into FER2013 order, then averaged."""
    import keras

    from core.labels import class_index

    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="face")
    outputs = []
    for number, member in enumerate(members):
        member.model.name = f"member_{number}_{member.model.name}"  # nested models need unique names
        column = {class_index(name): position for position, name in enumerate(member.class_names)}
        order = [column[index] for index in range(len(CLASS_NAMES))]
        probabilities = member.model(inputs)
        if order != list(range(len(CLASS_NAMES))):
            probabilities = keras.ops.take(probabilities, order, axis=-1)
        outputs.append(probabilities)
    return keras.Model(inputs, keras.layers.Average(name="ensemble_mean")(outputs), name="fer_studio_ensemble")


def _portable_name(path: Path) -> str:
    """The source's name for a card that travels: relative to the checkout when inside it
    (``models/fer_studio_swa.keras``), else the file or folder name alone (``fer2013``); never this machine's
    absolute path."""
    from core.runs import REPO_ROOT

    try:
        return path.resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except (ValueError, OSError):
        return path.name


def _describe_source(member: Any) -> dict:
    path = Path(member.path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    source = {"file": _portable_name(path), "sha256": digest, "architecture": member.meta.get("model"),
              "parameters": int(member.model.count_params()), "class_names": list(member.class_names)}
    bundled_card = path.with_suffix(".json")
    if bundled_card.is_file():
        try:
            evaluation = json.loads(bundled_card.read_text(encoding="utf-8")).get("evaluation", {})
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            evaluation = {}
        source["card_accuracy"] = {split: entry.get("accuracy") for split, entry in evaluation.items()
                                   if isinstance(entry, dict)}
    return source


def _write_float_artifact(model: Any, path: Path, format: str, quantize: str) -> None:
    """``model.export`` with the options this project relies on; conversion errors become ``ValueError``."""
    keras_format = {"onnx": "onnx", "litert": "litert", "saved_model": "tf_saved_model"}[format]
    kwargs: dict[str, Any] = {}
    if format == "litert":
        import tensorflow as tf

        # Builtin ops only: the file then runs on any LiteRT runtime (no Flex delegate, which
        # ai-edge-litert and phones lack); a model that needs TensorFlow ops fails here, clearly.
        kwargs["target_spec"] = {"supported_ops": {tf.lite.OpsSet.TFLITE_BUILTINS}}
        if quantize == "dynamic":
            kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]
    if format == "onnx":
        _require("tf2onnx", "ONNX export needs tf2onnx (pinned in requirements.txt): pip install -r requirements.txt")
    try:
        with warnings.catch_warnings():  # Keras' bundled tf2onnx probes np.object, which NumPy 2 warns about
            warnings.filterwarnings("ignore", message="In the future `np.object`", category=FutureWarning)
            model.export(str(path), format=keras_format, verbose=False, **kwargs)
    except OSError as error:
        if error.errno is None:
            raise ValueError(f"this model cannot be expressed as {format}: OSError: {error}") from error
        raise  # a full disk is not the model's fault (probe s19): export_model names the folder it could not write
    except Exception as error:  # converters raise many types (ConverterError, ValueError, KeyError...)
        message = " ".join(str(error).split())[:600]
        raise ValueError(f"this model cannot be expressed as {format}: {type(error).__name__}: {message}") from error
    if not path.exists():
        raise ValueError(f"the {format} exporter wrote nothing (Keras {_version('keras')})")


def _add_onnx_metadata(path: Path, class_names: tuple[str, ...]) -> None:
    """Store the class names inside the ONNX file too, so it stays usable without its card."""
    import onnx

    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key = ONNX_META_KEY
    entry.value = json.dumps({"class_names": list(class_names), "input": input_spec_text()})
    onnx.save(model, str(path))


def _quantize_onnx(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantizer_log = logging.getLogger()  # it advises "pre-processing before quantization" on the root logger
    level = quantizer_log.level
    quantizer_log.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    except Exception as error:  # onnxruntime's quantiser raises assorted types
        raise ValueError(f"onnxruntime could not quantise this model: {type(error).__name__}: {error}") from error
    finally:
        quantizer_log.setLevel(level)


def _predict_keras(model: Any, faces: np.ndarray) -> np.ndarray:
    from core.preprocess import to_model_input

    x = to_model_input(faces)
    return np.concatenate([np.asarray(model.predict_on_batch(x[start:start + PARITY_BATCH]), np.float32)
                           for start in range(0, len(x), PARITY_BATCH)])


def run_artifact(path: str | os.PathLike, format: str, faces: np.ndarray) -> np.ndarray:
    """Run an exported artifact with its own runtime on ``(N, 48, 48)`` uint8 faces.

    Returns:
        ``(N, K)`` float32 probabilities in the model's output order.

    Raises:
        ValueError: If the runtime cannot load or run the artifact.
    """
    from core.preprocess import to_model_input

    x = to_model_input(faces)
    try:
        predict = _runtime(Path(path), format)
        return np.concatenate([np.asarray(predict(x[start:start + PARITY_BATCH]), np.float32)
                               for start in range(0, len(x), PARITY_BATCH)])
    except ValueError:
        raise
    except Exception as error:  # runtime-specific error types
        message = " ".join(str(error).split())[:600]
        raise ValueError(f"the {format} runtime cannot run this export: {type(error).__name__}: {message}") from error


def _runtime(path: Path, format: str) -> Callable[[np.ndarray], np.ndarray]:
    if format == "onnx":
        from core.light import OnnxClassifier

        return OnnxClassifier(path).predict_on_batch
    if format == "litert":
        interpreter = make_litert_interpreter(path)
        detail_in, detail_out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

        def predict(x: np.ndarray) -> np.ndarray:
            interpreter.resize_tensor_input(detail_in["index"], x.shape)
            with filtered_stderr():  # its C++ "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." each time
                interpreter.allocate_tensors()
            interpreter.set_tensor(detail_in["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(detail_out["index"]).copy()

        return predict
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    name = next(iter(serve.structured_input_signature[1]))
    return lambda x: next(iter(serve(**{name: tf.constant(x)}).values())).numpy()


def make_litert_interpreter(path: str | os.PathLike) -> Any:
    """A LiteRT interpreter: ``ai_edge_litert`` (TensorFlow's successor runtime) when installed, else ``tf.lite``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # tf.lite.Interpreter still works in TF 2.21 but warns it is deprecated
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path))


def compare(reference: np.ndarray, exported: np.ndarray, parity_set: ParitySet, quantize: str = "none",
            class_names: Sequence[str] = CLASS_NAMES) -> Parity:
    """Parity figures of ``exported`` against ``reference`` probabilities (both ``(N, K)``, columns ``class_names``).

    Raises:
        ValueError: If the shapes differ.
    """
    if reference.shape != exported.shape:
        raise ValueError(f"the export returns {exported.shape} for {reference.shape} from the .keras model")
    difference = float(np.max(np.abs(reference - exported))) if reference.size else 0.0
    reference_top, exported_top = reference.argmax(axis=1), exported.argmax(axis=1)
    agreement = float(np.mean(reference_top == exported_top)) if len(reference) else 1.0
    keras_accuracy = export_accuracy = None
    if parity_set.labels is not None and len(parity_set.labels):
        # Labels are FER2013 indices; the columns are the model's own order, so map them first.
        from core.labels import class_index

        to_fer = np.array([-1 if class_index(name) is None else class_index(name) for name in class_names])
        keras_accuracy = float(np.mean(to_fer[reference_top] == parity_set.labels))
        export_accuracy = float(np.mean(to_fer[exported_top] == parity_set.labels))
    if quantize == "none":
        criterion = f"max |difference| <= {FLOAT_TOLERANCE:g}"
        passed = difference <= FLOAT_TOLERANCE
    else:
        criterion = f"top-1 agreement >= {QUANTIZED_MIN_AGREEMENT:.0%}"
        passed = agreement >= QUANTIZED_MIN_AGREEMENT
    return Parity(faces=len(reference), source=parity_set.source, max_abs_difference=difference,
                  top1_agreement=agreement, keras_accuracy=keras_accuracy, export_accuracy=export_accuracy,
                  criterion=criterion, passed=bool(passed))


def input_spec_text() -> str:
    return (f"{IMAGE_SIZE}x{IMAGE_SIZE}x1 uint8 0..255 grayscale face (passed as float32), "
            "normalisation inside (Rescaling 1/255)")


def _centre_crop_entry(model: Any) -> dict:
    """``{"centre_crop": [h, w]}`` for a model trained on a centre window (``fer_vgg --param crop``), else ``{}``.

    The artifact still takes the whole face; the entry tells ``core.model_io``
    to make the window's own ten-crop for it, as it does for the ``.keras`` file.
    """
    from core.models import centre_crop_of

    window = centre_crop_of(model)
    return {"centre_crop": list(window)} if window is not None else {}


def build_card(target: Path, format: str, quantize: str, class_names: tuple[str, ...], sources: list[dict],
               parity: Parity, model: Any, artifact: Path) -> dict:
    """The card written beside the artifact (see the module docstring)."""
    input_name = "face"
    if format == "onnx":
        from core.light import OnnxClassifier

        input_name = OnnxClassifier(artifact).input_name
    elif format == "saved_model":
        input_name = model.inputs[0].name
    size = (sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file()) if artifact.is_dir()
            else artifact.stat().st_size)
    parity_entry = {key: value for key, value in asdict(parity).items()}
    parity_entry["accuracy_change"] = parity.accuracy_change
    return {
        "format": format,
        "file": target.name,
        "size_bytes": size,
        "quantization": "dynamic-range int8 weights, float activations" if quantize == "dynamic" else "none (float32)",
        "class_names": list(class_names),
        "input": {"name": input_name, "shape": [None, IMAGE_SIZE, IMAGE_SIZE, 1], "dtype": "float32",
                  "spec": input_spec_text(),
                  "face": FACE_FRAMING,
                  **_centre_crop_entry(model)},
        "output": {"shape": [None, len(class_names)], "meaning": "probabilities; column i is class_names[i]"},
        "source": sources[0] if len(sources) == 1 else {"ensemble": sources,
                                                         "combination": "mean of the members' probabilities, each put into FER2013 order"},
        "source_accuracy": ({"split": parity.source, "accuracy": parity.keras_accuracy}
                            if parity.keras_accuracy is not None else None),
        "parity": parity_entry,
        "usage": usage_snippet(format, target.name, input_name),
        "runtime": {"onnx": "pip install onnxruntime numpy opencv-python-headless (or requirements-predict.txt)",
                    "litert": "pip install ai-edge-litert numpy opencv-python-headless",
                    "saved_model": "pip install tensorflow"}[format],
        "versions": {name: _version(name) for name in ("keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime", "ai_edge_litert")},
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def usage_snippet(format: str, file_name: str, input_name: str = "face") -> str:
    """Six lines of plain Python that classify ``face.jpg`` (a face crop, framed as :data:`FACE_FRAMING` says)
    with the artifact; a file OpenCV cannot read stops it with a message, not an OpenCV traceback."""
    read = [
        'image = cv2.imread("face.jpg", cv2.IMREAD_GRAYSCALE)',
        'if image is None: raise SystemExit("cannot read face.jpg as an image")',
        'face = cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA).astype("float32")[None, :, :, None]',
    ]
    card = f'card = json.load(open("{file_name}.json"))'
    if format == "onnx":
        return "\n".join([
            "import json, cv2, onnxruntime",
            card + f'; session = onnxruntime.InferenceSession("{file_name}")',
            *read,
            f'print(card["class_names"][session.run(None, {{"{input_name}": face}})[0].argmax()])',
        ])
    if format == "litert":
        return "\n".join([
            "import json, cv2; from ai_edge_litert.interpreter import Interpreter",
            card + f'; model = Interpreter(model_path="{file_name}"); model.allocate_tensors()',
            *read[:2],
            read[2] + '; model.set_tensor(model.get_input_details()[0]["index"], face); model.invoke()',
            'print(card["class_names"][model.get_tensor(model.get_output_details()[0]["index"]).argmax()])',
        ])
    return "\n".join([
        "import json, cv2, tensorflow as tf",
        card + f'; serve = tf.saved_model.load("{file_name}").signatures["serving_default"]',
        *read,
        f'print(card["class_names"][list(serve({input_name}=tf.constant(face)).values())[0].numpy().argmax()])',
    ])


def _move_into_place(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing folder target is swapped out, then removed."""
    if source.is_dir() and target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        os.replace(target, old)
        try:
            os.replace(source, target)
        except OSError:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    elif target.is_dir():
        raise ValueError(f"{target} is a folder; pass another --out")
    else:
        os.replace(source, target)


def _require(module: str, message: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ValueError(message)


def _version(module: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(module.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None
