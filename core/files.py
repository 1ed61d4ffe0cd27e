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


def remove_stale_temporaries(folder: str | os.PathLike, prefix: str, suffix: str = "",
                             older_than_s: float = STALE_TEMPORARY_S) -> list[Path]:
    """Remove what killed writers left in ``folder``: entries named ``prefix + 8 random characters + suffix`` (what
    ``tempfile.mkstemp``/``mkdtemp`` make) not written for ``older_than_s`` seconds. Returns what was removed.

    A SIGKILLed ``video`` left ``.faces-xxxxxxxx.csv`` and ``.mp4`` beside its outputs, and a killed ``export``
    a 7 MB ``.NAME.tflite-export-xxxxxxxx/`` folder, and nothing ever removed them (probe s19).
    """
    import shutil
    import time

    pattern = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}" + re.escape(suffix) + r"\Z")
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
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than_s:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed
