"""core.export: each format exports and passes parity; cards; class order; bad inputs leave nothing behind."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import export
from core.labels import CLASS_NAMES
from core.light import card_path_for, load_onnx_model
from core.model_io import load_model, predict_probabilities, save_model

PERMUTED = ("neutral", "happy", "angry", "surprise", "fear", "sad", "disgust")


@pytest.fixture(scope="module")
def small_model_path(tmp_path_factory) -> Path:
    """A small conv net (Rescaling inside, as every model here), saved with FER2013 class names."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((48, 48, 1), name="face")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.Dense(16, activation="relu")(x))
    path = tmp_path_factory.mktemp("small") / "small.keras"
    return save_model(keras.Model(inputs, outputs), path, meta={"model": "small_test_net"})


def oracle_faces() -> tuple[np.ndarray, np.ndarray]:
    """One face per FER2013 class that conftest's oracle model classifies correctly."""
    faces = np.zeros((len(CLASS_NAMES), 48, 48), np.uint8)
    for index in range(len(CLASS_NAMES)):
        faces[index, index, [0, 47]] = 255
    return faces, np.arange(len(CLASS_NAMES))


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.mark.parametrize("format", ["onnx", "litert", "saved_model"])
def test_each_format_exports_with_a_card_and_passes_parity(small_model_path, tmp_path, format):
    result = export.export_model(small_model_path, format, out=tmp_path, data=None)
    assert result.artifact.exists() and result.artifact.parent == tmp_path
    assert result.artifact.is_dir() == (format == "saved_model")
    assert result.card_path == card_path_for(result.artifact) and result.card_path.is_file()
    card = json.loads(result.card_path.read_text())
    assert card["class_names"] == list(CLASS_NAMES) and card["format"] == format
    assert card["input"]["shape"] == [None, 48, 48, 1] and "0..255" in card["input"]["spec"]
    # The card travels: the source is named without this machine's folders (walk s9: it held /tmp/.../x.keras).
    assert card["source"]["file"] == small_model_path.name and card["source"]["architecture"] == "small_test_net"
    assert card["parity"]["passed"] and card["parity"]["faces"] == export.SYNTHETIC_FACES
    assert "centre_crop" not in card["input"]  # the whole face
    assert card["parity"]["max_abs_difference"] < export.FLOAT_TOLERANCE and card["parity"]["top1_agreement"] == 1.0
    assert len(card["usage"].splitlines()) == 6 and "cannot read face.jpg" in card["usage"]
    assert "1.03" in card["input"]["face"] and "0.96" in card["input"]["face"]  # how to frame a face elsewhere
    # The artifact's own runtime gives the .keras model's probabilities on new faces too.
    faces = export.synthetic_faces(8, seed=5)
    reference = predict_probabilities(load_model(small_model_path), faces)
    np.testing.assert_allclose(export.run_artifact(result.artifact, format, faces), reference, atol=1e-5)
    assert leftovers(tmp_path) == []


def test_dynamic_quantization_reports_its_accuracy_change_on_labelled_faces(oracle_model_factory, tmp_path, monkeypatch):
    source = oracle_model_factory(tmp_path / "oracle.keras")
    faces, labels = oracle_faces()
    monkeypatch.setattr(export, "load_parity_set", lambda data, limit=None: export.ParitySet(faces, labels, "oracle faces"))
    result = export.export_model(source, "onnx", quantize="dynamic", data="unused")
    assert result.artifact.name == "oracle_dynamic.onnx" and result.artifact.parent == tmp_path
    assert result.card["quantization"].startswith("dynamic")
    parity = result.card["parity"]
    assert parity["keras_accuracy"] == 1.0 and parity["accuracy_change"] == parity["export_accuracy"] - 1.0
    assert parity["criterion"].startswith("top-1 agreement") and parity["passed"]


def test_light_predictor_uses_the_cards_class_order(oracle_model_factory, tmp_path):
    # The weights put "happy" in column 1 etc.; only the card says so.
    source = oracle_model_factory(tmp_path / "permuted.keras", output_names=PERMUTED)
    result = export.export_model(source, "onnx", data=None)
    assert result.card["class_names"] == list(PERMUTED)
    light = load_onnx_model(result.artifact)
    assert light.class_names == PERMUTED
    faces, labels = oracle_faces()
    probabilities = predict_probabilities(light, faces)  # FER2013 column order
    assert list(probabilities.argmax(axis=1)) == list(labels)
    # A card that lies about the order changes the answer: the card is what is read.
    card = json.loads(result.card_path.read_text())
    card["class_names"] = list(CLASS_NAMES)
    result.card_path.write_text(json.dumps(card))
    assert list(predict_probabilities(load_onnx_model(result.artifact), faces).argmax(axis=1)) != list(labels)


def test_onnx_file_keeps_its_class_names_without_the_card(oracle_model_factory, tmp_path):
    source = oracle_model_factory(tmp_path / "permuted.keras", output_names=PERMUTED)
    result = export.export_model(source, "onnx", data=None)
    result.card_path.unlink()
    assert load_onnx_model(result.artifact).class_names == PERMUTED


@pytest.fixture(scope="module")
def small_onnx(small_model_path, tmp_path_factory) -> Path:
    """``small_model_path`` exported to ONNX once, with its card; tests copy it before editing."""
    return export.export_model(small_model_path, "onnx", out=tmp_path_factory.mktemp("onnx"), data=None).artifact


@pytest.mark.parametrize("edit, expected", [
    ({"class_names": ["happy"] * 7}, "repeated: happy"),  # probe s22: gave happy 1.000 and exited 0
    ({"class_names": list("abcdefg")}, "not FER2013's"),  # gave seven zeros, labelled angry
    ({"class_names": "abcdefg"}, "non-empty list"),
    ({"class_names": list(range(7))}, "must be strings"),  # an AttributeError traceback
    ({"input": {"centre_crop": ["a", "b"]}}, "centre_crop"),  # every photo: "invalid literal for int()"
    ({"input": {"centre_crop": [-5, 0]}}, "centre_crop"),  # changed ten-crop's answer without a word
    ({"input": {"centre_crop": [float("inf"), 40]}}, "centre_crop"),  # review s22: an OverflowError traceback
    ({"input": {"centre_crop": [float("nan"), 40]}}, "centre_crop"),
    ({"class_names": [], "input": {"centre_crop": [-5, 0]}}, "centre_crop"),  # no names: read from the file itself
    ({"input": "48x48"}, "input entry"),
])
def test_an_onnx_card_that_misdescribes_the_model_is_refused(small_onnx, tmp_path, edit, expected):
    artifact = Path(shutil.copy(small_onnx, tmp_path / "edited.onnx"))
    card = json.loads(card_path_for(small_onnx).read_text())
    card.update(edit)
    card_path_for(artifact).write_text(json.dumps(card))
    with pytest.raises(ValueError, match=expected) as raised:
        load_onnx_model(artifact)
    assert "edited.onnx.json" in str(raised.value)  # names the file to fix


def test_an_onnx_card_that_is_not_an_object_is_refused(small_onnx, tmp_path):
    artifact = Path(shutil.copy(small_onnx, tmp_path / "listed.onnx"))
    card_path_for(artifact).write_text("[1, 2, 3]")  # probe s22: AttributeError traceback
    with pytest.raises(ValueError, match="listed.onnx.json is not a JSON object"):
        load_onnx_model(artifact)


def test_the_genuine_onnx_card_still_loads(small_onnx):
    assert load_onnx_model(small_onnx).class_names == CLASS_NAMES


@pytest.mark.parametrize("window", [[-5, 0], ["a", "b"], [40], [40, 48], [True, 40]])
def test_a_keras_card_with_a_bad_centre_window_is_refused(small_model_path, tmp_path, window):
    path = save_model(load_model(small_model_path).model, tmp_path / "windowed.keras",
                      meta={"model": "small_test_net", "input": {"centre_crop": window}})
    with pytest.raises(ValueError, match="windowed.keras: input.centre_crop must be"):
        load_model(path)


def test_card_usage_snippet_runs_as_plain_python(small_model_path, tmp_path):
    result = export.export_model(small_model_path, "onnx", out=tmp_path / "model.onnx", data=None)
    cv2.imwrite(str(tmp_path / "face.jpg"), export.synthetic_faces(1)[0])
    expected = CLASS_NAMES[int(predict_probabilities(load_model(small_model_path),
                                                     cv2.imread(str(tmp_path / "face.jpg"), cv2.IMREAD_GRAYSCALE)[None]).argmax())]
    import contextlib
    import io

    printed = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(printed):
            exec(result.card["usage"], {})
    finally:
        os.chdir(cwd)
    assert printed.getvalue().strip() == expected


def test_an_ensemble_exports_as_one_averaging_artifact(oracle_model_factory, small_model_path, tmp_path):
    permuted = oracle_model_factory(tmp_path / "permuted.keras", output_names=PERMUTED)
    result = export.export_model([small_model_path, permuted], "onnx", out=tmp_path / "pair.onnx", data=None)
    assert result.card["class_names"] == list(CLASS_NAMES) and len(result.card["source"]["ensemble"]) == 2
    faces = export.synthetic_faces(6, seed=3)
    expected = (predict_probabilities(load_model(small_model_path), faces) + predict_probabilities(load_model(permuted), faces)) / 2
    np.testing.assert_allclose(predict_probabilities(load_onnx_model(result.artifact), faces), expected, atol=1e-5)


# ---------------------------------------------------------------- bad input


def test_a_file_that_is_not_a_model_is_refused_and_nothing_is_written(tmp_path):
    fake = tmp_path / "notes.keras"
    fake.write_text("not a model")
    with pytest.raises(ValueError, match="not a Keras model"):
        export.export_model(fake, "onnx", data=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.keras"]
    with pytest.raises(FileNotFoundError):
        export.export_model(tmp_path / "missing.keras", "onnx", data=None)


def test_unsupported_format_and_quantisation_are_refused(small_model_path, tmp_path):
    with pytest.raises(ValueError, match="known formats: onnx, litert, saved_model"):
        export.export_model(small_model_path, "coreml", out=tmp_path, data=None)
    with pytest.raises(ValueError, match="SavedModel keeps float32"):
        export.export_model(small_model_path, "saved_model", out=tmp_path, quantize="dynamic", data=None)
    with pytest.raises(ValueError, match=r"litert export is a \.tflite file"):
        export.export_model(small_model_path, "litert", out=tmp_path / "model.onnx", data=None)
    assert list(tmp_path.iterdir()) == []


def test_a_model_the_export_cannot_express_is_refused(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs)))
    source = save_model(model, tmp_path / "rgb32.keras")
    # Refused when it loads (core.model_io.check_face_input), before any export file is started.
    with pytest.raises(ValueError, match=r"rgb32.keras takes inputs of shape \(None, 32, 32, 3\).*48x48 grayscale faces"):
        export.export_model(source, "onnx", data=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb32.keras"]


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_a_model_with_an_op_the_format_lacks_is_refused(tmp_path, format):
    import keras

    @keras.saving.register_keras_serializable(package="test_export")
    class InverseErf(keras.layers.Layer):  # Erfinv: no ONNX operator, no LiteRT builtin
        def call(self, x):
            return keras.ops.erfinv(keras.ops.clip(x, -0.5, 0.5))

    inputs = keras.Input((48, 48, 1), name="face")
    x = InverseErf()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    source = save_model(keras.Model(inputs, outputs), tmp_path / "erfinv.keras")
    with pytest.raises(ValueError, match=f"cannot be expressed as {format}"):
        export.export_model(source, format, data=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erfinv.keras"]


def test_a_failed_parity_check_removes_the_artifact(small_model_path, tmp_path, monkeypatch):
    real = export.run_artifact
    monkeypatch.setattr(export, "run_artifact", lambda path, format, faces: real(path, format, faces)[:, ::-1])
    with pytest.raises(ValueError, match="disagrees with the .keras model"):
        export.export_model(small_model_path, "onnx", out=tmp_path, data=None)
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_that_cannot_be_written_gives_a_clear_message(small_model_path, tmp_path, monkeypatch):
    # Tests run as root in CI, where chmod cannot make a folder read-only: fail the final rename instead.
    def refuse(source, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(export.os, "replace", refuse)
    with pytest.raises(ValueError, match="cannot write the export to .*Permission denied; choose another --out"):
        export.export_model(small_model_path, "onnx", out=tmp_path, data=None)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="cannot write to"):
        export.export_model(small_model_path, "onnx", out=tmp_path / "file" / "model.onnx", data=None)


def test_artifact_paths_default_beside_the_model_and_accept_folders(tmp_path):
    source = tmp_path / "run" / "best.keras"
    assert export.resolve_artifact_path(None, source, "onnx") == tmp_path / "run" / "best.onnx"
    assert export.resolve_artifact_path(None, source, "litert", "dynamic") == tmp_path / "run" / "best_dynamic.tflite"
    assert export.resolve_artifact_path(None, source, "saved_model") == tmp_path / "run" / "best_saved_model"
    assert export.resolve_artifact_path(tmp_path / "new", source, "onnx") == tmp_path / "new" / "best.onnx"
    assert export.resolve_artifact_path(tmp_path, source, "saved_model") == tmp_path / "best_saved_model"
    assert export.resolve_artifact_path(tmp_path / "m.tflite", source, "litert") == tmp_path / "m.tflite"
    with pytest.raises(ValueError, match="looks like a file name"):
        export.resolve_artifact_path(tmp_path / "m.onnx", source, "saved_model")
    # A SavedModel --out that is not one yet is a folder to put it in, whether it exists or not (s21: a new
    # exports/ became the SavedModel itself, its card exports.json landing beside it).
    assert export.resolve_artifact_path(tmp_path / "exports", source, "saved_model") == tmp_path / "exports" / "best_saved_model"
    assert export.resolve_artifact_path(tmp_path / "mine_saved_model", source, "saved_model") == tmp_path / "mine_saved_model"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "saved_model.pb").write_bytes(b"")
    assert export.resolve_artifact_path(tmp_path / "old", source, "saved_model") == tmp_path / "old"
    # An ensemble is not named like its first member's own export.
    pair = [source, tmp_path / "run" / "other.keras"]
    assert export.resolve_artifact_path(None, pair, "onnx") == tmp_path / "run" / "best_ensemble2.onnx"
    assert export.resolve_artifact_path(tmp_path, pair, "onnx", "dynamic") == tmp_path / "best_ensemble2_dynamic.onnx"


def test_an_export_never_replaces_what_is_not_an_earlier_export(small_model_path, tmp_path):
    """s21: ``--out models/fer_studio_swa --overwrite`` (a SavedModel) replaced the bundled model's own card, and a
    SavedModel folder's other files were deleted with it."""
    bundled_card = tmp_path / "mine.json"
    bundled_card.write_text(json.dumps({"name": "mine", "evaluation": {}}))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "saved_model.pb").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="mine.json exists and is not an export's card"):
        export.export_model(small_model_path, "saved_model", out=tmp_path / "mine", data=None)
    assert json.loads(bundled_card.read_text()) == {"name": "mine", "evaluation": {}}
    folder = tmp_path / "folder_saved_model"
    first = export.export_model(small_model_path, "saved_model", out=folder, data=None)
    again = export.export_model(small_model_path, "saved_model", out=folder, data=None)  # an earlier export: replaced
    assert again.artifact == first.artifact == folder and export.is_saved_model(folder)
    (folder / "NOTES.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"holds a SavedModel and other files \(NOTES.txt\)"):
        export.export_model(small_model_path, "saved_model", out=folder, data=None)
    assert (folder / "NOTES.txt").read_text() == "mine" and export.is_saved_model(folder)
    # A folder of the user's named like a SavedModel is a folder to put the export in, never the export.
    mine = tmp_path / "mine_saved_model"
    mine.mkdir()
    (mine / "data.csv").write_text("x")
    assert export.resolve_artifact_path(mine, small_model_path, "saved_model") == mine / f"{small_model_path.stem}_saved_model"
    # ... and the default target, when a folder of the user's holds its name, is refused.
    beside = small_model_path.parent / f"{small_model_path.stem}_saved_model"
    beside.mkdir(exist_ok=True)
    (beside / "notes.txt").write_text("x")
    try:
        with pytest.raises(FileExistsError, match="holds files but no SavedModel"):
            export.export_model(small_model_path, "saved_model", data=None)
        assert (beside / "notes.txt").read_text() == "x"
    finally:
        shutil.rmtree(beside)


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_a_model_trained_on_a_centre_crop_exports_with_its_crop(tmp_path, format):
    from core.models import build

    model = build("fer_vgg", width=4, dense_units=8, crop=40)
    path = save_model(model, tmp_path / "crop.keras", meta={"model": "fer_vgg"})
    result = export.export_model(path, format, out=tmp_path, data=None)
    card = json.loads(result.card_path.read_text())
    assert card["parity"]["passed"] and card["input"]["shape"] == [None, 48, 48, 1]
    assert card["input"]["centre_crop"] == [40, 40]
    faces = export.synthetic_faces(6, seed=7)
    bordered = faces.copy()
    bordered[:, :4] = 255  # outside the centre 40x40 window: the artifact ignores it like the model does
    np.testing.assert_allclose(export.run_artifact(result.artifact, format, bordered),
                               export.run_artifact(result.artifact, format, faces), atol=1e-6)
    if format == "onnx":  # the light predictor reads the window from the card: the same ten crops as the .keras file
        expected = predict_probabilities(load_model(path), faces, tta="crop10")
        np.testing.assert_allclose(predict_probabilities(load_onnx_model(result.artifact), faces, tta="crop10"),
                                   expected, atol=1e-5)
