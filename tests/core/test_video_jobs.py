"""Video analyses in a background worker (core.video_jobs): results on disk, reuse, cancel, failures, sweeping."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from core.video import StreamSettings
from core.video_jobs import (
    cancel_video_job,
    load_report,
    read_video_job,
    start_video_job,
    sweep_video_jobs,
    video_job_dir,
)

SETTINGS = StreamSettings(detector="haar")


def wait_until_finished(folder: Path, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = read_video_job(folder)
        if not job.active:
            return job
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish in {timeout} s: {read_video_job(folder)}")


@pytest.fixture
def worker_of():
    """``worker_of(folder) -> pid``: a sleeping process that names ``folder`` in its command line, as a worker does."""
    import subprocess
    import sys

    processes = []

    def start(folder: Path) -> int:
        processes.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(folder)]))
        return processes[-1].pid

    yield start
    for process in processes:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory, two_face_video_writer) -> bytes:
    return two_face_video_writer(tmp_path_factory.mktemp("job-video") / "two.mp4", 12, 10).read_bytes()


def test_a_job_runs_in_its_own_process_writes_its_results_and_is_found_again(video_bytes, tiny_model_path, tmp_path):
    job = start_video_job(video_bytes, "my clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    assert job.state in ("queued", "running") and job.source == "my clip.mp4"  # running: the worker was quick
    worker_pid = json.loads((job.folder / "status.json").read_text())["pid"]
    assert worker_pid != os.getpid()
    done = wait_until_finished(job.folder)
    assert done.state == "done", done.message
    assert done.frames_done == done.frames_total == 12
    assert sorted(path.name for path in job.folder.iterdir() if not path.name.startswith("input")) == [
        "annotated.mp4", "faces.csv", "job.json", "progress.json", "report.json", "status.json", "worker.lock",
        "worker.log"]
    assert not list(job.folder.glob("input*"))  # the upload is deleted once analysed
    report = load_report(job.folder)
    assert report.source == "my clip.mp4" and report.frames == 12 and report.face_ids == 2
    assert [face.face_id for face in report.faces] == [1, 2]
    # The same bytes, settings and model: the finished job, no second worker.
    again = start_video_job(video_bytes, "my clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    assert again.folder == job.folder and again.state == "done"
    assert json.loads((job.folder / "status.json").read_text())["pid"] == worker_pid
    # Other settings: another job.
    other = start_video_job(video_bytes, "my clip.mp4", StreamSettings(detector="haar", window=3), [str(tiny_model_path)],
                            root=tmp_path)
    assert other.folder != job.folder
    cancel_video_job(other.folder)
    assert read_video_job(other.folder).state == "cancelled"


def test_a_broken_video_is_refused_at_once_and_a_wrong_model_fails_in_the_worker(video_bytes, tmp_path):
    with pytest.raises(ValueError, match="notes.mp4 .*not a readable video|not a readable video"):
        start_video_job(b"this is not a video\n" * 100, "notes.mp4", SETTINGS, [str(tmp_path / "m.keras")], root=tmp_path / "jobs")
    with pytest.raises(ValueError, match="empty"):
        start_video_job(b"", "clip.webm", SETTINGS, [str(tmp_path / "m.keras")], root=tmp_path / "jobs")
    assert not [path for path in (tmp_path / "jobs").iterdir() if path.is_dir()]  # nothing kept of a refused file
    fake_model = tmp_path / "model.keras"
    fake_model.write_text("not a model")
    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(fake_model)], root=tmp_path / "jobs")
    done = wait_until_finished(job.folder)
    assert done.state == "failed" and "model.keras" in done.message
    assert not list(job.folder.glob("input*")) and not (job.folder / "report.json").exists()


@pytest.mark.parametrize("outcome", ["done", "failed"])
def test_the_upload_is_gone_before_the_worker_writes_how_the_job_ended(outcome, video_bytes, tiny_model_path, tmp_path,
                                                                       monkeypatch):
    """Whoever reads a finished job finds no upload left (CI once read ``failed`` with input.mp4 still there)."""
    import signal
    from dataclasses import asdict

    import core.video_jobs as video_jobs

    model = tiny_model_path if outcome == "done" else tmp_path / "model.keras"
    if outcome == "failed":
        model.write_text("not a model")
    folder = tmp_path / "0123456789abcdef"
    folder.mkdir()
    (folder / "input.mp4").write_bytes(video_bytes)
    (folder / "job.json").write_text(json.dumps({"source": "clip.mp4", "input": "input.mp4",
                                                 "settings": asdict(SETTINGS), "models": [str(model)]}))
    written = []
    real_write = video_jobs._write_status

    def write_status(folder_, state, message, pid=None, **options):
        written.append((state, (folder_ / "input.mp4").exists()))
        real_write(folder_, state, message, pid, **options)

    monkeypatch.setattr(video_jobs, "_write_status", write_status)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        assert video_jobs.run_video_job(folder) == (0 if outcome == "done" else 1)
    finally:
        signal.signal(signal.SIGTERM, handler)  # the worker sets its own; this process keeps pytest's
    assert written[-1] == (outcome, False)
    assert read_video_job(folder).state == outcome


def test_a_dead_worker_reads_as_failed_and_a_cancel_is_final(tmp_path):
    folder = tmp_path / "0123456789abcdef"
    folder.mkdir()
    (folder / "job.json").write_text(json.dumps({"source": "a.mp4", "input": "input.mp4"}))
    (folder / "status.json").write_text(json.dumps({"state": "running", "message": "analysing", "pid": 2 ** 22 + 7}))
    (folder / "input.mp4").write_bytes(b"the upload")
    (folder / ".faces-partial.csv").write_text("frame\n")
    job = read_video_job(folder)
    assert job.state == "failed" and "worker process is gone" in job.message
    # Recorded as failed, with the upload and the partial files gone (probe s18: a server restarted under a running
    # job read it as failed and kept them).
    assert json.loads((folder / "status.json").read_text())["state"] == "failed"
    assert sorted(path.name for path in folder.iterdir()) == ["job.json", "status.json"]
    cancel_video_job(folder)
    from core.video_jobs import _write_status

    _write_status(folder, "done", "finished")  # a worker finishing in the same instant
    assert read_video_job(folder).state == "cancelled"


def test_job_ids_from_links_cannot_name_a_path(tmp_path):
    assert video_job_dir("0123456789abcdef", tmp_path) == tmp_path / "0123456789abcdef"
    for bad in ("../../etc/passwd", "0123456789ABCDEF", "abc", "", "0123456789abcdef/.."):
        with pytest.raises(ValueError, match="not a video analysis id"):
            video_job_dir(bad, tmp_path)


def test_start_refuses_a_non_video_name_and_invalid_settings(tiny_model_path, tmp_path):
    with pytest.raises(ValueError, match="not a video file name"):
        start_video_job(b"x", "photo.jpg", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    with pytest.raises(ValueError, match="--every"):
        start_video_job(b"x", "a.mp4", StreamSettings(every=0), [str(tiny_model_path)], root=tmp_path)
    with pytest.raises(ValueError, match="no model"):
        start_video_job(b"x", "a.mp4", SETTINGS, [], root=tmp_path)
    assert not list(tmp_path.iterdir())


def test_finished_jobs_idle_for_a_day_are_swept_and_others_kept(tmp_path, worker_of):
    def job(job_id: str, state: str, age_s: float) -> Path:
        folder = tmp_path / job_id
        folder.mkdir()
        (folder / "status.json").write_text(json.dumps({"state": state, "message": "", "pid": worker_of(folder)}))
        stamp = time.time() - age_s
        os.utime(folder, (stamp, stamp))
        return folder

    old_done = job("0" * 16, "done", 2 * 86400)
    old_running = job("1" * 16, "running", 2 * 86400)  # its worker is alive: still running
    fresh_done = job("2" * 16, "done", 60)
    (tmp_path / "not-a-job").mkdir()
    assert sweep_video_jobs(tmp_path) == ["0" * 16]
    assert not old_done.exists() and old_running.exists() and fresh_done.exists() and (tmp_path / "not-a-job").exists()


def test_over_the_size_cap_the_least_recently_used_finished_jobs_go_first(tmp_path, worker_of):
    def job(job_id: str, state: str, age_s: float, megabytes: int) -> Path:
        folder = tmp_path / job_id
        folder.mkdir()
        (folder / "status.json").write_text(json.dumps({"state": state, "message": "", "pid": worker_of(folder)}))
        (folder / "annotated.mp4").write_bytes(b"\0" * megabytes * 1024**2)
        stamp = time.time() - age_s
        os.utime(folder, (stamp, stamp))
        return folder

    oldest = job("a" * 16, "done", 3000, 2)
    running = job("b" * 16, "running", 2000, 2)  # never removed, but counted
    middle = job("c" * 16, "failed", 1000, 2)
    newest = job("d" * 16, "done", 10, 2)
    assert sweep_video_jobs(tmp_path, max_total_bytes=5 * 1024**2) == ["a" * 16, "c" * 16]
    assert not oldest.exists() and not middle.exists() and running.exists() and newest.exists()


# ---------------------------------------------------------------- cancel, again, one worker per folder
# The analysis worker is replaced by a sleeping Python process that names the job folder in its command line
# (as the real one does): these tests take seconds, not a model load.

STAND_IN = "import time; time.sleep(60)"
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


@pytest.fixture
def stand_in_worker(monkeypatch):
    """Workers started by start_video_job sleep instead of analysing; yields their pids, in order."""
    import sys

    started: list[int] = []
    real_popen = __import__("subprocess").Popen

    def popen(command, **options):
        process = real_popen(command, **options)
        started.append(process.pid)
        return process

    monkeypatch.setattr("core.video_jobs._worker_command", lambda folder: [sys.executable, "-c", STAND_IN, str(folder)])
    monkeypatch.setattr("core.video_jobs.subprocess.Popen", popen)
    yield started
    for pid in started:
        try:
            os.killpg(pid, 9)
        except ProcessLookupError:
            pass


def alive(pid: int) -> bool:
    from core.runs import _process_alive

    return _process_alive(pid)


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_cancel_ends_the_worker_and_a_second_start_finds_the_cancelled_job_until_asked_again(
        video_bytes, tiny_model_path, tmp_path, stand_in_worker):
    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    assert job.active and len(stand_in_worker) == 1
    first = stand_in_worker[0]
    assert cancel_video_job(job.folder) is True
    assert not alive(first)  # gone when cancel returns, not some time later
    # The page calls start_video_job on every rerun while the upload is there: no new worker, still cancelled.
    for _ in range(3):
        again = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
        assert again.state == "cancelled" and again.folder == job.folder
    assert len(stand_in_worker) == 1
    # Asked for: exactly one new worker, in the same folder.
    restarted = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path, again=True)
    assert restarted.state == "queued" and restarted.folder == job.folder and len(stand_in_worker) == 2
    assert json.loads((job.folder / "status.json").read_text())["pid"] == stand_in_worker[1]
    assert (job.folder / "input.mp4").is_file()
    # A running job is never restarted, even when asked.
    assert start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path, again=True).active
    assert len(stand_in_worker) == 2


def test_a_failed_job_is_not_restarted_by_a_rerun(video_bytes, tiny_model_path, tmp_path, stand_in_worker):
    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    os.killpg(stand_in_worker[0], 9)  # the worker dies without a word
    assert wait_for(lambda: read_video_job(job.folder).state == "failed")
    assert start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path).state == "failed"
    assert len(stand_in_worker) == 1
    assert start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path,
                           again=True).state == "queued"
    assert len(stand_in_worker) == 2


def test_the_reaper_of_an_old_worker_leaves_a_newer_workers_status_alone(video_bytes, tiny_model_path, tmp_path,
                                                                        stand_in_worker):
    from core.video_jobs import _reap

    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    status_before = json.loads((job.folder / "status.json").read_text())

    class OldWorker:  # ended with code 1 after the folder was given to the current worker
        pid = 4_000_000

        def wait(self) -> int:
            return 1

    _reap(job.folder, OldWorker(), "an older attempt")
    assert json.loads((job.folder / "status.json").read_text()) == status_before
    assert read_video_job(job.folder).state == "queued"
    # Its own worker's death is still recorded.
    attempt = json.loads((job.folder / "job.json").read_text())["attempt"]
    assert (job.folder / "input.mp4").is_file()
    (job.folder / ".annotated-partial.mp4").write_bytes(b"half")  # what a worker leaves when it is killed
    os.killpg(stand_in_worker[0], 9)
    assert wait_for(lambda: json.loads((job.folder / "status.json").read_text())["state"] == "failed")
    assert "killed by signal 9" in read_video_job(job.folder).message and attempt
    # Probe s18: the upload and the partial files stayed behind a job that read as failed.
    assert sorted(path.name for path in job.folder.iterdir() if path.name.startswith(("input", "."))) == []


def test_again_stops_a_lingering_worker_first_so_a_folder_never_has_two(video_bytes, tiny_model_path, tmp_path,
                                                                       stand_in_worker, monkeypatch):
    import subprocess
    import sys

    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    os.killpg(stand_in_worker[0], 9)
    # The file itself, not read_video_job's inference: the reaper has written, so it cannot overwrite the status below.
    assert wait_for(lambda: json.loads((job.folder / "status.json").read_text())["state"] == "failed")
    # A worker of this folder that ignores SIGTERM is still around (say, its pid recorded by a cancel that gave up).
    stubborn = subprocess.Popen([sys.executable, "-c", STUBBORN, str(job.folder)], start_new_session=True,
                                stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"
    stand_in_worker.append(stubborn.pid)
    status = json.loads((job.folder / "status.json").read_text())
    (job.folder / "status.json").write_text(json.dumps({**status, "state": "cancelled", "pid": stubborn.pid}))
    monkeypatch.setattr("core.video_jobs.STOP_WAIT_S", 0.3)
    restarted = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path, again=True)
    assert stubborn.wait(timeout=5) == -9  # killed once SIGTERM was ignored, before the new worker started
    assert restarted.state == "queued"
    living = [pid for pid in stand_in_worker if alive(pid)]
    assert living == [stand_in_worker[-1]] and living[0] != stubborn.pid


def test_the_starts_queued_state_never_overwrites_what_a_quick_worker_wrote(tmp_path):
    from core.video_jobs import _write_status

    folder = tmp_path / "0123456789abcdef"
    folder.mkdir()
    _write_status(folder, "queued", "starting the worker")
    _write_status(folder, "queued", "starting the worker", pid=41, only_over=("queued",))
    assert json.loads((folder / "status.json").read_text())["pid"] == 41
    _write_status(folder, "done", "12 frames analysed", pid=41)  # a standby, TensorFlow loaded, finished first
    _write_status(folder, "queued", "starting the worker", pid=41, only_over=("queued",))
    assert read_video_job(folder).state == "done"


def test_a_start_asked_again_during_a_cancel_waits_until_the_cancel_has_cleaned_up(video_bytes, tiny_model_path,
                                                                                  tmp_path, stand_in_worker,
                                                                                  monkeypatch):
    import threading

    import core.video_jobs as video_jobs

    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    real_stop = video_jobs._stop_worker

    def stop_then_stall(folder, pid, wait_s=None):
        stopped = real_stop(folder, pid, wait_s)
        if threading.current_thread() is cancel:
            time.sleep(1.0)  # the cancelling thread is descheduled between ending the worker and its clean-up
        return stopped

    monkeypatch.setattr(video_jobs, "_stop_worker", stop_then_stall)
    cancel = threading.Thread(target=cancel_video_job, args=(job.folder,))
    cancel.start()  # one session cancels
    assert wait_for(lambda: json.loads((job.folder / "status.json").read_text())["state"] == "cancelled")
    # Another session asks for the analysis again while that cancel is still under way.
    restarted = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path, again=True)
    cancel.join(timeout=10)
    assert not cancel.is_alive() and not alive(stand_in_worker[0])
    assert restarted.state == "queued" and read_video_job(job.folder).state == "queued" and len(stand_in_worker) == 2
    assert (job.folder / "input.mp4").is_file()  # the new upload: not deleted by the cancel that came first


def test_a_second_worker_on_a_folder_exits_at_once_and_writes_nothing(tmp_path):
    import fcntl
    import subprocess
    import sys

    from core import runs

    folder = tmp_path / "0123456789abcdef"
    folder.mkdir()
    (folder / "job.json").write_text(json.dumps({"source": "a.mp4", "input": "input.mp4", "settings": {}, "models": []}))
    (folder / "input.mp4").write_bytes(b"video")
    status = {"state": "running", "message": "analysing", "pid": os.getpid()}
    (folder / "status.json").write_text(json.dumps(status))
    with open(folder / "worker.lock", "a") as lock:  # the first worker holds the folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        second = subprocess.run([sys.executable, "-m", "core.video_jobs", str(folder)], cwd=str(runs.REPO_ROOT),
                                capture_output=True, text=True, timeout=60)
    assert second.returncode == 3 and "another worker" in second.stderr
    assert json.loads((folder / "status.json").read_text()) == status
    assert (folder / "input.mp4").exists()  # the first worker's input is not touched


def test_errors_name_the_formats_the_uploader_accepts(tmp_path):
    from core.video_io import VIDEO_EXTENSIONS
    from core.video_jobs import VIDEO_FORMATS

    assert VIDEO_FORMATS == "MP4, WEBM, MOV, AVI, MKV or M4V"
    assert all(extension.lstrip(".").upper() in VIDEO_FORMATS for extension in VIDEO_EXTENSIONS)
    with pytest.raises(ValueError) as refused:
        start_video_job(b"this is not a video\n" * 100, "notes.mkv", SETTINGS, [str(tmp_path / "m.keras")], root=tmp_path)
    assert "notes.mkv is not a readable video" in str(refused.value)
    assert f"expected a video file ({VIDEO_FORMATS})" in str(refused.value) and "MP4, WebM, MOV or AVI" not in str(refused.value)
    with pytest.raises(ValueError, match=r"expected MP4, WEBM, MOV, AVI, MKV or M4V"):
        start_video_job(b"x", "photo.gif", SETTINGS, [str(tmp_path / "m.keras")], root=tmp_path)


# ---------------------------------------------------------------- the standby worker

# Stands in for `python -m core.video_jobs --standby ROOT`: waits for a job folder on stdin, marks it, sleeps.
STANDBY_STAND_IN = ("import os, pathlib, sys, time; line = sys.stdin.readline().strip(); "
                    "line or sys.exit(0); (pathlib.Path(line) / 'handed').write_text(str(os.getpid())); time.sleep(60)")


@pytest.fixture
def stand_in_standby(monkeypatch, stand_in_worker):
    """Standby workers on: stand-ins (no TensorFlow) that keep the standby's command-line shape."""
    import sys

    from core.video_jobs import STANDBY_FLAG, STANDBY_VARIABLE

    monkeypatch.setenv(STANDBY_VARIABLE, "1")
    monkeypatch.setattr("core.video_jobs._standby_command",
                        lambda root, models, detector=None: [sys.executable, "-c", STANDBY_STAND_IN, STANDBY_FLAG,
                                                             str(root), *models])
    return stand_in_worker  # every process started, standbys and cold workers, in order


def standby_of(root: Path):
    from core import video_jobs

    standby = video_jobs._standbys.get(str(root))
    return None if standby is None else standby.process


def test_the_next_job_goes_to_the_warm_standby_worker_not_a_cold_one(video_bytes, tiny_model_path, tmp_path,
                                                                     stand_in_standby):
    from core.video_jobs import warm_standby

    root = tmp_path / "jobs"
    assert warm_standby([str(tiny_model_path)], root=root)
    standby = standby_of(root)
    assert standby is not None and standby.args[-2:] == [str(root), str(tiny_model_path)]
    assert warm_standby([str(tiny_model_path)], root=root) and standby_of(root) is standby  # one, not two
    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=root)
    assert stand_in_standby == [standby.pid]  # no cold worker was started
    assert json.loads((job.folder / "status.json").read_text())["pid"] == standby.pid
    # The stand-in creates the file and then writes it: wait for what it writes, not for the file.
    handed = job.folder / "handed"
    assert wait_for(lambda: handed.is_file() and handed.read_text() != "") and handed.read_text() == str(standby.pid)
    assert standby_of(root) is None
    # Its command line names the jobs folder, not the job: it still reads as this job's worker.
    assert read_video_job(job.folder).active
    # While this server analyses a video, no standby takes the CPU from it.
    assert not warm_standby([str(tiny_model_path)], root=root) and standby_of(root) is None
    assert cancel_video_job(job.folder) and wait_for(lambda: standby.poll() is not None)
    assert read_video_job(job.folder).state == "cancelled"
    assert warm_standby([str(tiny_model_path)], root=root) and standby_of(root) not in (None, standby)


def test_a_standby_that_ended_is_replaced_by_a_cold_worker(video_bytes, tiny_model_path, tmp_path, stand_in_standby):
    from core.video_jobs import warm_standby

    root = tmp_path / "jobs"
    assert warm_standby([], root=root)
    standby = standby_of(root)
    os.killpg(standby.pid, 9)
    standby.wait()
    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=root)
    assert len(stand_in_standby) == 2 and stand_in_standby[0] == standby.pid
    cold = stand_in_standby[1]
    assert json.loads((job.folder / "status.json").read_text())["pid"] == cold
    assert read_video_job(job.folder).active and not (job.folder / "handed").exists()
    cancel_video_job(job.folder)


def test_an_unwanted_standby_is_told_to_end_and_none_is_kept_when_turned_off(tmp_path, stand_in_standby, monkeypatch):
    from core.video_jobs import STANDBY_VARIABLE, warm_standby

    monkeypatch.setattr("core.video_jobs.STANDBY_IDLE_S", 0.3)
    assert warm_standby([], root=tmp_path / "jobs")
    standby = standby_of(tmp_path / "jobs")
    assert wait_for(lambda: standby.poll() is not None, timeout=10)
    assert standby.returncode == 0  # it read the end of its stdin and left: not killed
    assert standby_of(tmp_path / "jobs") is None
    monkeypatch.setenv(STANDBY_VARIABLE, "0")
    assert not warm_standby([], root=tmp_path / "off")
    assert len(stand_in_standby) == 1 and not (tmp_path / "off").exists()


def test_the_standby_takes_only_a_job_folder_of_its_own_jobs_folder(tmp_path, monkeypatch):
    import io

    from core.video_jobs import serve_as_standby

    root = tmp_path / "jobs"
    (root / "0123456789abcdef").mkdir(parents=True)
    for line, code in (("", 0), (str(tmp_path), 2), ("/etc/passwd", 2), (str(tmp_path / "other" / "0123456789abcdef"), 2),
                       (str(root / "not-a-job-id"), 2)):
        monkeypatch.setattr("sys.stdin", io.StringIO(line + "\n" if line else ""))
        assert serve_as_standby(root, []) == code, line
    assert sorted(path.name for path in root.iterdir()) == ["0123456789abcdef"]
    assert not list((root / "0123456789abcdef").iterdir())


def test_a_real_standby_analyses_the_job_with_the_model_it_loaded_ahead(video_bytes, tiny_model_path, tmp_path,
                                                                       monkeypatch):
    from core.video_jobs import STANDBY_VARIABLE, warm_standby

    monkeypatch.setenv(STANDBY_VARIABLE, "1")
    root = tmp_path / "jobs"
    assert warm_standby([str(tiny_model_path)], root=root, detector="haar")
    standby = standby_of(root)
    assert standby.args[-4:] == [str(root), "--detector", "haar", str(tiny_model_path)]
    try:
        job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(tiny_model_path)], root=root)
        done = wait_until_finished(job.folder)
        assert done.state == "done", done.message
        assert done.frames_done == done.frames_total == 12 and load_report(job.folder).face_ids == 2
        log = (job.folder / "worker.log").read_text()
        assert f"the standby worker (pid {standby.pid}) took this job" in log, log
        assert "had the models loaded ahead" in log, log
        assert json.loads((job.folder / "status.json").read_text())["pid"] == standby.pid
    finally:
        if standby.poll() is None:
            os.killpg(standby.pid, 9)


def test_no_more_analyses_run_at_once_than_the_limit(video_bytes, tiny_model_path, tmp_path, stand_in_worker,
                                                     monkeypatch):
    # Probe s18: four tabs ran four workers at once on 2 cores (about 1 GB each); nothing capped them.
    from core.video_jobs import VideoJobsBusy, max_workers, running_jobs

    monkeypatch.delenv("FER_STUDIO_VIDEO_WORKERS")
    assert max_workers() == 2
    monkeypatch.setenv("FER_STUDIO_VIDEO_WORKERS", "1")
    first = start_video_job(video_bytes, "a.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    assert first.started_now and running_jobs(tmp_path) == [first.folder]
    other = StreamSettings(detector="haar", window=3)
    with pytest.raises(VideoJobsBusy, match="1 video analysis is running, the most this server runs at once"):
        start_video_job(video_bytes, "b.mp4", other, [str(tiny_model_path)], root=tmp_path)
    assert len(stand_in_worker) == 1 and len(list(tmp_path.glob("*/job.json"))) == 1  # nothing written for it
    # The running job itself is still found (a rerun of the page that started it), without a new worker.
    again = start_video_job(video_bytes, "a.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    assert again.folder == first.folder and again.active and not again.started_now
    assert cancel_video_job(first.folder)
    second = start_video_job(video_bytes, "b.mp4", other, [str(tiny_model_path)], root=tmp_path)
    assert second.started_now and running_jobs(tmp_path) == [second.folder] and len(stand_in_worker) == 2
