"""``python -m core pack``: a compact ``.npz`` copy of a dataset, for training on another machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.commands import refuse_existing_outputs, refuse_output_inside_data
from core.wording import counted


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pack`` subcommand."""
    parser = subparsers.add_parser(
        "pack", help="write a dataset as one compressed .npz (train on a GPU machine without the image folders)",
        description="Load a dataset (CSV, image folders, class folders or a zip) and write its faces, labels, "
        "splits and ids as one compressed .npz that `train --data FILE.npz` and every other command read.")
    parser.add_argument("--data", required=True, help="the source: fer2013.csv, the image folders, or a zip")
    parser.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace the .npz file if it exists")
    parser.add_argument("--split", dest="splits", action="append", default=None, metavar="NAME",
                        help="keep only this split (repeatable), e.g. --split Training")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Pack and print what was written."""
    from core.data import load_fer2013
    from core.pack import pack_dataset

    refuse_existing_outputs((args.out,), args.overwrite)
    refuse_output_inside_data(args.out, args.data)
    dataset = load_fer2013(args.data)
    path = pack_dataset(dataset, args.out, splits=args.splits)
    counts = ", ".join(f"{split} {int((dataset.splits == split).sum()):,}" for split in (args.splits or dataset.split_names))
    skipped = len(dataset.report.skipped)
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB ({counts})"
          + (f"; {counted(skipped, 'record')} of the source skipped when loading (see `python -m core inspect`)"
             if skipped else ""))
    for note in dataset.report.notes():
        print(f"note: {note}")
    return 0
