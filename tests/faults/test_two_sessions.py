"""Two people on the app at once (two browser contexts = two Streamlit sessions): neither sees the other's state.

Session A works on the Training page (picks an older run, types a dataset
path in the sidebar); session B predicts a photo at the same time. Each then
opens the other's page and must find it untouched by the other session.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser

OLD_RUN = harness.FAKE_RUN_ID
NEW_RUN = "20250102-000000-tiny_other-0000"
TYPED_PATH = "/nonexistent/fer2013-of-session-a"


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory, request):
    """One server with two finished runs (the newer one is every session's default), and one browser."""
    harness.require_chromium()
    from core import model_io, models

    workdir = tmp_path_factory.mktemp("two-sessions")
    model_path = model_io.export_model(models.build("mini_xception"), workdir / "tiny.keras", meta={"model": "mini_xception"})
    server = harness.start_streamlit(workdir / "app")
    for run_id, age_days in ((OLD_RUN, 2), (NEW_RUN, 1)):
        run_dir = harness.make_finished_run(server.runs_dir, model_path, run_id=run_id)
        stamp = time.time() - age_days * 86400
        os.utime(run_dir / "config.json", (stamp, stamp))
    browser = harness.launch_chromium()
    request.config.add_cleanup(harness.stop_shared_playwright)
    yield server, browser
    browser.close()
    server.stop()


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("two-sessions-photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def _sidebar_path(page) -> str:
    return page.get_by_label("Folder or CSV path", exact=True).input_value()


def test_two_sessions_do_not_see_each_others_widgets(shared_app, astronaut):
    server, browser = shared_app
    session_a, session_b = harness.new_page(browser), harness.new_page(browser)
    try:
        harness.goto_page(session_a, server, "training", "Training")
        harness.goto_page(session_b, server, "predict", "Predict")
        assert harness.selectbox(session_a, "Run").input_value().startswith(NEW_RUN)

        # B's upload goes out first; A works while B's run is still going.
        harness.file_uploader(session_b, "Photo").set_input_files(str(astronaut))
        harness.select_option(session_a, "Run", re.compile(rf"^{re.escape(OLD_RUN)}"))
        field = session_a.get_by_label("Folder or CSV path", exact=True)
        field.fill(TYPED_PATH)
        with harness.expect_rerun(session_a):
            field.press("Enter")
        session_b.locator("[data-testid='stImageCaption']", has_text="astronaut.png").wait_for()
        harness.wait_for_app(session_b)

        # Each session kept its own state.
        assert harness.selectbox(session_a, "Run").input_value().startswith(OLD_RUN)
        assert _sidebar_path(session_a) == TYPED_PATH
        assert "typed path" in session_a.locator("[data-testid='stSidebar']").inner_text()
        # Predict has no dataset picker (its photo box must be the only upload box), and nothing of A's path.
        assert session_b.get_by_label("Folder or CSV path", exact=True).count() == 0
        assert TYPED_PATH not in session_b.locator("[data-testid='stSidebar']").inner_text()
        assert re.search(r"[1-9]\d* faces?\b", session_b.locator("[data-testid='stImageCaption']").first.inner_text())
        harness.save_screenshot(session_a, "fault_two_sessions_a_training")
        harness.save_screenshot(session_b, "fault_two_sessions_b_predict")

        # Swap pages: B's Training page shows the default run, A's Predict page has no photo.
        with harness.expect_rerun(session_b):
            harness.nav_link(session_b, "Training").click()
        assert harness.selectbox(session_b, "Run").input_value().startswith(NEW_RUN)
        assert OLD_RUN not in session_b.url
        assert _sidebar_path(session_b) == ""
        with harness.expect_rerun(session_a):
            harness.nav_link(session_a, "Predict").click()
        photo = session_a.locator("[data-testid='stFileUploader']").filter(has=session_a.get_by_text("Photo", exact=True))
        photo.wait_for()
        assert "astronaut.png" not in photo.inner_text()
        assert session_a.locator("[data-testid='stImageCaption']").count() == 0
        with harness.expect_rerun(session_a):
            harness.nav_link(session_a, "Dataset").click()
        assert _sidebar_path(session_a) == TYPED_PATH  # A's own choice follows A across pages, Predict included
        for session in (session_a, session_b):
            harness.assert_no_exception(session)
    except BaseException:
        for name, session in (("a", session_a), ("b", session_b)):
            try:
                harness.save_screenshot(session, f"failed_two_sessions_{name}")
            except Exception:  # noqa: BLE001 - keep the test's own failure
                pass
        raise
    finally:
        session_a.context.close()
        session_b.context.close()
