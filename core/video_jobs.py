"""Video analyses as detached worker processes: the Video page starts one and only reads its files.

A job is one folder, ``<cache>/video-jobs/<job id>/``::

    job.json        what to analyse: the upload's name, the StreamSettings, the model files
    input.<ext>     the uploaded video (deleted when the analysis ends, whatever the outcome)
    status.json     queued | running | done | failed | cancelled, a message, the worker's pid
    progress.json   frames done and expected, elapsed seconds (rewritten a few times a second)
    faces.csv, annotated.mp4, report.json
                    the results (``core.video.analyze_video`` renames them into place at the end)
    worker.log      the worker's own output
    worker.lock     locked by the worker while it runs: a second worker on the folder exits at once

The worker is ``python -m core.video_jobs JOB_DIR``, started in its own
session, so closing the tab or reloading the page does not stop it; the page
keeps the job id in its URL (``?job=``) and finds the job again. The id is a
digest of the video's bytes, the settings and the model files' versions, so
the same upload analysed with the same settings finds the finished job instead
of starting another. A failed or cancelled job is not started again unless
asked (``again=True``: the page's "Analyse again" button), so a rerun of the
page never restarts it; a cancel stops the worker and waits until it is gone.
Finished jobs unused for a day are swept.

Importing TensorFlow takes a worker about 10 s on a 2-core machine, before it
reads a frame. So the Video page keeps one **standby worker** warm while it
is open (:func:`warm_standby`): ``python -m core.video_jobs --standby ROOT
[--detector NAME] [MODEL ...]`` imports TensorFlow and loads the page's
chosen models and detector, then waits on its stdin. :func:`start_video_job`
hands the next job to it (the job folder's path, one line) instead of
starting a cold worker; after that it is an ordinary worker in its own
session. A standby that is gone or broken is
replaced by a cold worker, so a job never depends on it. It is told to end
(its stdin closed) after ``STANDBY_IDLE_S`` without the page asking for it,
and ends with the server (the pipe closes). None is kept while this server's
analysis runs, so it never takes the CPU from one. ``FER_STUDIO_VIDEO_STANDBY=0``
turns it off (its memory: about 340 MB besides the shared libraries).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

from core import runs
from core.cache import default_cache_dir
from core.video import StreamSettings, VideoProgress
from core.video_io import VIDEO_EXTENSIONS, VIDEO_FORMATS, VideoReader  # noqa: F401  (VIDEO_FORMATS: the page imports it here)

JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
ACTIVE_STATES = ("queued", "running")
FINISHED_STATES = ("done", "failed", "cancelled")
# Finished jobs whose folder was not touched for this long are removed.
JOB_MAX_IDLE_S: float = 24 * 3600
# Finished jobs are also removed, least recently used first, while all jobs
# together take more than this many megabytes (annotated videos add up).
JOBS_CAP_VARIABLE = "FER_STUDIO_VIDEO_JOBS_CAP_MB"
DEFAULT_JOBS_CAP_MB = 2048
# The worker rewrites progress.json at most this often (seconds).
PROGRESS_INTERVAL_S: float = 0.25
RESULT_FILES = ("faces.csv", "annotated.mp4", "report.json")
# The most frames one analysis for the dashboard takes: 30 minutes at 30 frames/s, about 11 minutes of a worker with
# Haar on 2 cores. x264 stores a still frame in about 14 bytes, so a 200 MB upload can hold 14 million frames, which
# held one of the two workers for about 3 hours (probe s22, extrapolated from 1,170 frames/s on 20,000).
MAX_JOB_FRAMES = 54_000
# A cancel asks the worker to stop (SIGTERM), waits this long, then kills it.
STOP_WAIT_S: float = 5.0
WORKER_LOCK = "worker.lock"
# Starting and cancelling hold this lock (in the jobs folder) so they never interleave.
START_LOCK = ".start.lock"
# At most this many analyses run at once (each worker holds about 1 GB and a core's worth of work); a start beyond
# it is refused with VideoJobsBusy, and the page waits for a free one. Probe s18: four tabs ran four workers, 4.6 GB.
WORKERS_VARIABLE = "FER_STUDIO_VIDEO_WORKERS"
DEFAULT_WORKERS = 2


class VideoJobsBusy(ValueError):
    """As many analyses as the server runs at once are running; start again once one ends.

    Attributes:
        running: How many are running.
        limit: The most that run at once.
    """

    def __init__(self, running: int, limit: int):
        super().__init__(f"{running} video {_analyses(running)} running, the most this server runs at once "
                         f"({limit}); start again when one ends")
        self.running, self.limit = running, limit


def _analyses(count: int) -> str:
    return "analysis is" if count == 1 else "analyses are"


def max_workers() -> int:
    """The most analyses that run at once: ``FER_STUDIO_VIDEO_WORKERS`` (default 2, at least 1)."""
    try:
        return max(1, int(os.environ.get(WORKERS_VARIABLE, DEFAULT_WORKERS)))
    except ValueError:
        return DEFAULT_WORKERS


def running_jobs(root: Path | None = None) -> list[Path]:
    """The folders of the jobs whose worker is running now (a dead worker's job is recorded failed on the way)."""
    root = Path(root or video_jobs_dir())
    if not root.is_dir():
        return []
    return [folder for folder in sorted(root.iterdir())
            if JOB_ID_PATTERN.match(folder.name) and folder.is_dir() and read_video_job(folder).active]


@dataclass(frozen=True)
class VideoJob:
    """What a job's files say now.

    Attributes:
        job_id: The folder's name (16 hex digits).
        folder: The job folder.
        state: ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.
        message: Why it failed, or what it is doing.
        source: The uploaded file's name.
        frames_done, frames_total: Progress (``frames_total`` 0 when the file does not say).
        elapsed_s: Seconds since the analysis started.
    """

    job_id: str
    folder: Path
    state: str
    message: str
    source: str
    frames_done: int = 0
    frames_total: int = 0
    elapsed_s: float = 0.0
    started_now: bool = False  # set by the start_video_job call that handed it to a worker

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def progress(self) -> VideoProgress:
        """Frames/s and time left, as ``analyze_video`` reports them."""
        return VideoProgress(self.frames_done, self.frames_total, self.elapsed_s)

    @property
    def fraction(self) -> float:
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0


def video_jobs_dir() -> Path:
    """Where job folders live: ``video-jobs/`` in FER Studio's cache folder (private to the server); absolute."""
    return default_cache_dir() / "video-jobs"


def _model_versions(model_paths: Sequence[str | os.PathLike]) -> list[list]:
    """Each model file's resolved path, size and modification time (``None`` for a file that cannot be read)."""
    models = []
    for path in model_paths:
        try:
            stat = Path(path).stat()
            models.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
        except OSError:
            models.append([str(path), None, None])
    return models


def video_job_id(data_digest: str, settings: StreamSettings, model_paths: Sequence[str | os.PathLike]) -> str:
    """The id of analysing a video (its bytes' digest) with these settings and model files (their current versions)."""
    text = json.dumps({"video": data_digest, "settings": asdict(settings), "models": _model_versions(model_paths)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def video_job_dir(job_id: str, root: Path | None = None) -> Path:
    """The folder of job ``job_id`` (which may not exist).

    Raises:
        ValueError: ``job_id`` is not 16 hex digits (so a link cannot name a path).
    """
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id):
        raise ValueError("that is not a video analysis id (16 hex digits)")
    return Path(root or video_jobs_dir()) / job_id


def start_video_job(data: bytes, name: str, settings: StreamSettings, model_paths: Sequence[str | os.PathLike],
                    root: Path | None = None, *, again: bool = False, digest: str | None = None) -> VideoJob:
    """Analyse a video in a background worker; an identical job that exists is returned instead.

    A running or done job is always returned as it is. A failed or cancelled
    one is returned as it is too (a page rerun must not restart it) unless
    ``again`` is true: then its worker, if still alive, is stopped and the
    video analysed anew in the same folder. There is never more than one
    worker per job folder.

    Args:
        data: The video file's bytes.
        name: Its file name (the extension picks the demuxer; it is shown in the results).
        settings: How to analyse it.
        model_paths: One model, or several to average.
        root: Jobs folder (default :func:`video_jobs_dir`).
        again: Analyse a failed or cancelled job again.
        digest: ``data``'s SHA-256 in hex, when the caller has it already (a 200 MB upload takes a while to hash).

    Returns:
        The job as it stands (``queued`` when just started).

    Raises:
        VideoJobsBusy: :func:`max_workers` analyses are running already (an existing job is still returned).
        ValueError: Not a video file name, not a readable video, no model, invalid settings,
            or (with ``again``) a previous worker of this job that would not stop.
        OSError: The jobs folder cannot be written.
    """
    settings = settings.validate()
    suffix = Path(name).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise ValueError(f"{name} is not a video file name (expected {VIDEO_FORMATS})")
    if not model_paths:
        raise ValueError("no model given")
    root = Path(root or video_jobs_dir())
    sweep_video_jobs(root)
    job_id = video_job_id(digest or hashlib.sha256(data).hexdigest(), settings, model_paths)
    folder = video_job_dir(job_id, root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _jobs_lock(root):  # two sessions starting (or one cancelling) the same job take turns
        if folder.is_dir():
            job = read_video_job(folder)
            finished = job.state == "done" and (folder / "report.json").is_file() and (folder / "faces.csv").is_file()
            if job.active or finished or (job.state in ("failed", "cancelled") and not again):
                os.utime(folder)
                return job
        running = len(running_jobs(root))
        if running >= max_workers():
            raise VideoJobsBusy(running, max_workers())
        if folder.is_dir():
            # failed or cancelled and asked again, or done without its results: analyse anew in this folder
            status = runs.read_json(folder / "status.json", {}) or {}
            if not _stop_worker(folder, status.get("pid")) or _worker_lock_held(folder):
                raise ValueError("the previous analysis of this video is still stopping; try again in a moment")
            for path in folder.iterdir():
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.name != WORKER_LOCK:  # kept: the lock is this file, whoever runs next
                    path.unlink(missing_ok=True)
        else:
            folder.mkdir(mode=0o700)
        source = folder / f"input{suffix}"
        partial = folder / f".input{suffix}.part"
        partial.write_bytes(data)
        os.replace(partial, source)
        try:
            with VideoReader(source):  # opens the container and its video stream: a broken file is told at once
                pass
        except (ValueError, OSError) as error:
            shutil.rmtree(folder, ignore_errors=True)
            raise ValueError(_in_our_words(error, source.name, Path(name).name)) from None
        attempt = uuid.uuid4().hex  # tells this worker's reaper whether the folder is still its own
        runs.write_json_atomic(folder / "job.json", {"source": Path(name).name, "input": source.name,
                                                      "settings": asdict(settings),
                                                      "models": [str(path) for path in model_paths],
                                                      "created": time.time(), "attempt": attempt})
        _write_status(folder, "queued", "starting the worker")
        process = _hand_to_standby(root, folder)
        if process is None:
            with open(folder / "worker.log", "ab") as log:
                process = subprocess.Popen(_worker_command(folder), cwd=str(runs.REPO_ROOT),
                                           env=runs.child_environment(), stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)  # a reload or a closed tab does not stop it
        # Only over "queued": a standby (TensorFlow loaded) may have written "running", or even its final state.
        _write_status(folder, "queued", "starting the worker", pid=process.pid, only_over=("queued",))
        with _standby_lock:
            _analysing[process] = folder
        threading.Thread(target=_reap, args=(folder, process, attempt), daemon=True).start()
    return replace(read_video_job(folder), started_now=True)


def _worker_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "core.video_jobs", str(folder)]


def _in_our_words(error: Exception, file_name: str, shown_name: str) -> str:
    """The reader's error about ``file_name`` (the job's copy), naming the upload ``shown_name`` instead."""
    return str(error).replace(file_name, shown_name)


_lock_holder = threading.local()  # the jobs folders whose lock this thread holds


@contextlib.contextmanager
def _jobs_lock(root: Path) -> Iterator[None]:
    """The jobs folder's start lock: one holder across processes and threads; taken again by its holder, a no-op
    (a start reads its job, and a read records a dead worker under this lock)."""
    key = os.path.abspath(root)
    held = _lock_holder.__dict__.setdefault("roots", set())
    if key in held:
        yield
        return
    with open(Path(root) / START_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _worker_alive(pid: object, folder: Path) -> bool:
    """Whether ``pid`` is alive and is this folder's worker (a recycled pid running something else is not).

    A process on its way out has no command line any more but is not dead yet: it still counts, so a cancel
    returns only once it has ended (the cancel test failed 1 time in a few under load without that).
    """
    if not isinstance(pid, int) or pid <= 0 or not runs._process_alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid
    arguments = command.split(b"\0")
    if not command or os.fsencode(str(folder)) in arguments:
        return True
    # A standby worker's command line names its jobs folder, not the job it was handed.
    return STANDBY_FLAG.encode() in arguments and os.fsencode(str(folder.parent)) in arguments


def _worker_lock_held(folder: Path) -> bool:
    """Whether a worker holds the folder's lock now."""
    try:
        with open(folder / WORKER_LOCK, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _stop_worker(folder: Path, pid: object, wait_s: float | None = None) -> bool:
    """End the folder's worker ``pid`` (SIGTERM, then SIGKILL after ``wait_s``) and wait until it is gone.

    Returns whether no worker is left (true when there was none).
    """
    if not _worker_alive(pid, folder):
        return True
    wait_s = STOP_WAIT_S if wait_s is None else wait_s
    for sig, patience in ((signal.SIGTERM, wait_s), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)  # the worker leads its own session
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if not _worker_alive(pid, folder):
                return True
            time.sleep(0.05)
    return not _worker_alive(pid, folder)


def _discard_upload(folder: Path) -> None:
    """Delete the job's upload and the worker's unfinished files (dot-prefixed), keeping what a finished job holds."""
    for path in folder.iterdir():
        if (path.name.startswith("input") or path.name.startswith(".")) and path.is_file():
            path.unlink(missing_ok=True)


GONE_MESSAGE = "the analysis stopped before it finished (the worker process is gone); analyse it again"


def _record_gone_worker(folder: Path, pid: int) -> None:
    """Record, once, a worker that died without writing how it ended (killed, or a server restarted under it):
    its upload and partial files are deleted, then the job is written failed, as a worker ending itself does."""
    with _jobs_lock(folder.parent):  # a start of the same job rewrites the folder under this lock
        status = runs.read_json(folder / "status.json", {}) or {}
        if status.get("state") not in ACTIVE_STATES or status.get("pid") != pid or _worker_alive(pid, folder):
            return  # recorded meanwhile, or the folder was given to another worker
        _discard_upload(folder)
        _write_status(folder, "failed", GONE_MESSAGE, pid=pid)


def read_video_job(folder: Path) -> VideoJob:
    """The job's state from its files; an active job whose worker is gone is recorded as failed (and its upload
    deleted) and reads so."""
    folder = Path(folder)
    job = runs.read_json(folder / "job.json", {}) or {}
    status = runs.read_json(folder / "status.json", {}) or {}
    progress = runs.read_json(folder / "progress.json", {}) or {}
    state = status.get("state") if status.get("state") in (*ACTIVE_STATES, *FINISHED_STATES) else "failed"
    message = str(status.get("message") or ("" if status else "the job's files are missing or damaged"))
    pid = status.get("pid")
    if state in ACTIVE_STATES and isinstance(pid, int) and not _worker_alive(pid, folder):
        state, message = "failed", GONE_MESSAGE
        try:
            _record_gone_worker(folder, pid)
        except OSError:
            pass  # a read-only or vanished folder: it still reads as failed
    return VideoJob(job_id=folder.name, folder=folder, state=state, message=message, source=str(job.get("source", "")),
                    frames_done=int(progress.get("frames_done", 0)), frames_total=int(progress.get("frames_total", 0)),
                    elapsed_s=float(progress.get("elapsed_s", 0.0)))


def cancel_video_job(folder: Path, reason: str = "cancelled") -> bool:
    """Stop a job: its worker is ended (and waited for, at most a few seconds), its input and partial results removed.

    The job then reads ``cancelled`` until it is started again with ``again=True``; its message is ``reason``
    (how it came to be cancelled, for the other sessions that show the same job).

    Returns:
        Whether no worker is left (``False`` only when it could not be ended).
    """
    folder = Path(folder)
    # Held to the end: a start (another session's "Analyse again") waits until the files below are gone,
    # instead of writing a new upload that this cancel would then delete.
    with _jobs_lock(folder.parent):
        status = runs.read_json(folder / "status.json", {}) or {}
        pid = status.get("pid")
        _write_status(folder, "cancelled", reason, pid=pid)
        stopped = _stop_worker(folder, pid)
        for path in folder.iterdir():
            if path.name.startswith("input") or path.name.startswith(".") or path.name in RESULT_FILES:
                path.unlink(missing_ok=True)
    return stopped


def jobs_cap_bytes() -> int:
    """The jobs folder's size cap: ``FER_STUDIO_VIDEO_JOBS_CAP_MB`` megabytes (default 2048)."""
    try:
        megabytes = float(os.environ.get(JOBS_CAP_VARIABLE, DEFAULT_JOBS_CAP_MB))
    except ValueError:
        megabytes = DEFAULT_JOBS_CAP_MB
    return int(max(0.0, megabytes) * 1024**2)


def sweep_video_jobs(root: Path | None = None, max_idle_s: float = JOB_MAX_IDLE_S,
                     max_total_bytes: int | None = None) -> list[str]:
    """Remove finished jobs not touched for ``max_idle_s`` seconds, then the least recently used finished
    jobs while all jobs take more than ``max_total_bytes`` (default :func:`jobs_cap_bytes`). Returns their ids.

    Running jobs are never removed.
    """
    root = Path(root or video_jobs_dir())
    removed: list[str] = []
    if not root.is_dir():
        return removed
    cap = jobs_cap_bytes() if max_total_bytes is None else max_total_bytes
    now = time.time()
    finished: list[tuple[float, int, Path]] = []  # (last use, bytes, folder)
    total = 0
    for folder in root.iterdir():
        if not folder.is_dir() or not JOB_ID_PATTERN.match(folder.name):
            continue
        try:
            last_use = folder.stat().st_mtime
            size = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
        except OSError:
            continue
        if read_video_job(folder).active:
            total += size
            continue
        if now - last_use > max_idle_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
            continue
        total += size
        finished.append((last_use, size, folder))
    for _, size, folder in sorted(finished, key=lambda item: item[0]):
        if total <= cap:
            break
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
        total -= size
    return removed


def load_report(folder: Path):
    """The finished job's ``core.video.VideoReport``.

    Raises:
        ValueError: The job has no readable report.
    """
    from core.video import VideoReport

    data = runs.read_json(Path(folder) / "report.json")
    if not isinstance(data, dict):
        raise ValueError("this analysis has no readable report; start it again")
    return VideoReport.from_dict(data)


# ---------------------------------------------------------------- the worker


def run_video_job(folder: Path, preloaded: tuple[object, list] | None = None) -> int:
    """The worker: analyse the job's video, write progress and results, end with a final status. Returns 0 or 1.

    Args:
        folder: The job folder.
        preloaded: A standby's models and the versions of their files (:func:`_model_versions`):
            used when the job names the same files, unchanged since; otherwise the job loads its own.
    """
    folder = Path(folder)
    job = runs.read_json(folder / "job.json")
    if not isinstance(job, dict):
        _write_status(folder, "failed", "the job's description (job.json) is missing or damaged")
        return 1
    source = folder / str(job.get("input", ""))
    lock = open(folder / WORKER_LOCK, "a")  # held until this process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another worker is analysing {folder}; this one stops", file=sys.stderr)
        return 3  # writes nothing: the folder is the other worker's
    if (runs.read_json(folder / "status.json", {}) or {}).get("state") == "cancelled":
        return 1  # cancelled before this process got going

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        raise SystemExit(143)  # unwinds through analyze_video, which removes its partial files

    signal.signal(signal.SIGTERM, stop)
    _write_status(folder, "running", "loading the model", pid=os.getpid())
    final: tuple[str, str] | None = None  # the state and message written once the upload is gone
    try:
        from core.ensemble import load_models
        from core.video import analyze_video

        settings = StreamSettings(**job["settings"]).validate()
        if preloaded is not None and preloaded[1] == _model_versions(list(dict.fromkeys(job["models"]))):
            loaded = preloaded[0]
            print("the standby worker had the models loaded ahead", flush=True)
        else:
            loaded = load_models(job["models"])
        _write_status(folder, "running", "analysing", pid=os.getpid())
        last_write = [0.0]

        def progress(update) -> None:
            now = time.monotonic()
            if now - last_write[0] >= PROGRESS_INTERVAL_S or update.frames_done == update.frames_total:
                last_write[0] = now
                runs.write_json_atomic(folder / "progress.json", {"frames_done": update.frames_done,
                                                                 "frames_total": update.frames_total,
                                                                 "elapsed_s": round(update.elapsed_s, 3)})

        report = analyze_video(source, loaded, settings, csv_path=folder / "faces.csv",
                               annotated_path=folder / "annotated.mp4", progress=progress, max_frames=MAX_JOB_FRAMES)
        payload = report.to_dict()
        payload.update(source=str(job.get("source", source.name)), csv_path=None, annotated_path=None)
        runs.write_json_atomic(folder / "report.json", payload)
        runs.write_json_atomic(folder / "progress.json", {"frames_done": report.frames, "frames_total": report.frames,
                                                         "elapsed_s": report.elapsed_s})
        final = ("done", f"{report.frames} frames analysed")
        return 0
    except (ValueError, FileNotFoundError, OSError, KeyError, TypeError) as error:
        shown_name = str(job.get("source", source.name))
        final = ("failed", _in_our_words(error, source.name, shown_name) or type(error).__name__)
        return 1
    except SystemExit:
        final = ("cancelled", "cancelled")
        return 1
    finally:
        # The upload goes before the final state is written: whoever reads a finished job finds no upload left.
        source.unlink(missing_ok=True)
        if final is not None:  # an unforeseen error is recorded by _reap, with the worker's exit code
            _write_status(folder, *final, pid=os.getpid())


def _write_status(folder: Path, state: str, message: str, pid: int | None = None, *,
                  only_over: tuple[str, ...] | None = None) -> None:
    """Write the job's state, unless it was cancelled (a cancel is final) or, with ``only_over``, is not one of those.

    The read and the write hold the folder's lock, so a worker finishing as a cancel is written cannot undo it.
    """
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        current = (runs.read_json(folder / "status.json", {}) or {}).get("state")
        if current == "cancelled" and state != "cancelled":
            return  # a worker finishing in the same instant does not undo a cancel
        if only_over is not None and current not in only_over:
            return
        runs.write_json_atomic(folder / "status.json", {"state": state, "message": message, "pid": pid,
                                                        "updated": time.time()})
    finally:
        os.close(handle)  # and with it the lock


def _reap(folder: Path, process: subprocess.Popen, attempt: str) -> None:
    """Wait for the worker so it leaves no zombie; record a death the worker could not record itself.

    Nothing is written when the folder has since been given to another worker
    (another ``attempt`` in job.json, or another pid in status.json).
    """
    code = process.wait()
    with _standby_lock:
        _analysing.pop(process, None)
    if not folder.is_dir():
        return  # swept, or its jobs folder removed
    try:
        with _jobs_lock(folder.parent):
            job = runs.read_json(folder / "job.json", {}) or {}
            status = runs.read_json(folder / "status.json", {}) or {}
            if job.get("attempt") != attempt or status.get("pid") != process.pid:
                return
            if status.get("state") in ACTIVE_STATES:
                # As the worker does when it ends itself: the upload goes before the final state is written.
                _discard_upload(folder)
                how = (f"its worker was killed by signal {-code}, perhaps for lack of memory" if code < 0
                       else f"worker exit code {code}, an internal error")
                _write_status(folder, "failed", f"the analysis stopped before it finished ({how}); analyse it again",
                              pid=process.pid)
    except OSError:
        pass  # the folder went away meanwhile: nothing to record


# ---------------------------------------------------------------- the standby worker

STANDBY_VARIABLE = "FER_STUDIO_VIDEO_STANDBY"
STANDBY_FLAG = "--standby"
DETECTOR_FLAG = "--detector"
# A standby the page has not asked for in this many seconds is told to end.
STANDBY_IDLE_S: float = 600.0
# A standby told to end (its stdin closed) that is still there after this many seconds is killed.
STANDBY_END_WAIT_S: float = 30.0


@dataclass
class _Standby:
    process: subprocess.Popen
    asked: float  # time.monotonic() of the page's last warm_standby


_standby_lock = threading.Lock()
_standbys: dict[str, _Standby] = {}  # jobs folder -> its standby worker
_analysing: dict[subprocess.Popen, Path] = {}  # workers this process started (or handed a job) -> their job folders


def standby_enabled() -> bool:
    """Whether standby workers are kept: ``FER_STUDIO_VIDEO_STANDBY`` unset, or anything but 0/false/no/off."""
    return runs.switched_on(STANDBY_VARIABLE)


def _standby_command(root: Path, model_paths: Sequence[str], detector: str | None = None) -> list[str]:
    detector_flag = [DETECTOR_FLAG, detector] if detector else []
    return [sys.executable, "-m", "core.video_jobs", STANDBY_FLAG, str(root), *detector_flag, *model_paths]


def warm_standby(model_paths: Sequence[str | os.PathLike] = (), root: Path | None = None,
                 detector: str | None = None) -> bool:
    """Keep a worker process warm for the next job of ``root`` (see the module's docstring).

    Called on each run of the Video page: it starts a standby when there is
    none (or the one there has ended), and marks the one there as wanted.
    A standby warmed with other models is kept: it loads the job's own.

    Args:
        model_paths: The models the page has chosen: the standby loads them ahead.
        root: Jobs folder (default :func:`video_jobs_dir`).
        detector: The face detector the page has chosen: the standby loads it ahead (MTCNN's
            first frame took 1.1 s more than its second).

    Returns:
        Whether a standby is there or starting (``False``: turned off, or this
        server is analysing a video now).
    """
    if not standby_enabled():
        return False
    root = Path(root or video_jobs_dir())
    models = tuple(str(path) for path in dict.fromkeys(str(path) for path in model_paths))
    with _standby_lock:
        standby = _standbys.get(str(root))
        if standby is not None and standby.process.poll() is None:
            standby.asked = time.monotonic()
            return True
        _standbys.pop(str(root), None)
        if any(process.poll() is None and read_video_job(folder).active for process, folder in _analysing.items()):
            return False  # two cores: a standby's imports would slow the analysis down
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            process = subprocess.Popen(_standby_command(root, models, detector), cwd=str(runs.REPO_ROOT),
                                       env=runs.child_environment(), stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            return False  # no standby; the job starts a cold worker
        _standbys[str(root)] = _Standby(process, time.monotonic())
    threading.Thread(target=_retire_when_idle, args=(str(root), process), daemon=True).start()
    return True


def _hand_to_standby(root: Path, folder: Path) -> subprocess.Popen | None:
    """Give the job in ``folder`` to ``root``'s standby; ``None`` when there is none that takes it."""
    with _standby_lock:
        standby = _standbys.pop(str(root), None)
    if standby is None:
        return None
    process = standby.process
    try:
        if process.poll() is not None:
            return None
        process.stdin.write(f"{folder}\n".encode())
        process.stdin.close()
    except (OSError, ValueError):  # it ended meanwhile (broken pipe)
        _end_standby(process, wait_s=0.0)
        return None
    return process


def _end_standby(process: subprocess.Popen, wait_s: float | None = None) -> None:
    """Tell a standby to end (close its stdin), kill it if it is still there after ``wait_s``; reap it."""
    with contextlib.suppress(OSError, ValueError):
        process.stdin.close()
    try:
        process.wait(timeout=STANDBY_END_WAIT_S if wait_s is None else wait_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _retire_when_idle(key: str, process: subprocess.Popen) -> None:
    """End ``process`` once it is ``STANDBY_IDLE_S`` since the page last asked for it; stop watching once handed a job."""
    while True:
        with _standby_lock:
            standby = _standbys.get(key)
            if standby is None or standby.process is not process:
                return  # handed a job (its reaper waits for it), or ended and replaced
            if process.poll() is not None:
                del _standbys[key]
                return
            left = standby.asked + STANDBY_IDLE_S - time.monotonic()
            if left <= 0:
                del _standbys[key]
                break
        time.sleep(min(left, 5.0))
    _end_standby(process)


def serve_as_standby(root: Path, model_paths: Sequence[str], detector: str | None = None) -> int:
    """The standby: import TensorFlow, load the models and the detector, wait for one job folder on stdin, analyse it.

    Returns:
        The job's :func:`run_video_job` code; 0 when told to end without a job (stdin closed), 2 for a
        line that is not a job folder of ``root``.
    """
    import importlib
    import select

    import numpy as np

    from core.ensemble import load_models

    def job_waiting() -> bool:
        """Whether the job has arrived: then the warm-ups below would only delay it (the job does them itself)."""
        return bool(select.select([sys.stdin], [], [], 0)[0])

    importlib.import_module("core.video")  # what the analysis imports, ahead: the point of a standby
    preloaded = None
    if model_paths:
        try:
            preloaded = (load_models(model_paths), _model_versions(model_paths))
            if not job_waiting():
                from core.model_io import predict_probabilities

                predict_probabilities(preloaded[0], np.zeros((1, 48, 48), np.uint8))  # builds the predict function
        except Exception as error:  # noqa: BLE001 - the job loads its models itself and reports what is wrong
            print(f"standby: the models did not load ahead ({error}); the job loads them", file=sys.stderr)
            preloaded = None
    else:
        importlib.import_module("keras")  # what load_models will need: most of the 10 s
    if detector and not job_waiting():
        try:
            from core.detect import detect_faces

            detect_faces(np.zeros((480, 640, 3), np.uint8), detector)  # loads it (MTCNN: its networks)
        except Exception as error:  # noqa: BLE001 - the job meets the same error and reports it
            print(f"standby: the detector did not load ahead ({error})", file=sys.stderr)
    line = sys.stdin.readline().strip()
    if not line:
        return 0
    folder = Path(line)
    if folder.parent != root or not JOB_ID_PATTERN.match(folder.name) or not folder.is_dir():
        print(f"standby: {line!r} is not a job folder of {root}", file=sys.stderr)
        return 2
    log = os.open(folder / "worker.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)  # from here on its output is the job's, as a cold worker's is
    os.dup2(log, 2)
    os.close(log)
    print(f"the standby worker (pid {os.getpid()}) took this job, TensorFlow imported ahead", flush=True)
    return run_video_job(folder, preloaded)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if len(sys.argv) >= 3 and sys.argv[1] == STANDBY_FLAG:
        rest = sys.argv[3:]
        chosen_detector = rest[1] if len(rest) >= 2 and rest[0] == DETECTOR_FLAG else None
        sys.exit(serve_as_standby(Path(sys.argv[2]), rest[2:] if chosen_detector else rest, chosen_detector))
    if len(sys.argv) != 2:
        print(f"usage: python -m core.video_jobs JOB_DIR  |  "
              f"python -m core.video_jobs {STANDBY_FLAG} JOBS_DIR [{DETECTOR_FLAG} NAME] [MODEL ...]", file=sys.stderr)
        sys.exit(2)
    sys.exit(run_video_job(Path(sys.argv[1])))
