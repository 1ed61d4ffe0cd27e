"""Weight averaging: one model from the last epochs of a run (stochastic weight averaging, SWA).

A run with ``average_from`` set adds the weights of every epoch that starts
at or after that fraction of the run (of ``epochs``, or of the time budget)
to a running sum. The sum is committed with each epoch's checkpoint
(``checkpoints/epoch-NNNN/average.npz``), so a killed run resumes with it.
When training ends, :func:`finish_average` divides it, recomputes the
batch-normalisation statistics for the averaged weights (the averaged
layers see activations none of the averaged models saw) and writes
``averaged.keras`` beside ``best.keras``, with its own validation accuracy
in ``averaged.json``.

Why: one epoch's checkpoint picked by the highest validation accuracy is
partly picked by noise (a 2,871-image slice has a standard error of about
0.9 points, and the best of fifty epochs is the luckiest of fifty draws).
The average of many late epochs is chosen by nothing but the schedule, and
it sits nearer the middle of the flat region the late epochs wander in
(Izmailov et al., 2018, "Averaging Weights Leads to Wider Optima and Better
Generalization").
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

AVERAGE_FILE = "average.npz"
AVERAGED_MODEL = "averaged.keras"
AVERAGED_RECORD = "averaged.json"
# Batch-norm statistics are recomputed on at most this many training images
# (a seeded random subset): 10,000 images give each channel's mean to well
# under 1% of its spread, at a few forward passes' cost.
BATCH_NORM_IMAGES = 10_000


class RunningAverage:
    """The running sum of a model's weights over some epochs.

    Attributes:
        total: One float64 array per model weight (``model.get_weights()`` order).
        epochs: The epoch numbers added so far.
    """

    def __init__(self, total: list[np.ndarray] | None = None, epochs: list[int] | None = None):
        self.total = list(total or [])
        self.epochs = list(epochs or [])

    @property
    def count(self) -> int:
        return len(self.epochs)

    def add(self, weights: list[np.ndarray], epoch: int) -> None:
        """Add one epoch's weights (all the model's weights, in ``get_weights`` order)."""
        if self.total and len(weights) != len(self.total):
            raise ValueError(f"{len(weights)} weights do not match the {len(self.total)} of the running average")
        if not self.total:
            self.total = [np.asarray(w, dtype=np.float64).copy() for w in weights]
        else:
            for index, (total, weight) in enumerate(zip(self.total, weights)):
                if total.shape != np.shape(weight):
                    raise ValueError(f"weight {index} has shape {np.shape(weight)}, the running average {total.shape}")
                total += np.asarray(weight, dtype=np.float64)
        self.epochs.append(int(epoch))

    def mean(self) -> list[np.ndarray]:
        """The averaged weights (float32)."""
        if not self.count:
            raise ValueError("no epoch has been averaged yet")
        return [(total / self.count).astype(np.float32) for total in self.total]

    def save(self, path: Path) -> None:
        """Write the sum and its epochs to ``path`` (``.npz``; the caller makes the folder's commit atomic)."""
        arrays = {f"w{index:04d}": total for index, total in enumerate(self.total)}
        with open(path, "wb") as handle:
            np.savez(handle, epochs=np.asarray(self.epochs, dtype=np.int64), **arrays)
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: Path) -> "RunningAverage":
        """Read what :meth:`save` wrote; a missing file is an empty average.

        Raises:
            ValueError: If the file is not a running average (damaged by hand).
        """
        path = Path(path)
        if not path.is_file():
            return cls()
        try:
            with np.load(path, allow_pickle=False) as data:
                names = sorted(name for name in data.files if name.startswith("w"))
                return cls([data[name].astype(np.float64) for name in names], [int(e) for e in data["epochs"]])
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{path} is not a weight average written by FER Studio ({error})") from None


def _seeded_subset(images: np.ndarray, max_images: int, seed: int) -> np.ndarray:
    """At most ``max_images`` of ``images``, a seeded random choice kept in their order."""
    if len(images) <= max_images:
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), max_images, replace=False))]


def batch_norm_images(x_train: np.ndarray, augment: Any, *, max_images: int = BATCH_NORM_IMAGES,
                      seed: int = 0) -> tuple[np.ndarray, int]:
    """The faces an averaged model's batch-norm statistics are measured on.

    A seeded subset of at most ``max_images`` training faces; the second half
    of it is augmented as in training (``augment``, a
    :class:`core.augment.AugmentConfig`). Statistics of whole, unaugmented
    faces alone suit a single pass but not the shifted, zoomed corner views
    of ten-crop; the mix keeps most of both (docs/benchmarks.md, "Which
    faces to recompute the batch-norm statistics on").

    Returns:
        ``(faces, augmented)``: uint8 ``(n, h, w)`` faces and how many of them were augmented.
    """
    from core.augment import augment_batch

    images = np.asarray(x_train)
    if images.ndim == 4:
        images = images[..., 0]
    images = _seeded_subset(images, max_images, seed)
    images = np.asarray(images, dtype=np.uint8)
    half = len(images) // 2
    if augment is None or augment.engine == "none" or len(images) - half == 0:
        return images, 0
    augmented = augment_batch(images[half:], augment, seed=seed)
    return np.concatenate([images[:half], augmented]), len(images) - half


def epoch_in_window(average_from: float, epoch: int, epochs: int, start_seconds: float | None = None,
                    budget_seconds: float | None = None) -> bool:
    """Whether epoch ``epoch`` (1-based) joins the average.

    It joins when it starts at or after ``average_from`` of the run: of the
    time budget when the run has one (``start_seconds``: training seconds
    before the epoch began), else of ``epochs``.
    """
    if budget_seconds:
        return start_seconds is not None and start_seconds >= average_from * budget_seconds - 1e-6
    return (epoch - 1) >= average_from * epochs - 1e-9


def recompute_batch_norm(model: Any, images: np.ndarray, *, batch_size: int = 256,
                         max_images: int = BATCH_NORM_IMAGES, seed: int = 0) -> int:
    """Set every BatchNormalization layer's moving mean and variance to those of its inputs over ``images``.

    Layer by layer in the order of the graph, in inference mode: each layer's
    statistics are measured with the layers before it already fixed, so they
    are exactly what it will see when the model predicts. Works on any Keras
    backend (it only calls sub-models in inference mode).

    Args:
        model: A functional Keras model (changed in place).
        images: Training images as the model takes them (uint8 or float; a
            channel axis is added to ``(n, h, w)`` arrays).
        max_images: Use a seeded random subset of at most this many images.

    Returns:
        The number of BatchNormalization layers updated.
    """
    import keras

    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return 0
    images = _seeded_subset(images, max_images, seed)
    batch = np.asarray(images, dtype=np.float32)
    if batch.ndim == 3:
        batch = batch[..., None]
    for layer in layers:
        probe = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, layer.input)
        axes = None
        count, total, total_sq = 0, None, None
        for start in range(0, len(batch), batch_size):
            values = np.asarray(probe(batch[start:start + batch_size], training=False), dtype=np.float64)
            axes = axes or tuple(a for a in range(values.ndim) if a != (layer.axis if layer.axis >= 0 else values.ndim + layer.axis))
            n = int(np.prod([values.shape[a] for a in axes]))
            s, s2 = values.sum(axis=axes), np.square(values).sum(axis=axes)
            total = s if total is None else total + s
            total_sq = s2 if total_sq is None else total_sq + s2
            count += n
        mean = total / count
        variance = np.maximum(total_sq / count - np.square(mean), 0.0)
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(variance.astype(np.float32))
    return len(layers)


def averaged_record(run_dir: Path) -> dict | None:
    """``averaged.json`` of a run (epochs averaged, validation accuracy), or ``None`` when it has no averaged model."""
    from core.runs import read_json

    run_dir = Path(run_dir)
    record = read_json(run_dir / AVERAGED_RECORD)
    if not isinstance(record, dict) or not (run_dir / AVERAGED_MODEL).is_file():
        return None
    epochs, accuracy = record.get("epochs"), record.get("val_accuracy")
    # A record changed by hand is ignored rather than breaking every model menu that lists the run.
    if (not isinstance(epochs, list) or len(epochs) != 2 or not all(isinstance(e, int) for e in epochs)
            or not isinstance(accuracy, (int, float))):
        return None
    return record


def commit_hook(config: Any, recorder: Any, average: RunningAverage) -> Callable[[int, Path], None]:
    """The :class:`core.callbacks.RunRecorder` commit hook of a run with ``config.average_from`` set.

    Adds each epoch in the window to ``average`` and writes the sum into the
    epoch's checkpoint folder before the folder is committed.
    """
    budget = config.time_budget_min * 60 if config.time_budget_min else None

    def hook(epoch: int, staging: Path) -> None:
        if epoch_in_window(config.average_from, epoch, config.epochs, recorder.epoch_start_seconds, budget):
            average.add(recorder.model.get_weights(), epoch)
        if average.count:
            average.save(Path(staging) / AVERAGE_FILE)

    return hook


def discard_averaged_model(run_dir: Path) -> None:
    """Remove a run's ``averaged.keras`` and ``averaged.json`` (a resumed run trains more epochs: they would be stale)."""
    for name in (AVERAGED_RECORD, AVERAGED_MODEL):
        (Path(run_dir) / name).unlink(missing_ok=True)


def finish_average(run_dir: Path, config: Any, average: RunningAverage, x_train: np.ndarray, x_val: np.ndarray,
                   y_val: np.ndarray, *, batch_size: int = 256, echo: Callable[[str], None] = print) -> dict | None:
    """Write ``averaged.keras`` and ``averaged.json`` for a run whose training ended.

    Builds a fresh model of the run's architecture (outside any distribution
    strategy), gives it the averaged weights, recomputes its batch-norm
    statistics on ``x_train`` and measures it on the validation images.

    Returns:
        The record written, or ``None`` when no epoch reached the averaging window.
    """
    from core.labels import CLASS_NAMES
    from core.model_io import save_model
    from core.models import build
    from core.runs import read_metrics, write_json_atomic

    run_dir = Path(run_dir)
    if not average.count:
        echo("weight averaging: no epoch started inside the averaging window; no averaged model")
        return None
    started = time.perf_counter()
    first, last = min(average.epochs), max(average.epochs)
    faces, augmented = batch_norm_images(x_train, config.augment, seed=config.seed)
    echo(f"weight averaging: averaging epochs {first}-{last} and recomputing the batch-norm statistics "
         f"on {len(faces)} training images ({augmented} of them augmented)")
    model = build(config.model, **config.model_params)
    model.set_weights(average.mean())
    updated = recompute_batch_norm(model, faces, batch_size=batch_size, max_images=len(faces), seed=config.seed)
    probabilities = np.asarray(model.predict(np.asarray(x_val, dtype=np.float32)[..., None], batch_size=batch_size, verbose=0))
    val_accuracy = float(np.mean(probabilities.argmax(axis=1) == np.asarray(y_val)))
    record = {"epochs": [first, last], "count": average.count, "val_accuracy": round(val_accuracy, 4),
              "batch_norm_layers": updated, "batch_norm_images": len(faces), "batch_norm_augmented": augmented}
    # When the averaged model was ready, on the same clock as the run's accuracy-vs-time history.
    training_seconds = sum(float(row.get("epoch_time") or 0.0) for row in read_metrics(run_dir))
    record["seconds"] = round(time.perf_counter() - started, 1)
    record["ready_after_seconds"] = round(training_seconds + record["seconds"], 1)
    save_model(model, run_dir / AVERAGED_MODEL, CLASS_NAMES,
               {"model": config.model, "run": run_dir.name, "averaged_epochs": [first, last],
                "averaged_count": average.count, "val_accuracy": record["val_accuracy"], "config": config.to_dict()})
    write_json_atomic(run_dir / AVERAGED_RECORD, record)
    echo(f"weight averaging: epochs {first}-{last} ({average.count} epochs) averaged, batch-norm statistics recomputed "
         f"on {record['batch_norm_images']} training images: val_acc {val_accuracy:.4f} -> {AVERAGED_MODEL}")
    return record
