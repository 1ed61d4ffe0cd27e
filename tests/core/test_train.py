import json
import os
import re
import signal
import time

import numpy as np
import pytest

from core import jobs, runs
from core.__main__ import main
from core.augment import AugmentConfig
from core.dataset import FerDataset, LoadReport
from core.labels import NUM_CLASSES
from core.model_io import load_model
from core.train import balanced_class_weights, prepare_run, run_training, split_training_data
from core.train_config import TrainConfig


def write_fer_csv(path, per_class=12, usages=("Training",)):
    """A small fer2013.csv whose classes differ in brightness, so a model can learn something."""
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    for usage in usages:
        for label in range(NUM_CLASSES):
            for _ in range(per_class):
                pixels = np.clip(rng.normal(30 + label * 30, 20, 48 * 48), 0, 255).astype(int)
                lines.append(f"{label},{' '.join(map(str, pixels))},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train-data")
    os.environ.setdefault("FER_STUDIO_CACHE", str(folder / "cache"))
    return write_fer_csv(folder / "fer2013.csv", usages=("Training", "PublicTest"))


def tiny_config(data, **overrides):
    values = dict(data=str(data), model="fer_vgg", model_params={"width": 4, "dense_units": 16}, epochs=2,
                  batch_size=16, augment=AugmentConfig(engine="idg"), lr_schedule="cosine")
    values.update(overrides)
    return TrainConfig(**values)


def test_tiny_run_writes_every_file_of_the_run_folder(tmp_path, train_csv):
    run_dir = prepare_run(tiny_config(train_csv), tmp_path)
    status = run_training(run_dir, echo=lambda line: None)
    assert status.state == "finished", status.message
    for name in ("config.json", "status.json", "metrics.csv", "progress.json", "best.keras", "last.keras", "state.json"):
        assert (run_dir / name).is_file(), name
    saved = runs.read_config(run_dir)
    assert saved["config"]["model"] == "fer_vgg"
    assert saved["resolved"]["data_hash"]
    assert saved["resolved"]["class_names"][6] == "neutral"
    # What always answering one class would score on this run's own validation data (its guessing level).
    counts = saved["resolved"]["val_class_counts"]
    assert len(counts) == 7 and sum(counts) == saved["resolved"]["val_images"]
    assert "keras" in saved["resolved"]["versions"]
    metrics = runs.read_metrics(run_dir)
    assert [row["epoch"] for row in metrics] == [1, 2]
    assert set(runs.METRIC_COLUMNS) <= set(metrics[0])
    # The validation part of each epoch is timed apart (core.throughput rates training and validation apart).
    assert all(0 < row["val_time"] < row["epoch_time"] for row in metrics), metrics
    progress = runs.read_progress(run_dir)
    assert progress["epoch"] == 2 and progress["batch"] == progress["batches"]
    best = load_model(run_dir / "best.keras")
    assert best.class_names[3] == "happy" and best.meta["run"] == run_dir.name


def test_a_class_of_one_image_stays_in_training_and_a_small_slice_says_its_real_share(tmp_path):
    # Before: the only "disgust" face went to validation (the model never saw one), and a 5-image
    # set was announced as a "10% stratified slice" while 80% of it validated.
    labels = np.array([0] * 6 + [1] + [3] * 6)
    n = len(labels)
    dataset = FerDataset(np.zeros((n, 48, 48), np.uint8), labels, np.array(["Training"] * n),
                         np.array([f"Training_{i}" for i in range(n)]), LoadReport("x", "csv", n))
    (_, y_train), (_, y_val) = split_training_data(dataset, tiny_config("x"))
    assert 1 in y_train and 1 not in y_val
    assert sorted(y_val.tolist()) == [0, 3]
    data = write_fer_csv(tmp_path / "fer2013.csv", per_class=2)
    lines = []
    run_dir = prepare_run(tiny_config(data, epochs=1), tmp_path / "runs")
    assert run_training(run_dir, echo=lines.append).state == "finished"
    source = runs.read_config(run_dir)["resolved"]["val_source"]
    assert source == "10% stratified slice of Training (here 7 of 14 images, 50%: at least one of each class)"
    assert not any("no training images of" in line for line in lines)
    only_some = tmp_path / "some.csv"
    only_some.write_text("\n".join(line for line in data.read_text().splitlines() if not line.startswith(("1,", "2,"))) + "\n")
    run_dir = prepare_run(tiny_config(only_some, epochs=1), tmp_path / "runs")
    lines.clear()
    assert run_training(run_dir, echo=lines.append).state == "finished"
    assert "note: no training images of disgust, fear: the model cannot learn to predict them" in lines


def test_validation_never_uses_private_test():
    rng = np.random.default_rng(0)
    n = 70 * 3
    splits = np.array(["Training"] * 70 + ["PublicTest"] * 70 + ["PrivateTest"] * 70)
    ids = np.array([f"{s}_{i}" for i, s in enumerate(splits)])
    dataset = FerDataset(rng.integers(0, 255, (n, 48, 48), dtype=np.uint8), np.tile(np.arange(7), 30),
                         splits, ids, LoadReport("x", "csv", n))
    for validation in ("split", "publictest"):
        config = tiny_config("x", validation=validation, val_fraction=0.2)
        (x_train, _), (x_val, y_val) = split_training_data(dataset, config)
        private = dataset.subset("PrivateTest").images
        used = np.concatenate([x_train, x_val])
        assert not any((used == image).all(axis=(1, 2)).any() for image in private)
        assert set(np.unique(y_val)) == set(range(7))  # stratified: every class validated


def test_epoch_sizes_match_the_split_training_uses():
    # Walk s18: the form said "validating 2,871 images" and the run validated on 2,872 (the slice is rounded per class).
    from core.train import epoch_sizes

    labels = np.repeat(np.arange(NUM_CLASSES), [3995, 436, 4097, 7215, 4830, 3171, 4965])  # FER2013's Training
    n = len(labels)
    dataset = FerDataset(np.zeros((n, 48, 48), np.uint8), labels, np.array(["Training"] * n),
                         np.array([f"Training_{i}" for i in range(n)]), LoadReport("x", "csv", n))
    counts = np.bincount(labels).tolist()
    for fraction, cap in ((0.1, None), (0.2, 300), (0.05, 5000), (0.1, 26000)):
        (x_train, _), (x_val, _) = split_training_data(dataset, tiny_config("x", val_fraction=fraction,
                                                                            max_train_images=cap))
        assert epoch_sizes(counts, "split", fraction, cap, 3589) == (len(x_train), len(x_val)), (fraction, cap)
    assert epoch_sizes(counts, "split", 0.1, None, 3589) == (28709 - 2872, 2872)
    assert epoch_sizes(counts, "publictest", 0.1, None, 3589) == (28709, 3589)
    # A class of one stays in training; a cap keeps at least one of each class.
    assert epoch_sizes([1, 10, 0, 5, 5, 5, 5], "split", 0.5, None, 0) == (18, 13)  # round(2.5) is 2
    assert epoch_sizes([1, 10, 0, 5, 5, 5, 5], "split", 0.5, 4, 0) == (6, 13)


def test_class_weights_favour_rare_classes():
    labels = np.array([3] * 160 + [1] * 10 + [0] * 30)
    weights = balanced_class_weights(labels)
    assert weights[1] > weights[0] > weights[3]
    assert weights[2] == 1.0  # absent class


@pytest.mark.parametrize("field, value, message", [
    ("optimizer", "adagrad", "optimizer must be one of"),
    ("model", "nope", "known models"),
    ("epochs", 0, "epochs"),
    ("val_fraction", 0.9, "val_fraction"),
    ("model_params", {"width": 4, "depth": 9}, "has no hyperparameter 'depth'; it takes .*width"),
    ("model_params", {"width": 4, "crop": 48}, "crop must be 0"),
])
def test_invalid_settings_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_config("x", **{field: value}).validate()


def test_config_round_trips_through_json():
    config = tiny_config("data.csv", augment=AugmentConfig(engine="layers", rotation=5.0))
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_cli_trains_and_prints_the_run_folder(tmp_path, train_csv, capsys):
    code = main(["train", "--data", str(train_csv), "--model", "fer_vgg", "--param", "width=4", "--param", "dense_units=8",
                 "--epochs", "1", "--batch-size", "32", "--augment", "none", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    run_dir = out.strip().splitlines()[-1]
    assert (tmp_path / os.path.basename(run_dir) / "best.keras").is_file()
    assert "epoch 1/1" in out
    # Walk s12: a foreground run had no train.log; it now keeps what it printed, once.
    log = (tmp_path / os.path.basename(run_dir) / "train.log").read_text()
    assert log.count("epoch 1/1") == 1 and "training fer_vgg on 77 images" in log, log


def test_a_run_that_fails_says_so_once_and_exits_1(tmp_path, train_csv, capsys):
    run_dir = prepare_run(tiny_config(train_csv), tmp_path)
    (run_dir / "checkpoint.json").write_text('{"epoch": 2, "folder": "../../../etc"}')  # damaged by hand
    assert main(["train", "--resume", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert out.count("failed: ") == 1 and "cannot be resumed" in out
    assert out.strip().splitlines()[-1] == str(run_dir)


def test_cli_lists_models_and_rejects_unknown(capsys):
    assert main(["train", "--list-models"]) == 0
    assert "mini_xception" in capsys.readouterr().out
    assert main(["train", "--data", "x.csv", "--model", "nope"]) == 2
    assert "known models" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (["--param", "width=[1,"], "hyperparameter width takes a whole number like 32, got '\\[1,'"),
    (["--param", "width=-4"], "hyperparameter width must be at least 1, got -4"),
    (["--param", "dropout_rate=1.5"], "hyperparameter dropout_rate must be in \\[0, 1\\), got 1.5"),
    (["--optimizer", "sgd", "--momentum", "-1"], "momentum must be in \\[0, 1\\), got -1"),
    (["--optimizer", "adamw", "--weight-decay", "-1"], "weight_decay must be in \\[0, 1\\), got -1"),
    # Probe s19: a negative early-stopping patience ended a 4-epoch run after 2, without a word.
    (["--early-stopping", "-1"], "early_stopping_patience are epochs, >= 0 .* got 3 and -1"),
    (["--lr-schedule", "plateau", "--plateau-patience", "-1"], "got -1 and 0"),
    (["--lr-schedule", "plateau", "--plateau-factor", "1.5"], "plateau_factor must be in \\(0, 1\\) .* got 1.5"),
    (["--lr-schedule", "plateau", "--plateau-factor", "nan"], "plateau_factor must be in \\(0, 1\\) .* got nan"),
    (["--seed", "-1"], "seed must be a whole number from 0 to 2\\*\\*32 - 1, got -1"),
    (["--seed", "99999999999999999999"], "seed must be a whole number .* got 99999999999999999999"),
])
def test_bad_options_are_refused_before_a_run_folder_exists(tmp_path, train_csv, capsys, options, message):
    # Before: each made a run folder, failed inside the worker with a Keras or optimizer error and stayed listed.
    code = main(["train", "--data", str(train_csv), "--model", "fer_vgg", "--epochs", "1", "--out", str(tmp_path), *options])
    assert code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


def test_resume_refuses_options_it_would_ignore_and_accepts_the_same_data_moved(tmp_path, capsys):
    import shutil

    (tmp_path / "here").mkdir()
    data = write_fer_csv(tmp_path / "here" / "fer2013.csv", per_class=12)
    run_dir = prepare_run(tiny_config(data, epochs=2, augment=AugmentConfig(engine="none")), tmp_path / "runs")
    runs.request_stop(run_dir)  # stops at the first batch: nothing trained yet, but the data hash is recorded
    assert run_training(run_dir, echo=lambda line: None).state == "stopped"
    capsys.readouterr()
    # Before: --epochs 6 --lr 5 were dropped without a word.
    assert main(["train", "--resume", str(run_dir), "--epochs", "6", "--lr", "5"]) == 2
    assert "--epochs, --lr would be ignored" in capsys.readouterr().err
    moved = tmp_path / "moved"
    shutil.move(str(tmp_path / "here"), moved)
    other = write_fer_csv(tmp_path / "other.csv", per_class=13)
    assert main(["train", "--resume", str(run_dir), "--data", str(other)]) == 2
    assert "is not the data this run started on" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_dir), "--data", str(moved / "fer2013.csv")]) == 0
    out = capsys.readouterr().out
    assert "(same content)" in out and "finished:" in out
    assert runs.read_config(run_dir)["config"]["data"] == str(moved / "fer2013.csv")
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == [1, 2]


def _wait_for(predicate, timeout=300.0):  # generous: two TensorFlow workers beside another test process
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_killed_worker_reads_as_failed_and_resumes_from_its_checkpoint(tmp_path, train_csv):
    config = tiny_config(train_csv, epochs=4, batch_size=4, augment=AugmentConfig(engine="none"))
    run_dir = jobs.start_training_job(config, tmp_path)
    assert _wait_for(lambda: len(runs.read_metrics(run_dir)) >= 1), (run_dir / "train.log").read_text()
    pid = runs.read_json(run_dir / "status.json")["pid"]
    time.sleep(0.2)  # into the second epoch
    os.kill(pid, signal.SIGKILL)
    assert _wait_for(lambda: runs.read_status(run_dir).state == "failed", 10)
    assert "Resume" in runs.read_status(run_dir).message
    done = len(runs.read_metrics(run_dir))
    assert done < 4
    jobs.resume_training_job(run_dir)
    assert _wait_for(lambda: runs.read_status(run_dir).state in ("finished", "failed")), (run_dir / "train.log").read_text()
    assert runs.read_status(run_dir).state == "finished", (run_dir / "train.log").read_text()
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == [1, 2, 3, 4]
    log = (run_dir / "train.log").read_text()
    assert "resuming after epoch" in log
    assert log.count("resuming after epoch") == 1  # a detached worker's output is train.log: not written twice


@pytest.mark.slow
def test_two_runs_at_once_keep_their_own_files_and_a_stop_reaches_only_its_run(tmp_path, train_csv):
    # Same model, same runs folder, started in the same second: the page lets a user do exactly this.
    slow = tiny_config(train_csv, epochs=30, batch_size=4, augment=AugmentConfig(engine="none"), seed=1)
    quick = tiny_config(train_csv, epochs=3, seed=2)
    slow_dir = jobs.start_training_job(slow, tmp_path)
    quick_dir = jobs.start_training_job(quick, tmp_path)
    assert slow_dir != quick_dir
    assert _wait_for(lambda: len(runs.read_metrics(slow_dir)) >= 1), (slow_dir / "train.log").read_text()
    runs.request_stop(slow_dir)
    assert _wait_for(lambda: not runs.read_status(slow_dir).active and not runs.read_status(quick_dir).active)
    assert runs.read_status(slow_dir).state == "stopped", (slow_dir / "train.log").read_text()
    assert runs.read_status(quick_dir).state == "finished", (quick_dir / "train.log").read_text()
    assert [row["epoch"] for row in runs.read_metrics(quick_dir)] == [1, 2, 3]
    assert 1 <= len(runs.read_metrics(slow_dir)) < 30
    for run_dir, config in ((slow_dir, slow), (quick_dir, quick)):
        assert runs.read_config(run_dir)["config"] == config.to_dict()
        assert load_model(run_dir / "best.keras").meta["run"] == run_dir.name
    assert {summary.run_id: summary.status.state for summary in runs.list_runs(tmp_path)} == {
        slow_dir.name: "stopped", quick_dir.name: "finished"}


def test_stop_request_ends_the_run_as_stopped_and_drops_the_cut_epoch(tmp_path, train_csv):
    run_dir = prepare_run(tiny_config(train_csv, epochs=2), tmp_path)
    runs.request_stop(run_dir)  # honoured at the first batch
    status = run_training(run_dir, echo=lambda line: None)
    assert status.state == "stopped"
    assert re.fullmatch(r"stopped by request during epoch 1 \(1/\d+ batches; Resume trains it again whole\); "
                        r"no checkpoint yet", status.message), status.message
    assert runs.read_metrics(run_dir) == []  # the cut-short epoch is not recorded
    assert not (run_dir / "last.keras").exists()
    # Resuming clears the old stop request and trains every epoch.
    assert run_training(run_dir, resume=True, echo=lambda line: None).state == "finished"
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == [1, 2]


def test_a_stop_during_a_later_epoch_says_which_epoch_it_cut_and_which_was_kept(tmp_path, train_csv, monkeypatch):
    # Walk s22: "stopped by request after epoch 2", read after a Stop at batch 378/404, looked like a Stop that had
    # waited for the end of the epoch; it had cut epoch 3 short.
    from core.callbacks import RunRecorder

    run_dir = prepare_run(tiny_config(train_csv, epochs=3), tmp_path)
    commit = RunRecorder.commit_epoch

    def commit_then_stop(self, epoch):
        commit(self, epoch)
        runs.request_stop(run_dir)  # honoured at the next epoch's first batch

    monkeypatch.setattr(RunRecorder, "commit_epoch", commit_then_stop)
    status = run_training(run_dir, echo=lambda line: None)
    assert status.state == "stopped" and [row["epoch"] for row in runs.read_metrics(run_dir)] == [1]
    assert re.fullmatch(r"stopped by request during epoch 2 \(1/\d+ batches; Resume trains it again whole\); "
                        r"epoch 1's checkpoints kept", status.message), status.message


def test_a_stopped_epoch_is_not_validated_before_the_run_ends(tmp_path, monkeypatch):
    # Walk s18: Keras validates an epoch cut short by Stop before fit returns; that epoch is dropped anyway, and its
    # validation made a stop take 42 s instead of the seconds of one batch. Now one validation batch runs.
    from core.callbacks import RunRecorder

    data = write_fer_csv(tmp_path / "fer2013.csv", per_class=80, usages=("Training", "PublicTest"))
    batches: list[int] = []
    monkeypatch.setattr(RunRecorder, "on_test_batch_end", lambda self, batch, logs=None: batches.append(batch),
                        raising=False)
    run_dir = prepare_run(tiny_config(data, epochs=1, validation="publictest", augment=AugmentConfig(engine="none")),
                          tmp_path / "runs")
    runs.request_stop(run_dir)  # honoured at the first batch
    assert run_training(run_dir, echo=lambda line: None).state == "stopped"
    assert batches == [0]  # one of the three batches of 256 of PublicTest's 560 images
    batches.clear()
    # An epoch that ran whole is validated whole.
    assert run_training(run_dir, resume=True, echo=lambda line: None).state == "finished"
    assert batches == [0, 1, 2]
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == [1]


@pytest.mark.slow
def test_resume_refuses_data_that_changed_since_the_run_started(tmp_path):
    data = write_fer_csv(tmp_path / "fer2013.csv", per_class=12)
    run_dir = prepare_run(tiny_config(data, epochs=3, batch_size=8, augment=AugmentConfig(engine="none")), tmp_path / "runs")
    lines = []
    status = run_training(run_dir, echo=lines.append)
    assert status.state == "finished", status.message
    recorded = runs.read_config(run_dir)["resolved"]
    assert recorded["skipped_records"] == 0
    runs.write_status(run_dir, "stopped", "by hand")
    # A user drops some faces, then resumes: the validation slice would be drawn from other data.
    rows = data.read_text().splitlines()
    data.write_text("\n".join(rows[:-10]) + "\n")
    lines.clear()
    status = run_training(run_dir, resume=True, echo=lines.append)
    assert status.state == "failed"
    assert "has changed since this run started" in status.message and "start a new run" in status.message
    assert runs.read_config(run_dir)["resolved"]["data_hash"] == recorded["data_hash"]  # the record is kept
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == [1, 2, 3]


def test_a_run_reports_and_records_the_records_it_could_not_load(tmp_path):
    data = write_fer_csv(tmp_path / "fer2013.csv", per_class=12)
    with data.open("a") as handle:
        handle.write("3,1 2 3,Training\n9," + " ".join(["0"] * 2304) + ",Training\n")
    run_dir = prepare_run(tiny_config(data, epochs=1), tmp_path / "runs")
    lines = []
    assert run_training(run_dir, echo=lines.append).state == "finished"
    assert any("2 records" in line and "could not be loaded" in line for line in lines), lines
    assert runs.read_config(run_dir)["resolved"]["skipped_records"] == 2


def test_resume_refuses_an_active_run_or_one_without_checkpoint(tmp_path, train_csv):
    run_dir = prepare_run(tiny_config(train_csv), tmp_path)
    runs.write_status(run_dir, "running", pid=os.getpid())
    with pytest.raises(ValueError, match=f"already being trained by pid {os.getpid()}"):
        jobs.resume_training_job(run_dir)
    runs.write_status(run_dir, "failed", "boom")
    with pytest.raises(ValueError, match="no checkpoint"):
        jobs.resume_training_job(run_dir)


def test_command_line_reproduces_the_config():
    import shlex

    from core.commands.train import config_from_args
    from core.__main__ import build_parser
    from core.train import command_line

    config = tiny_config("data dir/fer.csv", optimizer="sgd", learning_rate=0.01, label_smoothing=0.1, class_weights=True,
                         augment=AugmentConfig(engine="layers", rotation=5.0), epochs=7,
                         model_params={"width": 4, "dense_units": 16, "crop": 40})
    argv = shlex.split(command_line(config))[3:]
    assert "--param crop=40" in command_line(config)
    assert config_from_args(build_parser().parse_args(argv)) == config


def test_the_cli_starts_from_the_models_recipe_as_the_training_form_does():
    import shlex

    from core import models
    from core.__main__ import build_parser
    from core.commands.train import config_from_args
    from core.train import command_line
    from core.train_config import RECIPE_FIELDS, recipe_defaults

    def parse(*argv):
        return config_from_args(build_parser().parse_args(["train", "--data", "fer.csv", *argv]))

    bundled = parse("--model", "fer_vgg")  # the bundled model's recipe, not TrainConfig's bare defaults
    assert (bundled.epochs, bundled.label_smoothing, bundled.lr_schedule) == (40, 0.1, "cosine")
    seed_a = parse("--model", "article_cnn")
    assert (seed_a.epochs, seed_a.lr_schedule, seed_a.plateau_factor, seed_a.early_stopping_patience) == (100, "plateau", 0.9, 6)
    chosen = parse("--model", "article_cnn", "--lr-schedule", "cosine", "--epochs", "3", "--label-smoothing", "0")
    assert (chosen.lr_schedule, chosen.epochs, chosen.label_smoothing) == ("cosine", 3, 0.0)
    with pytest.raises(ValueError, match="fer_vgg"):
        parse("--model", "no_such_model")
    for spec in models.list_models():
        assert set(spec.recipe) <= set(RECIPE_FIELDS), spec.name
    # The recorded command names every setting that differs from the recipe or from the bare
    # defaults, so the CLI rebuilds the config whichever of the two it starts from.
    bare = TrainConfig(data="fer.csv")
    for config in (bundled, seed_a, chosen, tiny_config("fer.csv", label_smoothing=0.0),
                   TrainConfig(data="fer.csv", model="face_cnn", momentum=0.5)):
        line = command_line(config)
        assert config_from_args(build_parser().parse_args(shlex.split(line)[3:])) == config
        recipe = recipe_defaults(config.model)
        for name in RECIPE_FIELDS:
            value = getattr(config, name)
            if value != getattr(bare, name) or value != recipe[name]:
                flag = {"learning_rate": "--lr", "early_stopping_patience": "--early-stopping"}.get(
                    name, "--" + name.replace("_", "-"))
                assert f"{flag} {value}" in line, (name, line)
    assert "--label-smoothing 0.0" in command_line(tiny_config("fer.csv", label_smoothing=0.0))
    assert "--lr-schedule cosine" in command_line(chosen)


def test_plateau_on_validation_accuracy_through_the_cli(tmp_path, train_csv, capsys):
    import shlex

    from core.__main__ import build_parser
    from core.commands.train import config_from_args
    from core.train import command_line

    code = main(["train", "--data", str(train_csv), "--model", "fer_vgg", "--param", "width=4", "--param", "dense_units=8",
                 "--epochs", "2", "--batch-size", "32", "--augment", "none", "--optimizer", "sgd", "--lr", "0.01",
                 "--lr-schedule", "plateau", "--plateau-metric", "val_accuracy", "--plateau-patience", "1",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = tmp_path / os.path.basename(out.strip().splitlines()[-1])
    config = runs.read_config(run_dir)["config"]
    assert config["lr_schedule"] == "plateau" and config["plateau_metric"] == "val_accuracy"
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == [1, 2]
    rebuilt = TrainConfig.from_dict(config)
    assert config_from_args(build_parser().parse_args(shlex.split(command_line(rebuilt))[3:])) == rebuilt
    with pytest.raises(ValueError, match="plateau_metric"):
        tiny_config("data.csv", plateau_metric="loss").validate()


def test_a_run_leaves_the_global_dtype_policy_as_it_found_it(tmp_path, train_csv):
    import keras

    before = keras.mixed_precision.global_policy().name
    run_dir = prepare_run(tiny_config(train_csv, epochs=1, precision="bfloat16"), tmp_path)
    status = run_training(run_dir, echo=lambda line: None)
    assert status.state == "finished", status.message
    assert runs.read_config(run_dir)["resolved"]["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before


def test_a_run_started_with_data_roots_never_trains_on_a_link_leading_out_of_them(tmp_path, tiny_fer_folder):
    import shutil

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    stray = next((tiny_fer_folder / "train" / "happy").iterdir())
    shutil.copy(stray, outside / "secret.jpg")
    (tiny_fer_folder / "train" / "happy" / "Training_9999.jpg").symlink_to(outside / "secret.jpg")
    counts = {}
    for label, recorded in (("cli", None), ("page", [str(tiny_fer_folder.parent / "fer2013")])):
        run_dir = prepare_run(tiny_config(tiny_fer_folder, epochs=1, augment=AugmentConfig(engine="none")), tmp_path / label)
        if recorded is not None:  # what jobs.start_training_job(..., data_roots=...) records for the worker
            saved = runs.read_config(run_dir)
            saved["data_roots"] = recorded
            runs.write_json_atomic(run_dir / "config.json", saved)
        status = run_training(run_dir, echo=lambda line: None)
        assert status.state == "finished", status.message
        resolved = runs.read_config(run_dir)["resolved"]
        counts[label] = resolved["train_images"] + resolved["val_images"]
        assert runs.read_config(run_dir).get("data_roots") == recorded  # kept for a Resume
    assert counts["cli"] == counts["page"] + 1  # the command line may follow the link; the page's run may not


def test_start_training_job_records_the_pages_data_roots(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "_spawn", lambda run_dir, lock, *flags: lock.release() or 4242)
    run_dir = jobs.start_training_job(tiny_config("data.csv"), tmp_path, data_roots=[tmp_path / "data"])
    assert runs.read_config(run_dir)["data_roots"] == [str(tmp_path / "data")]
    assert "data_roots" not in runs.read_config(jobs.start_training_job(tiny_config("data.csv"), tmp_path))


@pytest.mark.parametrize("quick", [None, ("running", ""), ("failed", "ValueError: no dataset at data.csv")])
def test_the_pages_queued_never_overwrites_what_a_quick_worker_wrote(tmp_path, monkeypatch, quick):
    # Review s20: "queued" with the worker's pid was written after the worker started, over what it had written by
    # then: "running" read "queued" for the whole run, and a failure's reason became "exited with code 1".
    def spawn(run_dir, lock, *flags):
        lock.release()
        assert runs.read_status(run_dir).state == "queued"  # said before the worker starts
        if quick is not None:
            runs.write_status(run_dir, quick[0], quick[1], pid=4242 if quick[0] == "running" else None)
        return 4242

    monkeypatch.setattr(jobs, "_spawn", spawn)
    run_dir = jobs.start_training_job(tiny_config("data.csv"), tmp_path)
    status = runs.read_json(run_dir / "status.json")
    if quick is None:
        assert (status["state"], status["message"], status["pid"]) == ("queued", "starting the worker", 4242)
    else:
        assert (status["state"], status["message"]) == quick
    monkeypatch.setattr(runs, "has_checkpoint", lambda run_dir: True)
    runs.write_status(run_dir, "stopped", "stopped by the user")
    jobs.resume_training_job(run_dir)
    status = runs.read_json(run_dir / "status.json")
    assert (status["state"], status["message"]) == (quick or ("queued", "resuming"))


def test_a_worker_that_cannot_start_leaves_a_failed_run_not_a_queued_one(tmp_path, monkeypatch):
    def cannot_start(run_dir, lock, *flags):
        lock.release()
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(jobs, "_spawn", cannot_start)
    with pytest.raises(OSError):
        jobs.start_training_job(tiny_config("data.csv"), tmp_path)
    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    status = runs.read_status(run_dir)
    assert status.state == "failed" and "could not be started: [Errno 24] Too many open files" in status.message
    assert jobs.training_runs(tmp_path) == []  # counts against no limit


def test_no_more_runs_train_at_once_than_the_limit(tmp_path, monkeypatch):
    # Review s20: Start and Resume never counted the runs training; a dozen clicks (1.8 GB each) ran out of memory.
    monkeypatch.setattr(jobs, "_spawn", lambda run_dir, lock, *flags: lock.release() or os.getpid())  # alive
    monkeypatch.delenv(jobs.WORKERS_VARIABLE, raising=False)
    first = jobs.start_training_job(tiny_config("data.csv"), tmp_path)
    second = jobs.start_training_job(tiny_config("data.csv"), tmp_path)
    with pytest.raises(jobs.TrainingBusy, match=r"2 runs are training already .*FER_STUDIO_TRAIN_WORKERS=2\); stop one"):
        jobs.start_training_job(tiny_config("data.csv"), tmp_path)
    assert jobs.training_runs(tmp_path) == sorted([first, second])
    assert len([path for path in tmp_path.iterdir() if path.is_dir()]) == 2  # the refused start made no run folder
    runs.write_status(second, "stopped", "stopped by the user")
    monkeypatch.setattr(runs, "has_checkpoint", lambda run_dir: True)
    third = jobs.start_training_job(tiny_config("data.csv"), tmp_path)  # a place came free
    with pytest.raises(jobs.TrainingBusy):
        jobs.resume_training_job(second)  # a Resume counts too
    assert runs.read_status(second).state == "stopped"
    monkeypatch.setenv(jobs.WORKERS_VARIABLE, "3")
    jobs.resume_training_job(second)
    assert jobs.training_runs(tmp_path) == sorted([first, second, third])


def test_a_reaper_late_to_record_a_killed_worker_does_not_overwrite_the_resumed_one(tmp_path, monkeypatch):
    import subprocess
    import sys
    import threading

    real_popen, started = subprocess.Popen, []

    def stand_in(command, **options):  # the worker sleeps instead of training
        process = real_popen([sys.executable, "-c", "import time; time.sleep(60)"], **options)
        started.append(process)
        return process

    real_write = runs.write_status

    def write_status(run_dir, state, *args, **fields):
        if state == "failed" and threading.current_thread() is not threading.main_thread():
            time.sleep(1.0)  # the reaper read the killed worker's status, then is descheduled before it writes
        real_write(run_dir, state, *args, **fields)

    monkeypatch.setattr(jobs.subprocess, "Popen", stand_in)
    monkeypatch.setattr(runs, "write_status", write_status)
    monkeypatch.setattr(runs, "has_checkpoint", lambda run_dir: True)
    try:
        run_dir = jobs.start_training_job(tiny_config("data.csv"), tmp_path)
        real_write(run_dir, "running", "epoch 2", pid=started[0].pid)
        started[0].kill()
        assert _wait_for(lambda: runs.read_status(run_dir).state == "failed", 10)  # the page sees it, offers Resume
        jobs.resume_training_job(run_dir)
        time.sleep(1.5)  # the stalled reaper is done by now, whichever way
        status = runs.read_json(run_dir / "status.json")
        assert (status["state"], status["pid"]) == ("queued", started[1].pid)
    finally:
        for process in started:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_time_budget_stops_the_run_and_anneals_over_the_budget(tmp_path, train_csv, monkeypatch):
    import core.callbacks

    class TickingClock:
        """The run's clock advances 0.01 s per reading, so the test does not depend on the machine's speed."""

        def __init__(self):
            self.now = 1_000_000.0

        def time(self):
            self.now += 0.01
            return self.now

    monkeypatch.setattr(core.callbacks, "time", TickingClock())
    run_dir = prepare_run(tiny_config(train_csv, epochs=500, time_budget_min=0.05, augment=AugmentConfig(engine="none")), tmp_path)
    lines: list[str] = []
    status = run_training(run_dir, echo=lines.append)
    assert status.state == "finished", status.message
    assert "in the 0.05-minute time budget" in status.message
    rows = runs.read_metrics(run_dir)
    assert 5 <= len(rows) < 500
    state = runs.read_json(run_dir / "state.json")
    # Stopped before an epoch that would have ended past the 3 s budget: one more epoch would not fit.
    per_epoch = state["train_seconds"] / len(rows)
    assert state["train_seconds"] <= 3.0 < state["train_seconds"] + 2 * per_epoch, state
    lrs = [row["lr"] for row in rows]
    assert lrs[0] == pytest.approx(1e-3, rel=1e-2) and all(a > b for a, b in zip(lrs, lrs[1:])), lrs
    # Cosine over the budget's time: the last epoch trained near the end of the decay, not at epoch 10 of 500.
    assert lrs[-1] < 0.1e-3, lrs
    # A resume after the budget is spent trains nothing more.
    assert run_training(run_dir, resume=True, echo=lines.append).state == "finished"
    assert len(runs.read_metrics(run_dir)) == len(rows)


def test_time_budget_cosine_and_stop_rule():
    from core.callbacks import TimeBudget

    class Clock:
        train_seconds = 0.0

    clock = Clock()
    budget = TimeBudget(clock, budget_s=100, base_lr=1e-3, cosine=True)
    assert budget.learning_rate_at(0) == pytest.approx(1e-3)
    assert budget.learning_rate_at(50) == pytest.approx(0.5e-3)
    assert budget.learning_rate_at(100) == budget.learning_rate_at(150) == pytest.approx(0.0)


def test_time_budget_through_the_cli_and_the_command_line(tmp_path):
    import shlex

    from core.__main__ import build_parser
    from core.commands.train import config_from_args
    from core.train import command_line

    args = build_parser().parse_args(["train", "--data", "x.csv", "--time-budget", "38", "--epochs", "1000"])
    config = config_from_args(args)
    assert config.time_budget_min == 38.0
    assert "--time-budget 38.0" in command_line(config)
    assert config_from_args(build_parser().parse_args(shlex.split(command_line(config))[3:])) == config
    with pytest.raises(ValueError, match="time_budget_min"):
        tiny_config("x.csv", time_budget_min=0).validate()
    with pytest.raises(ValueError, match="multiworker"):
        tiny_config("x.csv", time_budget_min=10, strategy="multiworker").validate()


def test_the_eta_follows_the_finished_epochs_and_counts_their_validation(tmp_path):
    # Walk s18: the ETA read "—" at each epoch's start, then 24m 53s, then 10m 13s 15 s later (the first batches of
    # an epoch carry its start), and it left validation out (19 of a 98 s epoch).
    from core import callbacks

    recorder = callbacks.RunRecorder(tmp_path, tiny_config("unused", epochs=5, batch_size=16), {}, lambda line: None,
                                     steps_per_epoch=10, rows=[], val_images=600)
    recorder._epoch = 1
    assert recorder.eta_seconds(0, 0.0) is None  # nothing to go by before the first batch
    # 2 s per batch; validation estimated from that pace: 600 images at 16 / 2 s, 6.6 times faster (bench_train).
    validation = 600 / 16 * 2 / 6.6
    assert recorder.eta_seconds(4, 8.0) == pytest.approx(2 * 6 + validation + 4 * (20 + validation))
    recorder.rows = [{"epoch": 1, "epoch_time": 50.0, "val_time": 5.0}, {"epoch": 2, "epoch_time": 20.0, "val_time": 4.0}]
    recorder._epoch = 3
    # Epoch 2 (not the first, which built the model): 1.6 s per batch, 4 s of validation.
    assert recorder.eta_seconds(0, 0.0) == pytest.approx(1.6 * 10 + 4 + 2 * 20)
    # A first batch that carries 30 s of the epoch's start moves this epoch's rest by the pace it shows, blended
    # (30 s a batch gave 870 s); the epochs after it keep the finished epochs' pace (walk s21: blended into them
    # too, a 16-step run's ETA swung between 4m 40s and 11m 21s).
    slow_start = recorder.eta_seconds(1, 30.0)
    assert slow_start == pytest.approx((30 + 16) / 11 * 9 + 4 + 2 * (1.6 * 10 + 4))  # 82 s; 133 s before
    assert recorder.eta_seconds(10, 16.0) == pytest.approx(4 + 2 * 20)


def test_a_nan_validation_loss_is_reported_once(tmp_path):
    import keras

    from core import callbacks

    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax")(keras.layers.Flatten()(inputs)))
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    lines: list[str] = []
    recorder = callbacks.RunRecorder(tmp_path, tiny_config("unused"), {}, lines.append, steps_per_epoch=3, rows=[])
    recorder.set_model(model)
    for epoch in range(2):
        recorder.on_epoch_begin(epoch)
        recorder.on_epoch_end(epoch, {"loss": 1.9, "accuracy": 0.2, "val_loss": float("nan"), "val_accuracy": 0.14})
        recorder.commit_epoch(epoch)
    warnings = [line for line in lines if line.startswith("warning: validation loss is NaN")]
    assert len(warnings) == 1 and "--precision float32" in warnings[0], lines


def test_a_resume_never_replaces_an_intact_model_with_a_damaged_checkpoint_copy(tmp_path, train_csv):
    # Probe s19: a truncated checkpoints/epoch-N/best.keras (an interrupted copy of the run folder) was linked over
    # the only intact best.keras by a resume; a damaged last.keras was linked over too, then failed to load.
    run_dir = prepare_run(tiny_config(train_csv, epochs=2), tmp_path)
    assert run_training(run_dir, echo=lambda line: None).state == "finished"
    checkpoint = runs.read_checkpoint(run_dir)
    best_copy = runs.checkpoint_folder(run_dir, int(checkpoint.state["best_epoch"])) / "best.keras"
    intact = (run_dir / "best.keras").read_bytes()
    truncated = best_copy.read_bytes()[: len(intact) // 2]
    best_copy.unlink()
    best_copy.write_bytes(truncated)  # a new file: the top-level copy is no longer a link to it
    assert runs.keras_file_damage(best_copy) is not None and runs.keras_file_damage(run_dir / "best.keras") is None
    run_training(run_dir, echo=lambda line: None, resume=True)
    assert (run_dir / "best.keras").read_bytes() == intact
    last_copy = checkpoint.folder / "last.keras"
    last_intact = (run_dir / "last.keras").read_bytes()
    damaged = last_copy.read_bytes()[:1000]
    last_copy.unlink()
    last_copy.write_bytes(damaged)
    with pytest.raises(ValueError, match=r"last.keras of run .* is damaged .*its files were left as they were"):
        runs.sync_run_files(run_dir, verify=True)  # what a resume does
    assert (run_dir / "last.keras").read_bytes() == last_intact


def test_ctrl_c_and_sigterm_stop_the_run_and_exit_like_every_other_command(tmp_path, train_csv, monkeypatch, capsys):
    # Probe s19: train exited 0 after Ctrl-C (so `train && bundle` bundled a half-trained run), and SIGTERM left
    # status.json at "running" under a dead pid.
    import signal

    import core.train

    def interrupted(run_dir, resume, echo):
        raise KeyboardInterrupt

    monkeypatch.setattr(core.train, "_train", interrupted)
    handler = signal.getsignal(signal.SIGTERM)
    args = ["train", "--data", str(train_csv), "--model", "fer_vgg", "--epochs", "1", "--out", str(tmp_path)]
    assert main(args) == 130
    [run_dir] = list(tmp_path.iterdir())
    status = runs.read_status(run_dir)
    assert status.state == "stopped" and status.message.startswith("interrupted (Ctrl-C); Resume continues")

    def terminated(run_dir, resume, echo):
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` does: the handler turns it into a stop
        raise AssertionError("SIGTERM did not interrupt the run")

    monkeypatch.setattr(core.train, "_train", terminated)
    assert main(["train", "--resume", str(run_dir)]) == 143
    assert runs.read_status(run_dir).message.startswith("interrupted (SIGTERM)")
    assert signal.getsignal(signal.SIGTERM) == handler  # put back once the run ended


def test_a_resume_of_a_finished_run_that_cannot_start_leaves_it_finished(tmp_path, train_csv, capsys):
    # Probe s19: the run's data had moved; the resume failed before training and the finished run read "failed".
    import shutil

    data = tmp_path / "data" / "fer2013.csv"
    data.parent.mkdir()
    shutil.copy(train_csv, data)
    run_dir = prepare_run(tiny_config(data, epochs=1), tmp_path / "runs")
    finished = run_training(run_dir, echo=lambda line: None)
    assert finished.state == "finished"
    data.unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "failed: FileNotFoundError" in out and "the run stays finished: this resume trained nothing" in out
    assert f"If the data moved, resume with its new place: python -m core train --resume {run_dir} --data NEW_PATH" in out
    assert runs.read_status(run_dir).state == "finished" and runs.read_status(run_dir).message == finished.message
    # With its data back, a resume that has nothing to train keeps the run's summary ("1 epoch, best ...").
    shutil.copy(train_csv, data)
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert runs.read_status(run_dir).message == finished.message and finished.message.startswith("1 epoch, best")


def test_a_setting_changed_by_hand_into_another_kind_stops_the_run_with_its_name(tmp_path, train_csv):
    # Review s22: validate() passed "tensorboard": "no" (true in Python) and "epochs": 30.0, so a resume trained
    # with them, while the Training page said the run could not be resumed.
    run_dir = prepare_run(tiny_config(train_csv, epochs=1), tmp_path)
    saved = json.loads((run_dir / "config.json").read_text())
    saved["config"]["tensorboard"] = "no"
    saved["config"]["augment"]["horizontal_flip"] = "yes"
    (run_dir / "config.json").write_text(json.dumps(saved))
    status = run_training(run_dir, echo=lambda line: None)
    assert status.state == "failed"
    assert status.message == ("ValueError: config.json: tensorboard is text where a run writes true or false; "
                              "augment.horizontal_flip is text where a run writes true or false (changed by hand?): "
                              "put them back as a run writes them, or start a new run")
    assert not (run_dir / "tensorboard").exists() and runs.read_metrics(run_dir) == []
