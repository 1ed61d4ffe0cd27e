"""A deeper ``fer_vgg`` grown from a trained shallower one (``core.grow``, ``--param convs=...`` with ``--init-from``)."""

import numpy as np
import pytest

from core import runs
from core.grow import grow_fer_vgg, stage_convs
from core.model_io import load_model
from core.models import build, check_convs
from core.train import prepare_run, run_training
from core.train_config import TrainConfig, init_from_mismatch
from tests.core.test_init_from import source_run  # noqa: F401 (fixture)
from tests.core.test_train import tiny_config, train_csv, write_fer_csv  # noqa: F401 (fixture)


def _trained_looking(model, seed: int = 0):
    """Random batch-norm parameters and statistics, as a trained model has (a fresh one's are the identity)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            size = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 2.0, size), rng.normal(0, 0.5, size),
                               rng.normal(0, 0.3, size), rng.uniform(0.2, 3.0, size)])
    return model


@pytest.mark.parametrize("value, expected", [(2, (2, 2, 2, 2)), (3.0, (3, 3, 3, 3)), ([3, 3, 3, 2], (3, 3, 3, 2)),
                                             ((1, 2, 3, 4), (1, 2, 3, 4))])
def test_convs_is_one_count_for_all_stages_or_one_per_stage(value, expected):
    assert check_convs(value) == expected
    assert stage_convs(build("fer_vgg", width=4, dense_units=16, convs=value)) == expected


@pytest.mark.parametrize("value", [0, 7, 2.5, True, "3", [3, 3, 3], [3, 3, 0, 2], None])
def test_a_bad_convs_is_refused_by_name(value):
    with pytest.raises(ValueError, match="convs must be a number of conv blocks per stage"):
        check_convs(value)
    with pytest.raises(ValueError, match="convs must be"):
        TrainConfig(data="x", model_params={"convs": value}).validate()


def test_the_grown_model_predicts_what_the_source_predicts():
    source = _trained_looking(build("fer_vgg", width=4, dense_units=16))
    target = build("fer_vgg", width=4, dense_units=16, convs=[3, 2, 4, 2])
    assert grow_fer_vgg(source, target) == {"convs_from": [2, 2, 2, 2], "convs_to": [3, 2, 4, 2]}
    faces = np.random.default_rng(1).integers(0, 256, (32, 48, 48, 1)).astype("float32")
    before = source.predict(faces, verbose=0)
    after = target.predict(faces, verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-5)
    # Not trivially: the source's outputs differ from face to face, and a target left as built predicts otherwise.
    assert before.argmax(axis=1).min() != before.argmax(axis=1).max() or np.ptp(before[:, 0]) > 1e-3
    fresh = build("fer_vgg", width=4, dense_units=16, convs=[3, 2, 4, 2]).predict(faces, verbose=0)
    assert not np.allclose(fresh, before, atol=1e-3)
    # The copied blocks carry the source's kernels; a new block's kernel passes each channel through its centre tap.
    kernels = [layer.kernel.numpy() for layer in target.layers if type(layer).__name__ == "Conv2D"]
    source_kernels = [layer.kernel.numpy() for layer in source.layers if type(layer).__name__ == "Conv2D"]
    np.testing.assert_array_equal(kernels[0], source_kernels[0])
    np.testing.assert_array_equal(kernels[1], source_kernels[1])
    identity = kernels[2]
    assert identity.shape == (3, 3, 4, 4) and identity.sum() == 4
    np.testing.assert_array_equal(identity[1, 1], np.eye(4))


def test_in_training_mode_a_new_block_is_close_to_the_identity():
    """Batch statistics replace the moving ones in training: the new blocks' are set to match them."""
    source = _trained_looking(build("fer_vgg", width=4, dense_units=16, dropout_rate=0.0), seed=2)
    target = build("fer_vgg", width=4, dense_units=16, dropout_rate=0.0, convs=3)
    grow_fer_vgg(source, target)
    faces = np.random.default_rng(3).integers(0, 256, (256, 48, 48, 1)).astype("float32")
    train_source = np.asarray(source(faces, training=True))
    train_target = np.asarray(target(faces, training=True))
    naive = build("fer_vgg", width=4, dense_units=16, dropout_rate=0.0, convs=3)
    grow_fer_vgg(source, naive)
    for layer in naive.layers[::-1]:  # the same blocks with a plain (gamma 1, beta 0) batch normalisation
        if type(layer).__name__ == "BatchNormalization" and layer.name in _new_norms(naive):
            size = layer.get_weights()[0].shape
            layer.set_weights([np.ones(size), np.zeros(size), np.zeros(size), np.ones(size)])
    train_naive = np.asarray(naive(faces, training=True))
    grown_gap = np.abs(train_target - train_source).mean()
    naive_gap = np.abs(train_naive - train_source).mean()
    assert grown_gap < naive_gap / 3, (grown_gap, naive_gap)


def _new_norms(model) -> set:
    """Names of the batch normalisations of each stage's third block (the ones a 2 -> 3 growth adds)."""
    names, side, count = set(), None, 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            count = count + 1 if layer.output.shape[1] == side else 1
            side = layer.output.shape[1]
        elif kind == "BatchNormalization" and count == 3:
            names.add(layer.name)
    return names


def test_growth_refuses_fewer_blocks_and_other_widths():
    source = build("fer_vgg", width=4, dense_units=16, convs=3)
    with pytest.raises(ValueError, match=r"cannot grow \[3, 3, 3, 3\] conv blocks per stage into \[2, 2, 2, 2\]"):
        grow_fer_vgg(source, build("fer_vgg", width=4, dense_units=16))
    with pytest.raises(ValueError, match="the widths or the head differ"):
        grow_fer_vgg(source, build("fer_vgg", width=8, dense_units=16, convs=3))
    with pytest.raises(ValueError, match="not built like fer_vgg"):
        grow_fer_vgg(build("mini_xception"), build("fer_vgg", width=4, dense_units=16))


def test_the_config_accepts_a_deeper_run_from_a_shallower_card_only(source_run):  # noqa: F811
    start = str(source_run / "best.keras")  # its card: fer_vgg, width 4, dense_units 16, convs 2
    assert init_from_mismatch(start, "fer_vgg", {"width": 4, "dense_units": 16, "convs": [3, 3, 3, 2]}) is None
    assert init_from_mismatch(start, "fer_vgg", {"width": 4, "dense_units": 16, "convs": 4}) is None
    assert "convs=2 there, 1 here" in init_from_mismatch(start, "fer_vgg", {"width": 4, "dense_units": 16, "convs": 1})
    assert "width=4 there, 8 here" in init_from_mismatch(start, "fer_vgg", {"width": 8, "dense_units": 16, "convs": 3})


def test_a_deeper_run_starts_where_the_source_stopped(tmp_path, train_csv, source_run):  # noqa: F811
    start = source_run / "best.keras"
    config = tiny_config(train_csv, epochs=1, learning_rate=1e-9, lr_schedule="constant", init_from=str(start),
                         model_params={"width": 4, "dense_units": 16, "convs": [3, 3, 3, 2]}).validate()
    run_dir = prepare_run(config, tmp_path / "runs")
    lines = []
    status = run_training(run_dir, echo=lines.append)
    assert status.state == "finished", status.message
    assert any("conv blocks per stage [2, 2, 2, 2] -> [3, 3, 3, 2]" in line for line in lines)
    record = runs.read_config(run_dir)["resolved"]["init_from"]
    assert record["grown"] == {"convs_from": [2, 2, 2, 2], "convs_to": [3, 3, 3, 2]}
    grown = load_model(run_dir / "last.keras").model
    assert stage_convs(grown) == (3, 3, 3, 2)
    # With a learning rate of 1e-9 the grown net still predicts what its source did (batch-norm statistics
    # moved for one epoch, so not to the last digit).
    faces = np.random.default_rng(0).integers(0, 256, (64, 48, 48, 1)).astype("float32")
    before = load_model(start).model.predict(faces, verbose=0)
    after = grown.predict(faces, verbose=0)
    assert np.abs(after - before).max() < 0.05
    assert (after.argmax(axis=1) == before.argmax(axis=1)).mean() >= 0.9
