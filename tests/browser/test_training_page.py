"""The Training page in a real browser: start a tiny run from the form, watch it live, stop it, reload.

The run is a real background worker (``core.jobs``) on the shared FER2013 data,
kept tiny (mini-Xception, 300 training images, 1% validation slice) because
the machine is shared; it is stopped once the curves have grown by an epoch.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser

LAST_EPOCH = re.compile(r"Last epoch (\d+):")
RUN_TIMEOUT_S = 420
EPOCHS = 200  # about 1 s each here: the run is still going when Stop comes, even on a machine many times faster


def _epochs_shown(page) -> int:
    """Finished epochs according to the curves' caption (0 while there is none)."""
    caption = harness.fresh(page).filter(has_text=LAST_EPOCH)
    if caption.count() == 0:
        return 0
    return int(LAST_EPOCH.search(caption.first.inner_text()).group(1))


def _wait_until(condition, timeout_s: float, what: str, page, detail=lambda: "", poll_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        harness.assert_no_exception(page)
        page.wait_for_timeout(poll_s * 1000)
    harness.save_screenshot(page, "training_timeout")
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{detail()}")


def _fill_live_number(page, label: str, value, attempts: int = 3) -> None:
    """Type ``value`` into a live number field and wait for its rerun; type again if a rerun redrew the field first."""
    for _ in range(attempts):
        try:
            with harness.expect_rerun(page, timeout_ms=30_000):
                harness.fill_number(page, label, value)
        except AssertionError:
            pass  # the keystrokes reached a field that the previous rerun then replaced
        if float(page.get_by_label(label, exact=True).input_value()) == float(value):
            return
    raise AssertionError(f"{label!r} did not take the value {value}")


def _open_new_run_form(page) -> None:
    if not page.get_by_label("Epochs", exact=True).is_visible():
        with harness.expect_rerun(page):
            page.get_by_text("Start a new run", exact=True).click()
    page.get_by_label("Epochs", exact=True).wait_for()


def test_tiny_run_goes_live_stops_and_survives_a_reload(app_server, page):
    harness.require_dataset()
    step = harness.StepClock("training")
    harness.goto_page(page, app_server, "training", "Training")
    _open_new_run_form(page)
    step("page and form open")
    harness.select_option(page, "Model", "mini_xception")
    step("model chosen")
    # The fields are live (the duration estimate follows them): each one committed is a rerun.
    for label, value in (("Epochs", EPOCHS), ("Batch size", 32), ("Max training images (0 = all)", 300),
                         ("Slice fraction", 0.01)):
        _fill_live_number(page, label, value)  # Epochs: stopped after two or so; the rest never runs
    harness.save_screenshot(page, "training_form")
    harness.assert_no_exception(page)
    with harness.expect_rerun(page):
        page.get_by_role("button", name=re.compile("Start training")).click()
    step("started")
    harness.assert_no_exception(page)
    assert not harness.error_texts(page), harness.error_texts(page)
    started = app_server.runs_dir.glob("*-mini_xception-*")
    run_dir = max(started, key=lambda path: path.stat().st_mtime)
    # The page selects the new run (after one more rerun); until then it may show another run.
    _wait_until(lambda: harness.selectbox(page, "Run").input_value().startswith(run_dir.name), 60,
                "the new run to be selected", page)
    harness.wait_for_app(page)

    # Live: the panel refreshes itself; the curves gain a point per epoch while the run goes on.
    def log() -> str:
        return (run_dir / "train.log").read_text(errors="replace")[-3000:]

    _wait_until(lambda: _epochs_shown(page) >= 1, RUN_TIMEOUT_S, "the first epoch on the live curves", page, log)
    step("epoch 1 on the curves")
    first_epochs = _epochs_shown(page)
    first_points = harness.plotly_trace_lengths(harness.fresh(page, ".js-plotly-plot").first)
    assert harness.fresh(page).filter(has_text=re.compile(rf"Epoch \d+/{EPOCHS}")).count() >= 1, "no epoch progress bar while running"
    harness.save_screenshot(page, "training_live")
    _wait_until(lambda: _epochs_shown(page) > first_epochs, RUN_TIMEOUT_S, "one more epoch on the live curves", page, log)
    step("one more epoch on the curves")
    # The caption and the chart are redrawn by the same rerun, but Plotly draws the chart's new data a moment
    # later (a CI run with a busy second test process read the old points just after the caption changed).
    chart = harness.fresh(page, ".js-plotly-plot").first
    _wait_until(lambda: max(harness.plotly_trace_lengths(chart) or [0]) > max(first_points), 60,
                "the curves to gain the new epoch's points", page,
                lambda: f"points before: {first_points}, now: {harness.plotly_trace_lengths(chart)}")

    page.get_by_role("button", name=re.compile("^.*Stop$")).click()
    _wait_until(lambda: page.get_by_role("button", name=re.compile("Resume")).count() > 0, 120,
                "the run to stop and offer Resume", page, log)
    step("stopped")
    from core import runs

    assert runs.read_status(run_dir).state == "stopped"
    epochs_done = len(runs.read_metrics(run_dir))
    assert 2 <= epochs_done < EPOCHS

    # A reload starts a new Streamlit session: the run (in the URL and on disk) is still there.
    page.reload(wait_until="domcontentloaded")
    harness.wait_for_app(page)
    assert run_dir.name in harness.selectbox(page, "Run").input_value()
    page.get_by_role("button", name=re.compile("Resume")).wait_for()
    main_text = page.locator("[data-testid='stMain']").inner_text()
    assert re.search(r"\bstopped\b", main_text), main_text[:1500]  # the status badge
    assert _epochs_shown(page) == epochs_done
    assert max(harness.plotly_trace_lengths(harness.fresh(page, ".js-plotly-plot").first)) == epochs_done
    harness.save_screenshot(page, "training_after_reload")
    step("reloaded")
    harness.assert_no_exception(page)


def _choose_in_multiselect(page, label: str, option: str, attempts: int = 3) -> None:
    """Pick ``option`` in the ``st.multiselect`` labelled ``label``; open its menu again if a rerun closed it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    field = page.get_by_role("combobox", name=label)
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(attempts):
        harness.wait_for_app(page)
        field.click()
        try:
            choice.wait_for(state="visible", timeout=5_000)
        except PlaywrightTimeout:  # the menu did not open, or a rerun closed it
            field.press("ArrowDown")  # opens the menu of a focused field
            try:
                choice.wait_for(state="visible", timeout=5_000)
            except PlaywrightTimeout:
                continue
        try:
            with harness.expect_rerun(page):
                # Bounded: a rerun that closed the menu between the option showing and the click left the click
                # waiting for it the whole 180 s default (full suite on a loaded machine, session 21).
                choice.click(timeout=10_000)
        except PlaywrightTimeout:
            continue
        return
    harness.save_screenshot(page, "multiselect_closed")
    raise AssertionError(f"the menu of {label!r} never showed {option!r}")


def test_distillation_fields_warn_while_the_seed_lets_a_teacher_see_the_validation_faces(app_server, page):
    """Picking a bundled teacher shows its weight and views; the warning goes once the seed is the teacher's."""
    harness.require_dataset()
    from core.distill import teacher_training
    from dashboard.model_menu import bundled_label

    teacher = harness.REPO_ROOT / "models" / "fer_studio_c.keras"
    teacher_seed = int(teacher_training(teacher)["config"]["seed"])
    harness.goto_page(page, app_server, "training", "Training")
    _open_new_run_form(page)
    assert page.get_by_label("Teacher weight", exact=True).count() == 0  # no teacher, no distillation fields
    _choose_in_multiselect(page, "Distil from (teachers)", bundled_label(teacher))
    page.keyboard.press("Escape")
    page.get_by_label("Teacher weight", exact=True).wait_for()
    assert harness.selectbox(page, "Teacher views").input_value().startswith("face and mirror")
    optimistic = lambda: harness.fresh(page).filter(has_text="will be optimistic")  # noqa: E731
    _wait_until(lambda: optimistic().count() > 0, 30, "the warning about the default seed", page)
    warning = optimistic().last.inner_text()
    assert f"its seed {teacher_seed}, this run's 0" in warning and f"Seed {teacher_seed} holds out" in warning
    harness.save_screenshot(page, "training_distillation_warning")

    _fill_live_number(page, "Seed", teacher_seed)
    _wait_until(lambda: optimistic().count() == 0, 30, "the warning to go with the teacher's seed", page)
    page.get_by_label("Teacher weight", exact=True).wait_for()
    harness.save_screenshot(page, "training_distillation_clean")
    harness.assert_no_exception(page)


def test_start_from_a_bundled_model_warns_until_the_seed_is_its_own(app_server, page):
    """"Start from" lists the bundled models; one trained with another seed makes validation optimistic until the seed is its."""
    harness.require_dataset()
    from core.distill import teacher_training
    from dashboard.model_menu import bundled_label

    start = harness.REPO_ROOT / "models" / "fer_studio_distilled.keras"
    start_seed = int(teacher_training(start)["config"]["seed"])
    harness.goto_page(page, app_server, "training", "Training")
    _open_new_run_form(page)
    assert harness.selectbox(page, "Start from").input_value() == "Random initial weights"
    _choose_in_multiselect(page, "Start from", bundled_label(start))  # handles a rerun that closes the menu
    optimistic = lambda: harness.fresh(page).filter(has_text="will be optimistic")  # noqa: E731
    _wait_until(lambda: optimistic().count() > 0, 30, "the warning about the default seed", page)
    assert f"its seed {start_seed}, this run's 0" in optimistic().last.inner_text()
    harness.save_screenshot(page, "training_start_from_warning")
    _fill_live_number(page, "Seed", start_seed)
    _wait_until(lambda: optimistic().count() == 0, 30, "the warning to go with the model's own seed", page)
    assert harness.selectbox(page, "Start from").input_value() == bundled_label(start)
    assert not harness.error_texts(page)
    harness.assert_no_exception(page)
