"""``python -m core inspect``: the load report and class counts, as text and as JSON."""

from __future__ import annotations

import json

from core.__main__ import main
from core.labels import CLASS_NAMES


def test_json_output_has_report_and_counts(tiny_fer_folder, tmp_path, capsys):
    code = main(["inspect", "--data", str(tiny_fer_folder), "--json", "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    output = json.loads(capsys.readouterr().out)
    assert output["report"]["kind"] == "image-folders"
    assert output["report"]["loaded"] == 35
    assert output["report"]["skipped"] == []
    assert len(output["report"]["content_hash"]) == 64
    assert output["counts"] == {
        "Training": dict.fromkeys(CLASS_NAMES, 3),
        "PublicTest": dict.fromkeys(CLASS_NAMES, 2),
    }


def test_text_output_lists_skipped_files_and_a_count_table(tiny_fer_folder, capsys):
    (tiny_fer_folder / "train" / "happy" / "Training_9.jpg").write_bytes(b"")
    (tiny_fer_folder / "train" / "contempt").mkdir()
    (tiny_fer_folder / "train" / "contempt" / "Training_8.jpg").write_bytes(b"x")
    code = main(["inspect", "--data", str(tiny_fer_folder), "--no-cache"])
    assert code == 0
    text = capsys.readouterr().out
    assert "kind:            image-folders" in text
    assert "loaded:          35 images" in text
    assert "train/happy/Training_9.jpg: 0-byte file" in text
    assert "ignored folders: train/contempt" in text
    table = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.startswith(("Training", "PublicTest", "total"))}
    assert table["Training"] == ["3"] * 7 + ["21"]
    assert table["PublicTest"] == ["2"] * 7 + ["14"]
    assert table["total"] == ["5"] * 7 + ["35"]


def test_bad_path_exits_with_code_2_and_a_message(tmp_path, capsys):
    code = main(["inspect", "--data", str(tmp_path / "missing"), "--no-cache"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_unloadable_source_exits_with_code_2(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("# nothing to see")
    assert main(["inspect", "--data", str(tmp_path / "notes.md"), "--no-cache"]) == 2
    assert "accepted" in capsys.readouterr().err


def test_a_non_utf8_file_name_in_the_report_does_not_crash_a_strict_stdout(tmp_path, monkeypatch):
    # Issue 16 item 11: text output crashed on such a name, losing everything after it.
    import io
    import os
    import sys

    import cv2
    import numpy as np

    from core.__main__ import main

    happy = tmp_path / "faces" / "happy"
    happy.mkdir(parents=True)
    cv2.imwrite(str(happy / "ok.png"), np.zeros((48, 48), np.uint8))
    (happy / os.fsdecode(b"bad\xff.png")).write_bytes(b"not an image")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["inspect", "--data", str(tmp_path / "faces"), "--no-cache"]) == 0
    stdout.flush()
    out = stdout.buffer.getvalue().decode("utf-8")
    assert "bad\\xff.png: not an image file" in out and "content hash:" in out
