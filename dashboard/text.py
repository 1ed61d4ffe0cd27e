"""Text shown in markdown elements (``st.error``, ``st.caption``...) exactly as written.

Streamlit renders GitHub-flavoured markdown plus its own directives
(``:red[...]``, ``:material/icon:``), so a name that comes from outside (a
link's query string, an upload, a zip member, a folder in a dataset, an
exception that quotes one of those) must never reach a markdown element raw:
a backtick closes the code span around it and the rest can draw a link, a
heading, or an image the browser fetches from anywhere. :func:`literal`
(and :func:`quoted`) makes such text inert; put its result in plain text,
quotes or bold, never inside a backtick code span (escapes are not processed
there, so the backslashes would show). :func:`code` makes a code span that
the text cannot close, where a name's code-span look is established.
"""

from __future__ import annotations

import re

# Every ASCII punctuation character: CommonMark lets each be backslash-escaped and then shows it as is.
_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Line breaks, tabs and other control characters, and the invisible marks that reorder text (a file name that
# ends in U+202E "gpj.exe" is displayed as "exe.jpg").
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
ELLIPSIS = "…"
# GitHub's autolinks ("https://…", "www.…", "name@host.tld") are found in the text *after* escapes are resolved
# (mdast-util-gfm-autolink-literal, as bundled with Streamlit's frontend), so a backslash cannot stop them. An
# invisible word joiner (U+2060) inside each trigger does: after "https:", after "www" and after "@", the text
# matches none of its patterns, and reads the same.
WORD_JOINER = "\u2060"
_AUTOLINK_TRIGGERS = re.compile(r":(?=//)|www(?=\.)|@", re.IGNORECASE)


def escape_markdown(text: object) -> str:
    """Markdown that shows ``text`` as plain characters, line breaks kept: nothing in it is markdown.

    Every ASCII punctuation character is backslash-escaped, so no link,
    image, heading, list, emphasis, HTML, LaTeX or Streamlit directive
    (``:red[...]``, ``:material/x:``) can form, and an invisible word joiner
    breaks GitHub's autolinks (``https://...``, ``www.``, an e-mail
    address), while ``<root>/train/<class>/*.jpg`` still reads as written.
    Use the result outside backtick code spans (escapes are not processed
    inside them, so the backslashes would show). For names and values from
    outside the program, prefer :func:`literal` (one line, cut short).
    """
    unlinked = _AUTOLINK_TRIGGERS.sub(lambda match: match.group(0) + WORD_JOINER, str(text))
    return _ASCII_PUNCTUATION.sub(r"\\\1", unlinked)


def one_line(text: object, limit: int | None = 80) -> str:
    """``text`` on one line (control characters become spaces), cut to ``limit`` characters with an ellipsis."""
    flat = _CONTROL.sub(" ", str(text)).strip()
    if limit is not None and len(flat) > limit:
        flat = flat[: max(limit - 1, 0)].rstrip() + ELLIPSIS
    return flat


def literal(text: object, limit: int | None = 80) -> str:
    """Untrusted ``text`` (a link's value, a file or zip member name, an error that quotes one) as inert markdown.

    One line (control characters become spaces), at most ``limit``
    characters with an ellipsis (``None``: all of it), escaped by
    :func:`escape_markdown`. Put it in quotes or bold, not in a code span.
    """
    return escape_markdown(one_line(text, limit))


def quoted(text: object, limit: int | None = 80) -> str:
    """:func:`literal` between typographic quotes: “name”, the way a message names a file or a link's value."""
    return f"“{literal(text, limit)}”"


def code(text: object, limit: int | None = 80) -> str:
    """Untrusted ``text`` as a markdown code span that no character in it can close or turn into markup.

    The span is fenced with one backtick more than the longest run inside
    it (CommonMark), padded with a space where the text starts or ends with
    a backtick; nothing inside a code span is markdown, autolinks and
    Streamlit directives included, and nothing is escaped, so the text reads
    (and copies) exactly as written; the one quirk: Streamlit rewrites
    ``:material/x:`` to ``:material_x:`` even there. One line, at most
    ``limit`` characters. For a name where a code span is the established look.
    """
    flat = one_line(text, limit)
    if not flat:
        return "“”"
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    padding = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{padding}{flat}{padding}{fence}"
