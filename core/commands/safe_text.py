"""Text the command line prints, made safe for any terminal.

File names on Linux are bytes; Python hands undecodable ones over with
surrogates (``caf\\udce9.png``), which a strict UTF-8 stdout refuses to
print, losing every result after it. :func:`printable` shows such bytes as
``\\xe9`` instead, and :func:`make_stdout_safe` keeps a non-UTF-8 terminal
from failing on names it cannot show.
"""

from __future__ import annotations

import os
import sys


def printable(text: str | os.PathLike) -> str:
    """Return ``text`` with undecodable file-name bytes written as ``\\xNN`` (valid UTF-8, valid JSON)."""
    text = os.fspath(text)
    if isinstance(text, bytes):
        return text.decode("utf-8", errors="backslashreplace")
    try:
        return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


def make_stdout_safe() -> None:
    """Let stdout write what its encoding cannot show as escapes instead of raising UnicodeEncodeError."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None and getattr(sys.stdout, "errors", "strict") == "strict":
        try:
            reconfigure(errors="backslashreplace")
        except (ValueError, OSError):
            pass  # a stream that cannot be reconfigured keeps its settings
