"""Training jobs as detached worker processes that outlive the page that started them.

One worker per run: the starter takes the run's ``worker.lock`` and hands the
locked descriptor to the worker it spawns, so a second Resume (page, CLI
``--detach`` or foreground) is refused from the moment of the check to the
worker's death, with no gap in between.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from core import runs
from core.train import prepare_run
from core.train_config import TrainConfig


def _spawn(run_dir: Path, lock: runs.RunLock, *flags: str) -> int:
    """Start the worker, handing it ``lock`` (this process's copy is closed)."""
    with lock:
        log = open(run_dir / "train.log", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "train", *flags, str(run_dir)],
            cwd=str(runs.REPO_ROOT),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # closing the tab or stopping Streamlit does not kill the run
            pass_fds=(lock.fd,),
            env=runs.child_environment(**{runs.LOCK_FD_ENV: str(lock.fd)}),
        )
        log.close()
        lock.record_holder(process.pid)  # until the worker records itself
    # Reap the child when it exits so it does not linger as a zombie of the server,
    # and record how it died if it could not (a crash or a kill).
    threading.Thread(target=_reap, args=(run_dir, process), daemon=True).start()
    return process.pid


# Held by a reaper while it reads and rewrites a run's status, and by a start or a Resume from its spawn to its
# "queued": a reaper that read the old worker's status cannot write "failed" over the new worker's "queued".
_status_lock = threading.Lock()


def _reap(run_dir: Path, process: subprocess.Popen) -> None:
    code = process.wait()
    with _status_lock:
        runs.record_worker_exit(run_dir, process.pid, code)


def start_training_job(config: TrainConfig, runs_dir: Path | None = None, *, data_roots: list[Path] | None = None) -> Path:
    """Create a run for ``config`` and start its worker in the background.

    Args:
        config: The run's settings.
        runs_dir: Where the run folder goes (default ``core.runs.default_runs_dir``).
        data_roots: The dashboard passes its data roots (``core.data_roots``):
            they are recorded with the run, and the worker and every Resume
            load the data inside them only.

    Returns:
        The run folder; its files show the progress.

    Raises:
        ValueError: If the config is invalid.
    """
    run_dir = prepare_run(config, runs_dir)
    if data_roots is not None:
        saved = runs.read_config(run_dir)
        saved["data_roots"] = [str(Path(root)) for root in data_roots]
        runs.write_json_atomic(run_dir / "config.json", saved)
    lock = runs.acquire_run_lock(run_dir)
    with _status_lock:
        pid = _spawn(run_dir, lock, "--run-dir")
        runs.write_status(run_dir, "queued", "starting the worker", pid=pid)
    return run_dir


def resume_training_job(run_dir: Path) -> None:
    """Continue a stopped or failed run from its last checkpoint, in the background.

    Raises:
        core.runs.RunBusyError: A ``ValueError``: a live worker is training
            the run ("run X is already being trained by pid N").
        ValueError: If the run is still active or has nothing to resume from.
    """
    run_dir = Path(run_dir)
    status = runs.read_status(run_dir)
    if status.active:
        holder = status.pid or runs.lock_holder(run_dir)
        raise runs.RunBusyError(f"run {run_dir.name} is already being trained by pid {holder if holder else '?'} "
                                f"(it is {status.state}); stop it before resuming")
    if not runs.has_checkpoint(run_dir):
        raise ValueError(f"run {run_dir.name} has no checkpoint yet (no finished epoch); start a new run instead")
    lock = runs.acquire_run_lock(run_dir)
    (run_dir / "stop").unlink(missing_ok=True)
    with _status_lock:
        pid = _spawn(run_dir, lock, "--resume")
        runs.write_status(run_dir, "queued", "resuming", pid=pid)


def stop_training_job(run_dir: Path) -> None:
    """Ask a run's worker to stop after its current batch (checkpoints are kept)."""
    runs.request_stop(Path(run_dir))
