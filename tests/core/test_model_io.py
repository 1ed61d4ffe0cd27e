import zipfile

import numpy as np
import pytest

from core import model_io, models
from core.labels import CLASS_NAMES


@pytest.fixture(scope="module")
def small_model():
    return models.build("mini_xception")


def test_saved_model_keeps_class_names_and_loads_in_safe_mode(tmp_path, small_model):
    path = model_io.save_model(small_model, tmp_path / "m.keras", meta={"model": "mini_xception"})
    loaded = model_io.load_model(path)
    assert loaded.class_names == CLASS_NAMES
    assert loaded.meta["model"] == "mini_xception"
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    probabilities = model_io.predict_probabilities(loaded, faces, tta="flip")
    assert probabilities.shape == (3, 7)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_model_with_other_class_order_is_reordered(tmp_path, small_model):
    order = tuple(reversed(CLASS_NAMES))
    model_io.save_model(small_model, tmp_path / "rev.keras", class_names=order)
    model_io.save_model(small_model, tmp_path / "fer.keras")
    faces = np.random.default_rng(1).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    reversed_probs = model_io.predict_probabilities(model_io.load_model(tmp_path / "rev.keras"), faces)
    fer_probs = model_io.predict_probabilities(model_io.load_model(tmp_path / "fer.keras"), faces)
    # Same raw outputs; the reversed names must flip the columns back.
    assert np.allclose(reversed_probs, fer_probs[:, ::-1], atol=1e-5)


def test_export_drops_optimizer_state(tmp_path, small_model):
    small_model.compile(optimizer="adam", loss="categorical_crossentropy")
    small_model.train_on_batch(np.zeros((2, 48, 48, 1), "float32"), np.eye(7)[:2])
    full = model_io.save_model(small_model, tmp_path / "full.keras")
    lean = model_io.export_model(small_model, tmp_path / "lean.keras")
    assert lean.stat().st_size < full.stat().st_size
    assert model_io.load_model(lean).model.count_params() == small_model.count_params()


def test_not_a_model_gives_clear_errors(tmp_path):
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a Keras model"):
        model_io.load_model(text)
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("a.txt", "x")
    with pytest.raises(ValueError, match="no config.json"):
        model_io.load_model(other_zip)
    with pytest.raises(FileNotFoundError):
        model_io.load_model(tmp_path / "missing.keras")


def test_truncated_model_file_is_a_value_error(tmp_path, small_model):
    path = model_io.save_model(small_model, tmp_path / "m.keras")
    data = path.read_bytes()
    broken = tmp_path / "broken.keras"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        model_io.load_model(broken)


def test_save_rejects_wrong_extension_and_name_count(tmp_path, small_model):
    with pytest.raises(ValueError, match=".keras"):
        model_io.save_model(small_model, tmp_path / "m.h5")
    with pytest.raises(ValueError, match="class names"):
        model_io.save_model(small_model, tmp_path / "m.keras", class_names=("a", "b"))


def test_a_model_trained_in_mixed_precision_loads_for_float32_inference(tmp_path):
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 255, dtype="mixed_bfloat16")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", dtype="mixed_bfloat16")(x)
    x = keras.layers.GlobalAveragePooling2D(dtype="mixed_bfloat16")(x)
    outputs = keras.layers.Dense(7, activation="softmax", dtype="float32")(x)
    trained = keras.Model(inputs, outputs)
    path = model_io.save_model(trained, tmp_path / "bf16.keras")
    loaded = model_io.load_model(path)
    assert {layer.dtype_policy.name for layer in loaded.model.layers} == {"float32"}
    faces = np.random.default_rng(0).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    expected = np.asarray(trained.predict_on_batch(faces[..., None].astype("float32")))
    assert np.allclose(model_io.predict_probabilities(loaded, faces), expected, atol=0.02)
    exported = model_io.load_model(model_io.export_model(trained, tmp_path / "export.keras"))
    assert {layer.dtype_policy.name for layer in exported.model.layers} == {"float32"}
    resumable = model_io.load_model(path, compile=True)  # resuming training keeps the precision it was trained in
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in resumable.model.layers}
