"""The mode of files written through a temporary file and a rename.

``tempfile.mkstemp`` and ``NamedTemporaryFile`` create owner-only files
(0600) so that nobody reads a half-written one; renamed into place, such a
file would stay owner-only, unlike every other file the user makes (a run
folder, a bundled model or an export shared with a colleague or a web
server). :func:`give_ordinary_mode` gives it the mode a plain ``open(path,
"w")`` would: 0666 less the process's umask.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def _umask_from_proc() -> int | None:
    """The process's umask as Linux reports it (no side effect), or None elsewhere."""
    try:
        match = re.search(r"^Umask:\s*([0-7]+)$", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1), 8) if match else None


def _umask_by_setting_it() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


# Elsewhere than Linux the umask is read by setting it, which another thread could notice: done once, at import.
_UMASK_AT_IMPORT = _umask_from_proc()
if _UMASK_AT_IMPORT is None:
    _UMASK_AT_IMPORT = _umask_by_setting_it()


def ordinary_mode() -> int:
    """The mode a new file gets from ``open``: 0666 less the umask (on Linux the current one, else the one at import)."""
    umask = _umask_from_proc()
    return 0o666 & ~(_UMASK_AT_IMPORT if umask is None else umask)


def give_ordinary_mode(path: str | os.PathLike) -> None:
    """Give ``path`` (a temporary file made owner-only by ``tempfile``) the mode of an ordinary new file."""
    os.chmod(path, ordinary_mode())


# A temporary left beside an output this long after its last write belongs to a process that was killed (a
# running writer touches its temporary as it goes).
STALE_TEMPORARY_S = 15 * 60
# In the name of every temporary this project makes beside a user's output, so that removing a killed writer's
# leftovers never matches a file of the user's: the first version matched ``.report-`` + any 8 letters and digits,
# so a user's ``.report-20241231.csv`` beside ``report.csv`` went with them (review s20).
TEMPORARY_MARK = "-fer-tmp-"


def temporary_file(folder: str | os.PathLike, stem: str, suffix: str = "") -> Path:
    """A new empty owner-only file ``.{stem}-fer-tmp-XXXXXXXX{suffix}`` in ``folder``, after removing what killed
    writers of the same output left there (:func:`remove_stale_temporaries`)."""
    import tempfile

    remove_stale_temporaries(folder, stem, suffix)
    handle, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}{TEMPORARY_MARK}", suffix=suffix)
    os.close(handle)
    return Path(name)


def temporary_folder(folder: str | os.PathLike, stem: str) -> Path:
    """A new owner-only folder ``.{stem}-fer-tmp-XXXXXXXX`` in ``folder``, after removing killed writers' leftovers."""
    import tempfile

    remove_stale_temporaries(folder, stem)
    return Path(tempfile.mkdtemp(dir=folder, prefix=f".{stem}{TEMPORARY_MARK}"))


def _last_written(entry: os.DirEntry) -> float:
    """When ``entry`` was last written; for a folder, the newest of it and everything in it (a writer at work in a
    subfolder does not touch the top folder's time)."""
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        for root, folders, files in os.walk(entry.path):
            for name in folders + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except OSError:
                    continue
    return newest


def remove_stale_temporaries(folder: str | os.PathLike, stem: str, suffix: str = "",
                             older_than_s: float = STALE_TEMPORARY_S) -> list[Path]:
    """Remove what killed writers left in ``folder``: the temporaries :func:`temporary_file` and
    :func:`temporary_folder` make for ``stem`` (``.{stem}-fer-tmp-`` + 8 random characters + ``suffix``), not
    written for ``older_than_s`` seconds (a folder: nothing in it). Returns what was removed.

    A SIGKILLed ``video`` left ``.faces-xxxxxxxx.csv`` and ``.mp4`` beside its outputs, and a killed ``export``
    a 7 MB ``.NAME.tflite-export-xxxxxxxx/`` folder, and nothing ever removed them (probe s19).
    """
    import shutil
    import time

    pattern = re.compile(re.escape(f".{stem}{TEMPORARY_MARK}") + r"[a-z0-9_]{8}" + re.escape(suffix) + r"\Z")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not pattern.match(entry.name):
            continue
        try:
            if now - _last_written(entry) < older_than_s:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


# Hidden folders that tools make, never data: not reported when a folder of data or photos holds them.
_METADATA_FOLDERS = frozenset({".git", ".ipynb_checkpoints", ".fseventsd", ".Spotlight-V100", ".Trashes", ".Trash",
                               ".cache", ".vscode", ".idea", ".svn", ".hg", ".DocumentRevisions-V100",
                               ".TemporaryItems"})
HIDDEN_FOLDER_REASON = "a hidden folder (its name starts with '.'); nothing in it was read"
HIDDEN_FILE_REASON = "a hidden file (its name starts with '.'); not read"


def is_hidden_folder(name: str) -> bool:
    """A hidden folder that may hold data (``.sad``), not a tool's own (``.git``, ``.ipynb_checkpoints``)."""
    return name.startswith(".") and name not in _METADATA_FOLDERS and not name.startswith(".Trash-")


def is_hidden_data_name(name: str, data_suffixes: frozenset[str] | set[str]) -> bool:
    """A hidden file with one of ``data_suffixes`` (``.face.jpg``): data a user hid, not OS metadata
    (``.DS_Store``, or macOS's ``._face.jpg`` copies of extended attributes)."""
    return (name.startswith(".") and not name.startswith("._")
            and Path(name).suffix.lower() in data_suffixes)
