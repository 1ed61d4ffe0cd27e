"""Test helper: what in a markdown string Streamlit would turn into markup (links, images, headings, directives...).

A CommonMark parser (markdown-it-py, which Streamlit's own dependency rich
brings) finds links, images, HTML, headings and lists. Two of Streamlit's
frontend transforms work on the text *after* escapes are resolved, so they
are mimicked here with the patterns its bundled JavaScript uses (Streamlit
1.67, ``StreamlitMarkdown``): GitHub's autolinks (``https://…``, ``www.…``,
``name@host.tld``). Streamlit directives (``:red[…]``, ``:material/x:``) are
parsed from the source, so they are looked for there, outside escapes and
code spans.
"""

from __future__ import annotations

import re

import pytest

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py is needed to parse markdown in tests")

_PARSER = markdown_it.MarkdownIt("commonmark").enable(["strikethrough", "table"])
_LIVE_TOKENS = {"link_open", "image", "html_inline", "html_block", "heading_open", "bullet_list_open",
                "ordered_list_open", "blockquote_open", "hr", "table_open", "em_open", "strong_open", "s_open",
                "fence", "code_block"}
# mdast-util-gfm-autolink-literal as bundled by Streamlit; JavaScript's \w is ASCII-only.
_URL = re.compile(r"(https?://|www(?=\.))[-.\w]+", re.IGNORECASE | re.ASCII)
_EMAIL = re.compile(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+", re.ASCII)
_ESCAPE = re.compile(r"\\[!-/:-@\[-`{-~]")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)")
_SOURCE_MARKUP = re.compile(r"!\[|\]\(|:[A-Za-z-]+\[|:material/|\$")


def live_markup(source: str, *, allowed: set[str] = frozenset()) -> list[str]:
    """Descriptions of everything in ``source`` that would render as markup; ``allowed`` token types are not reported."""
    found = []
    for block in _PARSER.parse(source):
        tokens = [block, *(block.children or [])]
        for token in tokens:
            if token.type in _LIVE_TOKENS and token.type not in allowed:
                found.append(f"{token.type} {token.attrs or ''} {token.content!r}".strip())
            if token.type == "text":
                found += [f"autolink {match.group(0)!r}" for match in (*_URL.finditer(token.content),
                                                                       *_EMAIL.finditer(token.content))]
    plain = _CODE_SPAN.sub("", _ESCAPE.sub("", source))
    found += [f"unescaped {match.group(0)!r} in the source" for match in _SOURCE_MARKUP.finditer(plain)]
    return found


def shown_text(source: str) -> str:
    """The text a reader sees (escapes resolved, code spans' content kept), for checking what a message says."""
    html = _PARSER.renderInline(source)
    html = re.sub(r"<[^>]+>", "", html)
    return html.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
