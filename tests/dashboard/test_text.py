"""Untrusted text in markdown: shown exactly as written, never as a link, an image, a heading or a directive."""

from __future__ import annotations

import pytest

from dashboard.text import ELLIPSIS, WORD_JOINER, code, escape_markdown, literal, one_line, quoted
from tests.dashboard.inert_markdown import live_markup, shown_text

# The probe's value (security report s9, finding 1): a backtick to close a code span, then a phishing link, a
# remote image, GitHub autolinks, a Streamlit colour directive and a heading.
HOSTILE = ("x` [Sign in](https://evil.example/login) ![p](https://evil.example/p.png) https://evil.example "
           "www.evil.example a@b.co :red[RED] # H")
MORE_HOSTILE = [
    "x`\n\n# Session expired\n\n[Sign in again](https://evil.example/login)\n\n`",
    "[The dataset is outdated - download the fixed one](https:evil.example) ![p](https:evil.example?ds-pixel)",
    "clip` [Sign in to continue](https:evil.example) `.mp4",
    "<img src=https://evil.example/x.png> <https://evil.example/auto> [ref]: https://evil.example/r",
    ":material/warning: :blue-background[x] $\\LaTeX$ **bold** _em_ ~~gone~~ HTTP://EVIL.EXAMPLE WWW.EVIL.EXAMPLE",
    "- list\n1. item\n> quote\n---\n| a | b |\n|---|---|\n    indented code",
    "face@2x.png and mailto:someone@example.com",
]


@pytest.mark.parametrize("text", [HOSTILE, *MORE_HOSTILE])
def test_literal_text_forms_no_markup_and_reads_as_written(text):
    shown = literal(text, limit=None)
    assert live_markup(shown) == []
    assert live_markup(f"The model {quoted(text, None)} in this link is not available") == []
    assert live_markup(f"**{shown}**", allowed={"strong_open"}) == []
    assert shown_text(shown).replace(WORD_JOINER, "") == one_line(text, None)


def test_the_checker_sees_the_markup_of_raw_text():
    found = " ".join(live_markup(f"The model `{HOSTILE}` in this link"))
    for kind in ("link_open", "image", "autolink 'https://evil.example'", "autolink 'www.evil.example'",
                 "autolink 'a@b.co'", "unescaped ':red['"):
        assert kind in found
    assert any(item.startswith("heading_open") for item in live_markup(MORE_HOSTILE[0]))
    assert "autolink 'face@2x.png'" in " ".join(live_markup(MORE_HOSTILE[-1]))


def test_the_probe_value_keeps_its_brackets_escaped():
    shown = literal(HOSTILE, limit=None)
    assert r"\[Sign in\]\(https\:" in shown and r"\!\[p\]" in shown and "](" not in shown.replace("\\]\\(", "")
    assert r"\:red\[RED\]" in shown and r"\# H" in shown and "\\`" in shown


def test_code_spans_fence_any_backticks_in_the_text():
    for text in [HOSTILE, *MORE_HOSTILE, "`", "``x``", "`lead", "trail`", "a ``` b"]:
        assert live_markup(f"Using {code(text, None)}.") == []
        assert shown_text(code(text, None)) == one_line(text, None)
    assert code("fer2013") == "`fer2013`" and code("") == "“”"


def test_one_line_and_cut_to_the_limit():
    assert one_line("a\nb\r\nc\td\x00e\u202egpj.exe") == "a b c d e gpj.exe"
    assert literal("a" * 200, limit=60) == "a" * 59 + ELLIPSIS
    assert len(literal("x" * 1000)) == 80
    assert literal("short", limit=60) == "short"


def test_normal_paths_read_naturally():
    for path in ["/work/shared/fer2013/train/happy/face 1.jpg", "clip_2024-01-05 (1).mp4", r"C:\Users\me\x.png",
                 "<root>/train/<class>/*.jpg", "données/été.csv"]:
        assert shown_text(literal(path)) == path and live_markup(literal(path)) == []
    assert escape_markdown("<root>/train/<class>/*.jpg") == r"\<root\>\/train\/\<class\>\/\*\.jpg"


def test_escape_markdown_keeps_line_breaks_but_no_markup():
    message = "cannot read x.zip:\n# not a heading\n[not](https://a.link)"
    escaped = escape_markdown(message)
    assert escaped.count("\n") == 2 and live_markup(escaped) == []
