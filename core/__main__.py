"""Command line: ``python -m core {inspect,train,evaluate,predict} ...``."""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from core.commands import COMMAND_MODULES, unwind_on_sigterm
from core.commands.safe_text import printable
from core.quiet_import import install_quiet_tensorflow_import


# Commands that write their outputs through hidden temporaries beside them: a kill unwinds so they are removed
# (train and video handle SIGTERM themselves).
WRITES_BESIDE_OUTPUT = frozenset({"export", "bundle", "pack"})


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
        if args.command in WRITES_BESIDE_OUTPUT:
            with unwind_on_sigterm():
                return int(args.run(args) or 0)
        return int(args.run(args) or 0)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)
        return 2
    except OSError as error:  # a folder that cannot be written (read-only runs folder, disk full...): no traceback
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C in any command: the usual exit status, without a traceback
        print("interrupted", file=sys.stderr)
        return 130


def describe_os_error(error: OSError) -> str:
    """One line for a failed file operation: what failed, on which path, and what to do about writes."""
    where = printable(str(error.filename)) if error.filename is not None else ""
    what = error.strerror or str(error)
    hint = ""
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOSPC, errno.EDQUOT):
        hint = (" (is the folder writable, with free space? write the output elsewhere, or point FER_STUDIO_RUNS or "
                "FER_STUDIO_CACHE at another folder)")
    return f"{where}: {what}{hint}" if where else f"{what}{hint}"


if __name__ == "__main__":
    sys.exit(main())
