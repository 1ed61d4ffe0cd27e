"""Subcommands of ``python -m core``; each module exposes ``register(subparsers)``."""

import contextlib
import signal
import threading

# Module names under core.commands, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = ("inspect", "train", "evaluate", "predict", "video", "bundle", "pack", "export")

OVERWRITE_HELP = "replace output files that already exist (without it, an existing output is an error)"


def refuse_existing_outputs(paths, overwrite: bool, folders=()) -> None:
    """Raise ``FileExistsError`` naming the first of ``paths`` that exists, unless ``overwrite``.

    A command's output file must not silently replace a file the user had
    there (a video of theirs given as ``--annotated``); ``--overwrite`` says
    replacing it is meant. It replaces files only: an output path that is a
    folder (other than one of ``folders``, outputs that are folders by nature,
    like a SavedModel) is refused with ``IsADirectoryError`` either way.
    """
    for path in paths:
        if path is not None and path.is_dir() and not path.is_symlink() and path not in folders:
            raise IsADirectoryError(f"{path} is a folder: the output is a file, and --overwrite replaces files only; "
                                    "name a file (or a path that does not exist yet)")
    if overwrite:
        return
    for path in paths:
        if path is not None and (path.exists() or path.is_symlink()):
            kind = "a folder" if path.is_dir() else "a file"
            raise FileExistsError(f"{path} exists ({kind}); pass --overwrite to replace it, or choose another name")


def refuse_output_inside_data(out, data, option: str = "--out") -> None:
    """Raise ``ValueError`` when ``out`` lies inside the data folder ``data``.

    What a command writes there becomes part of the dataset: a run folder inside ``train/happy/`` was listed as
    14 skipped records by every later load of it (probe s19). A CSV, zip or pack as data has no inside.
    """
    from pathlib import Path

    if out is None or data is None:
        return
    folder = Path(data).expanduser()
    if not folder.is_dir():
        return
    try:
        Path(out).expanduser().resolve().relative_to(folder.resolve())
    except ValueError:
        return
    raise ValueError(f"{option} {out} lies inside the data folder {data}: what is written there would be read as "
                     "part of the dataset; choose a folder outside it")


@contextlib.contextmanager
def unwind_on_sigterm():
    """Inside this block a kill (SIGTERM) unwinds like Ctrl-C, as ``SystemExit(143)``: the ``finally`` blocks of
    what runs remove its hidden temporaries (a killed export left its work folder, review s21), instead of the
    process ending at once. Off the main thread (signals cannot be set there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
