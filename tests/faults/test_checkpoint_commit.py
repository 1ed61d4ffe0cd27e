"""A run killed at any point resumes with no epoch lost, repeated or replayed (issue 16, items 6 and 7).

The kill is simulated in-process by replacing ``core.callbacks.checkpoint_step``
(called after every write of an epoch's commit) with one that raises a
``BaseException``, which the worker does not catch, as a SIGKILL would not be.
One test kills a real worker process through ``$FER_STUDIO_FAULT_AFTER``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import callbacks, runs
from core.augment import AugmentConfig
from core.model_io import load_model, read_model_meta
from core.train import prepare_run, run_training
from core.train_config import TrainConfig
from tests.core.test_train import write_fer_csv

REPO_ROOT = Path(__file__).resolve().parents[2]
BATCH_SIZE = 16


class SimulatedKill(BaseException):
    """Stands for a SIGKILL: not an Exception, so the worker records nothing."""


@pytest.fixture(scope="module")
def fer_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("commit-data")
    os.environ.setdefault("FER_STUDIO_CACHE", str(folder / "cache"))
    return write_fer_csv(folder / "fer2013.csv", per_class=8)  # 56 images: 50 train (4 batches), 6 validation


def small_config(data, **overrides) -> TrainConfig:
    values = dict(data=str(data), model="fer_vgg", model_params={"width": 4, "dense_units": 16}, epochs=3,
                  batch_size=BATCH_SIZE, augment=AugmentConfig(engine="idg"), precision="float32")
    values.update(overrides)
    return TrainConfig(**values)


def kill_after(monkeypatch, step: str, epoch: int) -> None:
    def checkpoint_step(name: str, number: int) -> None:
        if (name, number) == (step, epoch):
            raise SimulatedKill(f"killed after {name} of epoch {number}")

    monkeypatch.setattr(callbacks, "checkpoint_step", checkpoint_step)


def steps_per_epoch(run_dir: Path) -> int:
    return math.ceil(runs.read_config(run_dir)["resolved"]["train_images"] / BATCH_SIZE)


def optimizer_steps(model_path: Path) -> int:
    return int(load_model(model_path, compile=True).model.optimizer.iterations.numpy())


def assert_consistent(run_dir: Path, epochs: int) -> None:
    """Every file a reader looks at describes the same ``epochs`` finished epochs."""
    checkpoint = runs.read_checkpoint(run_dir)
    assert checkpoint is not None and checkpoint.epoch == epochs and not checkpoint.legacy
    assert [row["epoch"] for row in runs.read_metrics(run_dir)] == list(range(1, epochs + 1))
    state = runs.read_json(run_dir / "state.json")
    assert state["epoch"] == epochs
    assert read_model_meta(run_dir / "last.keras")["epoch"] == epochs
    assert read_model_meta(run_dir / "best.keras")["epoch"] == state["best_epoch"]
    best_row = max(runs.read_metrics(run_dir), key=lambda row: row["val_accuracy"])
    assert math.isclose(best_row["val_accuracy"], state["best_val_accuracy"])
    assert optimizer_steps(run_dir / "last.keras") == epochs * steps_per_epoch(run_dir) == state["optimizer_steps"]
    kept = sorted(path.name for path in (run_dir / runs.CHECKPOINTS_DIR).iterdir())
    wanted = {f"epoch-{epochs:04d}", f"epoch-{state['best_epoch']:04d}"}
    assert set(kept) <= wanted and f"epoch-{epochs:04d}" in kept, kept  # old versions removed
    assert not [path.name for path in run_dir.iterdir() if path.name.startswith(".")]  # no temporary leftovers


def test_a_resumed_run_logs_exactly_what_an_uninterrupted_run_logs(tmp_path, fer_csv, monkeypatch):
    # Issue 16 item 6: resumed epoch 3 logged loss 1.44 / accuracy 0.49 against 2.00 / 0.29 uninterrupted,
    # because it replayed epoch 1's batches (order and augmentation) with epoch 1's dropout masks.
    config = small_config(fer_csv, epochs=2)
    whole = prepare_run(config, tmp_path / "whole")
    assert run_training(whole, echo=lambda line: None).state == "finished"

    cut = prepare_run(config, tmp_path / "cut")
    kill_after(monkeypatch, "cleanup", 1)
    with pytest.raises(SimulatedKill):
        run_training(cut, echo=lambda line: None)
    monkeypatch.undo()
    lines: list[str] = []
    assert run_training(cut, resume=True, echo=lines.append).state == "finished"
    assert "resuming after epoch 1" in lines

    expected, got = runs.read_metrics(whole), runs.read_metrics(cut)
    assert [row["epoch"] for row in got] == [1, 2]
    for before, after in zip(expected, got):
        for column in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
            assert after[column] == pytest.approx(before[column], rel=1e-5, abs=1e-6), (column, before, after)
    assert optimizer_steps(cut / "last.keras") == optimizer_steps(whole / "last.keras") == 2 * steps_per_epoch(cut)


def test_a_kill_after_any_write_of_a_commit_leaves_one_consistent_epoch(tmp_path, monkeypatch):
    # Every step of RunRecorder.commit_epoch, on a tiny compiled model (no training: fast).
    import keras

    from core.labels import NUM_CLASSES

    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax")(keras.layers.Flatten()(inputs)))
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    config = small_config("unused")
    row = {"loss": 1.9, "accuracy": 0.2, "val_loss": 1.9, "val_accuracy": 0.3}
    for step in callbacks.COMMIT_STEPS:
        run_dir = tmp_path / step.replace(":", "_")
        run_dir.mkdir()
        recorder = callbacks.RunRecorder(run_dir, config, {}, lambda line: None, steps_per_epoch=3, rows=[])
        recorder.set_model(model)
        recorder.on_epoch_begin(0)
        recorder.on_epoch_end(0, row)
        recorder.commit_epoch(0)  # epoch 1 committed, best
        kill_after(monkeypatch, step, 2)
        recorder.on_epoch_begin(1)
        recorder.on_epoch_end(1, {**row, "val_accuracy": 0.5})
        with pytest.raises(SimulatedKill):
            recorder.commit_epoch(1)
        monkeypatch.undo()
        committed = 2 if callbacks.COMMIT_STEPS.index(step) >= callbacks.COMMIT_STEPS.index("pointer") else 1
        checkpoint = runs.read_checkpoint(run_dir)
        assert checkpoint.epoch == committed, step
        assert [row["epoch"] for row in checkpoint.metrics()] == list(range(1, committed + 1)), step
        assert read_model_meta(checkpoint.model_path)["epoch"] == committed, step
        runs.sync_run_files(run_dir)  # what a resume does first
        assert [row["epoch"] for row in runs.read_metrics(run_dir)] == list(range(1, committed + 1)), step
        assert runs.read_json(run_dir / "state.json")["epoch"] == committed, step
        assert read_model_meta(run_dir / "last.keras")["epoch"] == committed, step
        assert read_model_meta(run_dir / "best.keras")["epoch"] == committed, step  # epoch 2 was better
        assert sorted(path.name for path in (run_dir / runs.CHECKPOINTS_DIR).iterdir()) == [f"epoch-{committed:04d}"], step
        assert not [path.name for path in run_dir.iterdir() if path.name.startswith(".")], step


@pytest.mark.parametrize("step", ["state.json", "pointer"])
def test_a_kill_before_or_after_the_commit_neither_repeats_nor_skips_an_epoch(tmp_path, fer_csv, monkeypatch, step):
    # Issue 16 item 7: a kill after last.keras and before state.json retrained that epoch (95 steps for 4 x 19).
    run_dir = prepare_run(small_config(fer_csv, epochs=2, augment=AugmentConfig(engine="none")), tmp_path)
    kill_after(monkeypatch, step, 2)
    with pytest.raises(SimulatedKill):
        run_training(run_dir, echo=lambda line: None)
    monkeypatch.undo()
    committed = runs.read_checkpoint(run_dir).epoch
    assert committed == (2 if callbacks.COMMIT_STEPS.index(step) >= callbacks.COMMIT_STEPS.index("pointer") else 1)
    lines: list[str] = []
    assert run_training(run_dir, resume=True, echo=lines.append).state == "finished", lines
    if committed == 2:
        assert "already trained 2 epochs" in runs.read_status(run_dir).message
    else:
        assert "resuming after epoch 1" in lines
    assert_consistent(run_dir, 2)


@pytest.mark.slow
def test_a_worker_killed_by_the_fault_switch_resumes_from_its_commit(tmp_path, fer_csv):
    # A real process death (os._exit: no finally, no cleanup) right after the pointer of epoch 1 is renamed.
    run_dir = prepare_run(small_config(fer_csv, epochs=2, augment=AugmentConfig(engine="none")), tmp_path)
    env = {**os.environ, callbacks.FAULT_ENV: "top:last.keras@1"}
    worker = subprocess.run([sys.executable, "-m", "core", "train", "--run-dir", str(run_dir)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert worker.returncode == 137, worker.stdout[-2000:] + worker.stderr[-2000:]
    assert runs.read_checkpoint(run_dir).epoch == 1
    assert not (run_dir / "metrics.csv").exists()  # the top-level copies had not been made yet
    assert runs.read_status(run_dir).state == "failed"  # its pid is gone
    assert run_training(run_dir, resume=True, echo=lambda line: None).state == "finished"
    assert_consistent(run_dir, 2)


@pytest.mark.slow
def test_a_run_folder_of_the_old_format_still_resumes(tmp_path, fer_csv):
    # Written before checkpoint folders: best/last.keras, state.json and metrics.csv at the top only.
    run_dir = prepare_run(small_config(fer_csv, epochs=2, augment=AugmentConfig(engine="none")), tmp_path)
    assert run_training(run_dir, echo=lambda line: None).state == "finished"
    import shutil

    shutil.rmtree(run_dir / runs.CHECKPOINTS_DIR)
    (run_dir / runs.CHECKPOINT_POINTER).unlink()
    state = runs.read_json(run_dir / "state.json")
    runs.write_json_atomic(run_dir / "state.json", {k: state[k] for k in ("epoch", "best_val_accuracy", "best_epoch")})
    config = runs.read_config(run_dir)
    config["config"]["epochs"] = 3
    runs.write_json_atomic(run_dir / "config.json", config)
    checkpoint = runs.read_checkpoint(run_dir)
    assert checkpoint.legacy and checkpoint.epoch == 2
    lines: list[str] = []
    assert run_training(run_dir, resume=True, echo=lines.append).state == "finished"
    assert any("no random-generator state" in line for line in lines)
    assert_consistent(run_dir, 3)


def test_patience_counters_and_dropout_state_travel_with_the_checkpoint(tmp_path):
    # ReduceLROnPlateau / EarlyStopping would otherwise restart their patience on resume,
    # and the Dropout seed generators (not stored in .keras) their draws.
    import keras

    from core.labels import NUM_CLASSES

    inputs = keras.Input((48, 48, 1))
    hidden = keras.layers.Dropout(0.3)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax")(hidden))
    model.compile("adam", "categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    model.layers[2].seed_generator.state.assign(np.array([1234, 56], dtype=model.layers[2].seed_generator.state.dtype))
    plateau = keras.callbacks.ReduceLROnPlateau("val_loss", patience=5)
    plateau.set_model(model)
    plateau.on_train_begin()
    plateau.wait, plateau.best = 3, 1.25
    recorder = callbacks.RunRecorder(tmp_path, small_config("unused"), {}, lambda line: None, steps_per_epoch=1,
                                     rows=[], stateful_callbacks={"plateau": plateau})
    recorder.set_model(model)
    recorder.on_epoch_begin(0)
    recorder.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.3, "val_accuracy": 0.4})
    recorder.commit_epoch(0)
    state = runs.read_checkpoint(tmp_path).state
    assert state["callbacks"]["plateau"] == {"wait": 3, "best": 1.25, "cooldown_counter": 0}
    assert state["seed_generators"] == [[1234, 56]]

    loaded = load_model(runs.read_checkpoint(tmp_path).model_path, compile=True).model
    assert callbacks.seed_generator_states(loaded) != [[1234, 56]]  # .keras did not keep it
    assert callbacks.restore_seed_generator_states(loaded, state["seed_generators"])
    assert callbacks.seed_generator_states(loaded) == [[1234, 56]]
    fresh = keras.callbacks.ReduceLROnPlateau("val_loss", patience=5)
    resumed = callbacks.RunRecorder(tmp_path, small_config("unused"), state, lambda line: None, steps_per_epoch=1,
                                    stateful_callbacks={"plateau": fresh})
    for callback in (fresh, resumed.committer):  # fit's order: the committer comes last
        callback.set_model(loaded)
        callback.on_train_begin()
    assert (fresh.wait, fresh.best) == (3, 1.25)


@pytest.mark.slow
def test_a_deleted_checkpoint_folder_resumes_from_the_run_folders_own_copies(tmp_path, fer_csv):
    # Fault probe s8: a committed folder removed by hand left the run unresumable, though the
    # top-level last.keras / state.json / metrics.csv (links to that folder's files) were intact.
    import shutil

    config = small_config(fer_csv, epochs=2, augment=AugmentConfig(engine="none"), average_from=0.0)
    run_dir = prepare_run(config, tmp_path)
    assert run_training(run_dir, echo=lambda line: None).state == "finished"
    committed = runs.read_checkpoint(run_dir)
    assert committed.epoch == 2 and not committed.recovered
    startup = runs.read_config(run_dir)["resolved"]["startup_seconds"]  # what the duration estimate adds to epochs
    assert 0 < startup < 600
    shutil.rmtree(committed.folder)
    checkpoint = runs.read_checkpoint(run_dir)
    assert checkpoint.epoch == 2 and checkpoint.folder == run_dir and "missing or incomplete" in checkpoint.recovered
    assert runs.has_checkpoint(run_dir)
    saved = runs.read_config(run_dir)
    saved["config"]["epochs"] = 3
    runs.write_json_atomic(run_dir / "config.json", saved)
    lines: list[str] = []
    assert run_training(run_dir, resume=True, echo=lines.append).state == "finished"
    assert any("resuming from the run folder's own copies" in line for line in lines)
    assert any("averaged.keras will average the epochs trained from now on" in line for line in lines)
    assert_consistent(run_dir, 3)
    assert runs.read_config(run_dir)["resolved"]["startup_seconds"] == startup  # the first start's, kept
    assert optimizer_steps(run_dir / "last.keras") == 3 * steps_per_epoch(run_dir)  # no epoch replayed or lost
    assert runs.read_json(run_dir / "averaged.json")["epochs"] == [3, 3]  # says what it averaged
    assert not committed.folder.exists()  # the damaged folder's remains are gone with the next commit


def test_a_damaged_checkpoint_without_good_copies_is_refused_with_a_way_forward(tmp_path):
    # The committed folder is incomplete and the top-level copies are another epoch's: nothing to resume from.
    folder = runs.checkpoint_folder(tmp_path, 4)
    folder.mkdir(parents=True)
    runs.write_json_atomic(folder / "state.json", {"epoch": 4})
    runs.write_pointer(tmp_path, 4)
    runs.write_json_atomic(tmp_path / "state.json", {"epoch": 3})
    (tmp_path / "last.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"names epoch 4 .*cannot be resumed.*--init-from .*best\.keras"):
        runs.read_checkpoint(tmp_path)
    runs.write_json_atomic(tmp_path / "state.json", {"epoch": 4})  # the right epoch, but the copy is damaged too
    with pytest.raises(ValueError, match="cannot be resumed"):
        runs.read_checkpoint(tmp_path)
    assert not runs.has_checkpoint(tmp_path)
