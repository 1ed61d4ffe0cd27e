"""``python -m core predict``: per-image faces and probabilities as text or JSON; bad files don't stop the rest."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import predict
from core.__main__ import main
from core.labels import CLASS_NAMES


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, three_face_photo) -> Path:
    """``three.jpg`` (3 faces), ``nested/blank.png`` (none), ``broken.jpg`` (truncated), plus files to skip."""
    root = tmp_path_factory.mktemp("photos")
    photo, _ = three_face_photo
    cv2.imwrite(str(root / "three.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    (root / "nested").mkdir()
    cv2.imwrite(str(root / "nested" / "blank.png"), np.full((100, 120), 80, np.uint8))
    (root / "broken.jpg").write_bytes((root / "three.jpg").read_bytes()[:300])
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.jpg").write_bytes(b"")
    return root


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["predict", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_lists_every_image_with_faces_or_an_error(photo_folder, tiny_model_path, capsys):
    code, report = run_json(capsys, "--model", str(tiny_model_path), str(photo_folder))
    assert code == 1  # one unreadable file
    assert report["classes"] == list(CLASS_NAMES) and report["detector"] == "mtcnn"
    by_name = {Path(entry["file"]).name: entry for entry in report["images"]}
    assert sorted(by_name) == [".hidden.jpg", "blank.png", "broken.jpg", "three.jpg"]
    assert "truncated" in by_name["broken.jpg"]["error"]
    assert by_name[".hidden.jpg"] == {"file": by_name[".hidden.jpg"]["file"],  # named, not read, and no failure
                                      "skipped": "a hidden file (its name starts with '.'); not read"}
    assert by_name["blank.png"]["faces"] == []
    faces = by_name["three.jpg"]["faces"]
    assert len(faces) == 3
    for face in faces:
        assert list(face["probabilities"]) == list(CLASS_NAMES)
        assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)


def test_json_agrees_with_predict_image(photo_folder, tiny_model_path, tiny_loaded_model, capsys):
    image_path = photo_folder / "three.jpg"
    code, report = run_json(capsys, "--model", str(tiny_model_path), "--detector", "haar", "--tta", str(image_path))
    assert code == 0
    expected = predict.predict_image(predict.decode_photo(image_path.read_bytes()), tiny_loaded_model, detector="haar", tta="flip")
    faces = report["images"][0]["faces"]
    assert len(faces) == len(expected.faces) == 3
    for face, want in zip(faces, expected.faces):
        assert (face["box"]["x"], face["box"]["y"], face["box"]["w"], face["box"]["h"]) == want.box.xywh
        np.testing.assert_allclose([face["probabilities"][name] for name in CLASS_NAMES], want.probabilities, atol=1e-6)


def test_boxes_of_a_photo_analysed_downscaled_are_in_the_files_own_pixels(three_face_photo, tiny_model_path, tmp_path, capsys):
    # Before: an 8000 px photo got boxes in the 2048 px copy it was analysed at, 3.9x too small.
    photo, _ = three_face_photo
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    scale = predict.MAX_IMAGE_SIDE / max(bgr.shape[:2])
    analysed = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "analysed.png"), analysed)
    cv2.imwrite(str(tmp_path / "double.png"), np.repeat(np.repeat(analysed, 2, axis=0), 2, axis=1))
    code, report = run_json(capsys, "--model", str(tiny_model_path), "--detector", "haar",
                            str(tmp_path / "analysed.png"), str(tmp_path / "double.png"))
    assert code == 0
    small, large = sorted(report["images"], key=lambda entry: entry["width"])
    assert "analysed_at" not in small
    assert (large["width"], large["height"]) == (2 * small["width"], 2 * small["height"])
    assert large["analysed_at"] == {"width": small["width"], "height": small["height"]}
    assert len(small["faces"]) == len(large["faces"]) == 3
    for want, got in zip(small["faces"], large["faces"]):
        for key in ("x", "y", "w", "h"):
            # Detected again on a resampled copy, so a box may move a little; unscaled it would be off by half.
            assert abs(got["box"][key] - 2 * want["box"][key]) <= 0.25 * want["box"]["w"] + 4, (key, want["box"], got["box"])
    assert main(["predict", "--model", str(tiny_model_path), "--detector", "haar", str(tmp_path / "double.png")]) == 0
    assert f"({large['width']}x{large['height']}, analysed at {small['width']}x{small['height']}," in capsys.readouterr().out


def test_no_detect_classifies_the_whole_image(photo_folder, tiny_model_path, capsys):
    code, report = run_json(capsys, "--model", str(tiny_model_path), "--no-detect", str(photo_folder / "nested" / "blank.png"))
    assert code == 0 and report["detector"] is None
    (face,) = report["images"][0]["faces"]
    assert face["box"] == {"x": 0, "y": 0, "w": 120, "h": 100}


def test_text_output_has_one_line_per_face_and_reports_errors(photo_folder, tiny_model_path, capsys):
    code = main(["predict", "--model", str(tiny_model_path), "--detector", "haar", str(photo_folder)])
    out = capsys.readouterr().out
    assert code == 1
    assert "three.jpg: 3 faces" in out and "blank.png: 0 faces" in out
    assert "broken.jpg: error: truncated" in out
    assert all(name[:7] in out for name in CLASS_NAMES)


def test_without_a_model_the_error_says_how_to_get_one(photo_folder, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(predict, "BUNDLED_MODEL", tmp_path / "missing.keras")
    assert main(["predict", str(photo_folder / "three.jpg")]) == 2
    assert "--model runs/<id>/best.keras" in capsys.readouterr().err


def test_missing_paths_and_bad_models_are_errors_not_tracebacks(photo_folder, tiny_model_path, tmp_path, capsys):
    assert main(["predict", "--model", str(tiny_model_path), str(tmp_path / "nope.jpg")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    assert main(["predict", "--model", str(fake), str(photo_folder / "three.jpg")]) == 2
    assert "not a Keras model" in capsys.readouterr().err
    assert main(["predict", "--model", str(tiny_model_path), "--min-confidence", "2", str(photo_folder)]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_the_text_table_names_every_class_whole_and_lines_up(capsys):
    # Walk s12: the header cut "surprise" to "surpris".
    from core.commands.predict import print_text
    from core.labels import CLASS_NAMES

    probabilities = {name: (index + 1) / 28 for index, name in enumerate(CLASS_NAMES)}
    print_text([{"file": "a.jpg", "width": 48, "height": 48, "milliseconds": 1.0,
                 "faces": [{"box": {"x": 1, "y": 2, "w": 3, "h": 4}, "emotion": "neutral", "probabilities": probabilities}]}])
    _, header, row = capsys.readouterr().out.splitlines()
    for name in CLASS_NAMES:
        assert f" {name}" in header
        end = header.index(f" {name}") + 1 + len(name)
        assert row[:end].endswith(f"{probabilities[name]:.3f}"), (name, header, row)


def test_a_folder_walk_follows_links_and_names_what_it_cannot_list(tmp_path, monkeypatch):
    # Probe s19: rglob skipped an unreadable subfolder and a linked one, and an empty folder among the paths
    # given, without a word (exit 0).
    import os

    from core.commands.predict import collect_images

    album = tmp_path / "album"
    album.mkdir()
    (album / "a1.jpg").write_bytes(b"x")
    photos = tmp_path / "photos"
    (photos / "locked").mkdir(parents=True)
    (photos / "locked" / "b.jpg").write_bytes(b"x")
    (photos / "c.jpg").write_bytes(b"x")
    (photos / "album_link").symlink_to(album)
    (photos / "loop").symlink_to(photos)  # a link back up: walked once, not forever
    (tmp_path / "empty").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    found = [(path.relative_to(tmp_path).as_posix(), problem)
             for path, problem in collect_images([str(photos), str(tmp_path / "empty")])]
    assert found == [("photos/album_link/a1.jpg", None), ("photos/c.jpg", None),
                     ("photos/locked", "folder could not be listed: Permission denied"),
                     ("empty", found[-1][1])]
    assert found[-1][1].startswith("no images to predict in this folder or its subfolders: folders are searched for ")


def test_hidden_photos_and_folders_are_reported_and_os_metadata_is_not(tmp_path):
    # Probe s22: predict on a folder passed over .b.jpg without a word; the dataset loader reports such files.
    from core.commands.predict import collect_images

    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / ".b.jpg").write_bytes(b"x")
    (tmp_path / "._a.jpg").write_bytes(b"mac")  # macOS's copy of a.jpg's attributes
    (tmp_path / ".DS_Store").write_bytes(b"mac")
    (tmp_path / ".trip").mkdir()
    (tmp_path / ".trip" / "c.jpg").write_bytes(b"x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".venv" / "lib").mkdir(parents=True)  # review s22: named though it hides no photo
    (tmp_path / ".venv" / "lib" / "site.py").write_text("")
    found = [(path.relative_to(tmp_path).as_posix(), problem) for path, problem in collect_images([str(tmp_path)])]
    assert found == [(".b.jpg", "a hidden file (its name starts with '.'); not read"),
                     (".trip", "a hidden folder (its name starts with '.'); nothing in it was read"),
                     ("a.jpg", None)]
