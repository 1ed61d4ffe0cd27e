"""load_fer2013: every accepted form, every bad input, the cache, and the real shared data."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import core.data as data_module
from core.data import default_data_dir, load_fer2013
from core.labels import CLASS_NAMES

SHARED = Path(__file__).resolve().parents[3] / "shared" / "fer2013"
# The per-class table of ../shared/fer2013/README.md.
SHARED_TRAIN_COUNTS = {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "sad": 4830, "surprise": 3171, "neutral": 4965}
SHARED_TEST_COUNTS = {"angry": 467, "disgust": 56, "fear": 496, "happy": 895, "sad": 653, "surprise": 415, "neutral": 607}


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    """Keep every load in this module away from ~/.cache (and out of the folders it loads)."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("FER_STUDIO_CACHE", str(cache))
    return cache


def face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def pixels_text(image: np.ndarray) -> str:
    return " ".join(map(str, image.ravel().tolist()))


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


# ---------------------------------------------------------------- CSV files


def test_challenge_csv_loads_with_line_ids_and_file_hash(tmp_path):
    csv_path = tmp_path / "fer2013.csv"
    csv_path.write_text(
        "emotion,pixels,Usage\n"
        f"0,{pixels_text(face(0))},Training\n"
        f"9,{pixels_text(face(1))},Training\n"
        f"4,{pixels_text(face(2))},PrivateTest\n"
    )
    dataset = load_fer2013(csv_path)
    assert dataset.report.kind == "csv"
    assert dataset.labels.tolist() == [0, 4]
    assert dataset.splits.tolist() == ["Training", "PrivateTest"]
    assert dataset.ids.tolist() == ["line 2", "line 4"]
    assert np.array_equal(dataset.images[1], face(2))
    assert [(s.where, s.reason) for s in dataset.report.skipped] == [("line 3", "label 9 out of range 0..6")]
    assert dataset.report.content_hash == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert dataset.report.source == str(csv_path)


def test_icml_variant_and_competition_train_csv(tmp_path):
    icml = tmp_path / "icml_face_data.csv"
    icml.write_text(f"emotion, Usage, pixels\n3, PublicTest,{pixels_text(face(3))}\n")
    assert load_fer2013(icml).splits.tolist() == ["PublicTest"]
    train = tmp_path / "train.csv"
    train.write_text(f"emotion,pixels\n5,{pixels_text(face(4))}\n")
    dataset = load_fer2013(train)
    assert dataset.splits.tolist() == ["Training"] and dataset.labels.tolist() == [5]


def test_csv_with_only_bad_rows_is_refused_listing_the_problems(tmp_path):
    csv_path = tmp_path / "fer2013.csv"
    csv_path.write_text("emotion,pixels,Usage\n1,1 2 3,Training\n")
    with pytest.raises(ValueError, match="line 2: 3 pixel values, expected 2304"):
        load_fer2013(csv_path)


def test_empty_csv_is_refused(tmp_path):
    (tmp_path / "fer2013.csv").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_fer2013(tmp_path / "fer2013.csv")


# ---------------------------------------------------------------- image folders


def test_release_folders_give_prefix_splits_and_canonical_labels(tiny_fer_folder):
    dataset = load_fer2013(tiny_fer_folder)
    assert dataset.report.kind == "image-folders"
    assert dataset.report.loaded == len(dataset) == 35
    counts = dataset.class_counts()
    assert counts["Training"] == dict.fromkeys(CLASS_NAMES, 3)
    assert counts["PublicTest"] == dict.fromkeys(CLASS_NAMES, 2)
    assert dataset.split_names == ["Training", "PublicTest"]
    label_of = dict(zip(dataset.ids.tolist(), dataset.labels.tolist()))
    # neutral sorts before sad, but FER2013 says sad = 4, neutral = 6.
    assert label_of["Training_1040.jpg"] == 4
    assert label_of["Training_1060.jpg"] == 6
    assert label_of["PublicTest_1030.jpg"] == 3
    assert dataset.report.skipped == () and dataset.report.converted == 0
    assert len(dataset.report.content_hash) == 64


def test_private_test_and_unprefixed_files_get_their_splits(tiny_fer_folder):
    write_png(tiny_fer_folder / "test" / "happy" / "PrivateTest_77.png", face(5))
    write_png(tiny_fer_folder / "test" / "happy" / "mine.png", face(6))
    write_png(tiny_fer_folder / "train" / "sad" / "extra.png", face(7))
    dataset = load_fer2013(tiny_fer_folder)
    split_of = dict(zip(dataset.ids.tolist(), dataset.splits.tolist()))
    assert split_of["PrivateTest_77.png"] == "PrivateTest"
    assert split_of["mine.png"] == "test"
    assert split_of["extra.png"] == "Training"
    assert dataset.split_names == ["Training", "PublicTest", "PrivateTest", "test"]
    index = dataset.ids.tolist().index("PrivateTest_77.png")
    assert np.array_equal(dataset.images[index], face(5)) and dataset.labels[index] == 3


def test_parent_folder_holding_the_release_is_looked_through(tiny_fer_folder):
    dataset = load_fer2013(tiny_fer_folder.parent)
    assert len(dataset) == 35
    assert dataset.report.kind == "image-folders"


def test_class_folders_with_synonyms_and_unknown_folder(tmp_path):
    root = tmp_path / "faces"
    write_png(root / "Happiness" / "a.png", face(1))
    write_png(root / "SAD" / "b.png", face(2))
    write_png(root / "neutral" / "c.png", face(3))
    write_png(root / "anger" / "d.png", face(4))
    write_png(root / "contempt" / "e.png", face(5))
    (root / "README.txt").write_text("not data")
    dataset = load_fer2013(root)
    assert dataset.report.kind == "class-folders"
    assert dict(zip(dataset.ids.tolist(), dataset.labels.tolist())) == {"a.png": 3, "b.png": 4, "c.png": 6, "d.png": 0}
    assert set(dataset.splits.tolist()) == {"all"}
    assert dataset.report.ignored_folders == ("contempt",)
    assert dataset.report.skipped == ()


def test_unknown_folder_in_the_release_is_reported(tiny_fer_folder):
    write_png(tiny_fer_folder / "train" / "contempt" / "Training_5.png", face(1))
    dataset = load_fer2013(tiny_fer_folder)
    assert dataset.report.ignored_folders == ("train/contempt",)
    assert "Training_5.png" not in dataset.ids.tolist()


def test_folders_named_by_digits_and_folders_left_out_are_said_by_the_commands(tmp_path, capsys):
    # Probe s19: an AffectNet-style export (0 neutral, 1 happy, ...) was read in FER2013's order and scored 8.6%
    # without a word, its folder 7 vanished, and a misspelt suprise/ lost its images in evaluate, train and pack.
    from core.__main__ import main

    root = tmp_path / "faces"
    for folder, value in (("0", 1), ("3", 2), ("7", 3), ("suprise", 4), ("happy", 5)):
        write_png(root / folder / f"{folder}.png", face(value))
    dataset = load_fer2013(root)
    assert dataset.report.numbered_folders == ("0", "3") and dataset.report.ignored_folders == ("7", "suprise")
    left_out, numbered = dataset.report.notes()
    assert left_out.startswith("folders that name no FER2013 class were left out, with every image in them: 7, suprise")
    assert numbered.startswith("folders named by a number were read in FER2013's order (0 angry, 1 disgust, ")
    assert "AffectNet's 0 is neutral" in numbered
    assert main(["pack", "--data", str(root), "--out", str(tmp_path / "faces.npz")]) == 0
    printed = capsys.readouterr().out
    assert "note: folders that name no FER2013 class were left out" in printed and "note: folders named by a" in printed
    from core.pack import load_packed

    assert load_packed(tmp_path / "faces.npz").report.notes() == [left_out, numbered]  # the pack keeps saying it


def test_broken_files_are_skipped_and_listed_never_dropped(tiny_fer_folder):
    happy = tiny_fer_folder / "train" / "happy"
    good = (happy / "Training_1030.jpg").read_bytes()
    (happy / "Training_9001.jpg").write_bytes(good[: len(good) // 2])
    (happy / "Training_9002.jpg").write_bytes(b"")
    (happy / "Training_9003.jpg").write_text("this is a text file")
    (happy / "notes.txt").write_text("a note")
    (tiny_fer_folder / "train" / "stray.jpg").write_bytes(good)
    (happy / ".DS_Store").write_bytes(b"\x00\x01")
    dataset = load_fer2013(tiny_fer_folder)
    reasons = {record.where: record.reason for record in dataset.report.skipped}
    assert set(reasons) == {
        "train/happy/Training_9001.jpg",
        "train/happy/Training_9002.jpg",
        "train/happy/Training_9003.jpg",
        "train/happy/notes.txt",
        "train/stray.jpg",
    }
    assert "truncated/corrupt" in reasons["train/happy/Training_9001.jpg"]
    assert "0-byte file" in reasons["train/happy/Training_9002.jpg"]
    assert "not an image file" in reasons["train/happy/Training_9003.jpg"]
    assert "not an image file (.txt)" in reasons["train/happy/notes.txt"]
    assert "not inside a class folder" in reasons["train/stray.jpg"]
    assert len(dataset) == 35


def test_hidden_faces_and_a_csv_beside_the_image_folders_are_reported_not_dropped(tiny_fer_folder):
    # Before: both were left out without a word (66 entries, 65 accounted for).
    happy = tiny_fer_folder / "train" / "happy"
    (happy / ".hidden.jpg").write_bytes((happy / "Training_1030.jpg").read_bytes())
    (happy / "._Training_1030.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # metadata: never data
    (happy / ".DS_Store").write_bytes(b"\x00\x01")
    (tiny_fer_folder / "fer2013.csv").write_text(f"emotion,pixels,Usage\n1,{pixels_text(face(1))},Training\n")
    (tiny_fer_folder / "README.md").write_text("not data")
    dataset = load_fer2013(tiny_fer_folder)
    reasons = {record.where: record.reason for record in dataset.report.skipped}
    assert set(reasons) == {"train/happy/.hidden.jpg", "fer2013.csv"}
    assert "hidden file" in reasons["train/happy/.hidden.jpg"]
    assert "a CSV beside the image folders" in reasons["fer2013.csv"]
    assert len(dataset) == 35 and dataset.report.kind == "image-folders"


def test_a_zip_and_a_folder_report_the_same_hidden_and_stray_files(tiny_fer_folder, tmp_path):
    # Review s20: a zip dropped hidden faces and hidden folders without a word (a 5-image zip loaded 2 and reported
    # none), a folder dropped hidden folders, and both dropped an image beside the folder that wraps the dataset.
    import shutil

    top = tmp_path / "download"
    shutil.copytree(tiny_fer_folder, top / "wrap")
    write_png(top / "stray.png", face(1))
    happy = top / "wrap" / "train" / "happy"
    write_png(happy / ".hidden.png", face(2))
    write_png(top / "wrap" / "train" / ".sad" / "Training_9.png", face(3))
    write_png(top / "wrap" / "train" / "sad" / ".ipynb_checkpoints" / "x.png", face(4))  # a tool's folder: quiet
    write_png(top / "wrap" / ".git" / "objects" / "x.png", face(4))
    (happy / "._Training_1030.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # metadata: quiet
    (top / "wrap" / "README.md").write_text("not data")
    expected = {
        "stray.png": "outside wrap/, the folder that holds the dataset, so it has no split and no label",
        "wrap/train/happy/.hidden.png": "a hidden file (its name starts with '.'); not read",
        "wrap/train/.sad": "a hidden folder (its name starts with '.'); nothing in it was read",
    }
    archive = zip_folder(top, tmp_path / "download.zip")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("__MACOSX/wrap/train/happy/._Training_1030.jpg", b"\x00\x05")
    for source in (top, archive):
        dataset = load_fer2013(source)
        assert len(dataset) == 35, source
        assert {record.where: record.reason for record in dataset.report.skipped} == expected, source


def test_a_second_csv_in_a_zip_is_reported(tmp_path):
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("a/fer2013.csv", f"emotion,pixels\n1,{pixels_text(face(1))}\n")
        zipped.writestr("b/fer2013.csv", f"emotion,pixels\n2,{pixels_text(face(2))}\n3,{pixels_text(face(3))}\n")
    dataset = load_fer2013(archive)
    assert dataset.labels.tolist() == [1]
    assert [(record.where, record.reason) for record in dataset.report.skipped] == [
        ("b/fer2013.csv", "another CSV: only a/fer2013.csv was loaded; point the data at this file to load it")]


def test_colour_and_odd_sized_images_are_converted_and_counted(tmp_path):
    root = tmp_path / "faces"
    colour = np.zeros((100, 100, 3), np.uint8)
    colour[..., 2] = 255  # red in OpenCV's BGR
    write_png(root / "happy" / "big_colour.png", colour)
    write_png(root / "happy" / "small_gray.png", np.full((20, 30), 99, np.uint8))
    write_png(root / "sad" / "ok.png", face(1))
    dataset = load_fer2013(root)
    assert dataset.report.converted == 2
    assert dataset.images.shape == (3, 48, 48)
    index = dataset.ids.tolist().index("big_colour.png")
    assert dataset.images[index].mean() == pytest.approx(cv2.cvtColor(colour[:1, :1], cv2.COLOR_BGR2GRAY)[0, 0], abs=1)


def test_large_photo_in_a_class_folder_becomes_a_48x48_face(tmp_path):
    photo = np.random.default_rng(0).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    write_png(tmp_path / "faces" / "fear" / "photo.jpg", photo)
    dataset = load_fer2013(tmp_path / "faces")
    assert dataset.images.shape == (1, 48, 48) and dataset.labels.tolist() == [2]
    assert dataset.report.converted == 1


def test_a_face_that_is_a_decompression_bomb_is_skipped_with_its_reason(tmp_path):
    # Probe s22: a zip of 40 flat 49-megapixel PNGs (208 KB each) took 50 s to load, without a word.
    write_png(tmp_path / "faces" / "fear" / "face.png", face(1))
    from PIL import Image

    (tmp_path / "faces" / "happy").mkdir()
    Image.new("RGBA", (2100, 2100), "white").save(tmp_path / "faces" / "happy" / "bomb.png")
    dataset = load_fer2013(tmp_path / "faces")
    assert dataset.images.shape == (1, 48, 48)
    [skipped] = dataset.report.skipped
    assert skipped.where.endswith("bomb.png") and "decompression bomb" in skipped.reason


def test_folder_with_only_unusable_files_is_refused(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "a.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="no image could be loaded"):
        load_fer2013(tmp_path)


def test_folder_with_only_unknown_classes_is_refused(tmp_path):
    write_png(tmp_path / "contempt" / "a.png", face(1))
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="contempt"):
        load_fer2013(tmp_path)


def test_folder_without_a_layout_lists_what_is_accepted(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    write_png(tmp_path / "cats" / "a.png", face(1))
    with pytest.raises(ValueError, match="no FER2013 layout.*accepted"):
        load_fer2013(tmp_path)
    with pytest.raises(ValueError, match="no FER2013 layout"):
        load_fer2013(tmp_path / "dogs")


def test_folder_holding_the_challenge_csv_loads_it(tmp_path):
    folder = tmp_path / "fer2013"
    folder.mkdir()
    (folder / "fer2013.csv").write_text(f"emotion,pixels,Usage\n2,{pixels_text(face(1))},Training\n")
    (folder / "README").write_text("from Kaggle")
    dataset = load_fer2013(tmp_path)
    assert dataset.report.kind == "csv" and dataset.labels.tolist() == [2]


# ---------------------------------------------------------------- zips


def test_zip_of_the_release_matches_the_folder(tiny_fer_folder, tmp_path):
    archive = zip_folder(tiny_fer_folder, tmp_path / "fer2013.zip", prefix="fer2013/")
    from_zip = load_fer2013(archive)
    from_folder = load_fer2013(tiny_fer_folder)
    assert from_zip.report.kind == "zip:image-folders"
    assert np.array_equal(from_zip.images, from_folder.images)
    assert from_zip.labels.tolist() == from_folder.labels.tolist()
    assert from_zip.ids.tolist() == from_folder.ids.tolist()
    assert from_zip.report.content_hash == from_folder.report.content_hash


def test_zip_of_class_folders_reports_member_paths(tmp_path):
    root = tmp_path / "faces"
    write_png(root / "happy" / "a.png", face(1))
    (root / "sad").mkdir()
    (root / "sad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    dataset = load_fer2013(zip_folder(root, tmp_path / "faces.zip"))
    assert dataset.report.kind == "zip:class-folders"
    assert dataset.labels.tolist() == [3]
    assert [record.where for record in dataset.report.skipped] == ["sad/broken.png"]


def test_zip_holding_a_csv_loads_it(tmp_path):
    archive = tmp_path / "train.csv.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("train.csv", f"emotion,pixels\n1,{pixels_text(face(1))}\n")
    dataset = load_fer2013(archive)
    assert dataset.report.kind == "zip:csv" and dataset.labels.tolist() == [1]


@pytest.mark.parametrize("member", ["../evil/happy/a.png", "happy/../../evil.png", "/etc/happy/a.png", "..\\evil\\a.png"])
def test_zip_with_escaping_member_is_refused(tmp_path, member):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("happy/ok.png", cv2.imencode(".png", face(1))[1].tobytes())
        zipped.writestr(member, b"x")
    with pytest.raises(ValueError, match="unsafe zip"):
        load_fer2013(archive)


def test_a_zip_inside_a_zip_and_a_password_protected_member_say_so(tmp_path):
    inner = zip_folder(write_png(tmp_path / "faces" / "happy" / "a.png", face(1)).parents[1], tmp_path / "inner.zip")
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zipped:
        zipped.write(inner, "inner.zip")
    with pytest.raises(ValueError, match=r"outer.zip holds a zip inside it \(inner.zip\); .*extract it and point at inner.zip"):
        load_fer2013(outer)
    locked = tmp_path / "locked.zip"
    with zipfile.ZipFile(locked, "w") as zipped:
        zipped.writestr("happy/open.png", cv2.imencode(".png", face(2))[1].tobytes())
        zipped.writestr("happy/locked.png", cv2.imencode(".png", face(3))[1].tobytes())
    raw = bytearray(locked.read_bytes())
    # Mark the second member encrypted, as a password-protected zip's members are: bit 0 of the flags
    # in its local header (offset 6) and its central-directory entry (offset 8).
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        second = raw.index(signature, raw.index(signature) + 1)
        raw[second + offset] |= 0x1
    locked.write_bytes(bytes(raw))
    dataset = load_fer2013(locked)
    assert len(dataset) == 1
    [record] = dataset.report.skipped
    assert record.where == "happy/locked.png" and "password-protected" in record.reason and "ZipInfo" not in record.reason


def test_zip_bomb_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("happy/a.png", b"\x00" * 5_000_000)
    with pytest.raises(ValueError, match="zip bomb"):
        load_fer2013(archive)


def test_a_zip_bomb_of_small_members_is_refused(tmp_path):
    # Probe s11: 1,000 members of 1 MiB each (a 1.15 MB zip) passed the per-member ratio and took 92 s to refuse.
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for index in range(20):
            zipped.writestr(f"train/happy/p{index:03d}.jpg", b"\xff\xd8\xff" + bytes(1024**2 - 3))
    with pytest.raises(ValueError, match="zip bomb"):
        load_fer2013(archive)


def test_zip_over_the_size_or_count_limits_is_refused(tmp_path, tiny_fer_folder, monkeypatch):
    archive = zip_folder(tiny_fer_folder, tmp_path / "fer.zip")
    monkeypatch.setattr(data_module, "MAX_ZIP_MEMBERS", 10)
    with pytest.raises(ValueError, match="members"):
        load_fer2013(archive, use_cache=False)
    monkeypatch.setattr(data_module, "MAX_ZIP_MEMBERS", 1000)
    monkeypatch.setattr(data_module, "MAX_ZIP_TOTAL_BYTES", 1000)
    with pytest.raises(ValueError, match="GiB"):
        load_fer2013(archive, use_cache=False)


def test_damaged_zip_is_refused(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable zip"):
        load_fer2013(tmp_path / "bad.zip")


# ---------------------------------------------------------------- wrong sources


def test_missing_path_raises_file_not_found_with_accepted_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="accepted"):
        load_fer2013(tmp_path / "nowhere")


def test_file_that_is_no_csv_or_zip_is_refused(tmp_path):
    (tmp_path / "notes.md").write_text("# hello")
    with pytest.raises(ValueError, match="not a CSV file, a .zip or a folder"):
        load_fer2013(tmp_path / "notes.md")
    (tmp_path / "fer2013.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(ValueError, match="extract it"):
        load_fer2013(tmp_path / "fer2013.tar.gz")
    write_png(tmp_path / "face.png", face(1))
    with pytest.raises(ValueError, match="single image"):
        load_fer2013(tmp_path / "face.png")


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no FER2013 layout"):
        load_fer2013(tmp_path)


# ---------------------------------------------------------------- progress and cache


def test_progress_is_reported_during_a_cold_load(tiny_fer_folder):
    calls = []
    load_fer2013(tiny_fer_folder, progress=lambda fraction, message: calls.append((fraction, message)))
    assert calls and all(0.0 <= fraction <= 1.0 for fraction, _ in calls)
    assert calls[-1][0] == 1.0 and all(isinstance(message, str) for _, message in calls)


def fail_if_parsed(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the source was parsed again instead of coming from the cache")

    monkeypatch.setattr(data_module, "_load_images", fail)
    monkeypatch.setattr(data_module, "_load_csv_stream", fail)


def test_second_load_comes_from_the_cache(tiny_fer_folder, tmp_path, monkeypatch):
    first = load_fer2013(tiny_fer_folder, cache_dir=tmp_path / "c")
    fail_if_parsed(monkeypatch)
    second = load_fer2013(tiny_fer_folder, cache_dir=tmp_path / "c")
    assert np.array_equal(first.images, second.images)
    assert second.report == first.report


def test_cached_csv_keeps_skipped_rows_and_hash(tmp_path, monkeypatch):
    csv_path = tmp_path / "fer2013.csv"
    csv_path.write_text(f"emotion,pixels,Usage\n1,{pixels_text(face(1))},Training\n8,1 2,Training\n")
    first = load_fer2013(csv_path, cache_dir=tmp_path / "c")
    fail_if_parsed(monkeypatch)
    second = load_fer2013(str(csv_path), cache_dir=tmp_path / "c")
    assert second.report.skipped == first.report.skipped and len(second.report.skipped) == 1
    assert second.report.content_hash == first.report.content_hash
    assert second.report.source == str(csv_path)


def test_touching_adding_or_removing_a_file_invalidates_the_cache(tiny_fer_folder, tmp_path):
    cache = tmp_path / "c"
    load_fer2013(tiny_fer_folder, cache_dir=cache)
    image = tiny_fer_folder / "train" / "happy" / "Training_1030.jpg"
    status = image.stat()
    os.utime(image, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    calls = []
    load_fer2013(tiny_fer_folder, cache_dir=cache, progress=lambda f, m: calls.append(m))
    assert any("Decoding" in message for message in calls)  # parsed again
    write_png(tiny_fer_folder / "train" / "happy" / "Training_5555.png", face(1))
    assert len(load_fer2013(tiny_fer_folder, cache_dir=cache)) == 36
    image.unlink()
    assert len(load_fer2013(tiny_fer_folder, cache_dir=cache)) == 35


def test_edited_csv_invalidates_the_cache(tmp_path):
    csv_path = tmp_path / "fer2013.csv"
    csv_path.write_text(f"emotion,pixels,Usage\n1,{pixels_text(face(1))},Training\n")
    assert load_fer2013(csv_path, cache_dir=tmp_path / "c").labels.tolist() == [1]
    csv_path.write_text(f"emotion,pixels,Usage\n2,{pixels_text(face(1))},Training\n")
    os.utime(csv_path, ns=(0, csv_path.stat().st_mtime_ns + 1_000_000_000))
    assert load_fer2013(csv_path, cache_dir=tmp_path / "c").labels.tolist() == [2]


def test_corrupt_cache_is_rebuilt(tiny_fer_folder, tmp_path):
    cache = tmp_path / "c"
    load_fer2013(tiny_fer_folder, cache_dir=cache)
    for entry in cache.iterdir():
        entry.write_bytes(b"garbage")
    assert len(load_fer2013(tiny_fer_folder, cache_dir=cache)) == 35
    assert len(load_fer2013(tiny_fer_folder, cache_dir=cache)) == 35


def test_use_cache_false_neither_reads_nor_writes(tiny_fer_folder, tmp_path):
    load_fer2013(tiny_fer_folder, cache_dir=tmp_path / "c", use_cache=False)
    assert not (tmp_path / "c").exists()


def test_default_cache_location_is_the_environment_variable(tiny_fer_folder, private_cache):
    load_fer2013(tiny_fer_folder)
    assert list(private_cache.glob("*.npz"))


# ---------------------------------------------------------------- default location


def test_default_data_dir_prefers_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FER2013_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("FER2013_DIR")
    expected = SHARED.resolve() if SHARED.is_dir() else None
    assert default_data_dir() == expected


# ---------------------------------------------------------------- the shared data (integration)


def test_shared_data_has_the_documented_counts(shared_fer2013):
    counts = shared_fer2013.class_counts()
    assert sum(counts["Training"].values()) == 28_709
    assert sum(counts["PublicTest"].values()) == 3_589
    assert counts["Training"] == SHARED_TRAIN_COUNTS
    assert counts["PublicTest"] == SHARED_TEST_COUNTS
    assert shared_fer2013.report.skipped == ()
    assert shared_fer2013.split_names == ["Training", "PublicTest"]


@pytest.mark.parametrize("folder, label", [("happy", 3), ("sad", 4), ("neutral", 6), ("angry", 0)])
def test_shared_class_folders_map_to_fer2013_indices(shared_fer2013, folder, label):
    names = sorted(os.listdir(SHARED / "train" / folder))[:20]
    label_of = dict(zip(shared_fer2013.ids.tolist(), shared_fer2013.labels.tolist()))
    assert all(name.startswith("Training_") for name in names)
    assert {label_of[name] for name in names} == {label}


def test_shared_images_match_what_opencv_reads(shared_fer2013):
    name = sorted(os.listdir(SHARED / "test" / "sad"))[0]
    index = shared_fer2013.ids.tolist().index(name)
    expected = cv2.imread(str(SHARED / "test" / "sad" / name), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(shared_fer2013.images[index], expected)
    assert shared_fer2013.splits[index] == "PublicTest"


def test_unreadable_sub_folder_is_reported_not_fatal(tiny_fer_folder, monkeypatch):
    real_scandir = os.scandir
    locked = str(tiny_fer_folder / "test" / "fear")

    def scandir(path):
        if str(path) == locked:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(data_module.os, "scandir", scandir)
    dataset = load_fer2013(tiny_fer_folder, use_cache=False)
    assert len(dataset) == 33
    assert [(r.where, r.reason) for r in dataset.report.skipped] == [
        ("test/fear", "folder could not be listed: Permission denied")
    ]


def test_a_huge_line_in_a_zipped_csv_is_skipped_while_streaming(tmp_path):
    # Issue 16 item 2: the CLI took 4.2 GB for a 178 MB one-line CSV inside a 66 MB zip.
    import tracemalloc

    rng = np.random.default_rng(0)
    digits = rng.integers(ord("0"), ord("9") + 1, 24_000_000, dtype=np.uint8)
    digits[3::4] = ord(" ")  # "ddd ddd ...": compresses about 2x, not a zip bomb
    good = " ".join(str(v) for v in rng.integers(0, 256, 48 * 48).tolist())
    csv_bytes = (f"emotion,pixels,Usage\n3,{good},Training\n1,".encode() + digits.tobytes()
                 + f",Training\n5,{good},PublicTest\n".encode())
    source = tmp_path / "fer2013.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("fer2013/fer2013.csv", csv_bytes)
    tracemalloc.start()
    try:
        dataset = load_fer2013(source, use_cache=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dataset.ids.tolist() == ["line 2", "line 4"] and dataset.report.kind == "zip:csv"
    assert [record.where for record in dataset.report.skipped] == ["line 3"]
    assert dataset.report.content_hash == hashlib.sha256(csv_bytes).hexdigest()
    assert peak < 0.5 * len(csv_bytes), f"peak {peak / 1e6:.0f} MB for a {len(csv_bytes) / 1e6:.0f} MB member"


def test_fifos_and_broken_links_in_a_folder_are_reported_never_opened(tiny_fer_folder, tmp_path):
    os.mkfifo(tiny_fer_folder / "train" / "happy" / "Training_pipe.jpg")  # opening it would block the load
    (tiny_fer_folder / "train" / "sad" / "Training_gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    dataset = load_fer2013(tiny_fer_folder, use_cache=False)
    assert len(dataset) == 35
    reasons = {record.where: record.reason for record in dataset.report.skipped}
    assert reasons == {
        "train/happy/Training_pipe.jpg": "not a regular file (a FIFO, device or socket); not read",
        "train/sad/Training_gone.jpg": "a broken link: the file it points to does not exist",
    }


def test_an_oversized_image_file_is_skipped_unread(tiny_fer_folder, monkeypatch):
    big = tiny_fer_folder / "train" / "angry" / "Training_big.jpg"
    big.write_bytes((tiny_fer_folder / "train" / "angry" / "Training_1000.jpg").read_bytes() + b"\0" * 200)
    monkeypatch.setattr(data_module, "MAX_IMAGE_FILE_BYTES", big.stat().st_size - 1)
    dataset = load_fer2013(tiny_fer_folder, use_cache=False)
    reasons = {record.where: record.reason for record in dataset.report.skipped}
    assert "larger than any image file is read" in reasons["train/angry/Training_big.jpg"]


def test_an_image_beside_the_split_folders_and_a_stray_file_in_one_are_reported(tmp_path, tiny_fer_folder):
    # Probe s11: README.jpg at the root and train/notes.txt were in neither the loaded nor the skipped list.
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny_fer_folder, root)
    shutil.copyfile(next(root.glob("train/*/*.jpg")), root / "README.jpg")
    (root / "train" / "notes.txt").write_text("where these came from")
    (root / "LICENSE").write_text("text beside the data is not a record")
    dataset = load_fer2013(root, use_cache=False)
    reasons = {record.where: record.reason for record in dataset.report.skipped}
    assert "README.jpg" in reasons and "no split" in reasons["README.jpg"]
    assert "train/notes.txt" in reasons and "not an image file (.txt)" in reasons["train/notes.txt"]
    assert "LICENSE" not in reasons
