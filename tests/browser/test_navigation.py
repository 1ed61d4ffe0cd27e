"""Every page of the menu opens in a real browser without an exception; a deep link gets the router."""

from __future__ import annotations

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser

EXPECTED_PAGES = {"Dataset", "Data quality", "Training", "Evaluation", "Compare runs", "Predict", "Live", "Video"}


def test_every_page_of_the_menu_opens_without_an_exception(app_server, predict_model_run, page):
    harness.require_dataset()
    step = harness.StepClock("navigation")
    harness.open_app(page, app_server)
    titles = [link.locator("span").last.inner_text().strip()
              for link in page.locator("[data-testid='stSidebarNav'] a").all()]
    assert EXPECTED_PAGES <= set(titles), titles
    harness.assert_no_exception(page)
    # The app opens on the first page; a click on the link of the page already shown may
    # rerun too quickly (or not at all) for a rerun to be seen, which once hung this test for
    # its whole timeout. So every click goes to another page: the landing page comes last.
    for title in titles[1:] + titles[:1]:
        with harness.expect_rerun(page):
            harness.nav_link(page, title).click()
        harness.save_screenshot(page, f"page_{title.lower().replace(' ', '_')}")
        step(title)
        assert page.locator("h1").first.inner_text().strip(), f"{title}: no page title"
        harness.assert_no_exception(page)
        assert not harness.error_texts(page), f"{title}: {harness.error_texts(page)}"


# Streamlit 1.67 treats a `pages/` folder beside the entry script as an old-style multipage
# app until st.navigation has run once in the server process: the first request of a fresh
# server on /training would run pages/training.py bare (no router, no data sidebar, a menu of
# every file in pages/). dashboard/router.py's require_router() reruns such a visit through
# the router; this guards it, in a fresh server whose first request is the deep link.
def test_a_deep_link_to_a_fresh_server_still_gets_the_router(tmp_path, chromium):
    server = harness.start_streamlit(tmp_path / "deep-link-app")
    page = harness.new_page(chromium)
    try:
        harness.open_app(page, server, "training")  # the first request this server sees
        # Widgets' scripts load after the text around them (CI read the sidebar's caption without the text box
        # once): wait for the box's label, which never comes without the router.
        label = page.locator("[data-testid='stSidebar']").get_by_text("Folder or CSV path")
        try:
            label.first.wait_for(timeout=30_000)
        except Exception:
            harness.save_screenshot(page, "deep_link_fresh_server")
            raise AssertionError("the router's data-source sidebar is missing: "
                                 f"{page.locator('[data-testid=stSidebar]').inner_text()[:300]!r}") from None
        harness.save_screenshot(page, "deep_link_fresh_server")
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
        assert harness.nav_link(page, "Data quality").count() == 1, f"menu is not the router's: {sidebar[:200]!r}"
    finally:
        page.context.close()
        server.stop()
