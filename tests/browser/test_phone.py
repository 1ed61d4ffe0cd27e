"""A phone-sized viewport (390 x 844): the Predict result and its charts fit the screen."""

from __future__ import annotations

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def test_predict_result_and_charts_fit_a_phone_screen(app_server, chromium):
    page = harness.new_page(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page.goto(f"{app_server.url}/predict?example=three-faces", wait_until="domcontentloaded")
        caption = page.locator("[data-testid='stImageCaption']").filter(has_text="three_faces.jpg")
        caption.first.wait_for()
        harness.wait_for_app(page)
        harness.save_screenshot(page, "phone_predict")
        harness.assert_no_exception(page)
        photo = page.locator("[data-testid='stImage'] img").first.bounding_box()
        assert photo["x"] >= 0 and photo["x"] + photo["width"] <= PHONE["width"] + 1, photo
        charts = page.locator(".js-plotly-plot")
        assert harness.wait_for_count(charts, 3) == 3  # one per face, all three on the page
        for index in range(charts.count()):
            box = charts.nth(index).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1, (index, box)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"] + 1  # no sideways scroll
    finally:
        page.context.close()
