"""Run folders: the on-disk record of a training job, readable while it runs.

``runs/<id>/`` holds ``config.json``, ``status.json``, ``metrics.csv`` (one row
per epoch), ``progress.json`` (per batch), ``best.keras``, ``last.keras`` +
``state.json`` (for resuming), ``train.log`` and, when asked to stop, a
``stop`` file. Every write goes to a temporary file renamed into place, so a
killed worker never leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
STATES = ("queued", "running", "finished", "failed", "stopped")
ACTIVE_STATES = ("queued", "running")
METRIC_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time")


def default_runs_dir() -> Path:
    """Where runs live: ``$FER_STUDIO_RUNS`` or ``runs/`` in the repository."""
    return Path(os.environ.get("FER_STUDIO_RUNS") or REPO_ROOT / "runs")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file; ``default`` if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def new_run_dir(model_name: str, runs_dir: Path | None = None) -> Path:
    """Create and return an empty, uniquely named run folder."""
    runs_dir = Path(runs_dir or default_runs_dir())
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{model_name}-{secrets.token_hex(2)}"
        path = runs_dir / run_id
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


@dataclass(frozen=True)
class RunStatus:
    """A run's state as last written, corrected for a worker that died.

    Attributes:
        state: One of ``queued``, ``running``, ``finished``, ``failed``, ``stopped``.
        message: Error text for ``failed``, reason for ``stopped``.
        pid: Worker process id while it runs.
        updated: Unix time of the last write.
    """

    state: str
    message: str = ""
    pid: int | None = None
    updated: float = 0.0

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def write_status(run_dir: Path, state: str, message: str = "", pid: int | None = None) -> None:
    """Record the run's state (atomically)."""
    if state not in STATES:
        raise ValueError(f"unknown run state {state!r}; expected one of {', '.join(STATES)}")
    write_json_atomic(
        Path(run_dir) / "status.json",
        {"state": state, "message": message, "pid": pid, "host": socket.gethostname(), "updated": time.time()},
    )


def record_worker_exit(run_dir: Path, pid: int, exit_code: int) -> None:
    """After worker ``pid`` ended, say how it died if it could not say so itself.

    A worker records ``finished``/``failed``/``stopped`` before it exits; a run
    still ``queued``/``running`` under that pid means it was killed or crashed,
    and the exit code says which (a negative code is the signal that ended it).
    A status that names another pid (the run was resumed meanwhile) is left alone.
    """
    data = read_json(Path(run_dir) / "status.json")
    if not isinstance(data, dict) or data.get("state") not in ACTIVE_STATES or data.get("pid") != pid:
        return
    if exit_code < 0:
        name = signal.Signals(-exit_code).name if -exit_code in signal.valid_signals() else f"signal {-exit_code}"
        if -exit_code == signal.SIGKILL:
            why = f"was killed ({name}: out of memory, or killed by hand)"
        elif -exit_code in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            why = f"was stopped from outside ({name})"
        else:
            why = f"crashed ({name}, inside a native library; the end of train.log may say more)"
    else:
        why = f"exited with code {exit_code} before recording why (see train.log)"
    if (Path(run_dir) / "last.keras").exists():
        next_step = "Resume continues from the last checkpoint"
    else:
        next_step = "no epoch had finished, so there is nothing to resume: start a new run"
    write_status(run_dir, "failed", f"the training process {why}; {next_step}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); its /proc state says it is dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_status(run_dir: Path) -> RunStatus:
    """Read ``status.json``; a running run whose worker is gone reads as failed."""
    data = read_json(Path(run_dir) / "status.json")
    if not isinstance(data, dict) or data.get("state") not in STATES:
        return RunStatus("failed", "status.json is missing or unreadable")
    status = RunStatus(data["state"], data.get("message", ""), data.get("pid"), float(data.get("updated", 0.0)))
    same_host = data.get("host") in (None, socket.gethostname())
    if status.active and status.pid and same_host and not _process_alive(int(status.pid)):
        return RunStatus("failed", "the training process ended without finishing (killed?); Resume continues from the last checkpoint", None, status.updated)
    return status


def read_config(run_dir: Path) -> dict:
    """Return the run's ``config.json`` ({} if missing)."""
    return read_json(Path(run_dir) / "config.json", {}) or {}


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    """Rewrite ``metrics.csv`` with ``rows`` (one dict per epoch), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(Path(run_dir) / "metrics.csv", buffer.getvalue())


def read_metrics(run_dir: Path) -> list[dict]:
    """Return ``metrics.csv`` rows as dicts of floats (``epoch`` as int); [] if none."""
    path = Path(run_dir) / "metrics.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            parsed = {key: float(value) for key, value in row.items() if value not in ("", None)}
        except ValueError:
            continue
        parsed["epoch"] = int(parsed.get("epoch", len(rows) + 1))
        rows.append(parsed)
    return rows


def read_progress(run_dir: Path) -> dict:
    """Return ``progress.json`` ({} if none yet)."""
    return read_json(Path(run_dir) / "progress.json", {}) or {}


def request_stop(run_dir: Path) -> None:
    """Ask the worker to stop after the current batch; it keeps its checkpoints."""
    (Path(run_dir) / "stop").touch()


def stop_requested(run_dir: Path) -> bool:
    """True once :func:`request_stop` was called for this run."""
    return (Path(run_dir) / "stop").exists()


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs table."""

    run_id: str
    path: Path
    model: str
    status: RunStatus
    epochs_done: int
    epochs_planned: int
    best_val_accuracy: float | None
    best_epoch: int | None
    training_seconds: float
    created: float
    has_model: bool


def summarize_run(run_dir: Path) -> RunSummary:
    """Summarise one run folder from its files."""
    run_dir = Path(run_dir)
    config = read_config(run_dir).get("config", {})
    metrics = read_metrics(run_dir)
    scored = [row for row in metrics if "val_accuracy" in row]
    best = max(scored, key=lambda row: row["val_accuracy"]) if scored else None
    return RunSummary(
        run_id=run_dir.name,
        path=run_dir,
        model=config.get("model", "?"),
        status=read_status(run_dir),
        epochs_done=len(metrics),
        epochs_planned=int(config.get("epochs", 0)),
        best_val_accuracy=best["val_accuracy"] if best else None,
        best_epoch=best["epoch"] if best else None,
        training_seconds=sum(row.get("epoch_time", 0.0) for row in metrics),
        created=run_dir.stat().st_mtime if not (run_dir / "config.json").exists() else (run_dir / "config.json").stat().st_mtime,
        has_model=(run_dir / "best.keras").exists(),
    )


def list_runs(runs_dir: Path | None = None) -> list[RunSummary]:
    """Every run folder under ``runs_dir`` (newest first); folders without config.json are skipped."""
    runs_dir = Path(runs_dir or default_runs_dir())
    if not runs_dir.is_dir():
        return []
    found = [summarize_run(path) for path in runs_dir.iterdir() if (path / "config.json").is_file()]
    return sorted(found, key=lambda summary: summary.created, reverse=True)
