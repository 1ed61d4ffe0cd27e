"""Training jobs as detached worker processes that outlive the page that started them.

One worker per run: the starter takes the run's ``worker.lock`` and hands the
locked descriptor to the worker it spawns, so a second Resume (page, CLI
``--detach`` or foreground) is refused from the moment of the check to the
worker's death, with no gap in between.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from core import runs
from core.train import prepare_run
from core.train_config import TrainConfig


# At most this many runs train at once from the dashboard (and `train --detach`): each worker holds about 1.8 GB
# and every core it can get, so a dozen Starts from one or several tabs ran the machine out of memory (review s20).
WORKERS_VARIABLE = "FER_STUDIO_TRAIN_WORKERS"
DEFAULT_WORKERS = 2
START_LOCK = ".start.lock"


class TrainingBusy(ValueError):
    """As many runs as this machine trains at once are training; start or resume again once one ends.

    Attributes:
        running: The folders of the runs training now.
        limit: The most that train at once.
    """

    def __init__(self, running: list[Path], limit: int):
        names = ", ".join(path.name for path in running[:3]) + (" ..." if len(running) > 3 else "")
        super().__init__(f"{len(running)} {'run is' if len(running) == 1 else 'runs are'} training already ({names}), "
                         f"the most this machine trains at once ({WORKERS_VARIABLE}={limit}); stop one, or wait for "
                         "it to finish, then start again")
        self.running, self.limit = running, limit


def max_workers() -> int:
    """The most runs that train at once: ``FER_STUDIO_TRAIN_WORKERS`` (default 2, at least 1)."""
    try:
        return max(1, int(os.environ.get(WORKERS_VARIABLE, DEFAULT_WORKERS)))
    except ValueError:
        return DEFAULT_WORKERS


def training_runs(runs_dir: Path | None = None) -> list[Path]:
    """The run folders under ``runs_dir`` whose worker is queued or training now (a dead one's run reads failed)."""
    root = Path(runs_dir or runs.default_runs_dir())
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir()
                  if (path / "status.json").is_file() and runs.read_status(path).active)


@contextlib.contextmanager
def _admission(runs_dir: Path):
    """Hold the runs folder's start lock while a start counts the runs training and starts its own."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / START_LOCK, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        running = training_runs(runs_dir)
        if len(running) >= max_workers():
            raise TrainingBusy(running, max_workers())
        yield


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
        TrainingBusy: A ``ValueError``: :func:`max_workers` runs are training in ``runs_dir`` already.
        ValueError: If the config is invalid.
    """
    with _admission(Path(runs_dir or runs.default_runs_dir())):
        run_dir = prepare_run(config, runs_dir)
        if data_roots is not None:
            saved = runs.read_config(run_dir)
            saved["data_roots"] = [str(Path(root)) for root in data_roots]
            runs.write_json_atomic(run_dir / "config.json", saved)
        lock = runs.acquire_run_lock(run_dir)
        with _status_lock:
            _spawn_queued(run_dir, lock, "starting the worker", "--run-dir")
    return run_dir


def _spawn_queued(run_dir: Path, lock: runs.RunLock, message: str, *flags: str) -> None:
    """Write "queued", start the worker, then add its pid to "queued" unless the worker has already moved on.

    Review s20: "queued" with the pid was written after the worker started,
    over whatever it had written by then: a worker quick to write "running"
    read "queued" for its whole run, and one that failed at once lost its
    reason to "exited with code 1 before recording why".
    """
    runs.write_status(run_dir, "queued", message)
    try:
        pid = _spawn(run_dir, lock, *flags)
    except Exception as error:  # a "queued" with no worker would count as training, and hide Resume, for good
        runs.write_status(run_dir, "failed", f"the training process could not be started: {error}")
        raise
    runs.write_status(run_dir, "queued", message, pid=pid,
                      only_if=lambda current: current.get("state") == "queued" and current.get("pid") is None)


def resume_training_job(run_dir: Path) -> None:
    """Continue a stopped or failed run from its last checkpoint, in the background.

    Raises:
        core.runs.RunBusyError: A ``ValueError``: a live worker is training
            the run ("run X is already being trained by pid N").
        TrainingBusy: :func:`max_workers` runs are training in its runs folder already.
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
    with _admission(run_dir.parent):
        lock = runs.acquire_run_lock(run_dir)
        (run_dir / "stop").unlink(missing_ok=True)
        with _status_lock:
            _spawn_queued(run_dir, lock, "resuming", "--resume")


def stop_training_job(run_dir: Path) -> None:
    """Ask a run's worker to stop after its current batch (checkpoints are kept)."""
    runs.request_stop(Path(run_dir))
