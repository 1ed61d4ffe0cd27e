"""The Home page in a real browser: one click on an example photo shows a prediction on the Predict page."""

from __future__ import annotations

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser


def test_home_opens_first_and_an_example_photo_is_one_click_from_a_prediction(app_server, page):
    harness.open_app(page, app_server)
    assert page.locator("h1").first.inner_text().strip() == "FER Studio"
    assert page.title() == "Home · FER Studio"
    harness.assert_no_exception(page)
    with harness.expect_rerun(page):
        page.get_by_role("button", name="One face").first.click()
    assert "/predict?" in page.url and "example=astronaut" in page.url
    caption = harness.fresh(page, "[data-testid='stImageCaption']").filter(has_text="astronaut.jpg")
    caption.first.wait_for()
    assert "1 face" in caption.first.inner_text()
    harness.assert_no_exception(page)
    assert not harness.error_texts(page)
