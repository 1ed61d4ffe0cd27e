"""``python -m core evaluate``: JSON and text reports, split handling, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.__main__ import main
from core.labels import CLASS_NAMES


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))


def evaluate_json(capsys, *args: str) -> dict:
    assert main(["evaluate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_report_is_consistent_on_a_tiny_model(tiny_model_path, tiny_fer_folder, capsys):
    report = evaluate_json(capsys, "--model", str(tiny_model_path), "--data", str(tiny_fer_folder))
    assert report["model"] == str(tiny_model_path)
    assert report["class_names"] == list(CLASS_NAMES)
    assert report["tta"] == "none" and len(report["data_hash"]) == 64
    assert list(report["splits"]) == ["PublicTest"]  # Training is skipped unless asked for
    split = report["splits"]["PublicTest"]
    matrix = np.array(split["confusion_matrix"])
    assert matrix.shape == (7, 7) and matrix.sum() == split["n"] == 14
    assert split["accuracy"] == pytest.approx(np.trace(matrix) / 14)
    assert list(split["per_class"]) == list(CLASS_NAMES)
    assert [row["support"] for row in split["per_class"].values()] == matrix.sum(axis=1).tolist() == [2] * 7


def test_public_and_private_test_are_reported_separately(oracle_model_factory, oracle_fer_folder, tmp_path, capsys):
    model = oracle_model_factory(tmp_path / "oracle.keras")
    report = evaluate_json(capsys, "--model", str(model), "--data", str(oracle_fer_folder), "--tta")
    assert report["tta"] == "flip"  # a bare --tta is flip
    assert {name: split["n"] for name, split in report["splits"].items()} == {"PublicTest": 9, "PrivateTest": 6}
    assert all(split["accuracy"] == 1.0 for split in report["splits"].values())
    private = report["splits"]["PrivateTest"]["per_class"]
    assert (private["fear"]["support"], private["angry"]["support"]) == (3, 0)
    crops = evaluate_json(capsys, "--model", str(model), "--data", str(oracle_fer_folder), "--ten-crop")
    assert crops["tta"] == "crop10" and all(split["tta"] == "crop10" for split in crops["splits"].values())
    only = evaluate_json(capsys, "--model", str(model), "--data", str(oracle_fer_folder), "--split", "Training")
    assert list(only["splits"]) == ["Training"] and only["splits"]["Training"]["n"] == 4


def test_class_folder_set_and_a_model_saved_in_another_class_order(oracle_model_factory, oracle_faces_writer, tmp_path, capsys):
    oracle_faces_writer(tmp_path / "other_dataset", {"happy": 3, "surprise": 2, "disgust": 2})
    order = ("neutral", "happy", "surprise", "angry", "sad", "disgust", "fear")
    model = oracle_model_factory(tmp_path / "permuted.keras", order)
    report = evaluate_json(capsys, "--model", str(model), "--data", str(tmp_path / "other_dataset"))
    assert report["class_names"] == list(order)
    result = report["splits"]["all"]
    assert result["n"] == 7 and result["accuracy"] == 1.0
    assert result["macro_f1"] == 1.0  # absent classes do not count


def test_text_report_has_the_tables(oracle_model_factory, oracle_fer_folder, tmp_path, capsys):
    model = oracle_model_factory(tmp_path / "oracle.keras")
    assert main(["evaluate", "--model", str(model), "--data", str(oracle_fer_folder), "--split", "PublicTest"]) == 0
    text = capsys.readouterr().out
    assert "== PublicTest: n=9  accuracy=1.0000  macro-F1=1.0000" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.split()}
    assert rows["class"] == ["precision", "recall", "f1", "support"]
    assert rows["confusion"] == ["matrix", "(rows:", "true,", "columns:", "predicted)"]
    assert "PrivateTest" not in text


def test_records_that_could_not_be_loaded_are_reported(oracle_model_factory, oracle_fer_folder, tmp_path, capsys):
    model = oracle_model_factory(tmp_path / "oracle.keras")
    (oracle_fer_folder / "test" / "happy" / "PublicTest_broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert main(["evaluate", "--model", str(model), "--data", str(oracle_fer_folder), "--split", "PublicTest"]) == 0
    assert "1 record could not be loaded, see `python -m core inspect`" in capsys.readouterr().out
    report = evaluate_json(capsys, "--model", str(model), "--data", str(oracle_fer_folder), "--no-cache")
    assert [record["where"] for record in report["skipped_records"]] == ["test/happy/PublicTest_broken.jpg"]


@pytest.mark.parametrize("content, message", [
    (b"this is not a model", "not a Keras model"),
    (b"PK\x03\x04 truncated zip", "bad.keras is a damaged or truncated .keras file"),
])
def test_a_non_model_file_exits_2_with_a_message(content, message, tiny_fer_folder, tmp_path, capsys):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(content)
    assert main(["evaluate", "--model", str(bad), "--data", str(tiny_fer_folder)]) == 2
    assert message in capsys.readouterr().err


def test_a_corrupted_model_exits_2(tiny_model_path, tiny_fer_folder, tmp_path, capsys):
    data = tiny_model_path.read_bytes()
    broken = tmp_path / "broken.keras"
    broken.write_bytes(data[: len(data) // 2])
    assert main(["evaluate", "--model", str(broken), "--data", str(tiny_fer_folder)]) == 2
    assert "error:" in capsys.readouterr().err


def test_missing_model_and_missing_bundled_model_exit_2(tiny_fer_folder, tmp_path, capsys, monkeypatch):
    assert main(["evaluate", "--model", str(tmp_path / "missing.keras"), "--data", str(tiny_fer_folder)]) == 2
    assert "no model file" in capsys.readouterr().err
    monkeypatch.setattr("core.predict.default_model_path", lambda: None)
    assert main(["evaluate", "--data", str(tiny_fer_folder)]) == 2
    assert "no bundled model" in capsys.readouterr().err


def test_a_split_that_is_not_there_exits_2(tiny_model_path, tiny_fer_folder, capsys):
    assert main(["evaluate", "--model", str(tiny_model_path), "--data", str(tiny_fer_folder), "--split", "PrivateTest"]) == 2
    assert "present: Training, PublicTest" in capsys.readouterr().err


def test_detect_faces_crops_photos_and_lists_those_without_a_face(tiny_model_path, three_face_photo, tmp_path, capsys):
    import cv2

    photo, _ = three_face_photo
    for name in ("happy", "neutral"):
        (tmp_path / "photos" / name).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "photos" / "happy" / "group.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "photos" / "neutral" / "wall.png"), np.full((120, 160), 90, np.uint8))
    report = evaluate_json(capsys, "--model", str(tiny_model_path), "--data", str(tmp_path / "photos"),
                           "--detect-faces", "--detector", "haar")
    assert report["face_detection"] == {"detector": "haar", "images_without_face": ["neutral/wall.png"]}
    assert report["splits"]["all"]["n"] == 2
    assert main(["evaluate", "--model", str(tiny_model_path), "--data", str(tmp_path / "photos"), "--detect-faces",
                 "--detector", "haar"]) == 0
    assert "no face found in 1 of 2 photos (used whole): neutral/wall.png" in capsys.readouterr().out


def test_options_that_would_be_ignored_are_refused(capsys):
    # Probe s19: --tta --ten-crop ran ten-crop without a word, and --detector without --detect-faces was ignored.
    with pytest.raises(SystemExit) as refused:
        main(["evaluate", "--tta", "--ten-crop"])
    assert refused.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert main(["evaluate", "--detector", "haar", "--data", "nowhere"]) == 2
    assert "--detector chooses the face detector of --detect-faces" in capsys.readouterr().err
