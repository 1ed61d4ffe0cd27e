"""Runs that start from a trained model's weights (``--init-from``, ``TrainConfig.init_from``)."""

import json
import shlex

import numpy as np
import pytest

from core import runs
from core.model_io import load_model, save_model
from core.train import command_line, prepare_run, run_training
from core.train_config import TrainConfig
from tests.core.test_train import tiny_config, train_csv, write_fer_csv  # noqa: F401 (fixture)


def _conv_kernels(model) -> list[np.ndarray]:
    return [np.asarray(layer.kernel) for layer in model.layers if type(layer).__name__ == "Conv2D"]


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, train_csv):  # noqa: F811
    """A finished one-epoch tiny run: the model the other runs start from."""
    run_dir = prepare_run(tiny_config(train_csv, epochs=1), tmp_path_factory.mktemp("source-runs"))
    status = run_training(run_dir, echo=lambda line: None)
    assert status.state == "finished", status.message
    return run_dir


def test_a_run_starts_from_the_weights_and_records_them(tmp_path, train_csv, source_run):  # noqa: F811
    from core.__main__ import build_parser
    from core.commands.train import config_from_args

    start = source_run / "best.keras"
    # A learning rate of 1e-9 leaves the kernels where they started, so they must be the source's.
    config = tiny_config(train_csv, epochs=1, learning_rate=1e-9, lr_schedule="constant", init_from=str(start))
    line = command_line(config)
    assert f"--init-from {start}" in line
    assert config_from_args(build_parser().parse_args(shlex.split(line)[3:])) == config
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert "--init-from" not in command_line(tiny_config(train_csv))

    run_dir = prepare_run(config, tmp_path / "runs")
    lines = []
    status = run_training(run_dir, echo=lines.append)
    assert status.state == "finished", status.message
    assert any(line.startswith("starting from the weights of best.keras") for line in lines)
    trained = _conv_kernels(load_model(run_dir / "last.keras").model)
    source = _conv_kernels(load_model(start).model)
    assert len(trained) == len(source) == 8
    for after, before in zip(trained, source):
        np.testing.assert_allclose(after, before, atol=1e-6)
    # A run from a random initialisation with the same seed does not have them.
    fresh_dir = prepare_run(tiny_config(train_csv, epochs=1, learning_rate=1e-9, lr_schedule="constant", seed=5),
                            tmp_path / "runs")
    assert run_training(fresh_dir, echo=lambda line: None).state == "finished"
    fresh = _conv_kernels(load_model(fresh_dir / "last.keras").model)
    assert not np.allclose(fresh[0], source[0], atol=1e-3)

    record = runs.read_config(run_dir)["resolved"]["init_from"]
    assert record["path"] == str(start) and len(record["sha256"]) == 64 and record["seed"] == 0
    # Same data, same seed and fraction: the starting weights never saw this run's validation faces.
    assert record["validation_clean"] is True and "same validation slice" in record["why"]
    # A resume continues from the run's own checkpoint and keeps the record of where it started.
    assert run_training(run_dir, resume=True, echo=lines.append).state == "finished"
    assert runs.read_config(run_dir)["resolved"]["init_from"] == record
    assert sum(line.startswith("starting from the weights") for line in lines) == 1
    from core.bundle import bundle_run

    card = bundle_run(run_dir, str(train_csv), name="finetuned", out_dir=tmp_path / "models")
    assert card["init_from"] == record


def test_starting_weights_that_saw_the_validation_slice_are_flagged(tmp_path, train_csv, source_run):  # noqa: F811
    config = tiny_config(train_csv, epochs=1, seed=3, init_from=str(source_run / "best.keras"))
    run_dir = prepare_run(config, tmp_path / "runs")
    lines = []
    assert run_training(run_dir, echo=lines.append).state == "finished"
    record = runs.read_config(run_dir)["resolved"]["init_from"]
    assert record["validation_clean"] is False and "seed 0" in record["why"] and "3" in record["why"]
    assert any("optimistic" in line for line in lines)


def test_a_file_without_a_card_of_another_architecture_is_refused_when_the_run_starts(tmp_path, train_csv):  # noqa: F811
    from core.models import build

    # No card says what it is, so the config cannot tell; the worker compares weight by weight.
    path = save_model(build("fer_vgg", width=8, dense_units=16), tmp_path / "plain.keras")
    config = tiny_config(train_csv, epochs=1, init_from=str(path)).validate()
    run_dir = prepare_run(config, tmp_path / "runs")
    status = run_training(run_dir, echo=lambda line: None)
    assert status.state == "failed"
    assert "plain.keras does not fit this run's fer_vgg (dense_units=16, width=4): weight 0 is (3, 3, 1, 8)" in status.message
    assert "same architecture" in status.message
    # Nothing was trained from half-copied weights.
    assert not (run_dir / "best.keras").exists() and not runs.read_metrics(run_dir)


def test_outputs_in_another_class_order_are_refused(tmp_path, train_csv, source_run):  # noqa: F811
    from core.labels import CLASS_NAMES

    model = load_model(source_run / "best.keras").model
    shuffled = tuple(reversed(CLASS_NAMES))
    path = save_model(model, tmp_path / "reversed.keras", class_names=shuffled)
    run_dir = prepare_run(tiny_config(train_csv, epochs=1, init_from=str(path)), tmp_path / "runs")
    status = run_training(run_dir, echo=lambda line: None)
    assert status.state == "failed"
    assert "reversed.keras orders its outputs neutral, surprise" in status.message


@pytest.mark.parametrize("value", ["no/such/model.keras", "", "  "])
def test_a_missing_starting_model_is_refused_by_the_config(value):
    with pytest.raises(ValueError, match="init_from .* is not a model file"):
        TrainConfig(data="x", init_from=value).validate()
    assert TrainConfig(data="x").validate().init_from is None


def test_the_config_refuses_a_card_of_another_architecture_before_any_run(tmp_path, source_run):
    from core.train_config import init_from_mismatch

    start = str(source_run / "best.keras")  # a run checkpoint: its config says fer_vgg, width 4, dense_units 16
    assert init_from_mismatch(start, "fer_vgg", {"width": 4, "dense_units": 16}) is None
    # Another dropout keeps every weight's shape: fine-tuning with more dropout is allowed.
    assert init_from_mismatch(start, "fer_vgg", {"width": 4, "dense_units": 16, "dropout_rate": 0.6}) is None
    with pytest.raises(ValueError, match="best.keras is a fer_vgg and this run trains a mini_xception"):
        TrainConfig(data="x", model="mini_xception", init_from=start).validate()
    with pytest.raises(ValueError, match=r"other hyperparameters \(width=4 there, 8 here\)"):
        TrainConfig(data="x", model_params={"width": 8, "dense_units": 16}, init_from=start).validate()
