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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    if report.when == "call" and report.failed:
        _add_app_state(item, report)
    return report


def _add_app_state(item, report) -> None:
    """Add the page's exception boxes and the server log's end to a failed test's report.

    A test waiting for an element times out after minutes and says only what it waited for; in CI (session 15)
    the cause, an exception the page showed, was only in the server's log. Added here, while the page is still
    open and before pytest-xdist sends the report to the controller.
    """
    page, server = item.funcargs.get("page"), item.funcargs.get("app_server")
    if page is not None:
        try:
            found = harness.exception_texts(page)
        except Exception as error:  # noqa: BLE001 - the report must not fail
            found = [f"(could not read the page: {error})"]
        report.sections.append(("exceptions on the page", "\n---\n".join(found) or "none"))
    if server is not None:
        import re

        report.sections.append(("end of the server log", re.sub(r"\x1b\[[0-9;]*m", "", server.log_tail(60))))


@pytest.fixture
def page(chromium, request):
    """A fresh page in its own browser context (its own Streamlit session), closed after the test.

    When the test fails, the page is saved as ``test-artifacts/screenshots/failed_<test>.png``.
    """
    page = harness.new_page(chromium)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        try:
            harness.save_screenshot(page, f"failed_{request.node.name}")
        except Exception as error:  # noqa: BLE001 - a failed screenshot must not hide the test's failure
            print(f"could not save the failure screenshot: {error}")
    page.context.close()


# ---------------------------------------------------------------- prediction inputs


@pytest.fixture(scope="session")
def predict_model_run(app_server, tiny_model_path):
    """A finished fake run holding an untrained mini-Xception ``best.keras``, so the Predict page has a model.

    When the bundled model ``models/fer_studio_swa.keras`` exists the page
    picks that one by default; this run is then just a second choice.
    """
    return harness.make_finished_run(app_server.runs_dir, tiny_model_path)


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory):
    """``skimage.data.astronaut()`` (one frontal face, 512x512 RGB) saved as PNG."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def text_as_jpg(tmp_path_factory):
    """A plain-text file named ``notes.jpg``: an upload that passes the type filter but is no image."""
    path = tmp_path_factory.mktemp("photos") / "notes.jpg"
    path.write_text("These are my meeting notes, not a photo.\n" * 20)
    return path
