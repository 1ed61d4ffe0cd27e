"""The Keras callbacks that turn a fit() into a readable, resumable run folder."""

from __future__ import annotations

import math
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from core import runs
from core.labels import CLASS_NAMES
from core.model_io import save_model
from core.train_config import TrainConfig

PROGRESS_INTERVAL_S = 1.0
# The time per batch of the finished epochs counts as this many batches of the epoch under way, so the ETA
# follows the current epoch's pace without jumping at its start (walk s18: "—" for a minute, then 24m 53s, then
# 10m 13s 15 s later, as the first batches of an epoch carried its start).
ETA_PRIOR_BATCHES = 10
# Set to "<step>" or "<step>@<epoch>" to make the worker die (os._exit) right
# after that step of an epoch's commit: the fault tests' kill switch.
FAULT_ENV = "FER_STUDIO_FAULT_AFTER"
COMMIT_STEPS = ("last.keras", "best.keras", "state.json", "metrics.csv", "folder", "pointer",
                "top:best.keras", "top:last.keras", "top:metrics.csv", "top:state.json", "cleanup")
# Callback attributes that carry patience across epochs (ReduceLROnPlateau, EarlyStopping).
_CALLBACK_STATE = ("wait", "best", "cooldown_counter", "best_epoch")


def checkpoint_step(step: str, epoch: int) -> None:
    """Called after each step of an epoch's commit; dies there when ``$FER_STUDIO_FAULT_AFTER`` says so.

    Tests replace it (monkeypatch) to simulate a kill at any point between two writes.
    """
    wanted = os.environ.get(FAULT_ENV, "")
    if not wanted:
        return
    name, _, at_epoch = wanted.partition("@")
    if name == step and (not at_epoch or int(at_epoch) == epoch):
        os._exit(137)


def seed_generator_states(model: Any) -> list[list[int]]:
    """The state of every ``keras.random.SeedGenerator`` in ``model`` (Dropout and the like), in layer order.

    ``.keras`` files do not keep these states; a model loaded from one starts
    its generators again from seeds drawn from Python's ``random``. Saved with
    each checkpoint and put back on resume, they make the dropout masks those
    of an uninterrupted run.
    """
    return [[int(v) for v in keras.ops.convert_to_numpy(generator.state)] for generator in _seed_generators(model)]


def restore_seed_generator_states(model: Any, states: list) -> bool:
    """Put back states from :func:`seed_generator_states`; False (nothing changed) if they do not fit the model."""
    generators = _seed_generators(model)
    if not isinstance(states, list) or len(states) != len(generators):
        return False
    for generator, state in zip(generators, states):
        generator.state.assign(np.array(state, dtype=generator.state.dtype))
    return True


def _seed_generators(model: Any) -> list:
    return [generator for layer in model._flatten_layers(include_self=True, recursive=True)
            for generator in getattr(layer, "_seed_generators", [])]


class RunRecorder(keras.callbacks.Callback):
    """Writes metrics.csv, progress.json and the epoch checkpoints; honours Stop.

    Checkpoints are written by :func:`core.model_io.save_model` (atomic, with the
    class names inside) rather than ``ModelCheckpoint``, which writes in place.
    ``best.keras`` follows the highest ``val_accuracy``; ``last.keras`` keeps the
    optimizer state so a resumed run continues where it left off.

    Put it first among the callbacks (its row records the learning rate the
    epoch trained with) and :attr:`committer` last: the commit happens after
    every other callback ended the epoch, so the saved optimizer already has
    the learning rate ReduceLROnPlateau chose for the next epoch, and the
    callbacks' patience counters are saved with it.
    """

    def __init__(self, run_dir: Path, config: TrainConfig, state: dict, echo: Callable[[str], None], steps_per_epoch: int,
                 rows: list[dict] | None = None, stateful_callbacks: dict[str, Any] | None = None, val_images: int = 0):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.config = config
        self.echo = echo
        self.steps_per_epoch = steps_per_epoch
        self.val_images = int(val_images)
        self.best_val_accuracy = float(state.get("best_val_accuracy", -1.0))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.last_epoch = int(state.get("epoch", 0))
        self.stopped_by_user = False
        if rows is None:
            rows = [row for row in runs.read_metrics(self.run_dir) if row["epoch"] <= self.last_epoch]
        self.rows = list(rows)
        self.stateful_callbacks = dict(stateful_callbacks or {})
        self._saved_callback_state = state.get("callbacks", {})
        self.committer = _CommitAtEpochEnd(self)
        self._pending: dict | None = None
        self._epoch_start = 0.0
        self._val_start: float | None = None
        self._val_seconds = 0.0
        self._last_write = 0.0
        self._epoch = 0
        self._batches_done = 0
        self._warned_nan = False
        # Wall-clock seconds trained before this process (a resumed run), then this fit's own.
        self._seconds_before = float(state.get("train_seconds", sum(float(row.get("epoch_time") or 0) for row in self.rows)))
        self._fit_start: float | None = None
        # Training seconds when the current epoch began (core.averaging's window is measured in them).
        self.epoch_start_seconds = self._seconds_before
        # Called as hook(epoch_number, staging_folder) while an epoch's checkpoint folder is written,
        # before it is committed: what a hook writes there is committed (or lost) with the epoch.
        self.commit_hooks: list[Callable[[int, Path], None]] = []

    @property
    def train_seconds(self) -> float:
        """Wall-clock seconds this run has trained: earlier processes' committed time plus this fit's so far."""
        return self._seconds_before + (time.time() - self._fit_start if self._fit_start is not None else 0.0)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._fit_start = time.time()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1
        self._epoch_start = time.time()
        self.epoch_start_seconds = self._seconds_before + (self._epoch_start - self._fit_start if self._fit_start is not None else 0.0)
        self._batches_done = 0
        self._val_seconds = 0.0
        self._write_progress(0, {})

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._val_start = time.time()  # fit's validation at the end of an epoch (core.throughput keeps it apart)
        if self.stopped_by_user and self._batches_done < self.steps_per_epoch:
            # Keras validates an epoch cut short by Stop before it returns; that epoch is dropped (on_epoch_end),
            # so its validation would only delay the stop: 19 of the 42 s a stop took in walk s18. One batch runs.
            self.model.stop_evaluating = True

    def on_test_end(self, logs: dict | None = None) -> None:
        if self._val_start is not None:
            self._val_seconds += time.time() - self._val_start
            self._val_start = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_done = batch + 1
        if runs.stop_requested(self.run_dir):
            self.stopped_by_user = True
            self.model.stop_training = True
        now = time.time()
        if now - self._last_write >= PROGRESS_INTERVAL_S or batch + 1 == self.steps_per_epoch:
            self._write_progress(batch + 1, logs or {})

    @property
    def cut_short(self) -> tuple[int, int] | None:
        """``(epoch, batches done)`` of the epoch a Stop cut short (dropped; Resume redoes it), else None."""
        if self.stopped_by_user and self._epoch and self._batches_done < self.steps_per_epoch:
            return self._epoch, self._batches_done
        return None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.stopped_by_user and self._batches_done < self.steps_per_epoch:
            # A cut-short epoch is not an epoch: keep the previous checkpoints so
            # Resume redoes it whole.
            self.echo(f"stopped during epoch {epoch + 1} ({self._batches_done}/{self.steps_per_epoch} batches); "
                      f"checkpoints of epoch {self.last_epoch} kept")
            return
        logs = logs or {}
        self._pending = None
        row = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", float("nan"))),
            "accuracy": float(logs.get("accuracy", float("nan"))),
            "val_loss": float(logs.get("val_loss", float("nan"))),
            "val_accuracy": float(logs.get("val_accuracy", float("nan"))),
            "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "epoch_time": round(time.time() - self._epoch_start, 2),
            "val_time": round(self._val_seconds, 2),
        }
        self._pending = row

    def commit_epoch(self, epoch: int) -> None:
        """Commit the epoch that just ended as one unit (see ``core.runs``); called by :attr:`committer`.

        Order: the complete ``checkpoints/epoch-NNNN`` folder (written under a
        temporary name, then renamed), then the pointer (the commit), then
        the top-level copies, then old versions are removed.
        """
        row, self._pending = self._pending, None
        if row is None or row["epoch"] != epoch + 1:
            return
        number = epoch + 1
        meta = {"model": self.config.model, "run": self.run_dir.name, "epoch": number, "config": self.config.to_dict()}
        improved = row["val_accuracy"] > self.best_val_accuracy
        best_val_accuracy, best_epoch = (row["val_accuracy"], number) if improved else (self.best_val_accuracy, self.best_epoch)
        rows = [*self.rows, row]
        state = {
            "epoch": number, "best_val_accuracy": best_val_accuracy, "best_epoch": best_epoch,
            "optimizer_steps": int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)),
            "train_seconds": round(self.train_seconds, 2),
            "seed_generators": seed_generator_states(self.model),
            "callbacks": {name: _callback_state(callback) for name, callback in self.stateful_callbacks.items()},
        }
        final = runs.checkpoint_folder(self.run_dir, number)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.with_name(f".{final.name}-{os.getpid()}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        save_model(self.model, staging / "last.keras", CLASS_NAMES, meta)
        checkpoint_step("last.keras", number)
        if improved:
            save_model(self.model, staging / "best.keras", CLASS_NAMES, {**meta, "val_accuracy": row["val_accuracy"]})
        checkpoint_step("best.keras", number)
        runs.write_json_atomic(staging / "state.json", state)
        checkpoint_step("state.json", number)
        runs.write_metrics(staging, rows)
        checkpoint_step("metrics.csv", number)
        for hook in self.commit_hooks:
            hook(number, staging)
        _fsync_folder(staging)
        if final.exists():  # left by an attempt killed before it committed this epoch
            shutil.rmtree(final)
        os.rename(staging, final)
        checkpoint_step("folder", number)
        runs.write_pointer(self.run_dir, number)
        _fsync_folder(self.run_dir, files=False)
        checkpoint_step("pointer", number)
        # Committed: from here on a kill resumes after this epoch.
        self.rows, self.last_epoch = rows, number
        self.best_val_accuracy, self.best_epoch = best_val_accuracy, best_epoch
        if improved:
            runs.link_or_copy_atomic(final / "best.keras", self.run_dir / "best.keras")
        checkpoint_step("top:best.keras", number)
        runs.link_or_copy_atomic(final / "last.keras", self.run_dir / "last.keras")
        checkpoint_step("top:last.keras", number)
        runs.link_or_copy_atomic(final / "metrics.csv", self.run_dir / "metrics.csv")
        checkpoint_step("top:metrics.csv", number)
        runs.link_or_copy_atomic(final / "state.json", self.run_dir / "state.json")
        checkpoint_step("top:state.json", number)
        runs.sync_run_files(self.run_dir, runs.Checkpoint(number, final, state))
        checkpoint_step("cleanup", number)
        self.echo(
            f"epoch {number}/{self.config.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  lr {row['lr']:.2e}  "
            f"{row['epoch_time']:.0f}s" + ("  *best" if improved else "")
        )
        if math.isnan(row["val_loss"]) and not math.isnan(row["loss"]) and not self._warned_nan:
            self._warned_nan = True
            self.echo(f"warning: validation loss is NaN while training loss is finite: the model predicts NaN "
                      f"in inference ({self.model.dtype_policy.name}); seen with mixed bfloat16 under JAX 0.11 on a "
                      f"CPU. --precision float32 avoids it.")

    def restore_callback_state(self) -> None:
        """Give ReduceLROnPlateau / EarlyStopping back the patience counters of the checkpoint."""
        for name, callback in self.stateful_callbacks.items():
            for attribute, value in (self._saved_callback_state.get(name) or {}).items():
                if attribute in _CALLBACK_STATE and hasattr(callback, attribute):
                    setattr(callback, attribute, value)

    def _finished_epoch_timing(self) -> tuple[float, float] | None:
        """(seconds per training batch, seconds of validation) of this run's finished epochs, or None before the
        first: medians over the epochs after the first when there are any (the first also builds the model)."""
        rows = [row for row in self.rows if (row.get("epoch_time") or 0) > 0]
        rows = rows[1:] or rows
        if not rows:
            return None
        val = [min(float(row.get("val_time") or 0), float(row["epoch_time"])) for row in rows]
        per_batch = [(float(row["epoch_time"]) - seconds) / self.steps_per_epoch for row, seconds in zip(rows, val)]
        return statistics.median(per_batch), statistics.median(val)

    def eta_seconds(self, batch: int, elapsed: float) -> float | None:
        """Seconds left in the run, ``batch`` batches and ``elapsed`` seconds into the current epoch.

        The rest of this epoch goes at its own pace blended with the finished
        epochs' (worth :data:`ETA_PRIOR_BATCHES` batches), the epochs after it
        at the finished epochs' pace alone, and every epoch left adds its
        validation: the finished epochs' median, or before the first one an
        estimate from the training pace. None until there is any pace to go by.
        """
        finished = self._finished_epoch_timing()
        if finished is not None:
            prior, validation = finished
            per_batch = (elapsed + prior * ETA_PRIOR_BATCHES) / (batch + ETA_PRIOR_BATCHES)
            later_per_batch = prior
        elif batch:
            per_batch = later_per_batch = elapsed / batch
            # Before any epoch has finished, validation is estimated from the training pace (core.throughput).
            from core.throughput import validation_speedup

            validation = self.val_images * per_batch / max(1, self.config.batch_size) / validation_speedup(
                self.config.model)
        else:
            return None
        epochs_left = max(0, self.config.epochs - self._epoch)
        eta = per_batch * (self.steps_per_epoch - batch) + validation
        # The epochs to come at the finished epochs' pace: a slow start of this one (its first batches carry the
        # epoch's start) moved every later epoch too, and a 16-step run's ETA swung between 4m 40s and 11m 21s
        # within a minute (walk s21).
        eta += epochs_left * (later_per_batch * self.steps_per_epoch + validation)
        if self.config.time_budget_min:
            eta = max(0.0, min(eta, self.config.time_budget_min * 60 - self.train_seconds))
        return eta

    def _write_progress(self, batch: int, logs: dict) -> None:
        self._last_write = time.time()
        elapsed = self._last_write - self._epoch_start
        eta = self.eta_seconds(batch, elapsed)
        runs.write_json_atomic(self.run_dir / "progress.json", {
            "epoch": self._epoch, "epochs": self.config.epochs, "batch": batch, "batches": self.steps_per_epoch,
            "loss": float(logs["loss"]) if "loss" in logs else None,
            "accuracy": float(logs["accuracy"]) if "accuracy" in logs else None,
            "epoch_elapsed_s": round(elapsed, 1), "eta_s": None if eta is None else round(eta, 1),
            "updated": self._last_write,
            # With a time budget the epochs are an upper bound (often 1000): the page measures progress in time.
            "budget_s": round(self.config.time_budget_min * 60, 1) if self.config.time_budget_min else None,
            "trained_s": round(self.train_seconds, 1),
        })


def cosine_decay(base_lr: float, progress: float) -> float:
    """Cosine decay from ``base_lr`` at ``progress`` 0 to 0 at 1 (clamped): the ``cosine`` schedule's one formula."""
    return float(base_lr * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress)))))


class TimeBudget(keras.callbacks.Callback):
    """Fit a run into ``budget_s`` wall-clock seconds, counted by ``recorder.train_seconds``.

    With ``cosine`` the learning rate at the start of each epoch is the cosine
    of the budget's elapsed fraction (``base_lr`` at 0, 0 at the end), so a run
    anneals whatever its machine's speed. After each epoch the run stops when
    one more epoch, as long as the last one took from start to start
    (checkpoint writing included), would end past the budget.
    """

    def __init__(self, recorder: RunRecorder, budget_s: float, base_lr: float, cosine: bool):
        super().__init__()
        self.recorder = recorder
        self.budget_s = float(budget_s)
        self.base_lr = float(base_lr)
        self.cosine = cosine
        self.stopped = False
        self._epoch_begin = 0.0
        self._epoch_end: float | None = None
        self._between_s = 0.0  # after one epoch's end, before the next one's start: the checkpoint commit

    def learning_rate_at(self, seconds: float) -> float:
        return cosine_decay(self.base_lr, seconds / self.budget_s)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_begin = time.time()
        if self._epoch_end is not None:
            self._between_s = self._epoch_begin - self._epoch_end
        if self.cosine:
            self.model.optimizer.learning_rate = self.learning_rate_at(self.recorder.train_seconds)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_end = time.time()
        next_epoch_s = self._epoch_end - self._epoch_begin + self._between_s
        if self.recorder.train_seconds + next_epoch_s > self.budget_s:
            self.stopped = True
            self.model.stop_training = True


class _CommitAtEpochEnd(keras.callbacks.Callback):
    """The last callback of a fit: commits the epoch after every other callback ended it."""

    def __init__(self, recorder: RunRecorder):
        super().__init__()
        self.recorder = recorder

    def on_train_begin(self, logs: dict | None = None) -> None:
        # After the other callbacks' on_train_begin, which reset their counters.
        self.recorder.restore_callback_state()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.recorder.commit_epoch(epoch)


def _callback_state(callback: Any) -> dict:
    state = {}
    for attribute in _CALLBACK_STATE:
        value = getattr(callback, attribute, None)
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            state[attribute] = value.item() if isinstance(value, np.generic) else value
    return state


def _fsync_folder(folder: Path, files: bool = True) -> None:
    """Flush the files of ``folder`` (unless ``files`` is False) and the folder itself to disk (best effort)."""
    for path in [*(Path(folder).iterdir() if files else []), Path(folder)]:
        if path.is_dir() and path != Path(folder):
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
