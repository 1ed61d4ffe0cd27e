"""A long evaluation in a real browser: a progress bar with the ETA, and Cancel stops it without caching anything."""

from __future__ import annotations

import re

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser


def test_a_ten_crop_evaluation_shows_progress_and_can_be_cancelled(app_server, page):
    harness.require_dataset()
    # Ten-crop on PublicTest: 3,589 faces x 10 views, over a minute on two CPU cores.
    # Not harness.open_app: the page's first run is the long evaluation itself.
    page.goto(f"{app_server.url}/evaluation?split=PublicTest&tta=crop10", wait_until="domcontentloaded")
    bar = page.locator("[data-testid='stProgress']").filter(has_text=re.compile(r"of 3,589 images .* left"))
    bar.first.wait_for(timeout=240_000)  # the first chunk is done: done/total and the ETA are shown
    harness.assert_no_exception(page)
    with harness.expect_rerun(page):
        page.get_by_role("button", name=re.compile("Cancel")).click()
    alerts = harness.alert_texts(page)
    assert any("was cancelled" in text for text in alerts), alerts
    assert page.locator("[data-testid='stMetric']").count() == 0  # no half-finished result
    assert page.get_by_role("button", name=re.compile("Evaluate again")).count() == 1
    assert not list(app_server.cache_dir.rglob("PublicTest-*-tta-crop10.npz"))  # nothing cached for it
