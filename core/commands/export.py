"""``python -m core export``: a model as ONNX, LiteRT or SavedModel, with its card and a parity check."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.commands import refuse_existing_outputs

FORMAT_CHOICES = ("onnx", "litert", "saved_model")


def register(subparsers) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX, LiteRT (TFLite) or a TensorFlow SavedModel, with a card and a parity check",
        description="Export a .keras model for use outside FER Studio. The artifact is checked against the .keras "
        "model on PublicTest (or synthetic faces without a dataset) and removed if it disagrees; a card "
        "(<artifact>.json) beside it lists class names, input spec, source accuracy, parity and usage. See docs/export.md.",
    )
    parser.add_argument("--model", type=Path, action="append", default=None, metavar="PATH",
                        help="a .keras model, e.g. runs/<id>/best.keras (default: the bundled model); repeat it to "
                             "export an ensemble as one artifact that averages the models")
    parser.add_argument("--format", required=True, choices=FORMAT_CHOICES, help="artifact format")
    parser.add_argument("--out", type=Path, default=None,
                        help="artifact path, or a folder to put it in (created when missing); default: beside the model, "
                             "e.g. best.onnx, best_saved_model/, best_ensemble3.onnx for three models")
    parser.add_argument("--quantize", choices=("none", "dynamic"), default="none",
                        help="dynamic: int8 weights, about 4x smaller (onnx and litert); the accuracy change is reported")
    parser.add_argument("--data", default=None,
                        help="FER2013 source whose PublicTest faces check parity (default: $FER2013_DIR or "
                             "../shared/fer2013 when present)")
    parser.add_argument("--synthetic", action="store_true", help="check parity on 64 synthetic faces, not PublicTest")
    parser.add_argument("--parity-limit", type=int, default=None, metavar="N", help="check on at most N faces")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an artifact or card that already exists at the output path")
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export, print the parity figures; errors are raised as ValueError / FileNotFoundError."""
    from core.export import export_model
    from core.predict import bundled_model_name, default_model_path

    if args.parity_limit is not None and args.parity_limit < 1:
        raise ValueError(f"--parity-limit must be at least 1, got {args.parity_limit}")
    model_paths = args.model or [default_model_path()]
    if model_paths[0] is None:
        raise FileNotFoundError(f"no model given and no bundled model at {bundled_model_name()}: "
                                "pass --model runs/<id>/best.keras")
    from core.export import check_replaceable, resolve_artifact_path
    from core.light import card_path_for

    target = resolve_artifact_path(args.out, model_paths, args.format, args.quantize)
    check_replaceable(target, card_path_for(target))  # before the --overwrite hint: that would not help here
    refuse_existing_outputs((target, card_path_for(target)), args.overwrite,
                            folders=(target,) if args.format == "saved_model" else ())
    data = None
    if not args.synthetic:
        from core.data import default_data_dir

        data = args.data or default_data_dir()
    result = export_model(model_paths, args.format, out=args.out, quantize=args.quantize, data=data,
                          parity_limit=args.parity_limit,
                          progress=lambda message: print(f"... {message}", file=sys.stderr, flush=True))
    parity = result.parity
    summary = {
        "artifact": str(result.artifact),
        "card": str(result.card_path),
        "size_bytes": result.card["size_bytes"],
        "parity": {"faces": parity.faces, "source": parity.source,
                   "max_abs_difference": float(f"{parity.max_abs_difference:.3g}"),
                   "top1_agreement": round(parity.top1_agreement, 4),
                   "keras_accuracy": parity.keras_accuracy, "export_accuracy": parity.export_accuracy,
                   "accuracy_change": parity.accuracy_change, "passed": parity.passed},
    }
    print(json.dumps(summary, indent=2))
    return 0
