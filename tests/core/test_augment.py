"""Tests for core.augment: config round trips, both engines, training batches."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.augment import (
    AUGMENT_PRESETS,
    AugmentConfig,
    augment_batch,
    make_augmentation_layers,
    make_image_data_generator,
    make_training_batches,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FER2013 = REPO_ROOT.parent / "shared" / "fer2013"
ENGINES = ("idg", "layers")
NOTHING = dict(width_shift=0.0, height_shift=0.0, horizontal_flip=False, zoom=0.0, rotation=0.0, brightness=0.0, erasing=0.0)


def only(engine: str, **settings) -> AugmentConfig:
    """A config that does nothing except ``settings``."""
    return AugmentConfig(engine=engine, **{**NOTHING, **settings})


def asymmetric_faces(count: int = 16) -> np.ndarray:
    """Faces whose left and right halves differ: a ramp plus a bright block on the left."""
    face = np.tile(np.linspace(20, 200, 48).astype(np.uint8), (48, 1))
    face[10:20, 5:12] = 255
    return np.repeat(face[None], count, axis=0)


def dot_faces(row: float, col: float, count: int = 64) -> np.ndarray:
    """Black faces with a bright 2x2 dot whose centroid is at ``(row, col)``."""
    faces = np.zeros((count, 48, 48), np.uint8)
    r, c = int(row - 0.5), int(col - 0.5)
    faces[:, r : r + 2, c : c + 2] = 255
    return faces


def centroids(faces: np.ndarray) -> np.ndarray:
    """``(N, 2)`` intensity-weighted (row, col) centroids."""
    weights = faces.astype(np.float64)
    rows, cols = np.mgrid[0:48, 0:48]
    total = weights.sum(axis=(1, 2))
    return np.stack([(weights * rows).sum(axis=(1, 2)) / total, (weights * cols).sum(axis=(1, 2)) / total], axis=1)


# --- config ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AUGMENT_PRESETS))
def test_presets_round_trip_through_json(name):
    config = AUGMENT_PRESETS[name]
    config.validate()
    assert AugmentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_custom_config_round_trips_and_ints_are_accepted():
    config = AugmentConfig.from_dict({"engine": "layers", "rotation": 15, "brightness": 0.2, "horizontal_flip": False})
    assert config.rotation == 15.0 and isinstance(config.rotation, float)
    assert AugmentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_missing_keys_take_defaults():
    assert AugmentConfig.from_dict({}) == AugmentConfig()


def test_seed_notebook_preset_matches_the_notebook():
    preset = AUGMENT_PRESETS["seed_notebook"]
    assert (preset.width_shift, preset.height_shift, preset.horizontal_flip, preset.zoom) == (0.1, 0.1, True, 0.2)
    assert preset.rotation == 0 and preset.brightness == 0
    assert AUGMENT_PRESETS["none"].is_identity


def test_unknown_key_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="'shear'.*known settings are engine, width_shift"):
        AugmentConfig.from_dict({"shear": 0.1})


@pytest.mark.parametrize(
    "field, value",
    [
        ("engine", "fast"),
        ("width_shift", -0.1),
        ("width_shift", 0.6),
        ("height_shift", "0.1"),
        ("zoom", 1.0),
        ("rotation", 181),
        ("rotation", float("nan")),
        ("brightness", 1.0),
        ("brightness", True),
        ("horizontal_flip", "yes"),
    ],
)
def test_bad_value_raises_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"AugmentConfig\.{field}"):
        AugmentConfig.from_dict({field: value})
    with pytest.raises(ValueError, match=rf"AugmentConfig\.{field}"):
        AugmentConfig(**{field: value}).validate()


def test_range_is_in_the_message():
    with pytest.raises(ValueError, match=r"\[0, 180\].*got 200"):
        AugmentConfig(rotation=200).validate()


def test_work_functions_validate_the_config():
    with pytest.raises(ValueError, match="zoom"):
        augment_batch(asymmetric_faces(1), AugmentConfig(zoom=0.9))


def test_image_data_generator_gets_the_seed_vocabulary():
    generator = make_image_data_generator(AugmentConfig(brightness=0.3))
    assert generator.width_shift_range == 0.1 and generator.height_shift_range == 0.1
    assert generator.horizontal_flip and generator.rotation_range == 10.0
    assert generator.zoom_range == pytest.approx([0.9, 1.1])
    assert generator.brightness_range == pytest.approx([0.7, 1.3])
    assert generator.fill_mode == "nearest" and generator.rescale is None


# --- augment_batch ----------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_augment_batch_keeps_shape_dtype_and_is_deterministic(engine):
    faces = asymmetric_faces(6)
    config = AugmentConfig(engine=engine, brightness=0.2)
    first = augment_batch(faces, config, seed=3)
    assert first.shape == faces.shape and first.dtype == np.uint8
    assert np.array_equal(first, augment_batch(faces, config, seed=3))
    assert not np.array_equal(first, augment_batch(faces, config, seed=4))
    assert not np.array_equal(first, faces)


def test_none_engine_returns_an_unchanged_copy():
    faces = asymmetric_faces(3)
    out = augment_batch(faces, AugmentConfig(engine="none", rotation=90), seed=0)
    assert np.array_equal(out, faces) and out is not faces
    out[0, 0, 0] = 7
    assert faces[0, 0, 0] != 7


def test_idg_engine_leaves_numpy_global_random_state_alone():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    augment_batch(asymmetric_faces(2), AugmentConfig(), seed=5)
    assert np.random.random() == expected


@pytest.mark.parametrize("engine", ENGINES)
def test_flip_only_mirrors_or_keeps_each_face(engine):
    faces = asymmetric_faces(16)
    out = augment_batch(faces, only(engine, horizontal_flip=True), seed=1)
    mirrored = [np.array_equal(o, f[:, ::-1]) for o, f in zip(out, faces)]
    unchanged = [np.array_equal(o, f) for o, f in zip(out, faces)]
    assert all(m or u for m, u in zip(mirrored, unchanged))
    assert any(mirrored) and any(unchanged)


@pytest.mark.parametrize("engine", ENGINES)
def test_all_zero_config_changes_nothing(engine):
    faces = asymmetric_faces(4)
    assert np.array_equal(augment_batch(faces, only(engine), seed=0), faces)


@pytest.mark.parametrize("engine", ENGINES)
def test_width_shift_moves_sideways_within_range(engine):
    out = augment_batch(dot_faces(23.5, 23.5), only(engine, width_shift=0.1), seed=2)
    shift = centroids(out) - [23.5, 23.5]
    assert np.abs(shift[:, 0]).max() < 0.5  # no vertical motion
    assert np.abs(shift[:, 1]).max() <= 0.1 * 48 + 0.5
    assert 1.8 < shift[:, 1].std() < 3.6  # uniform on +-4.8 px has std 2.8


@pytest.mark.parametrize("engine", ENGINES)
def test_height_shift_moves_vertically_within_range(engine):
    out = augment_batch(dot_faces(23.5, 23.5), only(engine, height_shift=0.2), seed=2)
    shift = centroids(out) - [23.5, 23.5]
    assert np.abs(shift[:, 1]).max() < 0.5
    assert np.abs(shift[:, 0]).max() <= 0.2 * 48 + 0.5
    assert 3.6 < shift[:, 0].std() < 7.2  # uniform on +-9.6 px has std 5.5


@pytest.mark.parametrize("engine", ENGINES)
def test_rotation_turns_around_the_centre_within_range(engine):
    out = augment_batch(dot_faces(23.5, 39.5), only(engine, rotation=20), seed=2)
    offset = centroids(out) - [23.5, 23.5]
    angles = np.degrees(np.arctan2(offset[:, 0], offset[:, 1]))
    assert np.abs(np.hypot(offset[:, 0], offset[:, 1]) - 16).max() < 1.0
    assert np.abs(angles).max() <= 20.5
    assert np.abs(angles).max() > 10


@pytest.mark.parametrize("engine", ENGINES)
def test_zoom_scales_distances_by_the_configured_range(engine):
    out = augment_batch(dot_faces(23.5, 39.5), only(engine, zoom=0.2), seed=2)
    distance = np.hypot(*(centroids(out) - [23.5, 23.5]).T)
    assert distance.min() >= 16 / 1.2 - 0.7 and distance.max() <= 16 / 0.8 + 0.7
    assert distance.min() < 15 and distance.max() > 17  # both zoom in and out happen


@pytest.mark.parametrize("engine", ENGINES)
def test_brightness_multiplies_pixels_within_range(engine):
    faces = np.full((32, 48, 48), 100, np.uint8)
    out = augment_batch(faces, only(engine, brightness=0.5), seed=2).astype(float)
    per_face = out.mean(axis=(1, 2))
    assert np.allclose(out, per_face[:, None, None], atol=1)  # a uniform scale, no spatial change
    assert per_face.min() >= 49 and per_face.max() <= 151
    assert per_face.min() < 70 and per_face.max() > 130
    black = augment_batch(np.zeros((4, 48, 48), np.uint8), only(engine, brightness=0.5), seed=2)
    assert not black.any()  # multiplicative: black stays black


def test_engines_change_images_by_similar_amounts():
    rng = np.random.default_rng(0)
    faces = np.stack([_smooth_face(rng) for _ in range(32)])
    change = {
        engine: np.abs(augment_batch(faces, AugmentConfig(engine=engine), seed=1).astype(float) - faces).mean()
        for engine in ENGINES
    }
    assert 0.7 < change["layers"] / change["idg"] < 1.4, change


def _smooth_face(rng: np.random.Generator) -> np.ndarray:
    rows, cols = np.mgrid[0:48, 0:48]
    blob = np.exp(-((rows - rng.uniform(15, 33)) ** 2 + (cols - rng.uniform(15, 33)) ** 2) / 60)
    return (40 + 150 * blob + cols).astype(np.uint8)


def test_real_face_keeps_its_brightness():
    files = sorted((FER2013 / "train" / "happy").glob("*.jpg"))[:4]
    if not files:
        pytest.skip(f"FER2013 not found at {FER2013}")
    import cv2

    faces = np.stack([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in files])
    for engine in ENGINES:
        out = augment_batch(faces, AugmentConfig(engine=engine), seed=0)
        assert abs(out.mean() - faces.mean()) < 10


# --- layers -----------------------------------------------------------------


def test_layers_are_plain_keras_layers_without_lambda():
    import keras

    layers = make_augmentation_layers(AugmentConfig(brightness=0.2), seed=0)
    kinds = [type(layer).__name__ for layer in layers.layers]
    assert kinds == ["RandomFlip", "RandomTranslation", "RandomZoom", "RandomRotation", "RandomBrightnessScale"]
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in layers.layers)
    for layer in layers.layers[1:4]:
        assert layer.get_config()["fill_mode"] == "nearest"
    restored = keras.Sequential.from_config(layers.get_config())  # registered, so safe-mode loading works
    assert [type(layer).__name__ for layer in restored.layers] == kinds


def test_layers_leave_images_alone_outside_training():
    faces = asymmetric_faces(2).astype(np.float32)[..., None]
    layers = make_augmentation_layers(AugmentConfig(brightness=0.3), seed=0)
    assert np.array_equal(np.asarray(layers(faces, training=False)), faces)


def test_identity_config_gives_a_working_identity_stage():
    faces = asymmetric_faces(2).astype(np.float32)[..., None]
    layers = make_augmentation_layers(only("layers"))
    assert np.array_equal(np.asarray(layers(faces, training=True)), faces)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (requirements-dev.txt has it)")
def test_both_engines_run_under_jax_without_tensorflow():
    script = (
        "import sys, numpy as np\n"
        "from core.augment import AugmentConfig, augment_batch, make_training_batches\n"
        "faces = np.zeros((4, 48, 48), np.uint8)\n"
        "for engine in ('idg', 'layers'):\n"
        "    augment_batch(faces, AugmentConfig(engine=engine, brightness=0.2), seed=0)\n"
        "    make_training_batches(faces, np.arange(4), AugmentConfig(engine=engine), 2, 0).data[0]\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, check=True, timeout=300)


def test_importing_augment_does_not_import_keras():
    script = "import sys, core.augment; assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, check=True, timeout=60)


# --- training batches -------------------------------------------------------


@pytest.mark.parametrize("engine", ("idg", "layers", "none"))
def test_training_batches_have_the_shapes_fit_needs(engine):
    faces = asymmetric_faces(10)
    batches = make_training_batches(faces, np.arange(10) % 7, AugmentConfig(engine=engine), batch_size=4, seed=0)
    assert batches.steps_per_epoch == len(batches.data) == 3 and not batches.weighted
    x, y = batches.data[0]
    assert x.shape == (4, 48, 48, 1) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255
    assert y.shape == (4,) and np.issubdtype(y.dtype, np.integer)
    assert batches.data[2][0].shape == (2, 48, 48, 1)  # the last batch holds the rest


@pytest.mark.parametrize("engine", ("idg", "layers", "none"))
def test_each_epoch_visits_every_face_once_in_a_new_order(engine):
    faces = asymmetric_faces(12)
    batches = make_training_batches(faces, np.arange(12), AugmentConfig(engine=engine), batch_size=5, seed=1)

    def epoch_order() -> list[int]:
        order = [int(label) for i in range(len(batches.data)) for label in batches.data[i][1]]
        batches.data.on_epoch_end()
        return order

    first, second = epoch_order(), epoch_order()
    assert sorted(first) == sorted(second) == list(range(12))
    assert first != second


@pytest.mark.parametrize("engine", ("idg", "layers"))
def test_same_seed_gives_the_same_batches(engine):
    faces = asymmetric_faces(8)
    config = AugmentConfig(engine=engine)
    one = make_training_batches(faces, np.arange(8), config, batch_size=4, seed=9).data[0]
    two = make_training_batches(faces, np.arange(8), config, batch_size=4, seed=9).data[0]
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])


@pytest.mark.parametrize("engine", ("idg", "layers"))
def test_class_weights_become_sample_weights(engine):
    labels = np.array([0, 1, 1, 2, 2, 2])
    one_hot = np.eye(7, dtype=np.float32)[labels]
    weights = {0: 3.0, 1: 1.5, 2: 1.0}
    for given in (labels, one_hot):
        batches = make_training_batches(asymmetric_faces(6), given, AugmentConfig(engine=engine), 6, 0, weights)
        x, y, sample_weight = batches.data[0]
        assert batches.weighted and y.shape == given.shape
        sparse = y if y.ndim == 1 else y.argmax(axis=1)
        assert np.array_equal(sample_weight, [weights[int(c)] for c in sparse])


def test_class_weights_must_cover_every_class():
    with pytest.raises(ValueError, match=r"class\(es\) \[2\]"):
        make_training_batches(asymmetric_faces(3), np.array([0, 1, 2]), AugmentConfig(), 2, 0, {0: 1.0, 1: 2.0})


@pytest.mark.parametrize(
    "labels, batch_size, match",
    [(np.arange(3), 2, "one label per face"), (np.arange(4), 0, "batch_size"), (np.arange(4.0), 2, "integer")],
)
def test_bad_training_inputs_raise(labels, batch_size, match):
    with pytest.raises(ValueError, match=match):
        make_training_batches(asymmetric_faces(4), labels, AugmentConfig(), batch_size, 0)


@pytest.mark.parametrize("engine, one_hot", [("idg", False), ("layers", False), ("layers", True)])
def test_model_fit_trains_on_the_batches(engine, one_hot):
    import keras

    labels = np.arange(12) % 7
    targets = np.eye(7, dtype=np.float32)[labels] if one_hot else labels
    inputs = keras.Input((48, 48, 1))
    hidden = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(hidden))
    model.compile("adam", "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy")
    batches = make_training_batches(asymmetric_faces(12), targets, AugmentConfig(engine=engine), 8, 0)
    history = model.fit(
        batches.data, epochs=2, steps_per_epoch=batches.steps_per_epoch, class_weight={i: 1.0 for i in range(7)}, verbose=0
    )
    assert len(history.history["loss"]) == 2 and all(math.isfinite(v) for v in history.history["loss"])


# --- random erasing ---------------------------------------------------------


def test_random_erasing_fills_one_rectangle_of_the_configured_size():
    from core.augment import ERASING_AREA, erase_random_rectangles

    faces = np.full((200, 48, 48, 1), 7.0, np.float32)
    erased = erase_random_rectangles(faces.copy(), 1.0, np.random.default_rng(0))
    changed = erased[..., 0] != 7.0
    shares = changed.mean(axis=(1, 2))
    assert (shares > 0).all()  # probability 1: every face
    assert shares.min() >= ERASING_AREA[0] * 0.5 and shares.max() <= ERASING_AREA[1] * 1.2
    for mask in changed:  # one axis-aligned rectangle: its bounding box is (almost) all changed
        rows, cols = np.nonzero(mask)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert mask.sum() >= 0.95 * box
    assert 0 <= erased.min() and erased.max() <= 255
    untouched = erase_random_rectangles(faces.copy(), 0.0, np.random.default_rng(0))
    assert np.array_equal(untouched, faces)
    half = erase_random_rectangles(faces.copy(), 0.5, np.random.default_rng(1))
    assert 70 <= int((half[..., 0] != 7.0).any(axis=(1, 2)).sum()) <= 130


@pytest.mark.parametrize("engine", ENGINES)
def test_erasing_runs_in_both_engines_reproducibly_and_old_configs_load(engine):
    faces = np.full((32, 48, 48), 100, np.uint8)
    config = only(engine, erasing=1.0)
    assert not config.is_identity
    batch = make_training_batches(faces, np.arange(32) % 7, config, batch_size=32, seed=3).data[0][0]
    again = make_training_batches(faces, np.arange(32) % 7, config, batch_size=32, seed=3).data[0][0]
    assert np.array_equal(batch, again)
    assert ((batch[..., 0] != 100).mean(axis=(1, 2)) > 0).all()
    assert (faces == 100).all()  # the training images themselves are never erased
    preview = augment_batch(faces[:4], config, seed=0)
    assert (preview != 100).any(axis=(1, 2)).all()
    assert AugmentConfig.from_dict({"engine": engine}).erasing == 0.0  # a config.json from before erasing
    with pytest.raises(ValueError, match="erasing"):
        AugmentConfig(erasing=1.5).validate()


def test_cli_takes_random_erasing(tmp_path):
    import argparse

    from core.commands import train as train_command

    parser = argparse.ArgumentParser()
    train_command.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--data", str(tmp_path), "--augment-json", '{"erasing": 0.5}'])
    config = train_command.config_from_args(args)
    assert config.augment.erasing == 0.5 and config.augment.engine == "idg"
    from core.train import command_line

    assert '"erasing": 0.5' in command_line(config)


@pytest.mark.parametrize("engine", ("idg", "layers", "none"))
def test_the_batches_of_an_epoch_depend_on_the_seed_and_epoch_only(engine):
    # A run resumed at epoch 2 must get the batches an uninterrupted run gets there, not epoch 0's again
    # (issue 16 item 6), whatever was drawn before: Keras peeks at batches, other code uses NumPy's random.
    faces = asymmetric_faces(10)
    config = AugmentConfig(engine=engine)
    running = make_training_batches(faces, np.arange(10) % 7, config, batch_size=4, seed=3).data
    first_epoch = [running[index] for index in range(len(running))]
    running.on_epoch_end()
    running[1]  # an extra look, as Keras' adapter takes one
    running.on_epoch_end()
    np.random.seed(99)
    resumed = make_training_batches(faces, np.arange(10) % 7, config, batch_size=4, seed=3, start_epoch=2).data
    for index in (2, 0, 1):  # any order
        assert all(np.array_equal(a, b) for a, b in zip(running[index], resumed[index])), index
    assert not all(np.array_equal(a, b) for a, b in zip(resumed[0], first_epoch[0]))  # not a replay of epoch 0
    with pytest.raises(ValueError, match="start_epoch"):
        make_training_batches(faces, np.arange(10) % 7, config, batch_size=4, seed=3, start_epoch=-1)
