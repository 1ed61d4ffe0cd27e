"""Command line: ``python -m core {inspect,train,evaluate,predict} ...``."""

from __future__ import annotations

import argparse
import importlib
import sys

from core.commands import COMMAND_MODULES
from core.quiet_import import install_quiet_tensorflow_import


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(prog="python -m core", description="FER Studio command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"core.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; return its exit code."""
    install_quiet_tensorflow_import()  # before anything imports TensorFlow: its start-up notices stay off stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
