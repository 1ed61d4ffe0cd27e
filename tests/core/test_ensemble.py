"""Ensembles: members' FER-ordered probabilities averaged; misfit members refused."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import model_io
from core.ensemble import Ensemble, load_models, make_ensemble
from core.evaluate import evaluate_ensemble, evaluate_model
from core.labels import CLASS_NAMES

ROOT = Path(__file__).resolve().parents[2]
SHIFTED = CLASS_NAMES[1:] + CLASS_NAMES[:1]  # a wrong claim: every output named after the next class


def oracle_faces(classes):
    faces = np.zeros((len(classes), 48, 48), np.uint8)
    for row, index in enumerate(classes):
        faces[row, index, 0] = faces[row, index, 47] = 200
    return faces


def test_members_in_other_class_orders_are_reordered_then_averaged(tmp_path, oracle_model_factory):
    right = oracle_model_factory(tmp_path / "right.keras")
    reversed_order = oracle_model_factory(tmp_path / "reversed.keras", output_names=tuple(reversed(CLASS_NAMES)))
    mislabeled = oracle_model_factory(tmp_path / "mislabeled.keras", saved_names=SHIFTED)
    faces = oracle_faces(range(7))
    single = {path.stem: model_io.predict_probabilities(model_io.load_model(path), faces) for path in (right, reversed_order, mislabeled)}

    agreeing = load_models([right, reversed_order])
    assert isinstance(agreeing, Ensemble) and agreeing.class_names == CLASS_NAMES
    assert np.allclose(model_io.predict_probabilities(agreeing, faces), single["right"], atol=1e-6)

    mixed = load_models([right, mislabeled])
    probabilities = model_io.predict_probabilities(mixed, faces, tta="flip")
    assert np.allclose(probabilities, (single["right"] + single["mislabeled"]) / 2, atol=1e-6)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_one_path_is_a_plain_model_and_duplicates_count_once(tmp_path, oracle_model_factory):
    right = oracle_model_factory(tmp_path / "right.keras")
    assert isinstance(load_models([right]), model_io.LoadedModel)
    assert isinstance(load_models([right, str(right)]), model_io.LoadedModel)
    with pytest.raises(ValueError, match="no model"):
        load_models([])


@pytest.mark.parametrize("names, message", [
    (("angry", "disgust", "fear", "happy", "sad", "surprise", "cat"), "not FER2013's.*cat"),
    (("happy",) * 7, "repeated: happy"),
])
def test_members_that_are_not_the_seven_fer_classes_are_refused(tmp_path, oracle_model_factory, names, message):
    right = oracle_model_factory(tmp_path / "right.keras")
    misfit = model_io.save_model(model_io.load_model(right).model, tmp_path / "misfit.keras", class_names=names)
    with pytest.raises(ValueError, match=message) as error:
        load_models([right, misfit])
    assert "misfit.keras" in str(error.value)
    with pytest.raises(ValueError, match=message):
        evaluate_ensemble([right, misfit], None)


def test_members_with_other_input_sizes_are_refused(tmp_path, oracle_model_factory):
    import keras

    inputs = keras.Input((44, 44, 1))
    small = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs)))
    right = model_io.load_model(oracle_model_factory(tmp_path / "right.keras"))
    saved = model_io.save_model(small, tmp_path / "small44.keras")
    with pytest.raises(ValueError, match=r"small44.keras takes inputs of shape \(None, 44, 44, 1\)"):
        model_io.load_model(saved)  # refused on its own already
    other = model_io.LoadedModel(model=small, class_names=right.class_names, meta={}, path=str(saved))
    with pytest.raises(ValueError, match="different inputs.*small44.keras"):
        make_ensemble([right, other])


def test_ensemble_evaluation_scores_the_averaged_probabilities(tmp_path, oracle_model_factory, oracle_dataset_factory):
    dataset = oracle_dataset_factory({"PublicTest": 40}, wrong_every=5)
    right = oracle_model_factory(tmp_path / "right.keras")
    mislabeled = oracle_model_factory(tmp_path / "mislabeled.keras", saved_names=SHIFTED)
    members = [evaluate_model(path, dataset, use_cache=False)["PublicTest"] for path in (right, mislabeled)]
    result = evaluate_ensemble([right, mislabeled], dataset, use_cache=False)["PublicTest"]
    assert np.allclose(result.probabilities, (members[0].probabilities + members[1].probabilities) / 2, atol=1e-6)
    assert result.accuracy == pytest.approx(float(np.mean(result.predictions == dataset.labels)))
    assert members[0].accuracy == pytest.approx(0.8)


@pytest.mark.slow
def test_cli_evaluate_and_predict_take_several_models(tmp_path, oracle_model_factory, oracle_fer_folder):
    right = oracle_model_factory(tmp_path / "right.keras")
    reversed_order = oracle_model_factory(tmp_path / "reversed.keras", output_names=tuple(reversed(CLASS_NAMES)))
    env = {"FER_STUDIO_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "core", "evaluate", "--model", str(right), "--model", str(reversed_order),
               "--data", str(oracle_fer_folder), "--split", "PublicTest", "--json"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["model"] == [str(right), str(reversed_order)]
    assert payload["splits"]["PublicTest"]["accuracy"] == 1.0

    photo = oracle_fer_folder / "test" / "happy" / "PublicTest_happy_0.png"
    command = [sys.executable, "-m", "core", "predict", "--no-detect", "--json", "--model", str(right),
               "--model", str(reversed_order), str(photo)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["model"] == [str(right), str(reversed_order)]
    assert payload["images"][0]["faces"][0]["emotion"] == "happy"


def test_grad_cam_of_an_ensemble_is_the_mean_of_its_members_maps(tmp_path, tiny_model_path):
    import keras

    from core import models
    from core.explain import grad_cam

    keras.utils.set_random_seed(1)
    other = model_io.export_model(models.build("mini_xception"), tmp_path / "other.keras")
    members = [model_io.load_model(tiny_model_path), model_io.load_model(other)]
    ensemble = make_ensemble(members)
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    maps = grad_cam(ensemble, faces, [3, 4])
    expected = np.mean([grad_cam(member, faces, [3, 4]) for member in members], axis=0)
    expected /= np.maximum(expected.max(axis=(1, 2), keepdims=True), 1e-12)
    assert maps.shape == (2, 48, 48) and 0 <= maps.min() and maps.max() <= 1
    assert np.allclose(maps, expected, atol=1e-5)
    assert grad_cam(ensemble, faces[0]).shape == (48, 48)
