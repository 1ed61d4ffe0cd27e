"""Prediction pipeline: faces found, framed, classified in FER2013 order; bad files give clear errors."""

from __future__ import annotations

import io
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from core import predict
from core.detect import square_box
from core.labels import CLASS_NAMES
from core.model_io import predict_probabilities
from core.predict import (
    NOT_AN_IMAGE_NAME,
    MajorityVote,
    decode_photo,
    draw_predictions,
    iter_zip_images,
    predict_image,
    predictions_table,
    zip_image_summary,
)
from core.preprocess import prepare_face


def encode(image: np.ndarray, format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format)
    return buffer.getvalue()


def test_three_faces_are_classified_with_probabilities_in_fer_order(three_face_photo, tiny_loaded_model):
    photo, _ = three_face_photo
    result = predict_image(photo, tiny_loaded_model)
    assert len(result.faces) == 3
    assert result.image_shape == photo.shape and result.detector == "mtcnn"
    assert result.detect_ms > 0 and result.classify_ms > 0
    for face in result.faces:
        assert face.probabilities.shape == (7,)
        assert face.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert face.label == CLASS_NAMES[int(np.argmax(face.probabilities))]
        assert face.score == pytest.approx(float(face.probabilities.max()))


def test_the_face_shown_is_exactly_the_model_input(three_face_photo, tiny_loaded_model):
    photo, _ = three_face_photo
    result = predict_image(photo, tiny_loaded_model, detector="haar")
    for face in result.faces:
        x0, y0, x1, y1 = square_box(face.box, photo.shape)
        assert face.crop_box == (x0, y0, x1, y1) and x1 - x0 == y1 - y0
        assert np.array_equal(face.face, prepare_face(photo[y0:y1, x0:x1]))
        expected = predict_probabilities(tiny_loaded_model, face.face[None])[0]
        np.testing.assert_allclose(face.probabilities, expected, atol=1e-5)


def test_flip_tta_averages_with_the_mirrored_face(three_face_photo, tiny_loaded_model):
    photo, _ = three_face_photo
    plain = predict_image(photo, tiny_loaded_model, detector="haar")
    tta = predict_image(photo, tiny_loaded_model, detector="haar", tta="flip")
    for a, b in zip(plain.faces, tta.faces):
        mirrored = predict_probabilities(tiny_loaded_model, a.face[None, :, ::-1])[0]
        np.testing.assert_allclose(b.probabilities, (a.probabilities + mirrored) / 2, atol=1e-5)


def test_no_face_then_whole_image_as_one_face(tiny_loaded_model):
    blank = np.full((120, 160, 3), 90, np.uint8)
    assert predict_image(blank, tiny_loaded_model).faces == ()
    whole = predict_image(blank, tiny_loaded_model, detect=False)
    assert len(whole.faces) == 1 and whole.detector is None
    assert whole.faces[0].box.xywh == (0, 0, 160, 120)
    assert whole.faces[0].face.shape == (48, 48)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "0-byte"),
        (b"this is a text file, not a photo", "not an image"),
        (encode(np.zeros((64, 64, 3), np.uint8))[:200], "truncated"),
    ],
    ids=["empty", "text", "truncated-jpeg"],
)
def test_bad_files_raise_value_error_with_a_clear_message(data, message):
    with pytest.raises(ValueError, match=message):
        decode_photo(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_huge_jpeg_is_decoded_small():
    huge = np.zeros((10_000, 10_000), np.uint8)
    huge[::100] = 255
    data = encode(huge)
    del huge
    image = decode_photo(data)
    assert max(image.shape[:2]) <= predict.MAX_IMAGE_SIDE


def test_a_100_megapixel_png_is_downscaled_not_refused():
    # Phones take 50-108 MP photos; a PNG cannot be shrunk while decoding, but it is still accepted.
    photo = np.zeros((10_000, 10_000), np.uint8)
    photo[2000:8000, 3000:7000] = 200
    data = encode(photo, "PNG")
    del photo
    image = decode_photo(data)
    assert image.shape[:2] == (predict.MAX_IMAGE_SIDE, predict.MAX_IMAGE_SIDE)
    assert image[1024, 1024] == 200 and image[100, 100] == 0


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels, with almost no data: a decompression bomb's shape."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(13_000, 12_000), (40_000, 40_000)], ids=["156MP", "1.6GP"])
def test_a_decompression_bomb_is_refused_with_a_clear_message(width, height):
    with pytest.raises(ValueError, match="image too large"):
        decode_photo(png_header_only(width, height))


def _one_face(x: int, y: int, side: int, label: str = "happy"):
    from core.detect import FaceBox
    from core.predict import FacePrediction

    probabilities = np.zeros(7, np.float32)
    probabilities[3] = 1.0
    return FacePrediction(box=FaceBox(x, y, side, side, 1.0, "haar"), crop_box=(x, y, x + side, y + side),
                          face=np.zeros((48, 48), np.uint8), probabilities=probabilities, label=label, score=0.86)


def _label_rows(drawn: np.ndarray, color, above: int) -> int:
    """Rows above row ``above`` (a face box's top) where the label band is drawn: 20 pixels of the emotion's colour."""
    mask = np.all(drawn[:above] == np.array(color, np.uint8), axis=2)
    return int((mask.sum(axis=1) >= 20).sum())


@pytest.mark.parametrize("side", [512, 1280, 2400])
def test_a_faces_label_grows_with_the_photo_not_the_face_and_stays_inside_it(side):
    """A photo is shown at the page's width: a label sized by a small face drew 4 px letters on a phone."""
    from core.predict import EMOTION_COLORS, ImagePrediction

    photo = np.full((side * 9 // 16, side, 3), 40, np.uint8)
    small = side // 20  # the same small face (5% of the width) in each photo
    left = draw_predictions(photo, ImagePrediction((_one_face(side // 4, side // 4, small),), photo.shape, "haar", 0, 0))
    # The band that holds the letters is 3% of the photo's width or more (the letters 2%: 8-9 px once
    # shown 360 px wide), however small the face.
    assert _label_rows(left, EMOTION_COLORS["happy"], above=side // 4) >= 0.03 * side
    # A face at the right edge keeps its whole label in the photo.
    edge = draw_predictions(photo, ImagePrediction((_one_face(side - small - 1, side // 4, small),), photo.shape, "haar",
                                                   0, 0))
    band = np.all(edge == np.array(EMOTION_COLORS["happy"], np.uint8), axis=2)
    rows = np.flatnonzero(band.sum(axis=1) >= 20)
    text_row = band[rows[len(rows) // 2]]
    assert np.flatnonzero(text_row)[0] < side - small - 1 - 0.1 * side  # moved left, not cut at the edge


def test_draw_predictions_draws_on_a_copy(three_face_photo, tiny_loaded_model):
    photo, _ = three_face_photo
    result = predict_image(photo, tiny_loaded_model, detector="haar")
    drawn = draw_predictions(photo, result)
    assert drawn.shape == photo.shape and drawn.dtype == np.uint8
    assert not np.array_equal(drawn, photo)
    x, y, w, h = result.faces[0].box.xywh
    assert not np.array_equal(drawn[y + h - 1, x:x + w], photo[y + h - 1, x:x + w])  # the box's bottom edge
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    assert draw_predictions(gray, result).shape == photo.shape


def test_predictions_table_has_one_row_per_face_and_notes(three_face_photo, tiny_loaded_model):
    photo, _ = three_face_photo
    result = predict_image(photo, tiny_loaded_model, detector="haar")
    blank = predict_image(np.zeros((50, 50), np.uint8), tiny_loaded_model)
    table = predictions_table([("three.jpg", result), ("blank.png", blank), ("bad.jpg", "not an image file")])
    assert list(table.columns[:9]) == ["file", "face", "x", "y", "w", "h", "detector_score", "emotion", "confidence"]
    assert list(table.columns[9:16]) == list(CLASS_NAMES)
    assert list(table["file"]) == ["three.jpg"] * 3 + ["blank.png", "bad.jpg"]
    assert list(table["face"][:3]) == [1, 2, 3]
    np.testing.assert_allclose(table.loc[:2, list(CLASS_NAMES)].sum(axis=1), 1.0, atol=1e-3)
    assert table["note"].iloc[3] == "no face found" and table["note"].iloc[4].startswith("error:")
    assert "three.jpg" in table.to_csv(index=False)


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def test_zip_reader_yields_images_then_reports_other_files_and_skips_os_metadata():
    # Walk s21: notes.txt vanished from the batch's report, against "every member is loaded or reported".
    jpeg = encode(np.zeros((8, 8, 3), np.uint8))
    data = make_zip({"b/face.jpg": jpeg, "a.png": encode(np.zeros((8, 8), np.uint8), "PNG"), "notes.txt": b"hi",
                     "__MACOSX/._face.jpg": b"junk", "b/.hidden.jpg": jpeg, "b/._face.jpg": b"junk",
                     "b/.DS_Store": b"junk", "b/": b"", ".trip/x.jpg": jpeg, ".trip/y/z.jpg": jpeg,
                     ".git/objects/p.png": jpeg, ".cache/notes.txt": b"hi"})
    members = list(iter_zip_images(data))
    # Probe s22: the hidden photo went without a word; review s22: photos in hidden folders were predicted.
    # OS metadata and a tool's own folders stay silent.
    assert [name for name, _ in members] == ["a.png", "b/face.jpg", ".trip/", "b/.hidden.jpg", "notes.txt"]
    assert isinstance(members[1][1], bytes) and members[4][1] == NOT_AN_IMAGE_NAME
    assert members[3][1] == "a hidden file (its name starts with '.'); not read"
    assert members[2][1] == "a hidden folder (its name starts with '.'); nothing in it was read"
    assert zip_image_summary(data)[0] == len(members)  # the Batch page's progress counts every row it will show


@pytest.mark.parametrize(
    "members, limits, message",
    [
        ({"../evil.jpg": b"x"}, {}, "unsafe zip"),
        ({"/etc/evil.jpg": b"x"}, {}, "unsafe zip"),
        ({"bomb.png": bytes(5 * 1024**2)}, {}, "zip bomb"),
        # Probe s11: members of at most 1 MiB each passed the per-member ratio (500 of them held 524 MB).
        ({f"p{i:03d}.png": bytes(1024**2) for i in range(20)}, {}, "zip bomb"),
        ({f"{i}.jpg": b"x" for i in range(4)}, {"max_images": 3}, "limit is 3"),
        ({"a.jpg": b"x" * 2000}, {"max_bytes": 1000}, "MiB"),
    ],
    ids=["dotdot", "absolute", "bomb", "bomb-of-small-members", "count", "size"],
)
def test_zip_reader_refuses_unsafe_archives(members, limits, message):
    with pytest.raises(ValueError, match=message):
        list(iter_zip_images(make_zip(members), **limits))


def test_zip_summary_counts_the_entries_without_inflating_them_and_refuses_what_the_reader_refuses():
    jpeg = encode(np.zeros((8, 8, 3), np.uint8))
    # The two images and notes.txt, which the reader names as not read; the bytes are the images'.
    assert zip_image_summary(make_zip({"a.jpg": jpeg, "b/c.jpg": jpeg, "notes.txt": b"hi"})) == (3, 2 * len(jpeg))
    with pytest.raises(ValueError, match="zip bomb"):
        zip_image_summary(make_zip({f"p{i:03d}.png": bytes(1024**2) for i in range(20)}))


def test_zip_reader_refuses_non_zip_bytes():
    with pytest.raises(ValueError, match="not a readable zip"):
        list(iter_zip_images(b"PK but not really"))


def test_majority_vote_smooths_a_label_stream():
    vote = MajorityVote(window=3)
    assert vote.current() is None
    assert vote.update("happy") == "happy"
    assert vote.update("sad") == "sad"  # tie: the most recent
    assert vote.update("happy") == "happy"
    assert vote.update("sad") == "sad"  # window now sad, happy, sad
    vote.reset()
    assert vote.current() is None


def test_default_model_path_is_the_bundled_file_when_present(monkeypatch, tmp_path):
    missing = tmp_path / "models" / "fer_studio_default.keras"
    monkeypatch.setattr(predict, "BUNDLED_MODEL", missing)
    assert predict.default_model_path() is None
    missing.parent.mkdir()
    missing.write_bytes(b"PK")
    assert predict.default_model_path() == missing


def test_available_models_lists_bundled_then_finished_runs(monkeypatch, tmp_path, tiny_model_path):
    from core import runs

    monkeypatch.setattr(predict, "BUNDLED_MODEL", tiny_model_path)
    run_dir = runs.new_run_dir("mini_xception", tmp_path)
    runs.write_json_atomic(run_dir / "config.json", {"config": {"model": "mini_xception", "epochs": 1}})
    runs.write_status(run_dir, "finished")
    (run_dir / "best.keras").write_bytes(tiny_model_path.read_bytes())
    unfinished = runs.new_run_dir("fer_vgg", tmp_path)
    runs.write_json_atomic(unfinished / "config.json", {"config": {"model": "fer_vgg", "epochs": 1}})
    runs.write_status(unfinished, "failed")
    choices = predict.available_models(tmp_path)
    assert [path for _, path in choices] == [tiny_model_path, run_dir / "best.keras"]
    assert choices[0][0].startswith("Bundled model")
    # A run trained with weight averaging also offers its averaged model, right after its best epoch.
    (run_dir / "averaged.keras").write_bytes(tiny_model_path.read_bytes())
    runs.write_json_atomic(run_dir / "averaged.json", {"epochs": [3, 8], "count": 6, "val_accuracy": 0.6512})
    choices = predict.available_models(tmp_path)
    assert [path for _, path in choices] == [tiny_model_path, run_dir / "best.keras", run_dir / "averaged.keras"]
    assert choices[2][0].endswith("averaged epochs 3-8 · val 65.1%")
    from dashboard.model_menu import model_menu

    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path))
    menu = model_menu()
    assert menu[f"{run_dir.name}-averaged"] == (f"Run {run_dir.name} · averaged epochs 3-8 · val 65.12%",
                                                str(run_dir / "averaged.keras"))
    assert menu[run_dir.name][1] == str(run_dir / "best.keras")
    # A record damaged by hand is left out instead of breaking the menus.
    runs.write_json_atomic(run_dir / "averaged.json", {"epochs": "3-8", "val_accuracy": 0.6512})
    assert [path for _, path in predict.available_models(tmp_path)] == [tiny_model_path, run_dir / "best.keras"]


def _zip_with_broken_member(count: int, broken: int) -> tuple[bytes, list[str]]:
    """A stored (uncompressed) zip of ``count`` PNGs whose member number ``broken`` (0-based) fails its CRC check."""
    names = [f"photo{index}.png" for index in range(count)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index, name in enumerate(names):
            archive.writestr(name, encode(np.full((16, 16), 30 * index, np.uint8), "PNG"))
    data = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(names[broken])
    payload_start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[payload_start + info.file_size // 2] ^= 0xFF
    return bytes(data), names


def test_a_corrupt_zip_member_is_reported_and_later_members_still_read():
    # Issue 16 item 5: member 3 of 5 with a broken CRC used to end the zip there.
    data, names = _zip_with_broken_member(5, broken=2)
    results = list(iter_zip_images(data))
    assert [name for name, _ in results] == names
    payloads = dict(results)
    assert isinstance(payloads["photo2.png"], str) and "could not be read" in payloads["photo2.png"]
    assert "CRC" in payloads["photo2.png"]
    for name in ("photo0.png", "photo1.png", "photo3.png", "photo4.png"):
        assert decode_photo(payloads[name]).shape == (16, 16)


def test_a_second_bundled_model_with_a_card_is_listed_after_the_default(monkeypatch, tmp_path, tiny_model_path):
    folder = tmp_path / "models"
    folder.mkdir()
    default = folder / "fer_studio_default.keras"
    default.write_bytes(tiny_model_path.read_bytes())
    member = folder / "fer_studio_b.keras"
    member.write_bytes(tiny_model_path.read_bytes())
    (folder / "stray.keras").write_bytes(tiny_model_path.read_bytes())  # no card: not a bundled model
    monkeypatch.setattr(predict, "BUNDLED_MODEL", default)
    assert predict.bundled_models() == [default]
    member.with_suffix(".json").write_text("{}")
    assert predict.bundled_models() == [default, member]
    assert [path for _, path in predict.available_models(tmp_path / "runs")] == [default, member]
