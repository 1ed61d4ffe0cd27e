import json
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


@pytest.mark.parametrize("member, damage", [("config.json", lambda data: b"{bad" + data[4:]),
                                            ("model.weights.h5", lambda data: data[: len(data) // 3])])
def test_a_garbled_part_inside_a_model_file_is_named_as_damage(tmp_path, small_model, member, damage):
    # Probe s18: "could not load model x.keras: OSError: Unable to synchronously open file (truncated file: eof = ...)"
    # and "JSONDecodeError: Expecting property name ...": raw library text for a file that is simply damaged.
    path = model_io.save_model(small_model, tmp_path / "m.keras")
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, damage(data) if info.filename == member else data)
    with pytest.raises(ValueError, match=r"^broken\.keras is a damaged \.keras file: a part inside it cannot be read "
                                         r"\(.*\); copy or download it again$"):
        model_io.load_model(broken)


def test_save_rejects_wrong_extension_and_name_count(tmp_path, small_model):
    with pytest.raises(ValueError, match=".keras"):
        model_io.save_model(small_model, tmp_path / "m.h5")
    with pytest.raises(ValueError, match="class names"):
        model_io.save_model(small_model, tmp_path / "m.keras", class_names=("a", "b"))


@pytest.fixture
def float32_global_policy():
    """The default float32 global policy during the test (an in-process training run may have set mixed_bfloat16)."""
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy(before)


def test_a_model_trained_in_mixed_precision_loads_for_float32_inference(tmp_path, float32_global_policy):
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


# ---------------------------------------------------------------- models that do not fit (issue 16, item 9)


def _dense_model(outputs: int, activation: str | None = "softmax"):
    import keras

    inputs = keras.Input((48, 48, 1))
    hidden = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    return keras.Model(inputs, keras.layers.Dense(outputs, activation=activation, name="head")(hidden))


def _rewrite_card(path, payload: bytes):
    """Replace fer_studio.json inside a saved .keras file."""
    rewritten = path.with_name("rewritten.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for item in source.infolist():
            if item.filename != model_io.META_MEMBER:
                target.writestr(item, source.read(item.filename))
        target.writestr(model_io.META_MEMBER, payload)
    rewritten.replace(path)
    return path


@pytest.mark.parametrize("names, match", [
    (("angry", "disgust", "fear", "happy", "sad", "surprise", "contempt"), "not FER2013's \\(contempt; known: angry"),
    (("happy",) * 7, "repeated: happy"),
    (("Anger", "disgust", "fear", "joy", "sad", "surprise", "happy"), "repeated: happy"),
])
def test_class_names_that_are_not_fer2013_are_refused_naming_the_file(tmp_path, names, match):
    # Before: unknown names predicted "angry" with every probability 0.0; seven "happy" gave happy = 1.0.
    path = model_io.save_model(_dense_model(7), tmp_path / "odd.keras", class_names=names)
    for load in (model_io.load_model, model_io.read_model_meta):
        with pytest.raises(ValueError, match=match) as error:
            load(path)
        assert "odd.keras" in str(error.value)


def test_more_outputs_than_class_names_is_refused(tmp_path):
    path = model_io.save_model(_dense_model(7), tmp_path / "seven.keras")
    _rewrite_card(path, json.dumps({"class_names": ["angry", "happy", "sad"]}).encode())
    with pytest.raises(ValueError, match="seven.keras has 7 outputs but its card lists 3 class names"):
        model_io.load_model(path)


def test_a_model_for_other_inputs_or_saved_unbuilt_is_refused_at_load(tmp_path):
    # Before: an RGB model failed on every image with Keras' call error; an unbuilt one raised AttributeError.
    import keras

    for shape in ((48, 48, 3), (64, 64, 1)):
        inputs = keras.Input(shape=shape)
        model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs)))
        path = model_io.save_model(model, tmp_path / "other.keras")
        with pytest.raises(ValueError, match=rf"other.keras takes inputs of shape \(None, {shape[0]}, {shape[1]}, {shape[2]}\);"
                                             r".*48x48 grayscale faces"):
            model_io.load_model(path)
    unbuilt = keras.Sequential([keras.layers.Dense(7, activation="softmax")])
    unbuilt.save(tmp_path / "unbuilt.keras")
    with pytest.raises(ValueError, match="unbuilt.keras was saved before it was built"):
        model_io.load_model(tmp_path / "unbuilt.keras")


def test_a_model_without_card_whose_outputs_are_not_seven_says_so(tmp_path):
    import keras

    inputs = keras.Input(shape=(48, 48, 1))
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs)))
    model.save(tmp_path / "five.keras")  # plain Keras: no FER Studio card
    with pytest.raises(ValueError, match="five.keras has 5 outputs but it has no FER Studio card, so FER2013's 7 classes"):
        model_io.load_model(tmp_path / "five.keras")


def test_a_model_with_two_outputs_says_so(tmp_path):
    # Probe s19: "twoout.keras has None outputs but it has no FER Studio card".
    import keras

    inputs = keras.Input(shape=(48, 48, 1))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(7, activation="softmax")(flat), keras.layers.Dense(1)(flat)])
    model.save(tmp_path / "twoout.keras")
    with pytest.raises(ValueError, match=r"twoout.keras has 2 outputs; FER Studio needs one \(batch, classes\) output"):
        model_io.load_model(tmp_path / "twoout.keras")


def test_a_lambda_layer_onnx_h5_or_folder_gets_a_message_that_says_what_to_do(tmp_path):
    import keras

    inputs = keras.Input(shape=(48, 48, 1))
    scaled = keras.layers.Lambda(lambda x: x / 255.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(scaled)))
    path = model_io.save_model(model, tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="lambda.keras holds Python code .* never loads") as error:
        model_io.load_model(path)
    assert "safe_mode" not in str(error.value)  # Keras' advice to turn safe mode off is not passed on
    (tmp_path / "export.onnx").write_bytes(b"\x08\x07 onnx")
    with pytest.raises(ValueError, match="export.onnx is not a Keras model.*runs with `python -m core predict` only"):
        model_io.load_model(tmp_path / "export.onnx")
    (tmp_path / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="old.h5 is not a Keras model.*save it as .keras"):
        model_io.load_model(tmp_path / "old.h5")
    with pytest.raises(ValueError, match="is a folder; give a model file inside it"):
        model_io.load_model(tmp_path)
    # Probe s11: a .keras cut short was "not a Keras model", which sent the user looking for the wrong cause.
    (tmp_path / "cut.keras").write_bytes(path.read_bytes()[:20_000])
    with pytest.raises(ValueError, match="cut.keras is a damaged or truncated .keras file"):
        model_io.load_model(tmp_path / "cut.keras")


def test_a_model_without_softmax_is_refused(tmp_path):
    # Before: "probabilities" of 127.3 and -16.7.
    path = model_io.save_model(_dense_model(7, activation=None), tmp_path / "logits.keras")
    with pytest.raises(ValueError, match=r"logits.keras does not output probabilities.*activation linear.*softmax"):
        model_io.load_model(path)
    sigmoid = model_io.save_model(_dense_model(7, activation="sigmoid"), tmp_path / "sigmoid.keras")
    with pytest.raises(ValueError, match="sigmoid.keras does not output probabilities"):
        model_io.load_model(sigmoid)


@pytest.mark.parametrize("payload, match", [
    (json.dumps({"model": "x"}).encode(), "fer_studio.json inside card.keras has no class_names"),
    (b"{not json", "fer_studio.json inside card.keras is not valid JSON"),
    (json.dumps(["angry"]).encode(), "inside card.keras is not a JSON object"),
    (json.dumps({"class_names": "angry"}).encode(), "card.keras: class_names must be a non-empty list"),
    (json.dumps({"class_names": [1, 2, 3, 4, 5, 6, 7]}).encode(), "card.keras: class_names must be strings"),
])
def test_a_bad_card_is_a_clear_error_naming_the_file(tmp_path, payload, match):
    # Before: a card without class_names crashed with KeyError; a malformed one did not name the file.
    path = _rewrite_card(model_io.save_model(_dense_model(7), tmp_path / "card.keras"), payload)
    for load in (model_io.load_model, model_io.read_model_meta):
        with pytest.raises(ValueError, match=match):
            load(path)


def test_fer2013_names_in_another_order_or_spelling_load_and_are_reordered(tmp_path):
    names = ("Neutral", "surprised", "sadness", "happiness", "fearful", "disgusted", "anger")
    path = model_io.save_model(_dense_model(7), tmp_path / "reordered.keras", class_names=names)
    loaded = model_io.load_model(path)
    assert loaded.class_names == names
    faces = np.random.default_rng(2).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    raw = loaded.model.predict_on_batch(faces[..., None].astype("float32"))
    assert np.allclose(model_io.predict_probabilities(loaded, faces), np.asarray(raw)[:, ::-1], atol=1e-6)


def test_a_model_naming_a_function_outside_keras_is_refused_in_one_line(tmp_path):
    # Security probe s9: a Dense activation {"module": "os", "config": "system"} was refused by Keras, but with
    # 3 KB of its deserialisation error and the whole layer config.
    import json
    import zipfile

    import keras

    inputs = keras.Input(shape=(48, 48, 1))
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs)))
    path = model_io.save_model(model, tmp_path / "plain.keras")
    assert model_io.foreign_code(path) is None
    hostile = tmp_path / "os_system.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(hostile, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "config.json":
                text = data.decode()
                assert text.count('"activation": "softmax"') == 1
                data = text.replace('"activation": "softmax"', json.dumps(
                    {"activation": {"module": "os", "class_name": "function", "config": "system",
                                    "registered_name": "function"}})[1:-1]).encode()
            target.writestr(info, data)
    assert model_io.foreign_code(hostile) == "os.system"
    with pytest.raises(ValueError) as error:
        model_io.load_model(hostile)
    message = str(error.value)
    assert message.startswith("os_system.keras refers to code outside Keras (os.system), which FER Studio never loads")
    assert len(message) < 300


def test_keras_errors_are_cut_to_their_reason():
    from core.model_io import _keras_reason

    error = TypeError("<class 'Functional'> could not be deserialized properly. config={'a': 1}.\n\n"
                      "Exception encountered: Could not locate function 'system'. Make sure custom classes are "
                      "decorated. Full object config: {'module': 'os', " + "x" * 3000 + "}")
    reason = _keras_reason(error)
    assert reason.startswith("Could not locate function 'system'.") and "Full object config" not in reason
    assert len(reason) <= 300


@pytest.mark.parametrize("name", ["model.h5", "noext_model", "best.zip"])
def test_a_keras_model_under_another_name_is_told_to_rename_it(tmp_path, small_model, name):
    # Probe s19: model.h5 (a .keras zip) read as "damaged", a name without extension as Keras' cut-off advice.
    model_io.save_model(small_model, tmp_path / "real.keras")
    (tmp_path / "real.keras").rename(tmp_path / name)
    stem = name.split(".")[0]
    with pytest.raises(ValueError, match=f"{name} is a .keras model under another name, .* rename it to {stem}.keras"):
        model_io.load_model(tmp_path / name)


def test_float16_storage_halves_the_kernels_and_the_model_still_computes_in_float32(tiny_model_path, tmp_path):
    import zipfile

    from core.model_io import FLOAT16_MIN_ARRAY, WEIGHTS_MEMBER, load_model, predict_probabilities, store_weights_as_float16

    path = tmp_path / "half.keras"
    path.write_bytes(tiny_model_path.read_bytes())
    counts = store_weights_as_float16(path)
    assert counts["arrays"] > 0 and counts["values"] >= counts["arrays"] * FLOAT16_MIN_ARRAY and counts["kept_float32"] > 0
    assert path.stat().st_size < tiny_model_path.stat().st_size - counts["values"] * 1.5  # 2 bytes saved per value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half.keras"]  # nothing left beside it
    with zipfile.ZipFile(path) as half, zipfile.ZipFile(tiny_model_path) as full:
        assert half.namelist() == full.namelist()
        assert all(half.read(name) == full.read(name) for name in full.namelist() if name != WEIGHTS_MEMBER)
    before, after = load_model(tiny_model_path), load_model(path)
    assert after.class_names == before.class_names and after.meta == before.meta
    for got, want in zip(after.model.weights, before.model.weights):
        assert got.dtype == "float32"
        value, reference = np.asarray(got), np.asarray(want)
        if reference.size < FLOAT16_MIN_ARRAY:
            assert (value == reference).all()  # biases and batch-norm statistics untouched
        else:
            assert (value == reference.astype(np.float16).astype(np.float32)).all()
    faces = np.random.default_rng(0).integers(0, 256, (64, 48, 48), dtype=np.uint8)
    assert np.abs(predict_probabilities(after, faces) - predict_probabilities(before, faces)).max() < 1e-3


def test_float16_storage_refuses_what_it_cannot_store_and_leaves_the_file(tiny_model_path, tmp_path):
    import keras

    from core.model_io import save_model, store_weights_as_float16

    text = tmp_path / "notes.keras"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="not a .keras file"):
        store_weights_as_float16(text)
    assert text.read_text() == "not a zip"
    inputs = keras.Input((48, 48, 1))
    huge = keras.Sequential([inputs, keras.layers.Flatten(), keras.layers.Dense(7, activation="softmax")])
    kernel, bias = huge.layers[-1].get_weights()
    huge.layers[-1].set_weights([np.full_like(kernel, 1e5), bias])
    path = save_model(huge, tmp_path / "huge.keras")
    original = path.read_bytes()
    with pytest.raises(ValueError, match="beyond float16's range"):
        store_weights_as_float16(path)
    assert path.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == ["huge.keras", "notes.keras"]
