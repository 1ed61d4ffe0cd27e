"""Training jobs as detached worker processes that outlive the page that started them."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from core import runs
from core.train import prepare_run
from core.train_config import TrainConfig


def _spawn(run_dir: Path, *flags: str) -> int:
    log = open(run_dir / "train.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "train", *flags, str(run_dir)],
        cwd=str(runs.REPO_ROOT),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # closing the tab or stopping Streamlit does not kill the run
    )
    log.close()
    # Reap the child when it exits so it does not linger as a zombie of the server,
    # and record how it died if it could not (a crash or a kill).
    threading.Thread(target=lambda: runs.record_worker_exit(run_dir, process.pid, process.wait()), daemon=True).start()
    return process.pid


def start_training_job(config: TrainConfig, runs_dir: Path | None = None) -> Path:
    """Create a run for ``config`` and start its worker in the background.

    Returns:
        The run folder; its files show the progress.

    Raises:
        ValueError: If the config is invalid.
    """
    run_dir = prepare_run(config, runs_dir)
    pid = _spawn(run_dir, "--run-dir")
    runs.write_status(run_dir, "queued", "starting the worker", pid=pid)
    return run_dir


def resume_training_job(run_dir: Path) -> None:
    """Continue a stopped or failed run from its last checkpoint, in the background.

    Raises:
        ValueError: If the run is still active or has nothing to resume from.
    """
    run_dir = Path(run_dir)
    status = runs.read_status(run_dir)
    if status.active:
        raise ValueError(f"run {run_dir.name} is still {status.state}; stop it before resuming")
    if not (run_dir / "last.keras").exists():
        raise ValueError(f"run {run_dir.name} has no checkpoint yet (no finished epoch); start a new run instead")
    (run_dir / "stop").unlink(missing_ok=True)
    pid = _spawn(run_dir, "--resume")
    runs.write_status(run_dir, "queued", "resuming", pid=pid)


def stop_training_job(run_dir: Path) -> None:
    """Ask a run's worker to stop after its current batch (checkpoints are kept)."""
    runs.request_stop(Path(run_dir))
