"""One worker per run, enforced by a lock that a dead worker cannot keep (issue 16, item 8).

``train --resume RUN --detach; train --resume RUN`` used to train both on one
folder: the foreground path checked nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import jobs, runs
from core.__main__ import main
from core.train import prepare_run, run_training
from core.train_config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
HOLD_LOCK = "import sys, time; from core import runs; lock = runs.acquire_run_lock(sys.argv[1]); print('locked', flush=True); time.sleep(120)"


@pytest.fixture
def resumable_run(tmp_path) -> Path:
    """A run folder that has a checkpoint to resume from (old format: last.keras + state.json)."""
    run_dir = prepare_run(TrainConfig(data=str(tmp_path / "fer2013.csv"), epochs=3), tmp_path)
    (run_dir / "last.keras").write_bytes(b"not loaded in these tests")
    runs.write_json_atomic(run_dir / "state.json", {"epoch": 1, "best_val_accuracy": 0.3, "best_epoch": 1})
    runs.write_status(run_dir, "failed", "the training process was killed")
    return run_dir


@pytest.fixture
def lock_holder_process(resumable_run):
    """Another process holding the run's worker lock, as a live worker does."""
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(resumable_run)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        yield process
    finally:
        process.kill()
        process.wait()


def _wait_until_free(run_dir: Path, timeout_s: float = 20.0) -> runs.RunLock:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return runs.acquire_run_lock(run_dir)
        except runs.RunBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_every_way_to_resume_is_refused_while_a_live_process_trains_the_run(resumable_run, lock_holder_process, capsys):
    run_dir, pid = resumable_run, lock_holder_process.pid
    message = f"run {run_dir.name} is already being trained by pid {pid}"
    status_before = (run_dir / "status.json").read_text()
    with pytest.raises(runs.RunBusyError, match=message):
        run_training(run_dir, resume=True, echo=lambda line: None)  # the foreground --resume path
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match=message):
        jobs.resume_training_job(run_dir)  # --detach and the page's Resume
    assert main(["train", "--resume", str(run_dir), "--detach"]) == 2
    assert message in capsys.readouterr().err
    assert (run_dir / "status.json").read_text() == status_before  # the refused attempts wrote nothing


def test_a_killed_worker_does_not_keep_the_run_locked(resumable_run, lock_holder_process):
    with pytest.raises(runs.RunBusyError):
        runs.acquire_run_lock(resumable_run)
    lock_holder_process.send_signal(signal.SIGKILL)
    lock_holder_process.wait()
    with _wait_until_free(resumable_run) as lock:
        assert runs.lock_holder(resumable_run) == os.getpid() and lock.fd >= 0


def test_a_detached_resume_holds_the_run_from_before_its_worker_starts(resumable_run):
    # The starter takes the lock and hands it to the worker: no window for a second resume.
    jobs.resume_training_job(resumable_run)
    worker = runs.read_json(resumable_run / "status.json")["pid"]
    try:
        with pytest.raises(runs.RunBusyError, match=f"already being trained by pid {worker}"):
            runs.acquire_run_lock(resumable_run)
        assert main(["train", "--resume", str(resumable_run)]) == 2
    finally:
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass
    with _wait_until_free(resumable_run):
        pass


def test_a_run_whose_status_names_a_live_worker_without_a_lock_is_refused(resumable_run):
    # A worker started by an older FER Studio holds no lock; its live pid in status.json still counts.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runs.write_status(resumable_run, "running", pid=sleeper.pid)
        with pytest.raises(runs.RunBusyError, match=f"already being trained by pid {sleeper.pid}"):
            run_training(resumable_run, resume=True, echo=lambda line: None)
    finally:
        sleeper.kill()
        sleeper.wait()
