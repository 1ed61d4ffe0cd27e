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


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory, two_face_video_writer) -> bytes:
    return two_face_video_writer(tmp_path_factory.mktemp("job-video") / "two.mp4", 12, 10).read_bytes()


def test_a_job_runs_in_its_own_process_writes_its_results_and_is_found_again(video_bytes, tiny_model_path, tmp_path):
    job = start_video_job(video_bytes, "my clip.mp4", SETTINGS, [str(tiny_model_path)], root=tmp_path)
    assert job.state == "queued" and job.source == "my clip.mp4"
    worker_pid = json.loads((job.folder / "status.json").read_text())["pid"]
    assert worker_pid != os.getpid()
    done = wait_until_finished(job.folder)
    assert done.state == "done", done.message
    assert done.frames_done == done.frames_total == 12
    assert sorted(path.name for path in job.folder.iterdir() if not path.name.startswith("input")) == [
        "annotated.mp4", "faces.csv", "job.json", "progress.json", "report.json", "status.json", "worker.log"]
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
    assert not list((tmp_path / "jobs").iterdir())  # nothing kept of a refused file
    fake_model = tmp_path / "model.keras"
    fake_model.write_text("not a model")
    job = start_video_job(video_bytes, "clip.mp4", SETTINGS, [str(fake_model)], root=tmp_path / "jobs")
    done = wait_until_finished(job.folder)
    assert done.state == "failed" and "model.keras" in done.message
    assert not list(job.folder.glob("input*")) and not (job.folder / "report.json").exists()


def test_a_dead_worker_reads_as_failed_and_a_cancel_is_final(tmp_path):
    folder = tmp_path / "0123456789abcdef"
    folder.mkdir()
    (folder / "job.json").write_text(json.dumps({"source": "a.mp4", "input": "input.mp4"}))
    (folder / "status.json").write_text(json.dumps({"state": "running", "message": "analysing", "pid": 2 ** 22 + 7}))
    job = read_video_job(folder)
    assert job.state == "failed" and "worker process is gone" in job.message
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


def test_finished_jobs_idle_for_a_day_are_swept_and_others_kept(tmp_path):
    def job(job_id: str, state: str, age_s: float) -> Path:
        folder = tmp_path / job_id
        folder.mkdir()
        (folder / "status.json").write_text(json.dumps({"state": state, "message": "", "pid": os.getpid()}))
        stamp = time.time() - age_s
        os.utime(folder, (stamp, stamp))
        return folder

    old_done = job("0" * 16, "done", 2 * 86400)
    old_running = job("1" * 16, "running", 2 * 86400)  # this process is alive: still running
    fresh_done = job("2" * 16, "done", 60)
    (tmp_path / "not-a-job").mkdir()
    assert sweep_video_jobs(tmp_path) == ["0" * 16]
    assert not old_done.exists() and old_running.exists() and fresh_done.exists() and (tmp_path / "not-a-job").exists()


def test_over_the_size_cap_the_least_recently_used_finished_jobs_go_first(tmp_path):
    def job(job_id: str, state: str, age_s: float, megabytes: int) -> Path:
        folder = tmp_path / job_id
        folder.mkdir()
        (folder / "status.json").write_text(json.dumps({"state": state, "message": "", "pid": os.getpid()}))
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
