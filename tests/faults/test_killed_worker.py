"""A training worker killed with SIGKILL mid-epoch, as the Training page shows it.

``tests/core/test_train.py`` checks the run folder side (status reads as
failed, Resume continues from the checkpoint). Here the page (AppTest) must
list the killed run as failed with its reason and a Resume button, and that
button must bring the run to its end.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs, runs
from core.augment import AugmentConfig
from core.train_config import TrainConfig
from tests.core.test_train import write_fer_csv

pytestmark = pytest.mark.slow

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "training.py")
EPOCHS = 3


def _wait_for(condition, timeout_s: float, what: str, run_dir: Path, poll_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll_s)
    log = (run_dir / "train.log").read_text(errors="replace")[-3000:] if (run_dir / "train.log").exists() else ""
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{log}")


def _page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


@pytest.fixture
def killed_run(tmp_path, monkeypatch):
    """A real run whose worker was SIGKILLed during its second epoch (one epoch done)."""
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))  # inherited by the worker
    csv = write_fer_csv(tmp_path / "fer2013.csv", per_class=40)
    # batch 2: ~125 batches an epoch, so the epoch lasts long enough to be cut in the middle.
    config = TrainConfig(data=str(csv), model="fer_vgg", model_params={"width": 4, "dense_units": 16}, epochs=EPOCHS,
                         batch_size=2, augment=AugmentConfig(engine="none"), validation="split", val_fraction=0.1)
    run_dir = jobs.start_training_job(config)
    pid = None
    try:
        _wait_for(lambda: runs.read_progress(run_dir).get("epoch") == 2 and len(runs.read_metrics(run_dir)) == 1,
                  300, "the second epoch to begin", run_dir)
        pid = int(runs.read_json(run_dir / "status.json")["pid"])
        os.kill(pid, signal.SIGKILL)
        # status.json itself says failed: the starter's reaper thread recorded the kill.
        _wait_for(lambda: runs.read_json(run_dir / "status.json", {}).get("state") == "failed", 30,
                  "the kill to be recorded in status.json", run_dir)
        yield run_dir
    finally:
        for candidate in {pid, runs.read_json(run_dir / "status.json", {}).get("pid")} - {None}:
            try:
                if str(run_dir) in Path(f"/proc/{candidate}/cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(candidate), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def test_killed_run_reads_as_failed_on_the_page_and_resume_finishes_it(killed_run):
    run_dir = killed_run
    done = len(runs.read_metrics(run_dir))
    assert done == 1, "the kill landed outside the second epoch"

    # Every file the killed worker left parses.
    assert runs.read_config(run_dir)["config"]["epochs"] == EPOCHS
    assert json.loads((run_dir / "state.json").read_text())["epoch"] == done
    assert json.loads((run_dir / "progress.json").read_text())["epoch"] == 2
    from core.model_io import load_model

    assert load_model(run_dir / "last.keras").class_names[3] == "happy"
    assert load_model(run_dir / "best.keras").model is not None

    app = _page()
    [menu] = [box for box in app.selectbox if box.label == "Run"]  # its key changes with its labels
    assert menu.value == run_dir.name
    # The page that started the worker saw it die, so the reason is precise.
    from tests.dashboard.inert_markdown import shown_text

    shown = [shown_text(error.value) for error in app.error]  # what a reader sees (the message is escaped markdown)
    assert any("was killed (SIGKILL" in text and "Resume" in text for text in shown), shown
    table = app.dataframe[0].value
    assert (table.loc[0, "status"], table.loc[0, "epochs"]) == ("failed", f"{done}/{EPOCHS}")
    assert not [button for button in app.button if button.label == "Stop"]
    resume = app.button(key=f"resume_{run_dir.name}")
    assert resume.label == "Resume"

    resume.click().run()
    assert not app.exception, app.exception
    assert runs.read_status(run_dir).state in ("queued", "running", "finished")
    _wait_for(lambda: not runs.read_status(run_dir).active, 300, "the resumed run to end", run_dir, poll_s=0.5)
    assert runs.read_status(run_dir).state == "finished", (run_dir / "train.log").read_text()[-2000:]
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == list(range(1, EPOCHS + 1))

    app = _page()
    assert not app.error
    assert not [button for button in app.button if button.label in ("Resume", "Stop")]
    assert app.dataframe[0].value.loc[0, "epochs"] == f"{EPOCHS}/{EPOCHS}"
