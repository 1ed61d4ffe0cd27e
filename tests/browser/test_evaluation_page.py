"""The Evaluation page in a real browser: the bundled model's figures, a clicked confusion cell, a TTA switch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.labels import CLASS_NAMES
from tests.browser import harness

pytestmark = pytest.mark.browser

CARD = Path(__file__).resolve().parents[2] / "models" / "fer_studio_swa.json"


def metric(page, label: str) -> str:
    box = harness.fresh(page, "[data-testid='stMetric']").filter(has=page.get_by_text(label, exact=True)).first
    return box.locator("[data-testid='stMetricValue']").inner_text().strip()


def gallery_heading(page) -> str:
    text = harness.fresh(page, "[data-testid='stMarkdown']").filter(has_text="images of true").first.inner_text()
    return " ".join(text.split())


def test_bundled_model_figures_a_clicked_cell_and_flip_tta(app_server, page):
    harness.require_dataset()
    card = json.loads(CARD.read_text())
    harness.goto_page(page, app_server, "evaluation", "Evaluation")
    step = harness.StepClock("evaluation")
    page.get_by_role("heading", name="Confusion matrix").wait_for()
    step("evaluated PublicTest")
    harness.assert_no_exception(page)
    assert harness.selectbox(page, "Model").input_value().startswith("fer_studio_swa · test "), "the bundled model is not the default"

    # The headline is the card's PublicTest figure: page, CLI and card agree.
    assert metric(page, "Images") == "3,589"
    assert metric(page, "Accuracy") == f"{card['evaluation']['PublicTest']['accuracy']:.2%}"

    # A click on a heatmap cell shows that cell's images. Each cell carries an invisible
    # marker (plotly heatmaps send no selection events); markers are in row-major (true, predicted) order.
    true_index, predicted_index = CLASS_NAMES.index("fear"), CLASS_NAMES.index("sad")
    chart = harness.fresh(page, ".js-plotly-plot").first
    markers = chart.locator(".scatterlayer .point")
    assert harness.wait_for_count(markers, len(CLASS_NAMES) ** 2) == len(CLASS_NAMES) ** 2
    box = markers.nth(true_index * len(CLASS_NAMES) + predicted_index).bounding_box()
    with harness.expect_rerun(page):
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    heading = gallery_heading(page)
    assert re.search(r"images of true fear predicted sad", heading), heading
    count = int(heading.split()[0].replace(",", ""))
    assert 0 < count < 3589
    # The cell pickers under the heatmap follow the click (the gallery further down has its own filters).
    assert harness.selectbox(page, "True class").first.input_value() == "fear"
    assert harness.selectbox(page, "Predicted class").first.input_value() == "sad"
    harness.save_screenshot(page, "evaluation_clicked_cell")
    step("clicked a cell")

    harness.select_option(page, "Test-time augmentation", re.compile("flip"))
    page.get_by_role("heading", name="Confusion matrix").wait_for()
    harness.assert_no_exception(page)
    assert metric(page, "Accuracy") == f"{card['evaluation']['PublicTest + flip TTA']['accuracy']:.2%}"
    step("flip TTA")
