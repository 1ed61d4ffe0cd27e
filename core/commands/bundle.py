"""``python -m core bundle``: export a finished run as the bundled model with its card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bundle`` subcommand."""
    parser = subparsers.add_parser("bundle", help="export a run's best model to models/ with a model card")
    parser.add_argument("--run", dest="run_dir", type=Path, required=True, help="run folder (runs/<id>)")
    parser.add_argument("--data", required=True, help="dataset with the held-out splits to report (PublicTest, PrivateTest)")
    parser.add_argument("--name", default=None, metavar="STEM",
                        help="file stem under the output folder (default: the default model's, fer_studio_swa, "
                             "which the studio and every command use when no model is given)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: models/)")
    parser.add_argument("--ensemble-with", type=Path, action="append", default=[], metavar="PATH",
                        help="another model (e.g. models/fer_studio_c.keras) to average this one with: the card "
                             "also reports the ensemble (repeatable)")
    parser.add_argument("--checkpoint", choices=("best", "averaged"), default="best",
                        help="best: the epoch with the highest validation accuracy (default); averaged: the run's "
                             "weight-averaged model (a run trained with --average-from)")
    parser.add_argument("--notes", default=None, metavar="TEXT",
                        help="written into the card's notes: what the command and config do not say (e.g. that a "
                             "teacher or starting point was an earlier version of the file this bundle replaces)")
    parser.add_argument("--weights", choices=("float32", "float16"), default="float32",
                        help="float16: store the kernels in half the bytes (the model still computes in float32; the "
                             "card says how far its predictions moved, and scores the file as shipped)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model of that name and its card (without it, an existing model is an error: "
                             "by default the name is the studio's default model's)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export and print the card's evaluation."""
    from core.bundle import DEFAULT_NAME, MODELS_DIR, bundle_run
    from core.commands import refuse_existing_outputs

    name, out_dir = args.name or DEFAULT_NAME, args.out or MODELS_DIR
    # A bare `bundle --run R --data D` names the shipped default: replacing it silently lost the studio's best model
    # (probe s11: a 2-epoch run at 14% replaced the 69% model, exit 0, not a word).
    refuse_existing_outputs((out_dir / f"{name}.keras", out_dir / f"{name}.json"), args.overwrite)
    card = bundle_run(args.run_dir, args.data, name=name, out_dir=out_dir,
                      ensemble_with=tuple(args.ensemble_with), checkpoint=args.checkpoint,
                      notes=args.notes, weights=args.weights)
    summary = {"file": card["file"], "size_bytes": card["size_bytes"], "evaluation": card["evaluation"],
               **({"storage": card["storage"]} if "storage" in card else {})}
    if "ensemble" in card:
        summary["ensemble"] = card["ensemble"]
    print(json.dumps(summary, indent=2))
    return 0
