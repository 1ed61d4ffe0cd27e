"""``python -m core predict`` with hostile paths: odd names, missing paths, FIFOs, devices, broken links (issue 16 item 11)."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.__main__ import main


@pytest.fixture
def blank_photo(tmp_path) -> Path:
    path = tmp_path / "blank.png"
    cv2.imwrite(str(path), np.full((60, 80), 90, np.uint8))
    return path


class StrictUtf8Stdout(io.TextIOWrapper):
    """A stdout that refuses what UTF-8 cannot encode, like a terminal with PYTHONIOENCODING=utf-8:strict."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict")

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8")


@pytest.mark.parametrize("as_json", [False, True])
def test_a_non_utf8_file_name_is_printed_safely_and_later_results_survive(tmp_path, blank_photo, tiny_model_path,
                                                                          monkeypatch, as_json):
    folder = tmp_path / "photos"
    folder.mkdir()
    odd = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: a surrogate in the str
    (folder / odd).write_bytes(blank_photo.read_bytes())
    (folder / "zz-last.png").write_bytes(blank_photo.read_bytes())
    stdout = StrictUtf8Stdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    code = main(["predict", "--model", str(tiny_model_path), "--no-detect", str(folder), *(["--json"] if as_json else [])])
    out = stdout.text()
    assert code == 0
    if as_json:
        assert [Path(entry["file"]).name for entry in json.loads(out)["images"]] == ["caf\\xe9.png", "zz-last.png"]
    else:
        assert "caf\\xe9.png: 1 face" in out and "zz-last.png: 1 face" in out


def test_a_missing_path_among_several_is_reported_and_the_others_predicted(tmp_path, blank_photo, tiny_model_path, capsys):
    code = main(["predict", "--model", str(tiny_model_path), "--no-detect", "--json",
                 str(tmp_path / "missing.jpg"), str(blank_photo)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    by_name = {Path(entry["file"]).name: entry for entry in report["images"]}
    assert by_name["missing.jpg"]["error"] == "no such file or folder"
    assert len(by_name["blank.png"]["faces"]) == 1


def test_fifos_devices_and_broken_links_are_reported_without_reading(tmp_path, blank_photo, tiny_model_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    os.mkfifo(folder / "pipe.jpg")  # reading it would wait for a writer forever
    (folder / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")  # reading it would never end
    (folder / "ok.png").write_bytes(blank_photo.read_bytes())
    finished = threading.Event()
    outcome = {}

    def run() -> None:
        outcome["code"] = main(["predict", "--model", str(tiny_model_path), "--no-detect", "--json", str(folder),
                                str(folder / "pipe.jpg"), "/dev/zero"])
        finished.set()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert finished.wait(120), "predict hung on a FIFO or a device"
    report = json.loads(capsys.readouterr().out)
    assert outcome["code"] == 1
    errors = {Path(entry["file"]).name: entry.get("error") for entry in report["images"]}
    assert "not a regular file" in errors["pipe.jpg"] and "FIFO" in errors["pipe.jpg"]
    assert "broken link" in errors["gone.jpg"]
    assert "not a regular file" in errors["zero.jpg"] and "device" in errors["zero.jpg"]
    assert "not a regular file" in errors["zero"]
    assert errors["ok.png"] is None


def test_reading_is_capped_by_size(tmp_path):
    from core.images import read_image_file

    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 5000)
    assert read_image_file(big, max_bytes=5000) == b"\xff" * 5000
    with pytest.raises(ValueError, match="larger than"):
        read_image_file(big, max_bytes=4999)


def test_only_missing_paths_is_a_usage_error(tmp_path, tiny_model_path, capsys):
    assert main(["predict", "--model", str(tiny_model_path), str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]) == 2
    err = capsys.readouterr().err
    assert "a.jpg: no such file or folder" in err and "b.jpg: no such file or folder" in err


def test_an_unwritable_runs_folder_is_a_clear_error_not_a_traceback(tmp_path, tiny_fer_folder, capsys, monkeypatch):
    import errno

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    code = main(["train", "--data", str(tiny_fer_folder), "--out", str(blocker / "runs"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: ") and str(blocker) in err

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "runs" / "x"))

    monkeypatch.setattr("core.train.prepare_run", read_only)
    code = main(["train", "--data", str(tiny_fer_folder), "--out", str(tmp_path / "runs"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Read-only file system" in err and "writable" in err


def test_meaningless_options_and_a_folder_without_images_are_errors(tmp_path, blank_photo, tiny_model_path, capsys):
    # Before: --max-side 0 found "0 faces" (exit 0), --tta --ten-crop ran one of them silently, and a
    # folder with no images printed nothing and exited 0.
    assert main(["predict", "--model", str(tiny_model_path), "--max-side", "0", str(blank_photo)]) == 2
    assert "--max-side must be at least 64 pixels" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", str(tiny_model_path), "--tta", "--ten-crop", str(blank_photo)])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    empty = tmp_path / "no_images"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    assert main(["predict", "--model", str(tiny_model_path), str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no images to predict in" in err and ".jpg" in err
