"""``python -m core predict``: emotions of the faces in photos, as text or JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from core.commands.safe_text import make_stdout_safe, printable
from core.detect import DEFAULT_DETECTOR, DEFAULT_MAX_SIDE, DEFAULT_MIN_CONFIDENCE, list_detectors
from core.files import HIDDEN_FILE_REASON, HIDDEN_FOLDER_REASON
from core.labels import CLASS_NAMES

# As for videos (core.video): below this, every face but the largest would be a few pixels wide.
MIN_DETECT_SIDE = 64


def register(subparsers) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="detect faces in photos and print their emotion probabilities",
        description="Detect faces in photos and print each face's box and its seven emotion probabilities "
        "(FER2013 order). Directories are searched for image files recursively.",
    )
    parser.add_argument("paths", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    parser.add_argument("--model", type=Path, action="append", default=None, metavar="PATH",
                        help="a .keras model, or an .onnx export (runs without TensorFlow; see docs/export.md) "
                             "(default: the bundled model); repeat it for an ensemble that averages the models' probabilities")
    parser.add_argument("--detector", default=None, choices=[spec.name for spec in list_detectors()],
                        help=f"face detector (default {DEFAULT_DETECTOR}; haar for .onnx models)")
    parser.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help=f"drop faces the detector scores below this, 0..1 (default {DEFAULT_MIN_CONFIDENCE})")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help=f"detect on the photo shrunk to this longer side; raise it for small faces (default {DEFAULT_MAX_SIDE})")
    views = parser.add_mutually_exclusive_group()
    views.add_argument("--tta", dest="tta", action="store_const", const="flip", default="none",
                       help="test-time augmentation: average with the mirrored face's prediction (2 views)")
    views.add_argument("--ten-crop", dest="tta", action="store_const", const="crop10",
                        help="ten-crop test-time augmentation: the whole face and its 4 corner crops, each mirrored "
                             "(10 views, 10x the classification time)")
    parser.add_argument("--no-detect", action="store_true", help="classify each whole image as one face")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    """Predict every image; unreadable files are reported and skipped. Returns 1 if any failed."""
    # Quiet TensorFlow's C++ start-up logging unless the user asked for it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from core.images import IMAGE_EXTENSIONS, image_size, read_image_file
    from core.light import LIGHT_DETECTOR, is_onnx_path, keras_available, load_predictor, tensorflow_available
    from core.predict import bundled_model_name, decode_photo, default_model_path, predict_image

    if not 0.0 <= args.min_confidence <= 1.0:
        raise ValueError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    if args.max_side < MIN_DETECT_SIDE:
        raise ValueError(f"--max-side must be at least {MIN_DETECT_SIDE} pixels (faces are found on the photo "
                         f"shrunk to that side), got {args.max_side}")
    model_paths = args.model or [default_model_path()]
    if model_paths[0] is None:
        raise FileNotFoundError(
            f"no model given and no bundled model at {bundled_model_name()}: "
            "pass --model runs/<id>/best.keras (train one with `python -m core train`)"
        )
    make_stdout_safe()
    files = list(collect_images(args.paths))
    if not files:
        raise FileNotFoundError(f"no images to predict in {', '.join(map(printable, args.paths))}: folders are searched "
                                f"for {', '.join(sorted(IMAGE_EXTENSIONS))} files (hidden ones are skipped)")
    if files and all(problem is not None for _, problem in files):
        raise FileNotFoundError("nothing to predict: " + "; ".join(f"{printable(path)}: {problem}" for path, problem in files))
    onnx = any(is_onnx_path(path) for path in model_paths)
    keras_models = [path for path in model_paths if not is_onnx_path(path)]
    if keras_models and not keras_available():
        # The light install (requirements-predict.txt) has no Keras: say what it can run, before any other advice.
        first = Path(keras_models[0])
        if args.model and not first.exists():
            raise FileNotFoundError(f"no model file at {printable(first)}")
        given = "the default model" if not args.model else printable(first.name)
        kind = "a .keras file" if first.suffix.lower() == ".keras" else f"not an ONNX file ({first.suffix or 'no suffix'})"
        onnx_path = f"models/{first.stem}.onnx" if not args.model else printable(str(first.with_suffix(".onnx")))
        source = ("" if not args.model else " --model " + (printable(str(first)) if first.suffix.lower() == ".keras"
                                                            else "<the .keras model>"))
        raise ValueError(f"{given} is {kind}; this install (requirements-predict.txt, without Keras and TensorFlow) "
                         f"runs ONNX exports only: make one with `python -m core export --format onnx{source}` in "
                         f"the full install, then pass --model with the .onnx file ({onnx_path})")
    args.detector = args.detector or (LIGHT_DETECTOR if onnx else DEFAULT_DETECTOR)
    if args.detector == "mtcnn" and not args.no_detect and not tensorflow_available():
        raise ValueError("the mtcnn detector needs TensorFlow (requirements.txt); without it use --detector haar")
    loaded = load_predictor(model_paths)
    images = []
    for file, problem in files:
        entry: dict = {"file": printable(file)}
        if problem is not None:
            # A hidden photo or folder is named, not read, and is no failure (the exit status stays 0).
            entry["skipped" if problem in (HIDDEN_FILE_REASON, HIDDEN_FOLDER_REASON) else "error"] = problem
            images.append(entry)
            continue
        try:
            data = read_image_file(file)
            image = decode_photo(data)
            result = predict_image(
                image, loaded, detector=args.detector, min_confidence=args.min_confidence,
                tta=args.tta, detect=not args.no_detect, max_side=args.max_side,
            )
        except (ValueError, OSError) as error:
            entry["error"] = printable(getattr(error, "strerror", None) or str(error) if isinstance(error, OSError) else str(error))
        else:
            # Boxes in the file's own pixels: a large photo is analysed downscaled (MAX_IMAGE_SIDE).
            width, height = image_size(data)
            scale = width / image.shape[1]
            entry["width"], entry["height"] = width, height
            if (width, height) != (image.shape[1], image.shape[0]):
                entry["analysed_at"] = {"width": int(image.shape[1]), "height": int(image.shape[0])}
            entry["faces"] = [
                {
                    "box": {key: min(round(value * scale), limit) for key, value, limit in (
                        ("x", face.box.x, width - 1), ("y", face.box.y, height - 1), ("w", face.box.w, width), ("h", face.box.h, height))},
                    "detector_score": round(face.box.score, 6),
                    "emotion": face.label,
                    "probabilities": {name: float(p) for name, p in zip(CLASS_NAMES, face.probabilities)},
                }
                for face in result.faces
            ]
            entry["milliseconds"] = round(result.total_ms, 1)
        images.append(entry)
    if args.json:
        model = str(model_paths[0]) if len(model_paths) == 1 else [str(path) for path in model_paths]
        payload = {"model": model, "detector": None if args.no_detect else args.detector,
                   "classes": list(CLASS_NAMES), "images": images}
        print(json.dumps(payload, indent=2))
    else:
        print_text(images)
    return 1 if any("error" in entry for entry in images) else 0


def collect_images(paths: list[str]) -> Iterator[tuple[Path, str | None]]:
    """Yield ``(path, problem)`` for every image to predict: files as given, folders walked recursively.

    Folders are walked sorted, hidden files skipped. ``problem`` is ``None``
    for a file to read, else why it cannot be: a path that does not exist, a
    broken link, or something that is not a regular file (a FIFO or a device
    named ``.jpg``), which is never opened; a folder's subfolders that cannot
    be listed, and a folder with no image at all, are problems too. Nothing
    is read here.
    """
    from core.images import IMAGE_EXTENSIONS

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = 0
            for file, problem in _walk_folder(path):
                found += 1
                yield file, problem
            if not found:
                yield path, (f"no images to predict in this folder or its subfolders: folders are searched for "
                             f"{', '.join(sorted(IMAGE_EXTENSIONS))} files (hidden ones are skipped)")
        elif path.is_file():
            yield path, None
        elif path.is_symlink() and not path.exists():
            yield path, "a broken link: the file it points to does not exist"
        elif path.exists():
            yield path, _not_regular(path)
        else:
            yield path, "no such file or folder"


def _walk_folder(folder: Path) -> Iterator[tuple[Path, str | None]]:
    """The image files under ``folder`` in sorted order, following linked subfolders (once each), with a problem
    for each subfolder that cannot be listed: ``Path.rglob`` skipped both without a word (probe s19)."""
    import os

    from core.files import is_hidden_data_name, is_hidden_folder
    from core.images import IMAGE_EXTENSIONS
    from core.predict import is_image_name

    problems: list[tuple[Path, str]] = []
    seen: set[str] = set()
    entries: list[tuple[Path, str | None]] = []

    def unreadable(error: OSError) -> None:
        problems.append((Path(error.filename), f"folder could not be listed: {error.strerror or error}"))

    for current, subfolders, files in os.walk(folder, onerror=unreadable, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:  # a link back up the tree: walked once
            subfolders[:] = []
            continue
        seen.add(real)
        # Hidden photos and folders are reported, as the dataset loader does (probe s22: .b.jpg went without a word).
        problems.extend((Path(current) / name, HIDDEN_FOLDER_REASON) for name in subfolders
                        if is_hidden_folder(name) and _holds_photos(Path(current) / name))
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in files:
            file = Path(current) / name
            if is_hidden_data_name(name, IMAGE_EXTENSIONS):
                entries.append((file, HIDDEN_FILE_REASON))
                continue
            if name.startswith(".") or not is_image_name(name):
                continue
            if file.is_file():
                entries.append((file, None))
            elif file.is_symlink() and not file.exists():
                entries.append((file, "a broken link: the file it points to does not exist"))
            else:
                entries.append((file, _not_regular(file)))
    yield from sorted([*entries, *problems], key=lambda entry: str(entry[0]))


def _holds_photos(folder: Path, limit: int = 10_000) -> bool:
    """True when ``folder`` (or a folder in it) holds an image file name, looking at ``limit`` entries at most:
    a hidden folder is named only when it hides photos (review s22: every .venv was named)."""
    import os

    from core.predict import is_image_name

    seen = 0
    for _, _, files in os.walk(folder):
        for name in files:
            if is_image_name(name) and not name.startswith("._"):
                return True
        seen += len(files) + 1
        if seen > limit:
            return True  # too large to look through: named, to be safe
    return False


def _not_regular(path: Path) -> str:
    """Why a path that exists is not read, without opening it."""
    from core.images import read_image_file

    try:
        read_image_file(path, max_bytes=0)  # refuses on stat alone for anything but a regular file
    except ValueError as error:
        return str(error)
    except OSError as error:
        return error.strerror or str(error)
    return "not a regular file; not read"


def print_text(images: list[dict]) -> None:
    """Human-readable report: one block per image, one line per face."""
    width = max(7, *(len(name) for name in CLASS_NAMES))  # whole class names: "surprise", not "surpris"
    header = "  ".join(f"{name:>{width}}" for name in CLASS_NAMES)
    for entry in images:
        if "error" in entry or "skipped" in entry:
            kind = "error" if "error" in entry else "skipped"
            print(f"{entry['file']}: {kind}: {entry[kind]}", file=sys.stdout)
            continue
        faces = entry["faces"]
        analysed = entry.get("analysed_at")
        size = f"{entry['width']}x{entry['height']}" + (f", analysed at {analysed['width']}x{analysed['height']}" if analysed else "")
        print(f"{entry['file']}: {len(faces)} face{'s' if len(faces) != 1 else ''} ({size}, {entry['milliseconds']} ms)")
        if faces:
            print(f"  {'#':>2}  {'box (x,y,w,h)':<22} {'emotion':<9} {header}")
        for index, face in enumerate(faces, start=1):
            box = face["box"]
            box_text = f"{box['x']},{box['y']},{box['w']},{box['h']}"
            probabilities = "  ".join(f"{face['probabilities'][name]:{width}.3f}" for name in CLASS_NAMES)
            print(f"  {index:>2}  {box_text:<22} {face['emotion']:<9} {probabilities}")
