"""Keeps every visit inside the router in ``streamlit_app.py``.

Streamlit treats a ``pages/`` folder beside the entry script as an old-style
(v1) multipage app until ``st.navigation`` has run once in the server process.
So the very first visit of a fresh server that lands straight on
``/training`` would run ``pages/training.py`` bare: no shared sidebar, no
data source, the v1 page list. Each page calls :func:`require_router` first;
in that situation it switches the server to ``st.navigation`` mode and reruns,
which runs the router and then the page the URL asked for.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def require_router() -> None:
    """Rerun through ``streamlit_app.py`` if this page was started without it.

    Also keeps Streamlit from clearing Keras' session after each run (see
    ``dashboard.keras_session``), whichever script runs first.
    """
    from dashboard.keras_session import keep_keras_session

    keep_keras_session()
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
