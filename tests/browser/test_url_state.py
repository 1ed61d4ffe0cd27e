"""Shareable URLs and live labels in a real browser: the run id in the URL, per-page tab titles, a menu that follows its run."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser
RUN_ID = "20250102-000000-mini_xception-live"


def _write_run(runs_dir, run_id: str, state: str, epochs: int, pid=None):
    from core import runs

    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"data": "/data/fer2013", "model": "mini_xception", "epochs": 5, "batch_size": 32}
    (run_dir / "config.json").write_text(json.dumps({"config": config, "created": time.time()}))
    runs.write_metrics(run_dir, [{"epoch": e, "loss": 1.9 - 0.1 * e, "accuracy": 0.2 + 0.05 * e, "val_loss": 1.8,
                                  "val_accuracy": 0.25 + 0.05 * e, "lr": 1e-3, "epoch_time": 1.0}
                                 for e in range(1, epochs + 1)])
    runs.write_status(run_dir, state, pid=pid)
    return run_dir


def _menu_text(page) -> str:
    """What the "Run" select box shows."""
    return harness.selectbox(page, "Run").input_value()


def test_the_run_menu_follows_a_run_that_stops_and_the_url_names_the_run(app_server, page):
    from core import runs

    worker = subprocess.Popen(["sleep", "600"])  # stands in for a live training worker
    try:
        run_dir = _write_run(app_server.runs_dir, RUN_ID, "running", 1, pid=worker.pid)
        harness.goto_page(page, app_server, f"training?run={RUN_ID}", "Training")
        harness.assert_no_exception(page)
        assert page.title() == "Training · FER Studio"
        assert "· running ·" in _menu_text(page)
        assert f"run={RUN_ID}" in page.url and "%C2%B7" not in page.url  # the id, no menu label
        # The worker ends the run after a second epoch; nobody touches the page.
        runs.write_metrics(run_dir, runs.read_metrics(run_dir) + [{
            "epoch": 2, "loss": 1.6, "accuracy": 0.3, "val_loss": 1.7, "val_accuracy": 0.42, "lr": 1e-3, "epoch_time": 1.0}])
        runs.write_status(run_dir, "stopped", "stopped by request after epoch 2")
        deadline = time.monotonic() + harness.APP_TIMEOUT_MS / 1000  # the page refreshes itself every second
        while "· stopped ·" not in _menu_text(page) and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        assert _menu_text(page).endswith(f"{RUN_ID} · stopped · best 42.00%"), _menu_text(page)
    finally:
        worker.kill()
        worker.wait()


def test_a_link_to_an_unknown_run_says_which_run_is_shown(app_server, page):
    _write_run(app_server.runs_dir, RUN_ID, "finished", 2)
    harness.open_app(page, app_server, "training?run=no-such-run")
    harness.nav_link(page, "Training").first.wait_for()
    harness.wait_for_app(page)
    assert f"run={RUN_ID}" in page.url  # the link is corrected to the run shown
    alerts = harness.alert_texts(page)
    assert any("no-such-run" in text and "not available" in text for text in alerts), alerts


def test_every_page_has_its_own_tab_title_and_predict_has_no_dataset_upload_box(app_server, page):
    harness.goto_page(page, app_server, "predict", "Predict")
    assert page.title() == "Predict · FER Studio"
    boxes = page.locator("[data-testid='stFileUploader']")
    boxes.first.wait_for()
    assert "fer2013.csv" not in " ".join(box.inner_text() for box in boxes.all())  # photos only on this page
    with harness.expect_rerun(page):
        harness.nav_link(page, "Compare runs").first.click()
    assert page.title() == "Compare runs · FER Studio"


def test_a_typed_dataset_path_survives_a_reload_and_a_page_change(app_server, page):
    from playwright.sync_api import expect

    harness.require_dataset()
    typed = str(harness.SHARED_FER2013.relative_to(harness.REPO_ROOT.parent).as_posix())
    typed = f"../{typed}"  # ../shared/fer2013: inside the data roots
    harness.goto_page(page, app_server, "dataset", "Dataset")
    field = page.get_by_label("Folder or CSV path", exact=True)
    with harness.expect_rerun(page):
        field.fill(typed)
        field.press("Enter")
    assert "fer_path_input=" in page.url
    page.reload(wait_until="domcontentloaded")
    # The fresh page may report "not running" before its first run has even started: wait for the value.
    expect(page.get_by_label("Folder or CSV path", exact=True)).to_have_value(typed, timeout=60_000)
    harness.wait_for_app(page)
    assert "typed path" in page.locator("[data-testid='stSidebar']").inner_text()
    with harness.expect_rerun(page):
        harness.nav_link(page, "Training").first.click()
    assert page.get_by_label("Folder or CSV path", exact=True).input_value() == typed
