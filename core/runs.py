"""Run folders: the on-disk record of a training job, readable while it runs.

``runs/<id>/`` holds ``config.json``, ``status.json``, ``metrics.csv`` (one row
per epoch), ``progress.json`` (per batch), ``best.keras``, ``last.keras`` +
``state.json`` (for resuming), ``train.log`` and, when asked to stop, a
``stop`` file. Every write goes to a temporary file renamed into place, so a
killed worker never leaves a half-written file behind.

An epoch is committed as one unit: ``checkpoints/epoch-NNNN/`` gets the
model with its optimizer (``last.keras``), ``state.json``, ``metrics.csv``
and, when the epoch was the best so far, ``best.keras``; it is written under a
temporary name and renamed, then the pointer ``checkpoint.json`` is replaced
atomically. That rename is the commit: a worker killed before it resumes from
the previous epoch, one killed after it from this one, so no epoch is trained
twice or skipped. The top-level ``best.keras``, ``last.keras``,
``metrics.csv`` and ``state.json`` are copies (hard links) of the committed
ones for the pages and for older readers; :func:`sync_run_files` repairs them
after a kill. Folders written before checkpoints existed (top-level files
only) still read and resume.

``worker.lock`` is held (``flock``) by the one process training the run; the
kernel releases it when that process dies, however it dies.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import math
import os
import secrets
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.files import give_ordinary_mode

REPO_ROOT = Path(__file__).resolve().parent.parent
STATES = ("queued", "running", "finished", "failed", "stopped")
ACTIVE_STATES = ("queued", "running")
# epoch_time: the whole epoch, validation included; val_time: its validation part (runs before 2026-12-06 lack it).
METRIC_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time", "val_time")
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_POINTER = "checkpoint.json"
LOCK_FILE = "worker.lock"
LOCK_FD_ENV = "FER_STUDIO_RUN_LOCK_FD"
DYING_HOLDER_WAIT_S = 5.0


def default_runs_dir() -> Path:
    """Where runs live: ``$FER_STUDIO_RUNS`` (a relative one from the current folder) or ``runs/`` in the repository.

    Always absolute: workers run in the repository's folder, and a relative
    path handed to one named another folder when the server was started
    elsewhere.
    """
    return Path(os.environ.get("FER_STUDIO_RUNS") or REPO_ROOT / "runs").expanduser().absolute()


# Environment variables that name FER Studio's folders; a worker gets them absolute (see child_environment).
FOLDER_VARIABLES = ("FER_STUDIO_RUNS", "FER_STUDIO_CACHE")


def switched_on(variable: str) -> bool:
    """An on/off environment variable: on when unset, or set to anything but 0, false, no or off."""
    return os.environ.get(variable, "1").strip().lower() not in ("0", "false", "no", "off")


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a worker process: this one's, with ``FOLDER_VARIABLES`` made absolute, plus ``extra``.

    Workers start in the repository's folder (``cwd=REPO_ROOT``), so a relative
    ``FER_STUDIO_RUNS=myruns`` given to a server started elsewhere would name
    another folder in them.
    """
    environment = dict(os.environ)
    for name in FOLDER_VARIABLES:
        if environment.get(name):
            environment[name] = str(Path(environment[name]).expanduser().absolute())
    environment.update(extra)
    return environment


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        give_ordinary_mode(tmp_name)
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


def write_status(run_dir: Path, state: str, message: str = "", pid: int | None = None, *,
                 only_if: Callable[[dict], bool] | None = None) -> bool:
    """Record the run's state (atomically); with ``only_if``, only when it holds for the status there now.

    Every write holds the run folder's lock (``flock`` on the folder), so a
    read-then-write by one process (the dashboard recording its worker's pid)
    and the worker's own "running" come one after the other, never
    interleaved. Returns whether it wrote.
    """
    if state not in STATES:
        raise ValueError(f"unknown run state {state!r}; expected one of {', '.join(STATES)}")
    handle = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if only_if is not None:
            current = read_json(Path(run_dir) / "status.json")
            if not only_if(current if isinstance(current, dict) else {}):
                return False
        write_json_atomic(
            Path(run_dir) / "status.json",
            {"state": state, "message": message, "pid": pid, "host": socket.gethostname(), "updated": time.time()},
        )
        return True
    finally:
        os.close(handle)  # and with it the lock


def record_worker_exit(run_dir: Path, pid: int, exit_code: int) -> None:
    """After worker ``pid`` ended, say how it died if it could not say so itself.

    A worker records ``finished``/``failed``/``stopped`` before it exits; a run
    still ``queued``/``running`` under that pid means it was killed or crashed,
    and the exit code says which (a negative code is the signal that ended it).
    A status that names another pid (the run was resumed meanwhile) is left alone.
    """
    def still_this_workers(current: dict) -> bool:
        return current.get("state") in ACTIVE_STATES and current.get("pid") == pid

    data = read_json(Path(run_dir) / "status.json")
    if not isinstance(data, dict) or not still_this_workers(data):
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
    if has_checkpoint(Path(run_dir)):
        next_step = "Resume continues from the last checkpoint"
    else:
        next_step = "no epoch had finished, so there is nothing to resume: start a new run"
    # Checked again under the folder's lock: a Resume may have started another worker since the read above.
    write_status(run_dir, "failed", f"the training process {why}; {next_step}", only_if=still_this_workers)


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
    path = Path(run_dir) / "status.json"
    data = read_json(path)
    if not isinstance(data, dict):
        what = "missing" if not path.exists() else "unreadable (not a JSON object)"
        return RunStatus("failed", f"status.json is {what}")
    if data.get("state") not in STATES:
        state = str(data.get("state"))[:40]
        return RunStatus("failed", f"status.json names an unknown state {state!r} (known: {', '.join(STATES)})")
    pid, updated = data.get("pid"), data.get("updated", 0.0)
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        pid = None  # a status.json changed by hand
    if not isinstance(updated, (int, float)) or isinstance(updated, bool) or not math.isfinite(updated):
        updated = 0.0
    message = data.get("message", "")
    status = RunStatus(data["state"], message if isinstance(message, str) else str(message), pid, float(updated))
    same_host = data.get("host") in (None, socket.gethostname())
    if status.active and status.pid and same_host and not _process_alive(int(status.pid)):
        return RunStatus("failed", "the training process ended without finishing (killed?); Resume continues from the last checkpoint", None, status.updated)
    return status


def read_config(run_dir: Path) -> dict:
    """Return the run's ``config.json``: {} if it is missing, unreadable or not the shape a run writes.

    That shape is an object whose ``config`` and ``resolved``, where present,
    are objects too; a file changed by hand into anything else reads as no
    config, so every page that lists runs still draws.
    """
    data = read_json(Path(run_dir) / "config.json", {})
    return data if _is_run_config(data) else {}


def _is_run_config(data: Any) -> bool:
    """The shape a run writes: an object whose ``config`` and ``resolved``, where present, are objects too."""
    return isinstance(data, dict) and all(isinstance(data.get(key, {}), dict) for key in ("config", "resolved"))


def write_metrics(run_dir: Path, rows: list[dict]) -> None:
    """Rewrite ``metrics.csv`` with ``rows`` (one dict per epoch), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(Path(run_dir) / "metrics.csv", buffer.getvalue())


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """The last committed epoch of a run: what a resume starts from.

    Attributes:
        epoch: Epochs finished (1-based count).
        folder: Where ``last.keras``, ``state.json`` and ``metrics.csv`` of
            that epoch are: ``checkpoints/epoch-NNNN`` or, for a run written
            before checkpoint folders existed, the run folder itself.
        state: ``state.json`` of that epoch (``epoch``, ``best_val_accuracy``,
            ``best_epoch``, random-generator and callback state).
        legacy: True for a run folder of the old, top-level-only format.
        recovered: Why the checkpoint was read from the run folder's top-level
            copies instead of its own folder (which was damaged by hand), or
            ``""``. Such a checkpoint is read like the old format's.
    """

    epoch: int
    folder: Path
    state: dict = field(default_factory=dict)
    legacy: bool = False
    recovered: str = ""

    @property
    def model_path(self) -> Path:
        """The model with its optimizer state (``last.keras``)."""
        return self.folder / "last.keras"

    def metrics(self) -> list[dict]:
        """The metrics rows of epochs ``1..epoch``."""
        return [row for row in read_metrics(self.folder) if row["epoch"] <= self.epoch]


def checkpoint_folder(run_dir: Path, epoch: int) -> Path:
    """``<run>/checkpoints/epoch-NNNN``, where epoch ``epoch`` is committed."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"epoch-{int(epoch):04d}"


def read_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The last committed epoch of ``run_dir``, or ``None`` when no epoch finished.

    Reads the pointer ``checkpoint.json``; a run folder of the old format
    (``last.keras`` + ``state.json`` at the top) is read from those, trusting
    the epoch stored inside ``last.keras`` when ``state.json`` lags behind it
    (a worker of the old format killed between the two writes).

    A pointer whose folder is missing or incomplete (damaged by hand: commits
    never do that) falls back to the top-level copies of the same epoch
    (``last.keras``, ``state.json``, ``metrics.csv``: each commit makes them
    links to that folder's files, so deleting the folder leaves them), with
    ``recovered`` saying so.

    Raises:
        ValueError: If the pointer names a checkpoint folder that is missing or
            incomplete and the top-level copies are not that epoch's either.
    """
    run_dir = Path(run_dir)
    pointer = read_json(run_dir / CHECKPOINT_POINTER)
    if isinstance(pointer, dict) and isinstance(pointer.get("epoch"), int):
        folder = run_dir / str(pointer.get("folder", ""))
        state = read_json(folder / "state.json")
        if (folder / "last.keras").is_file() and isinstance(state, dict) and state.get("epoch") == pointer["epoch"]:
            return Checkpoint(pointer["epoch"], folder, state)
        top = _top_level_checkpoint(run_dir, pointer["epoch"])
        if top is None:
            raise ValueError(f"run {run_dir.name}: {CHECKPOINT_POINTER} names epoch {pointer['epoch']} in {folder.name}, "
                             "which is missing or incomplete, and the run folder's own last.keras and state.json are "
                             "not that epoch's either; the run folder was changed by hand and cannot be resumed "
                             f"(its best model, if any, is still usable: --init-from {run_dir / 'best.keras'})")
        why = (f"checkpoint folder {folder.name} of epoch {pointer['epoch']} is missing or incomplete (changed by hand); "
               "resuming from the run folder's own copies of that epoch")
        return Checkpoint(pointer["epoch"], run_dir, top, legacy=True, recovered=why)
    last = run_dir / "last.keras"
    if not last.is_file():
        return None
    state = read_json(run_dir / "state.json", {})
    state = state if isinstance(state, dict) else {}
    epoch = int(state.get("epoch", 0) or 0)
    try:
        from core.model_io import read_model_meta

        saved_epoch = read_model_meta(last).get("epoch")
    except (OSError, ValueError):
        saved_epoch = None
    if isinstance(saved_epoch, int) and saved_epoch > epoch:
        state = {**state, "epoch": saved_epoch}
        epoch = saved_epoch
    return Checkpoint(epoch, run_dir, state, legacy=True) if epoch > 0 else None


def _top_level_checkpoint(run_dir: Path, epoch: int) -> dict | None:
    """``state.json`` at the top of ``run_dir`` when it and ``last.keras`` there are epoch ``epoch``'s, else None."""
    state = read_json(run_dir / "state.json")
    if not isinstance(state, dict) or state.get("epoch") != epoch or not (run_dir / "last.keras").is_file():
        return None
    try:
        from core.model_io import read_model_meta

        saved_epoch = read_model_meta(run_dir / "last.keras").get("epoch")
    except (OSError, ValueError):
        return None  # not a readable .keras file (a damaged copy shares the folder's damage)
    return state if saved_epoch in (None, epoch) else None


def has_checkpoint(run_dir: Path) -> bool:
    """True when at least one epoch of the run was committed (so Resume has something to continue)."""
    try:
        return read_checkpoint(run_dir) is not None
    except ValueError:
        return False


def link_or_copy_atomic(source: Path, destination: Path) -> None:
    """Make ``destination`` a copy of ``source`` (a hard link where possible), atomically."""
    destination = Path(destination)
    tmp = destination.with_name(f".{destination.name}-{secrets.token_hex(4)}.tmp")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copy2(source, tmp)
        os.replace(tmp, destination)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_pointer(run_dir: Path, epoch: int) -> None:
    """Commit epoch ``epoch``: point ``checkpoint.json`` at its (complete) folder, atomically."""
    folder = checkpoint_folder(run_dir, epoch)
    write_json_atomic(Path(run_dir) / CHECKPOINT_POINTER,
                      {"epoch": int(epoch), "folder": str(folder.relative_to(run_dir)), "committed": time.time()})


def sync_run_files(run_dir: Path, checkpoint: Checkpoint | None = None, *, verify: bool = False) -> None:
    """Make the top-level files match the committed checkpoint and drop stale versions.

    The top-level ``last.keras``, ``metrics.csv``, ``state.json`` and
    ``best.keras`` become those of the committed epoch (its best model is
    the one of ``state["best_epoch"]``); checkpoint folders other than the
    committed one and the best one, and temporary files left by a killed
    writer, are removed. A no-op for a run of the old format.

    With ``verify`` (a resume: the checkpoint's files were not just written by this process), a damaged
    ``.keras`` copy in the checkpoint never replaces a readable top-level one (:func:`keras_file_damage`).
    """
    run_dir = Path(run_dir)
    checkpoint = checkpoint if checkpoint is not None else read_checkpoint(run_dir)
    if checkpoint is None or checkpoint.legacy:
        return
    folder = checkpoint.folder
    best_epoch = int(checkpoint.state.get("best_epoch", 0) or 0)
    best_folder = checkpoint_folder(run_dir, best_epoch) if best_epoch else None
    # A damaged checkpoint copy never replaces a readable top-level one (probe s19: an interrupted copy of a run
    # folder left a truncated checkpoints/.../best.keras, and a resume linked it over the only intact best.keras).
    if best_folder is not None and (best_folder / "best.keras").is_file():
        if not _same_file(best_folder / "best.keras", run_dir / "best.keras") and (
                not verify or keras_file_damage(best_folder / "best.keras") is None
                or keras_file_damage(run_dir / "best.keras") is not None):
            link_or_copy_atomic(best_folder / "best.keras", run_dir / "best.keras")
    last = folder / "last.keras"
    if verify and last.is_file() and not _same_file(last, run_dir / "last.keras"):
        damage = keras_file_damage(last)
        if damage is not None:
            raise ValueError(f"{last.relative_to(run_dir)} of run {run_dir.name} is damaged ({damage}), so the run "
                             "cannot continue from it; its files were left as they were. Copy the run folder again "
                             "from where it came, or start a new run from its best.keras (--init-from)")
    for name in ("last.keras", "metrics.csv", "state.json"):
        if (folder / name).is_file() and not _same_file(folder / name, run_dir / name):
            link_or_copy_atomic(folder / name, run_dir / name)
    keep = {folder.name} | ({best_folder.name} if best_folder is not None else set())
    checkpoints = run_dir / CHECKPOINTS_DIR
    if checkpoints.is_dir():
        for entry in checkpoints.iterdir():
            if entry.name not in keep:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        if best_folder is not None and best_folder != folder:
            (best_folder / "last.keras").unlink(missing_ok=True)  # only its best.keras is still needed
    # Temporary files a killed worker left while replacing the top-level copies
    # (only those: other processes write status.json or evaluation.json here).
    for entry in run_dir.iterdir():
        if entry.name.startswith(_CHECKPOINT_TEMP_PREFIXES) and entry.is_file():
            entry.unlink(missing_ok=True)


def keras_file_damage(path: Path) -> str | None:
    """Why a ``.keras`` file (a zip archive) cannot be read whole, or ``None`` when every part of it reads back.

    A cheap check (CRCs, no model built): enough to tell a truncated or overwritten copy from an intact one.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except FileNotFoundError:
        return "missing"
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        return f"not a readable .keras archive: {error}"
    return f"its part {broken} does not read back" if broken is not None else None


_CHECKPOINT_TEMP_PREFIXES = tuple(f".{name}-" for name in ("best.keras", "last.keras", "metrics.csv", "state.json", CHECKPOINT_POINTER))


def _same_file(one: Path, other: Path) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


# ---------------------------------------------------------------- one worker per run


class RunLock:
    """An exclusive ``flock`` on ``<run>/worker.lock``, held while one process trains the run.

    The kernel drops the lock when the holding process exits or is killed, so
    a dead worker never blocks a resume. The file records the holder's pid for
    the error message.
    """

    def __init__(self, run_dir: Path, fd: int):
        self.run_dir = Path(run_dir)
        self.fd = fd

    def record_holder(self, pid: int) -> None:
        """Write ``pid`` into the lock file, for the "already being trained by pid N" message."""
        if self.fd >= 0:
            # One write of a fixed width over the old pid, then the length: a reader never finds the file empty.
            record = f"{int(pid):>10}\n".encode()
            os.pwrite(self.fd, record, 0)
            os.ftruncate(self.fd, len(record))

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


class RunBusyError(ValueError):
    """Another live process is training this run."""


def lock_holder(run_dir: Path) -> int | None:
    """The pid recorded by the process that holds (or last held) the run's lock."""
    try:
        text = (Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def acquire_run_lock(run_dir: Path, pid: int | None = None) -> RunLock:
    """Take the run's worker lock without waiting.

    Also refuses when ``status.json`` names a live worker that holds no lock
    (one started by a version of FER Studio without locks).

    Args:
        run_dir: The run folder.
        pid: The pid to record as the holder (default: this process; a
            starter that hands the lock to a child records the child).

    Raises:
        RunBusyError: "run X is already being trained by pid N".
    """
    run_dir = Path(run_dir)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + DYING_HOLDER_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
        holder = lock_holder(run_dir)
        # A killed worker reads as dead (a zombie) a moment before the kernel has
        # closed its files in every thread; wait that moment out.
        if holder and not _process_alive(holder) and time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        os.close(fd)
        raise RunBusyError(f"run {run_dir.name} is already being trained by pid {holder if holder else '?'}; "
                           "stop it (or wait for it to end) before resuming")
    data = read_json(run_dir / "status.json")
    if isinstance(data, dict) and data.get("state") in ACTIVE_STATES and data.get("pid") not in (None, os.getpid(), pid) \
            and data.get("host") in (None, socket.gethostname()) and _process_alive(int(data["pid"])) \
            and _looks_like_worker(int(data["pid"]), run_dir):
        os.close(fd)
        raise RunBusyError(f"run {run_dir.name} is already being trained by pid {data['pid']}; "
                           "stop it (or wait for it to end) before resuming")
    lock = RunLock(run_dir, fd)
    lock.record_holder(pid or os.getpid())
    return lock


def adopt_run_lock(run_dir: Path) -> RunLock | None:
    """The lock a starting process handed down (``$FER_STUDIO_RUN_LOCK_FD``), or ``None``.

    The starter took the lock and passed its descriptor to this worker, so no
    other process could slip in between the check and the start.
    """
    value = os.environ.pop(LOCK_FD_ENV, "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        if os.fstat(fd).st_ino != os.stat(Path(run_dir) / LOCK_FILE).st_ino:
            return None
    except OSError:
        return None
    os.set_inheritable(fd, False)  # programs this worker starts must not keep the run locked after it dies
    lock = RunLock(run_dir, fd)
    lock.record_holder(os.getpid())
    return lock


def _looks_like_worker(pid: int, run_dir: Path) -> bool:
    """True unless ``/proc`` shows that ``pid`` is some other program (a recycled pid)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True
    return "python" in command or run_dir.name in command


# Values a training epoch can write: accuracies in [0, 1]; a learning rate and a time >= 0 (a loss may be
# nan or inf: a run that diverged wrote it, and the page says so).
_METRIC_RANGES = {"accuracy": (0.0, 1.0), "val_accuracy": (0.0, 1.0), "lr": (0.0, math.inf), "epoch_time": (0.0, math.inf),
                  "val_time": (0.0, math.inf)}


def read_metrics(run_dir: Path) -> list[dict]:
    """Return ``metrics.csv`` rows as dicts of floats (``epoch`` as int); [] if none.

    A file changed by hand loses only what is wrong in it: a row that does
    not parse, or has no epoch that is a positive whole number, is left out; an
    accuracy outside [0, 1] or a learning rate or epoch time that is negative
    or not finite is left out of its row (shown as unknown); bytes that are
    not UTF-8 are read as replacement characters. :func:`run_file_problems`
    says what was left out.
    """
    return _parse_metrics(Path(run_dir) / "metrics.csv")[0]


def _parse_metrics(path: Path) -> tuple[list[dict], list[str]]:
    """``metrics.csv``'s usable rows, and one line for each row or value left out of them."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [], []
    if "\x00" in text or "\ufffd" in text:
        # Probe s22: the page's warning quoted a damaged file's bytes as a column name ('N\ufffdP?').
        return [], ["the file holds binary data, not the CSV a run writes: no epoch of it is shown"]
    rows: list[dict] = []
    problems: list[str] = []
    try:
        records = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as error:
        return [], [f"the file cannot be read as CSV ({error}): no epoch of it is shown"]
    for line, row in enumerate(records, start=2):  # line 1 is the header
        parsed = {}
        for key, value in row.items():
            if not isinstance(key, str) or not isinstance(value, str) or value == "":
                continue
            try:
                parsed[key] = float(value)
            except ValueError:
                parsed = None
                problems.append(f"line {line} left out: its {key} is {value[:40]!r}, not a number")
                break
        if parsed is None:
            continue
        epoch = parsed.get("epoch", math.nan)
        if not math.isfinite(epoch) or epoch < 1 or epoch != int(epoch):
            problems.append(f"line {line} left out: it has no epoch number" if "epoch" not in parsed
                            else f"line {line} left out: its epoch {epoch:g} is not a whole number from 1")
            continue
        for key, (low, high) in _METRIC_RANGES.items():
            if key in parsed and not (math.isfinite(parsed[key]) and low <= parsed[key] <= high):
                problems.append(f"line {line} (epoch {int(epoch)}): {key} {parsed[key]:g} is outside "
                                f"{'[0, 1]' if high == 1.0 else 'the values training writes'}, shown as unknown")
                del parsed[key]
        parsed["epoch"] = int(epoch)
        rows.append(parsed)
    return rows, problems


def run_file_problems(run_dir: Path, limit: int = 5) -> list[str]:
    """What in a run's ``config.json`` and ``metrics.csv`` cannot be used, one sentence each ([] if all can).

    The pages read both leniently (:func:`read_config`, :func:`read_metrics`):
    this names what that left out, so that a file damaged or changed by hand
    is reported, not silently shown as less. At most ``limit`` metrics lines
    are named, then how many more there are.
    """
    run_dir = Path(run_dir)
    problems = []
    config_path = run_dir / "config.json"
    if config_path.exists():
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            reason = f"not valid JSON: {error}" if isinstance(error, ValueError) else error.strerror or str(error)
            problems.append(f"config.json cannot be read ({reason}): the run's settings are unknown, so it "
                            "cannot be resumed or its accuracy judged against its classes")
        else:
            if not _is_run_config(data):
                problems.append("config.json is not what a run writes (an object with \"config\" and \"resolved\" "
                                "objects): the run's settings are unknown")
            else:
                from core.train_config import setting_type_problems

                wrong = setting_type_problems(data.get("config"))
                if wrong:
                    more = len(wrong) - limit
                    wrong = wrong[:limit] + ([f"and {more} more"] if more > 0 else [])
                    problems.append("config.json: " + "; ".join(wrong) + " (changed by hand?): the run cannot be "
                                    "resumed, and its settings are shown as they are, until they are put right")
    _, metric_problems = _parse_metrics(run_dir / "metrics.csv")
    if metric_problems:
        shown = metric_problems[:limit]
        more = len(metric_problems) - len(shown)
        problems.append("metrics.csv: " + "; ".join(shown) + (f"; and {more} more" if more else ""))
    return problems


def read_progress(run_dir: Path) -> dict:
    """Return ``progress.json`` ({} if none yet)."""
    return read_json(Path(run_dir) / "progress.json", {}) or {}


def request_stop(run_dir: Path) -> None:
    """Ask the worker to stop after the current batch; it keeps its checkpoints."""
    (Path(run_dir) / "stop").touch()


def stop_requested(run_dir: Path) -> bool:
    """True once :func:`request_stop` was called for this run."""
    return (Path(run_dir) / "stop").exists()


def stop_requested_at(run_dir: Path) -> float | None:
    """When :func:`request_stop` was called for this run (seconds since the epoch), or None."""
    try:
        return (Path(run_dir) / "stop").stat().st_mtime
    except OSError:
        return None


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
    saved = read_config(run_dir)
    config = saved.get("config", {})
    metrics = read_metrics(run_dir)
    scored = [row for row in metrics if "val_accuracy" in row]
    best = max(scored, key=lambda row: row["val_accuracy"]) if scored else None
    return RunSummary(
        run_id=run_dir.name,
        path=run_dir,
        model=config["model"] if isinstance(config.get("model"), str) else "?",
        status=read_status(run_dir),
        epochs_done=len(metrics),
        epochs_planned=config["epochs"] if isinstance(config.get("epochs"), int) and not isinstance(config["epochs"], bool) else 0,
        best_val_accuracy=best["val_accuracy"] if best else None,
        best_epoch=best["epoch"] if best else None,
        training_seconds=sum(row.get("epoch_time", 0.0) for row in metrics),
        created=_created(run_dir, saved),
        has_model=(run_dir / "best.keras").exists(),
    )


def _created(run_dir: Path, saved: dict) -> float:
    """When the run was made: the time ``config.json`` recorded then; else the file's (or folder's) change time.

    Not the file's time alone: every start and Resume rewrites ``config.json``, so a resumed run read as created
    when it was resumed and moved to the top of the list (walk s21)."""
    created = saved.get("created")
    if isinstance(created, (int, float)) and not isinstance(created, bool) and math.isfinite(created) and created > 0:
        return float(created)
    path = run_dir / "config.json" if (run_dir / "config.json").exists() else run_dir
    return path.stat().st_mtime


def list_runs(runs_dir: Path | None = None) -> list[RunSummary]:
    """Every run folder under ``runs_dir`` (newest first); folders without config.json are skipped."""
    runs_dir = Path(runs_dir or default_runs_dir())
    if not runs_dir.is_dir():
        return []
    found = [summarize_run(path) for path in runs_dir.iterdir() if (path / "config.json").is_file()]
    return sorted(found, key=lambda summary: summary.created, reverse=True)
