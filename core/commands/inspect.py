"""``python -m core inspect --data PATH [--json] [--no-cache]``: what a load found in a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.commands.safe_text import make_stdout_safe, printable
from core.dataset import FerDataset
from core.labels import CLASS_NAMES

SKIPPED_SHOWN = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` subcommand."""
    parser = subparsers.add_parser(
        "inspect",
        help="load a dataset and print its load report and per-split class counts",
        description="Load FER2013 from a CSV, an image-folder tree or a zip and report what was loaded and skipped.",
    )
    parser.add_argument("--data", help="dataset path (default: $FER2013_DIR or ../shared/fer2013)")
    parser.add_argument("--json", action="store_true", help="print one JSON object {report, counts}")
    parser.add_argument("--no-cache", action="store_true", help="parse the source again, ignoring the disk cache")
    parser.add_argument("--cache-dir", type=Path, help="cache folder (default: $FER_STUDIO_CACHE or ~/.cache/fer-studio)")
    parser.set_defaults(run=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    """Load ``args.data`` and print the report; ValueError/FileNotFoundError reach the CLI as exit code 2."""
    from core.data import default_data_dir, load_fer2013

    source = args.data or default_data_dir()
    if source is None:
        raise ValueError("no dataset given: pass --data PATH or set FER2013_DIR")
    dataset = load_fer2013(source, cache_dir=args.cache_dir, use_cache=not args.no_cache)
    make_stdout_safe()
    if args.json:
        # ensure_ascii escapes every name, undecodable bytes included, so any stdout can take it.
        print(json.dumps({"report": dataset.report.to_dict(), "counts": dataset.class_counts()}, indent=2))
    else:
        print(printable(format_report(dataset)))
    return 0


def format_report(dataset: FerDataset) -> str:
    """Return the load report and a per-split, per-class count table as text."""
    report = dataset.report
    lines = [
        f"source:          {report.source}",
        f"kind:            {report.kind}",
        f"loaded:          {report.loaded:,} images",
        f"converted:       {report.converted:,} (not 48x48 gray, resized/converted)",
        f"skipped:         {len(report.skipped):,}",
    ]
    for record in report.skipped[:SKIPPED_SHOWN]:
        lines.append(f"  {record.where}: {record.reason}")
    if len(report.skipped) > SKIPPED_SHOWN:
        lines.append(f"  ... and {len(report.skipped) - SKIPPED_SHOWN:,} more (--json lists all)")
    lines.append(f"ignored folders: {', '.join(report.ignored_folders) or 'none'}")
    for note in report.notes():
        lines.append(f"note: {note}")
    lines.append(f"content hash:    {report.content_hash}")
    lines.append("")
    lines.extend(_format_counts(dataset.class_counts()))
    return "\n".join(lines)


def _format_counts(counts: dict[str, dict[str, int]]) -> list[str]:
    names = list(CLASS_NAMES) + ["total"]
    width = max(len(split) for split in [*counts, "total", "split"])
    cell = max(len(name) for name in names) + 1
    rows = [f"{'split':<{width}}" + "".join(f"{name:>{cell}}" for name in names)]
    totals = dict.fromkeys(CLASS_NAMES, 0)
    for split, per_class in counts.items():
        values = [per_class[name] for name in CLASS_NAMES]
        for name, value in zip(CLASS_NAMES, values):
            totals[name] += value
        rows.append(f"{split:<{width}}" + "".join(f"{value:>{cell},}" for value in [*values, sum(values)]))
    grand = [totals[name] for name in CLASS_NAMES]
    rows.append(f"{'total':<{width}}" + "".join(f"{value:>{cell},}" for value in [*grand, sum(grand)]))
    return rows
