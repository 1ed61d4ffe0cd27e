"""Text shown in markdown elements (``st.error``, ``st.caption``...) exactly as written."""

from __future__ import annotations

import re

_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>#|~$])")


def escape_markdown(text: str) -> str:
    """Show ``text`` literally in a markdown element (paths like ``<root>/train/<class>/*.jpg`` keep their ``*`` and ``<>``)."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)
