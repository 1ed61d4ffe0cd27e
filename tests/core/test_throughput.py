"""Training duration estimates: this machine's runs first, the benchmark otherwise."""

import json

import pytest

from core import runs
from core.throughput import BENCH_IMAGES_PER_SECOND, estimate_seconds, model_throughput, training_images


def make_run(runs_dir, name, model, train_images, epoch_times):
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"config": {"model": model, "epochs": 9},
                                                     "resolved": {"train_images": train_images}}))
    runs.write_metrics(run_dir, [{"epoch": i + 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5,
                                  "lr": 1e-3, "epoch_time": t} for i, t in enumerate(epoch_times)])
    runs.write_status(run_dir, "finished")


def test_measured_epochs_of_this_machine_win_over_the_benchmark(tmp_path):
    make_run(tmp_path, "a", "fer_vgg", 1000, [50.0, 10.0, 10.0])  # first epoch (graph building) left out
    make_run(tmp_path, "b", "fer_vgg", 2000, [40.0, 20.0])
    make_run(tmp_path, "c", "mini_xception", 1000, [1.0, 1.0])
    throughput = model_throughput("fer_vgg", tmp_path)
    assert throughput.measured_here and throughput.images_per_second == pytest.approx(100.0)
    assert throughput.source == "3 epoch(s) of 2 run(s) on this machine"


def test_a_model_never_trained_here_uses_the_benchmark(tmp_path):
    throughput = model_throughput("resnet18", tmp_path)
    assert not throughput.measured_here and throughput.images_per_second == BENCH_IMAGES_PER_SECOND["resnet18"]
    assert model_throughput("no_such_model", tmp_path) is None


def test_estimate_counts_the_validation_slice_and_the_subset():
    assert training_images(None, "split", 0.1) == 25838 and training_images(None, "publictest", 0.1) == 28709
    assert training_images(1000, "split", 0.2) == 800
    from core.throughput import Throughput

    assert estimate_seconds(Throughput(100.0, "test", True), 1000, 3) == 30.0
    with pytest.raises(ValueError):
        estimate_seconds(Throughput(0.0, "test", True), 1000, 3)
