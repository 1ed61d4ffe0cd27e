"""``python -m core video``: CSV, annotated MP4, JSON report, progress on stderr, clear errors for bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from core.__main__ import main
from core.video import CSV_COLUMNS
from core.video_io import VideoReader, VideoWriter


@pytest.fixture(scope="module")
def small_video(tmp_path_factory, two_face_video_writer) -> Path:
    """16 frames, 320x240, two astronaut heads drifting apart (Haar finds both)."""
    return two_face_video_writer(tmp_path_factory.mktemp("cli-video") / "two faces.mp4", 16, 20, crf=18)


def test_json_report_csv_and_annotated_video(small_video, tiny_model_path, tmp_path, capsys):
    out_csv, out_mp4 = tmp_path / "faces.csv", tmp_path / "faces.mp4"
    code = main(["video", str(small_video), "--model", str(tiny_model_path), "--detector", "haar", "--csv", str(out_csv),
                 "--annotated", str(out_mp4), "--every", "2", "--smooth", "ema", "--window", "5", "--confirm", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    report = json.loads(captured.out)
    assert report["frames"] == 16 and report["face_ids"] == 2 and report["fps"] == 20
    assert report["settings"]["every"] == 2 and report["settings"]["smoothing"] == "ema" and report["settings"]["window"] == 5
    assert report["settings"]["confirm"] == 1  # faces shown from the first frame, so every frame has its two rows
    assert [face["face_id"] for face in report["faces"]] == [1, 2]
    assert all(face["seconds"] == pytest.approx(0.8, abs=0.06) for face in report["faces"])
    assert "16/16 frames" in captured.err and "frames/s" in captured.err and "ETA" in captured.err
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 32
    with VideoReader(out_mp4) as reader:
        assert reader.info.codec == "h264" and len(list(reader)) == 16
    assert sorted(path.name for path in tmp_path.iterdir()) == ["faces.csv", "faces.mp4"]


def test_text_summary_lists_each_face(small_video, tiny_model_path, capsys):
    assert main(["video", str(small_video), "--model", str(tiny_model_path), "--detector", "haar", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "16 frames (320x240, 20 fps" in captured.out and "2 face ids" in captured.out
    lines = [line.split() for line in captured.out.splitlines()]
    assert [line[0] for line in lines if line and line[0].isdigit()] == ["1", "2"]
    assert captured.err == ""


def test_a_video_without_faces_warns_but_succeeds(tiny_model_path, tmp_path, capsys):
    path = tmp_path / "wall.mp4"
    with VideoWriter(path, 160, 120) as writer:
        for _ in range(4):
            writer.write(np.full((120, 160, 3), 128, np.uint8))
    assert main(["video", str(path), "--model", str(tiny_model_path), "--detector", "haar", "--quiet"]) == 0
    assert "warning: no face was found in any of the 4 frames" in capsys.readouterr().err


@pytest.mark.parametrize("make, args, message", [
    (lambda tmp: tmp / "missing.mp4", [], "no video file"),
    (lambda tmp: (tmp / "clips").mkdir() or tmp / "clips", [], "clips is a folder; give one video file"),
    (lambda tmp: (tmp / "notes.mp4").write_text("not a video") and tmp / "notes.mp4", [], "not a readable video"),
    (lambda tmp: (tmp / "empty.webm").write_bytes(b"") or tmp / "empty.webm", [], "empty"),
    (None, ["--every", "0"], "--every must be 1 or more"),
    (None, ["--csv", "out.txt"], "must end in .csv"),
    (None, ["--annotated", "out.avi"], "must end in .mp4"),
    (None, ["--window", "0"], "at least 1 frame"),
])
def test_bad_input_exits_2_with_a_clear_message_and_no_files(make, args, message, small_video, tiny_model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = make(tmp_path) if make else small_video
    before = set(tmp_path.iterdir())
    code = main(["video", str(source), "--model", str(tiny_model_path), "--detector", "haar", "--csv", "faces.csv", *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert set(tmp_path.iterdir()) == before  # no CSV and no temporary file left behind


def test_several_models_analyse_the_video_as_an_ensemble(small_video, tiny_model_path, tmp_path, capsys):
    import keras

    from core import model_io, models

    keras.utils.set_random_seed(5)
    other = model_io.export_model(models.build("mini_xception"), tmp_path / "other.keras")
    code = main(["video", str(small_video), "--model", str(tiny_model_path), "--model", str(other), "--detector", "haar",
                 "--smooth", "none", "--json", "--quiet"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == [str(tiny_model_path), str(other)]
    assert report["frames"] == 16 and report["face_ids"] == 2


@pytest.mark.parametrize("interruption", ["ctrl-c", "sigterm"])
def test_an_interrupted_analysis_leaves_no_partial_files_and_no_traceback(small_video, tiny_model_path, tmp_path, capsys,
                                                                          monkeypatch, interruption):
    # Before: Ctrl-C printed a KeyboardInterrupt traceback; a kill left hidden .faces-*.csv/.mp4 files behind.
    import os
    import signal

    from core.commands import video as video_command

    frames = []

    def interrupt_after_three_frames(self, progress):
        frames.append(progress.frames_done)
        if progress.frames_done == 3:
            if interruption == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(video_command.ProgressBar, "update", interrupt_after_three_frames)
    out = tmp_path / "out"
    out.mkdir()
    (out / "faces.csv").write_text("an earlier result\n")
    args = ["video", str(small_video), "--model", str(tiny_model_path), "--detector", "haar",
            "--csv", str(out / "faces.csv"), "--annotated", str(out / "faces.mp4"), "--overwrite"]
    previous = signal.getsignal(signal.SIGTERM)
    if interruption == "ctrl-c":
        assert main(args) == 130
        assert "interrupted: no output was written" in capsys.readouterr().err
    else:
        with pytest.raises(SystemExit) as stopped:
            main(args)
        assert stopped.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is the command's own, for its duration
    assert 3 in frames and max(frames) == 3
    assert sorted(path.name for path in out.iterdir()) == ["faces.csv"]
    assert (out / "faces.csv").read_text() == "an earlier result\n"


def test_an_existing_output_is_kept_unless_overwrite_is_given(small_video, tiny_model_path, tmp_path, capsys):
    # Security probe s9 finding 7: --annotated holiday.mp4 replaced the user's own video and exited 0.
    holiday, notes = tmp_path / "holiday.mp4", tmp_path / "results.csv"
    holiday.write_bytes(b"the user's own video")
    notes.write_text("the user's own table\n")
    for option, path in (("--annotated", holiday), ("--csv", notes)):
        before = path.read_bytes()
        assert main(["video", str(small_video), "--model", str(tiny_model_path), "--detector", "haar", "--quiet",
                     option, str(path)]) == 2
        assert f"{path} exists (a file); pass --overwrite to replace it" in capsys.readouterr().err
        assert path.read_bytes() == before
    assert main(["video", str(small_video), "--model", str(tiny_model_path), "--detector", "haar", "--quiet",
                 "--csv", str(notes), "--overwrite"]) == 0
    assert notes.read_text().startswith("frame,")


def test_a_full_disk_leaves_no_temporary_files_and_names_the_users_folder(small_video, tiny_model_path, tmp_path,
                                                                          capsys, monkeypatch):
    # Probe s19: on a full disk `video` exited 2 naming its hidden ".x-jhmq3czc.mp4", and left both temporaries,
    # which took the rest of the disk (closing them again failed too, before they were removed).
    import errno

    from core import video

    calls = []

    def full(self, *args):
        calls.append(1)
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video.CsvRecorder, "add", full)
    monkeypatch.setattr(video.CsvRecorder, "close", lambda self: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    out = tmp_path / "out"
    out.mkdir()
    args = ["video", str(small_video), "--model", str(tiny_model_path), "--detector", "haar", "--quiet",
            "--csv", str(out / "faces.csv"), "--annotated", str(out / "faces.mp4")]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert f"error: {out}: No space left on device" in error and "/." not in error and "Traceback" not in error
    assert list(out.iterdir()) == []


def test_faces_that_can_never_be_confirmed_get_the_right_advice(small_video, tiny_model_path, capsys):
    # Probe s19: with --every or --confirm past the video's length, the faces were found but never shown, and the
    # warning said to try the other detector or a lower confidence.
    assert main(["video", str(small_video), "--model", str(tiny_model_path), "--detector", "haar", "--quiet",
                 "--every", "100000"]) == 0
    error = capsys.readouterr().err
    assert "the detector ran on only 1 of the" in error and "lower --confirm or --every" in error
    assert "try the other detector" not in error
