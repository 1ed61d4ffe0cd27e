"""The Keras callback that turns a fit() into a readable run folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import keras

from core import runs
from core.labels import CLASS_NAMES
from core.model_io import save_model
from core.train_config import TrainConfig

PROGRESS_INTERVAL_S = 1.0


class RunRecorder(keras.callbacks.Callback):
    """Writes metrics.csv, progress.json, best/last checkpoints and state.json; honours Stop.

    Checkpoints are written by :func:`core.model_io.save_model` (atomic, with the
    class names inside) rather than ``ModelCheckpoint``, which writes in place.
    ``best.keras`` follows the highest ``val_accuracy``; ``last.keras`` keeps the
    optimizer state so a resumed run continues where it left off.
    """

    def __init__(self, run_dir: Path, config: TrainConfig, state: dict, echo: Callable[[str], None], steps_per_epoch: int):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.config = config
        self.echo = echo
        self.steps_per_epoch = steps_per_epoch
        self.best_val_accuracy = float(state.get("best_val_accuracy", -1.0))
        self.best_epoch = int(state.get("best_epoch", 0))
        self.last_epoch = int(state.get("epoch", 0))
        self.stopped_by_user = False
        self.rows = [row for row in runs.read_metrics(self.run_dir) if row["epoch"] <= self.last_epoch]
        self._epoch_start = 0.0
        self._last_write = 0.0
        self._epoch = 0
        self._batches_done = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1
        self._epoch_start = time.time()
        self._batches_done = 0
        self._write_progress(0, {})

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_done = batch + 1
        if runs.stop_requested(self.run_dir):
            self.stopped_by_user = True
            self.model.stop_training = True
        now = time.time()
        if now - self._last_write >= PROGRESS_INTERVAL_S or batch + 1 == self.steps_per_epoch:
            self._write_progress(batch + 1, logs or {})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.stopped_by_user and self._batches_done < self.steps_per_epoch:
            # A cut-short epoch is not an epoch: keep the previous checkpoints so
            # Resume redoes it whole.
            self.echo(f"stopped during epoch {epoch + 1} ({self._batches_done}/{self.steps_per_epoch} batches); "
                      f"checkpoints of epoch {self.last_epoch} kept")
            return
        logs = logs or {}
        row = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", float("nan"))),
            "accuracy": float(logs.get("accuracy", float("nan"))),
            "val_loss": float(logs.get("val_loss", float("nan"))),
            "val_accuracy": float(logs.get("val_accuracy", float("nan"))),
            "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "epoch_time": round(time.time() - self._epoch_start, 2),
        }
        self.rows.append(row)
        self.last_epoch = epoch + 1
        meta = {"model": self.config.model, "run": self.run_dir.name, "epoch": epoch + 1, "config": self.config.to_dict()}
        improved = row["val_accuracy"] > self.best_val_accuracy
        if improved:
            self.best_val_accuracy, self.best_epoch = row["val_accuracy"], epoch + 1
            save_model(self.model, self.run_dir / "best.keras", CLASS_NAMES, {**meta, "val_accuracy": row["val_accuracy"]})
        save_model(self.model, self.run_dir / "last.keras", CLASS_NAMES, meta)
        runs.write_metrics(self.run_dir, self.rows)
        runs.write_json_atomic(self.run_dir / "state.json", {
            "epoch": epoch + 1, "best_val_accuracy": self.best_val_accuracy, "best_epoch": self.best_epoch,
        })
        self.echo(
            f"epoch {epoch + 1}/{self.config.epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  lr {row['lr']:.2e}  "
            f"{row['epoch_time']:.0f}s" + ("  *best" if improved else "")
        )

    def _write_progress(self, batch: int, logs: dict) -> None:
        self._last_write = time.time()
        elapsed = self._last_write - self._epoch_start
        per_batch = elapsed / batch if batch else None
        epochs_left = self.config.epochs - self._epoch
        eta = None
        if per_batch is not None:
            eta = per_batch * (self.steps_per_epoch - batch) + epochs_left * per_batch * self.steps_per_epoch
        runs.write_json_atomic(self.run_dir / "progress.json", {
            "epoch": self._epoch, "epochs": self.config.epochs, "batch": batch, "batches": self.steps_per_epoch,
            "loss": float(logs["loss"]) if "loss" in logs else None,
            "accuracy": float(logs["accuracy"]) if "accuracy" in logs else None,
            "epoch_elapsed_s": round(elapsed, 1), "eta_s": None if eta is None else round(eta, 1),
            "updated": self._last_write,
        })
