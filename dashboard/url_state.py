"""Choices that live in the URL's query string, so a reload or a shared link shows the same view.

Streamlit's own ``bind="query-params"`` writes a select box's *shown label*
into the URL, which for a menu such as "<run id> · fer_vgg · running · best
61.2%" is neither short nor stable. These helpers keep the option's value
(a run id, ``flip``, ``PublicTest``) in the URL instead, and say so when a
link names something that is not there, rather than silently showing
something else.

A page calls :func:`url_choice` (one value) or :func:`url_choices` (several)
before drawing the widget with the same ``key``, and
:func:`remember_choice` after it. The router calls :func:`start_page` once
per script run, so that a value met on another page is read again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from dashboard.text import quoted

_SEEN_KEY = "_url_state_seen"  # {param: token the URL held when we last read or wrote it}
_PAGE_KEY = "_url_state_page"
_ARRIVED_KEY = "_url_state_arrived"  # this run is the page's first since another page ran
# {param: (warning, the value shown instead)}: a link's warning is drawn again on every run while that value is
# still the one chosen, so a rerun nobody asked for (Live's camera component reruns its page once it has loaded)
# does not wipe it before it is read (probe s11); choosing something else, or another page, ends it.
_WARNINGS_KEY = "_url_state_warnings"
LIST_SEPARATOR = ","
LINK_VALUE_LIMIT = 60  # characters of a link's value quoted in a warning
MAX_NAMED_TOKENS = 5  # unknown items of a list named in a warning; the rest are counted


def start_page(page: str) -> None:
    """Forget which URL values were already applied when the user moves to another page."""
    arrived = st.session_state.get(_PAGE_KEY) != page
    st.session_state[_ARRIVED_KEY] = arrived
    if arrived:
        st.session_state[_PAGE_KEY] = page
        st.session_state[_SEEN_KEY] = {}
        st.session_state[_WARNINGS_KEY] = {}


def arrived() -> bool:
    """Whether this script run is the page's first since another page ran (or the session's first).

    Streamlit drops the state of widgets a page run does not draw (a file
    uploader's file, too), so an empty widget on arrival says nothing of what
    the user did on this page.
    """
    return bool(st.session_state.get(_ARRIVED_KEY, False))  # no router (a page tested alone): the same page


def keep_only(params) -> None:
    """Remove from the URL every parameter but ``params``: for a page that reads no other.

    The browser's Back button from Predict brought Home back with Predict's ``?ensemble=&tta=&example=``
    (walk s19), which Home does not read and a copied link would carry on.
    """
    for param in [name for name in st.query_params if name not in params]:
        del st.query_params[param]


def _seen() -> dict[str, str | None]:
    return st.session_state.setdefault(_SEEN_KEY, {})


def _link_warning(param: str, key: str, message: str | None = None) -> None:
    """Draw ``message`` now and remember it for ``param``; without one, draw the remembered warning again while
    ``key`` still holds the value it was about."""
    pending = st.session_state.setdefault(_WARNINGS_KEY, {})
    if message is not None:
        pending[param] = (message, st.session_state.get(key))
    elif param not in pending:
        return
    elif pending[param][1] != st.session_state.get(key):
        del pending[param]
        return
    st.warning(pending[param][0], icon=":material/link_off:")


def url_choice(key: str, options: Sequence[Any], default: Any = None, *, param: str | None = None,
               noun: str = "choice", describe: Callable[[Any], str] = str) -> None:
    """Before a select box keyed ``key``: take its value from ``?param=`` when the URL changed, else keep it.

    The session value is set to the URL's value when that is one of
    ``options`` (compared as text), and left alone while the URL still
    holds what this session last wrote. A value that is not an option gets
    an ``st.warning`` naming it and what is shown instead. When nothing was
    chosen yet, ``default`` (or the first option) is chosen.
    """
    param = param or key
    options = list(options)
    by_token = {str(option): option for option in options}
    raw = st.query_params.get(param)
    message = None
    if raw is not None and raw != _seen().get(param):
        _seen()[param] = raw
        st.session_state.get(_WARNINGS_KEY, {}).pop(param, None)  # a new link: an older warning is void
        if raw in by_token:
            st.session_state[key] = by_token[raw]
        else:
            fallback = st.session_state.get(key, default if default in options else (options or [None])[0])
            shown = describe(fallback) if fallback is not None else "nothing"
            # ``raw`` is whatever the link says: shown as inert text, never as markdown (dashboard/text.py).
            message = (f"The {noun} {quoted(raw, LINK_VALUE_LIMIT)} in this link is not available here; "
                       f"showing {shown} instead.")
    if st.session_state.get(key) not in options and options:
        st.session_state[key] = default if default in options else options[0]
    _link_warning(param, key, message)


def url_choices(key: str, options: Sequence[Any], default: Sequence[Any] = (), *, param: str | None = None,
                noun: str = "choice") -> None:
    """Like :func:`url_choice` for a multiselect: ``?param=a,b``; unknown items are named in a warning."""
    param = param or key
    options = list(options)
    by_token = {str(option): option for option in options}
    raw = st.query_params.get(param)
    message = None
    if raw is not None and raw != _seen().get(param):
        _seen()[param] = raw
        st.session_state.get(_WARNINGS_KEY, {}).pop(param, None)  # a new link: an older warning is void
        tokens = [token for token in raw.split(LIST_SEPARATOR) if token]
        st.session_state[key] = [by_token[token] for token in tokens if token in by_token]
        unknown = [token for token in tokens if token not in by_token]
        if unknown:
            named = ", ".join(quoted(token, LINK_VALUE_LIMIT) for token in unknown[:MAX_NAMED_TOKENS])
            more = f" and {len(unknown) - MAX_NAMED_TOKENS} more" if len(unknown) > MAX_NAMED_TOKENS else ""
            message = f"Not available here, so left out: {named}{more} ({noun} named in this link)."
    if key not in st.session_state:
        st.session_state[key] = [option for option in default if option in options]
    else:
        st.session_state[key] = [option for option in st.session_state[key] if option in options]
    _link_warning(param, key, message)


def remember_choice(value: Any, *, param: str, default: Any = None) -> None:
    """After the widget: write ``value`` into ``?param=`` (a list as ``a,b``); the default is left out of the URL."""
    if isinstance(value, (list, tuple)):
        token = LIST_SEPARATOR.join(str(item) for item in value) if list(value) != list(default or []) else None
    else:
        token = None if value is None or (default is not None and value == default) else str(value)
    if token is None:
        if value is not None and not isinstance(value, (list, tuple)) and st.query_params.get(param) == str(value):
            # A link that names the default (Home's example link says ?model=bundled, so that another page's
            # choice does not apply) keeps it: each change of the URL from here is a new entry in the browser's
            # history, and tidying it away made one Back from that page look like nothing happened (walk s19).
            token = str(value)
        elif param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != token:
        st.query_params[param] = token
    _seen()[param] = token
