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
