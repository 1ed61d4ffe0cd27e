"""Fixtures of the real-browser tests: one Streamlit server and one headless Chromium per session.

Every test here is marked ``browser``; it skips, saying why, when
``/usr/bin/chromium`` is missing. The server runs ``streamlit_app.py`` with
``FER2013_DIR`` at the shared data and its runs and caches in a temporary
folder, and is always stopped (its whole process group) at the end.
"""

from __future__ import annotations

import pytest

from tests.browser import harness


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The app, started once per session: ``harness.StreamlitServer`` (``.url``, ``.runs_dir``, ``.cache_dir``)."""
    harness.require_chromium()
    server = harness.start_streamlit(tmp_path_factory.mktemp("browser-app"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium(request):
    """Headless Chromium (Playwright ``Browser``), launched once per session."""
    browser = harness.launch_chromium()
    request.config.add_cleanup(harness.stop_shared_playwright)
    yield browser
    browser.close()


@pytest.fixture
def page(chromium):
    """A fresh page in its own browser context (its own Streamlit session), closed after the test."""
    page = harness.new_page(chromium)
    yield page
    page.context.close()
