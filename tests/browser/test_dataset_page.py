"""The Dataset page in a real browser, on the shared FER2013 folders."""

from __future__ import annotations

import re

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser


def test_dataset_page_shows_class_chart_and_sample_faces(app_server, page):
    harness.require_dataset()
    harness.open_app(page, app_server, "dataset")
    page.get_by_role("heading", name="Class balance").wait_for()
    harness.save_screenshot(page, "dataset")
    harness.assert_no_exception(page)

    # 28,709 + 3,589 images: the total metric shows the whole shared copy.
    assert "32,298" in page.locator("[data-testid='stMetric']").first.inner_text()
    # Plotly draws its charts after the heading; on a cold first page (the suite's first browser test, in a
    # fresh-clone run of session 10) the count was read before the first chart was there.
    page.locator(".js-plotly-plot").first.wait_for(timeout=harness.APP_TIMEOUT_MS)
    assert harness.wait_for_count(page.locator(".js-plotly-plot"), 1) >= 1  # class distribution (+ intensities)
    chart = page.locator(".js-plotly-plot").first
    assert chart.is_visible()
    for name in ("angry", "happy", "neutral"):
        assert chart.get_by_text(name).count() >= 1, f"class {name} missing from the distribution chart"

    # The sample grid: one row of faces per class ("angry · 8 shown"), each face a decoded <img>.
    shown = [int(match) for match in re.findall(r"· (\d+) shown", page.locator("[data-testid='stMain']").inner_text())]
    assert len(shown) == 7 and min(shown) > 0, shown
    images = page.locator("[data-testid='stImage'] img")
    # The text is there as soon as the run ends; the faces once the browser has loaded Streamlit's image code.
    assert harness.wait_for_count(images, sum(shown)) >= sum(shown)
    # The browser decodes the faces after the page has drawn them: wait for it (a cold first page can lag).
    decoded = "imgs => imgs.filter(img => img.complete && img.naturalWidth > 0).length"
    try:
        page.wait_for_function(f"n => Array.from(document.querySelectorAll(\"[data-testid='stImage'] img\"))"
                               f".filter(img => img.complete && img.naturalWidth > 0).length >= n",
                               arg=sum(shown), timeout=harness.APP_TIMEOUT_MS)
    except Exception:  # reported by the assertion below, with the counts
        pass
    loaded = images.evaluate_all(decoded)
    assert loaded >= sum(shown), f"only {loaded} of {images.count()} images decoded in the browser"


def test_dataset_reshuffle_and_share_toggle_keep_the_page_alive(app_server, page):
    harness.require_dataset()
    harness.open_app(page, app_server, "dataset")
    page.get_by_role("heading", name="Sample faces").wait_for()
    first = page.locator("[data-testid='stImage'] img").first.get_attribute("src")
    with harness.expect_rerun(page):
        page.get_by_role("button", name="Reshuffle").click()
    assert page.locator("[data-testid='stImage'] img").first.get_attribute("src") != first, "Reshuffle drew the same faces"
    with harness.expect_rerun(page):
        page.get_by_text("Show each split's share (%) instead of counts").click()
    assert "%" in page.locator(".js-plotly-plot").first.inner_text()
    harness.assert_no_exception(page)
