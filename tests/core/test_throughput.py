"""Training duration estimates: this machine's runs first, the benchmark otherwise."""

import json

import pytest

from core import runs
from core import distribute
from core.throughput import (BENCH_IMAGES_PER_SECOND, BENCH_VAL_IMAGES_PER_SECOND, RunSettings, estimate_seconds,
                             model_throughput, requested_settings)


def make_run(runs_dir, name, model, train_images, epoch_times, params=None, asked=None, policy=None,
             val_images=None, val_times=None):
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    config = {"model": model, "epochs": 9, "model_params": params or {}, **({"precision": asked} if asked else {})}
    resolved = {"train_images": train_images, **({"precision": policy} if policy else {}),
                **({"val_images": val_images} if val_images else {})}
    (run_dir / "config.json").write_text(json.dumps({"config": config, "resolved": resolved}))
    runs.write_metrics(run_dir, [{"epoch": i + 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5,
                                  "lr": 1e-3, "epoch_time": t, **({"val_time": val_times[i]} if val_times else {})}
                                 for i, t in enumerate(epoch_times)])
    runs.write_status(run_dir, "finished")


def test_measured_epochs_of_this_machine_win_over_the_benchmark(tmp_path):
    make_run(tmp_path, "a", "fer_vgg", 1000, [50.0, 10.0, 10.0])  # first epoch (graph building) left out
    make_run(tmp_path, "b", "fer_vgg", 2000, [40.0, 20.0])
    make_run(tmp_path, "c", "mini_xception", 1000, [1.0, 1.0])
    throughput = model_throughput("fer_vgg", tmp_path)
    assert throughput.measured_here and throughput.images_per_second == pytest.approx(100.0)
    assert throughput.source.startswith("3 epochs of 2 runs on this machine")


def test_a_model_never_trained_here_uses_the_benchmark(tmp_path):
    throughput = model_throughput("resnet18", tmp_path)
    assert not throughput.measured_here and throughput.images_per_second == BENCH_IMAGES_PER_SECOND["resnet18"]
    assert model_throughput("no_such_model", tmp_path) is None


def test_estimate_counts_the_validation_slice_and_the_subset():
    from core.throughput import FER2013_TRAINING_CLASS_COUNTS, Throughput
    from core.train import epoch_sizes

    def training_images(cap, validation, fraction):
        return epoch_sizes(list(FER2013_TRAINING_CLASS_COUNTS), validation, fraction, cap, 3589)[0]

    def validation_images(validation, fraction):
        return epoch_sizes(list(FER2013_TRAINING_CLASS_COUNTS), validation, fraction, None, 3589)[1]

    assert sum(FER2013_TRAINING_CLASS_COUNTS) == 28709
    assert training_images(None, "split", 0.1) == 25837 and training_images(None, "publictest", 0.1) == 28709
    # Walk s12: the form said 270 for a 300-image run; the slice comes out of all of Training, then the cap applies
    # (rounded per class, as the split does).
    assert training_images(300, "split", 0.1) == 300 and training_images(1000, "split", 0.2) == 999  # 7 rounded shares
    assert validation_images("split", 0.1) == 2872 and validation_images("publictest", 0.1) == 3589

    assert estimate_seconds(Throughput(100.0, "test", True), 1000, 3) == 30.0
    # Validation rated apart: 300 training images at 100/s, then 2,000 validation images at 400/s.
    assert estimate_seconds(Throughput(100.0, "test", True, 400.0), 300, 2, 2000) == 2 * (3.0 + 5.0)
    with pytest.raises(ValueError):
        estimate_seconds(Throughput(0.0, "test", True), 1000, 3)


def test_training_and_validation_are_rated_apart_when_the_runs_timed_them(tmp_path):
    # Walk s12: 300 training images beside a 2,872-image slice read as 21 images/s, and a full run as 33 hours.
    make_run(tmp_path, "tiny", "mini_xception", 300, [30.0, 13.0, 14.0], val_images=2872, val_times=[8.0, 12.0, 12.5])
    make_run(tmp_path, "old", "mini_xception", 300, [30.0, 13.0, 14.0])  # before val_time: whole epochs
    throughput = model_throughput("mini_xception", tmp_path)
    # The first epoch is left out; training rates 300/1.0 and 300/1.5, validation 2872/12 and 2872/12.5.
    assert throughput.images_per_second == pytest.approx((300 + 200) / 2)
    assert throughput.val_images_per_second == pytest.approx((2872 / 12 + 2872 / 12.5) / 2)
    assert throughput.source == "2 epochs of 1 run on this machine"
    full = estimate_seconds(throughput, 25838, 1, 2871)
    assert 100 < full < 125  # about 2 minutes an epoch, not the 20 the whole-epoch rate gave

    bench = model_throughput("mini_xception", tmp_path / "no-runs")
    assert not bench.measured_here and bench.val_images_per_second == BENCH_VAL_IMAGES_PER_SECOND["mini_xception"]


def test_a_runs_first_epoch_is_not_its_pace(tmp_path, monkeypatch):
    # Walk s18: a stopped 1,500-image run's one epoch (79 s of training, mostly building the model) read as
    # 19 images/s, and the form then promised 15 hours for a full run instead of 1h 20m.
    make_run(tmp_path, "short", "fer_vgg", 1500, [98.0], val_images=2872, val_times=[18.9])
    throughput = model_throughput("fer_vgg", tmp_path)
    assert not throughput.measured_here and throughput.images_per_second == BENCH_IMAGES_PER_SECOND["fer_vgg"]
    assert throughput.val_images_per_second == BENCH_VAL_IMAGES_PER_SECOND["fer_vgg"]
    # Every model in the zoo has a benchmark figure; one without falls back on first epochs, and says so.
    monkeypatch.delitem(BENCH_IMAGES_PER_SECOND, "fer_vgg")
    first = model_throughput("fer_vgg", tmp_path)
    assert first.measured_here and first.images_per_second == pytest.approx(1500 / (98.0 - 18.9))
    assert first.source.endswith("; first epochs, which also build the model, so slower than the run will be")
    assert set(BENCH_VAL_IMAGES_PER_SECOND) == set(BENCH_IMAGES_PER_SECOND) | {"fer_vgg"}
    assert all(BENCH_VAL_IMAGES_PER_SECOND[name] > BENCH_IMAGES_PER_SECOND.get(name, 214.0) for name in
               BENCH_VAL_IMAGES_PER_SECOND)  # validating an image is cheaper than training on it


def test_runs_that_did_not_time_validation_apart_say_so(tmp_path):
    make_run(tmp_path, "old", "fer_vgg", 1000, [50.0, 10.0])
    throughput = model_throughput("fer_vgg", tmp_path)
    assert throughput.images_per_second == pytest.approx(100.0) and throughput.val_images_per_second is None
    assert throughput.source.endswith("; validation included (older runs did not time it apart)")


def test_runs_with_the_same_crop_and_precision_make_the_estimate(tmp_path):
    make_run(tmp_path, "a", "fer_vgg", 1000, [50.0, 10.0], {"width": 32}, "auto", "mixed_bfloat16")  # 100 img/s
    make_run(tmp_path, "b", "fer_vgg", 1000, [50.0, 5.0], {"width": 32, "crop": 40}, "auto", "mixed_bfloat16")
    make_run(tmp_path, "c", "fer_vgg", 1000, [50.0, 20.0], {"width": 32})  # before precision was recorded: float32
    crop = model_throughput("fer_vgg", tmp_path, RunSettings(40, "mixed_bfloat16"))
    assert crop.images_per_second == pytest.approx(200.0)
    assert crop.source.startswith("1 epoch of 1 run on this machine with the same settings (centre crop 40, "
                                  "mixed_bfloat16)")
    assert model_throughput("fer_vgg", tmp_path, RunSettings(0, "float32")).images_per_second == pytest.approx(50.0)
    assert model_throughput("fer_vgg", tmp_path).images_per_second == pytest.approx(100.0)  # no settings: every run
    other = model_throughput("fer_vgg", tmp_path, RunSettings(44, "float32"))  # none alike: every run, and it says so
    assert other.images_per_second == pytest.approx(100.0) and other.measured_here
    assert "with other settings than these (centre crop 44, float32)" in other.source


def test_a_deeper_fer_vgg_is_estimated_from_runs_of_the_same_depth(tmp_path):
    make_run(tmp_path, "a", "fer_vgg", 1000, [50.0, 10.0], {"width": 32}, "auto", "mixed_bfloat16")  # 100 img/s
    make_run(tmp_path, "b", "fer_vgg", 1000, [50.0, 20.0], {"width": 32, "convs": [3, 3, 3, 2]}, "auto", "mixed_bfloat16")
    make_run(tmp_path, "c", "fer_vgg", 1000, [50.0, 10.0], {"convs": [2, 2, 2, 2]}, "auto", "mixed_bfloat16")  # = 2
    deep = model_throughput("fer_vgg", tmp_path, requested_settings({"convs": [3, 3, 3, 2]}, "bfloat16", tmp_path))
    assert deep.images_per_second == pytest.approx(50.0)
    assert deep.source.split(";")[0].endswith("with the same settings (whole face, conv blocks 3-3-3-2, mixed_bfloat16)")
    usual = model_throughput("fer_vgg", tmp_path, requested_settings({}, "bfloat16", tmp_path))
    assert usual.images_per_second == pytest.approx(100.0) and "2 runs" in usual.source
    assert requested_settings({"convs": 3}, "float32", tmp_path).describe() == "whole face, conv blocks 3-3-3-3, float32"


def test_requested_settings_resolve_auto_as_this_machine_did(tmp_path, monkeypatch):
    monkeypatch.setattr(distribute, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    assert requested_settings({"crop": 40}, "auto", tmp_path) == RunSettings(40, "mixed_bfloat16")
    monkeypatch.setattr(distribute, "cpu_has_native_bf16", lambda cpuinfo=None: False)
    assert requested_settings(None, "auto", tmp_path) == RunSettings(0, "float32")
    make_run(tmp_path, "gpu", "fer_vgg", 1000, [1.0], {}, "auto", "mixed_float16")  # an earlier auto run here
    make_run(tmp_path, "asked", "fer_vgg", 1000, [1.0], {}, "bfloat16", "mixed_bfloat16")  # not asked for auto
    assert requested_settings({}, "auto", tmp_path) == RunSettings(0, "mixed_float16")
    assert requested_settings({"crop": 0}, "bfloat16", tmp_path) == RunSettings(0, "mixed_bfloat16")
    assert requested_settings({}, "float32", tmp_path) == RunSettings(0, "float32")
    assert requested_settings({}, "mixed", tmp_path) == RunSettings(0, "mixed_float16")


def test_the_fixed_part_of_a_run_is_measured_from_earlier_runs(tmp_path):
    # Browser walk s8: a tiny run was estimated at about 5 s and took about 30: starting, loading the data and
    # building the model cost the same whatever the run's size, and the first epoch builds the graph.
    from core.throughput import measured_overhead

    make_run(tmp_path, "a", "fer_vgg", 1000, [50.0, 10.0, 10.0])
    make_run(tmp_path, "b", "fer_vgg", 2000, [40.0, 20.0])
    make_run(tmp_path, "c", "mini_xception", 1000, [9.0, 1.0])
    assert measured_overhead("fer_vgg", tmp_path) is None  # no run recorded its startup yet
    for name, startup in (("a", 20.0), ("b", 30.0), ("c", 26.0)):
        config = json.loads((tmp_path / name / "config.json").read_text())
        config["resolved"]["startup_seconds"] = startup
        (tmp_path / name / "config.json").write_text(json.dumps(config))
    overhead = measured_overhead("fer_vgg", tmp_path)
    assert overhead.startup_seconds == 26.0 and overhead.runs == 3  # every model's runs load the same data
    assert overhead.first_epoch_seconds == 30.0  # median of 40 and 20: this model's own first epochs
    assert overhead.seconds == 56.0
    assert measured_overhead("mini_xception", tmp_path).first_epoch_seconds == 8.0



def test_a_busy_machine_is_named_beside_the_estimate(monkeypatch):
    from core.throughput import busy_machine_note

    assert busy_machine_note(load=1.2, cores=2) is None  # one busy process of two cores' worth
    note = busy_machine_note(load=3.4, cores=2)
    assert note == ("This machine is busy now (load average 3.4 on 2 processor cores): a run started now shares the "
                    "processors with that work and takes longer than on a quiet machine.")
    assert busy_machine_note(load=3.4, cores=2, measured_here=True).endswith(
        "quiet machine. Runs measured while it was busy make the estimate longer too.")
    assert busy_machine_note(load=1.0, cores=1).startswith("This machine is busy now (load average 1.0 on 1 processor core)")
    monkeypatch.setattr("os.getloadavg", lambda: (6.0, 1.0, 1.0))
    monkeypatch.setattr("core.throughput.usable_cores", lambda: 4)
    assert "load average 6.0 on 4 processor cores" in busy_machine_note()
    monkeypatch.setattr("os.getloadavg", lambda: (0.2, 1.0, 1.0))
    assert busy_machine_note() is None
