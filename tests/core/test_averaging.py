"""Weight averaging over a run's last epochs (``--average-from``, ``core.averaging``)."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from core import runs
from core.averaging import (AVERAGE_FILE, AVERAGED_MODEL, RunningAverage, averaged_record, batch_norm_images,
                            epoch_in_window,
                            recompute_batch_norm)
from core.model_io import load_model
from core.train import command_line, prepare_run, run_training
from core.train_config import TrainConfig
from tests.core.test_train import tiny_config, train_csv  # noqa: F401 (fixture)
from tests.core.test_init_from import _conv_kernels as conv_kernels
from tests.faults.test_checkpoint_commit import SimulatedKill, kill_after


def test_the_running_average_is_the_mean_and_survives_a_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    epochs = [[rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32)] for _ in range(3)]
    average = RunningAverage()
    for number, weights in enumerate(epochs, start=5):
        average.add(weights, number)
    assert average.count == 3 and average.epochs == [5, 6, 7]
    for got, *each in zip(average.mean(), *epochs):
        np.testing.assert_allclose(got, np.mean(each, axis=0), rtol=1e-6)
        assert got.dtype == np.float32
    average.save(tmp_path / AVERAGE_FILE)
    loaded = RunningAverage.load(tmp_path / AVERAGE_FILE)
    assert loaded.epochs == [5, 6, 7]
    for got, want in zip(loaded.mean(), average.mean()):
        np.testing.assert_array_equal(got, want)
    assert RunningAverage.load(tmp_path / "missing.npz").count == 0
    with pytest.raises(ValueError, match="no epoch"):
        RunningAverage().mean()
    with pytest.raises(ValueError, match="shape"):
        average.add([np.zeros((2, 3)), np.zeros(4)], 8)
    with pytest.raises(ValueError, match="do not match"):
        average.add([np.zeros((3, 2))], 8)
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="not a weight average"):
        RunningAverage.load(tmp_path / "bad.npz")


def test_the_window_is_a_fraction_of_the_epochs_or_of_the_time_budget():
    # 10 epochs from 0.5: epochs 6-10 start at or after the middle.
    assert [e for e in range(1, 11) if epoch_in_window(0.5, e, 10)] == [6, 7, 8, 9, 10]
    assert [e for e in range(1, 5) if epoch_in_window(0.0, e, 4)] == [1, 2, 3, 4]
    # With a 100-second budget the epochs that began at 50 s or later count, whatever their number.
    assert epoch_in_window(0.5, 2, 1000, start_seconds=50.0, budget_seconds=100.0)
    assert not epoch_in_window(0.5, 900, 1000, start_seconds=49.0, budget_seconds=100.0)


def test_batch_norm_statistics_become_those_of_the_layers_inputs():
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same")(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Conv2D(2, 3, padding="same")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x)))
    images = np.random.default_rng(2).integers(0, 256, size=(300, 8, 8), dtype=np.uint8)
    # Fresh layers hold mean 0 / variance 1, far from the statistics of these inputs.
    assert recompute_batch_norm(model, images, batch_size=64, max_images=250) == 2
    for name in ("bn1", "bn2"):
        out = np.asarray(keras.Model(inputs, model.get_layer(name).output)(images[..., None].astype(np.float32)))
        # Normalised in inference mode over (nearly) the images measured: mean 0, variance 1 per channel.
        np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=0.05)
        np.testing.assert_allclose(out.var(axis=(0, 1, 2)), 1, atol=0.05)
    bare = keras.Model(inputs, keras.layers.Dense(7)(keras.layers.Flatten()(inputs)))
    assert recompute_batch_norm(bare, images) == 0


def _conv_kernels(path) -> list[np.ndarray]:
    return conv_kernels(load_model(path).model)


@pytest.mark.slow
def test_a_run_averages_its_last_epochs_and_a_resumed_run_averages_the_same(tmp_path, train_csv, monkeypatch):  # noqa: F811
    from core.__main__ import build_parser
    from core.commands.train import config_from_args

    # Epochs 2 and 3 of 3 start after 30% of the run.
    config = tiny_config(train_csv, epochs=3, lr_schedule="constant", precision="float32", average_from=0.3)
    line = command_line(config)
    assert "--average-from 0.3" in line
    assert config_from_args(build_parser().parse_args(shlex.split(line)[3:])) == config
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="average_from"):
        tiny_config(train_csv, average_from=1.0).validate()

    whole = prepare_run(config, tmp_path / "whole")
    lines: list[str] = []
    status = run_training(whole, echo=lines.append)
    assert status.state == "finished", status.message
    assert "weights of epochs 2-3 averaged" in status.message
    record = averaged_record(whole)
    assert record["epochs"] == [2, 3] and record["count"] == 2 and record["batch_norm_layers"] > 0
    assert 0 < record["batch_norm_augmented"] < record["batch_norm_images"]
    assert any(line.startswith("weight averaging: epochs 2-3") for line in lines)
    # It says when it was ready, on the clock of the run's accuracy-vs-time history: after all three epochs.
    trained = sum(row["epoch_time"] for row in runs.read_metrics(whole))
    assert record["seconds"] > 0 and record["ready_after_seconds"] == pytest.approx(trained + record["seconds"], abs=0.2)
    averaged = load_model(whole / AVERAGED_MODEL)
    assert averaged.class_names[3] == "happy" and averaged.meta["averaged_epochs"] == [2, 3]
    # Its recorded accuracy is what it scores on the validation images.
    from core.data import load_fer2013
    from core.train import split_training_data

    _, (x_val, y_val) = split_training_data(load_fer2013(str(train_csv)), config)
    predicted = averaged.model.predict(x_val.astype(np.float32)[..., None], verbose=0).argmax(axis=1)
    assert record["val_accuracy"] == pytest.approx(float(np.mean(predicted == y_val)), abs=1e-4)

    # The same run stopped after epoch 2 holds epoch 2's weights: the average is the mean of that and epoch 3.
    two = prepare_run(tiny_config(train_csv, epochs=2, lr_schedule="constant", precision="float32"), tmp_path / "two")
    assert run_training(two, echo=lambda line: None).state == "finished"
    for got, second, third in zip(_conv_kernels(whole / AVERAGED_MODEL), _conv_kernels(two / "last.keras"),
                                  _conv_kernels(whole / "last.keras")):
        np.testing.assert_allclose(got, (second + third) / 2, atol=1e-5)
        assert not np.allclose(got, third, atol=1e-5)

    # Killed after epoch 2 was committed (with the sum in its folder), then resumed: the same average.
    cut = prepare_run(config, tmp_path / "cut")
    kill_after(monkeypatch, "cleanup", 2)
    with pytest.raises(SimulatedKill):
        run_training(cut, echo=lambda line: None)
    monkeypatch.undo()
    assert RunningAverage.load(runs.checkpoint_folder(cut, 2) / AVERAGE_FILE).epochs == [2]
    assert run_training(cut, resume=True, echo=lambda line: None).state == "finished"
    assert averaged_record(cut)["epochs"] == [2, 3]
    for got, want in zip(load_model(cut / AVERAGED_MODEL).model.get_weights(), averaged.model.get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Resuming a finished run trains nothing and keeps the averaged model it has.
    before = (cut / AVERAGED_MODEL).stat().st_mtime_ns
    assert run_training(cut, resume=True, echo=lambda line: None).state == "finished"
    assert (cut / AVERAGED_MODEL).stat().st_mtime_ns == before


def test_a_run_without_averaging_writes_no_averaged_model(tmp_path, train_csv):  # noqa: F811
    run_dir = prepare_run(tiny_config(train_csv, epochs=1), tmp_path)
    assert run_training(run_dir, echo=lambda line: None).state == "finished"
    assert averaged_record(run_dir) is None and not (run_dir / AVERAGED_MODEL).exists()
    assert not list(run_dir.rglob(AVERAGE_FILE))


def test_batch_norm_faces_are_a_seeded_subset_half_of_them_augmented_as_in_training():
    from core.augment import AugmentConfig

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (30, 48, 48), dtype=np.uint8)
    images, augmented = batch_norm_images(faces, AugmentConfig(), max_images=20, seed=3)
    assert images.shape == (20, 48, 48) and images.dtype == np.uint8 and augmented == 10
    pick = np.sort(np.random.default_rng(3).choice(30, 20, replace=False))
    np.testing.assert_array_equal(images[:10], faces[pick[:10]])  # the first half as they are
    assert all(not np.array_equal(a, b) for a, b in zip(images[10:], faces[pick[10:]]))  # the rest augmented
    again, _ = batch_norm_images(faces, AugmentConfig(), max_images=20, seed=3)
    np.testing.assert_array_equal(images, again)
    # Without augmentation in training there is nothing to mix in; fewer faces than the cap are all kept.
    plain, none = batch_norm_images(faces, AugmentConfig(engine="none"), max_images=100)
    assert none == 0 and plain.shape == faces.shape
