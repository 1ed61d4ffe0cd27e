"""``python -m core evaluate``: metrics of a saved model on each test split of a dataset."""

from __future__ import annotations

import argparse
import json
import sys

from core.labels import CLASS_NAMES
from core.wording import counted


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, macro-F1, per-class report and confusion matrix of a saved model",
        description="Evaluate a .keras model on every split but Training (PublicTest and PrivateTest apart), "
        "or on a folder of class subfolders (split 'all'). Predictions are cached on disk.",
    )
    parser.add_argument("--model", action="append", default=None, metavar="PATH",
                        help="a .keras file, e.g. runs/<id>/best.keras (default: the bundled model); "
                             "repeat it to evaluate an ensemble that averages the models' probabilities")
    parser.add_argument("--data", default=None, help="fer2013.csv, the image folders, a class-folder set or a zip (default: $FER2013_DIR)")
    parser.add_argument("--split", dest="splits", action="append", default=None, metavar="NAME",
                        help="split to evaluate (repeatable): PublicTest, PrivateTest, test, all, Training")
    views = parser.add_mutually_exclusive_group()  # as predict's: both given, one was dropped without a word
    views.add_argument("--tta", dest="tta", action="store_const", const="flip", default="none",
                       help="test-time augmentation: average with the mirrored face's prediction (2 views)")
    views.add_argument("--ten-crop", dest="tta", action="store_const", const="crop10",
                       help="ten-crop test-time augmentation: the whole face and its 4 corner crops, each mirrored "
                            "(10 views, 10x the classification time)")
    parser.add_argument("--detect-faces", action="store_true",
                        help="--data is a folder of class folders of photos: crop the largest face of each first "
                             "(a photo without a face is used whole and counted)")
    parser.add_argument("--detector", default=None, help="face detector for --detect-faces: mtcnn (default) or haar")
    parser.add_argument("--no-cache", dest="use_cache", action="store_false", help="predict again even when cached")
    parser.add_argument("--json", dest="as_json", action="store_true", help="print one JSON object instead of tables")
    parser.set_defaults(run=run)


def resolve_model_paths(models: list[str] | None) -> list[str]:
    """Return ``models`` (duplicates dropped) or ``[the bundled model's path]``.

    Raises:
        FileNotFoundError: If no model was given and none is bundled.
    """
    return list(dict.fromkeys(models)) if models else [resolve_model_path(None)]


def resolve_model_path(model: str | None) -> str:
    """Return ``model`` or the bundled model's path.

    Raises:
        FileNotFoundError: If no model was given and none is bundled.
    """
    if model:
        return model
    from core.predict import bundled_model_name, default_model_path

    path = default_model_path()
    if path is None:
        raise FileNotFoundError(f"no --model given and no bundled model ({bundled_model_name()}); "
                                "pass --model runs/<id>/best.keras or train one with `python -m core train`")
    return str(path)


def resolve_data(data: str | None) -> str:
    """Return ``data`` or the default dataset folder.

    Raises:
        FileNotFoundError: If neither is available.
    """
    if data:
        return data
    from core.data import default_data_dir

    folder = default_data_dir()
    if folder is None:
        raise FileNotFoundError("no --data given and no default dataset: pass --data PATH or set FER2013_DIR")
    return str(folder)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print; return the exit code."""
    from core.data import load_fer2013
    from core.evaluate import evaluate_ensemble, evaluate_model
    from core.model_io import read_model_meta

    model_paths = resolve_model_paths(args.model)
    metas = [read_model_meta(path) for path in model_paths]  # fails fast on a non-model file
    class_names = metas[0]["class_names"] if len(model_paths) == 1 else list(CLASS_NAMES)
    model_path = model_paths[0] if len(model_paths) == 1 else " + ".join(model_paths)
    if args.detector is not None and not args.detect_faces:
        raise ValueError("--detector chooses the face detector of --detect-faces; without it the faces are used as "
                         "they are: add --detect-faces (a folder of class folders of photos), or drop --detector")
    data = resolve_data(args.data)
    without_face = None
    if args.detect_faces:
        from core.detect import DEFAULT_DETECTOR
        from core.evaluate import load_labeled_photos

        args.detector = args.detector or DEFAULT_DETECTOR
        dataset, without_face = load_labeled_photos(data, detector=args.detector)
    else:
        dataset = load_fer2013(data)
    if len(model_paths) == 1:
        results = evaluate_model(model_paths[0], dataset, splits=args.splits, tta=args.tta, use_cache=args.use_cache)
    else:
        results = evaluate_ensemble(model_paths, dataset, splits=args.splits, tta=args.tta, use_cache=args.use_cache)
    if args.as_json:
        payload = {
            "model": model_paths[0] if len(model_paths) == 1 else model_paths,
            "class_names": list(class_names),
            "data": data,
            "data_hash": dataset.report.content_hash,
            "skipped_records": [{"where": s.where, "reason": s.reason} for s in dataset.report.skipped],
            "ignored_folders": list(dataset.report.ignored_folders),
            "numbered_folders": list(dataset.report.numbered_folders),
            "tta": args.tta,
            "splits": {split: result.to_dict() for split, result in results.items()},
        }
        if without_face is not None:
            payload["face_detection"] = {"detector": args.detector, "images_without_face": list(without_face)}
        json.dump(payload, sys.stdout, indent=2)
        print()
        return 0
    kind = "" if len(model_paths) == 1 else f"ensemble of {len(model_paths)}, probabilities averaged; "
    print(f"model: {model_path}  ({kind}outputs: {', '.join(class_names)})")
    skipped = len(dataset.report.skipped)
    print(f"data:  {data}  ({dataset.report.kind}, {len(dataset)} images"
          + (f"; {counted(skipped, 'record')} could not be loaded, see `python -m core inspect`" if skipped else "")
          + f")  tta: {args.tta}")
    for note in dataset.report.notes():
        print(f"note: {note}")
    if without_face:
        print(f"no face found in {len(without_face)} of {len(dataset)} photos (used whole): {', '.join(without_face[:5])}"
              + (" ..." if len(without_face) > 5 else ""))
    for result in results.values():
        print()
        print(format_split(result))
    return 0


def format_split(result) -> str:
    """Render one :class:`~core.evaluate.SplitEvaluation` as plain-text tables."""
    width = max(len(name) for name in CLASS_NAMES) + 2
    lines = [f"== {result.split}: n={result.n}  accuracy={result.accuracy:.4f}  macro-F1={result.macro_f1:.4f}"]
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, row in result.per_class().items():
        lines.append(f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10d}")
    lines.append("")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    cell = max(width, max(len(str(int(v))) for v in result.confusion.ravel()) + 2)
    lines.append(f"{'':<{width}}" + "".join(f"{name:>{cell}}" for name in CLASS_NAMES))
    for name, row in zip(CLASS_NAMES, result.confusion):
        lines.append(f"{name:<{width}}" + "".join(f"{int(v):>{cell}}" for v in row))
    return "\n".join(lines)
