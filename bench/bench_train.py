"""Training speed on this machine: every registered model, and the settings that make fer_vgg train faster.

Run by hand from the repository root:

    .venv/bin/python bench/bench_train.py [--images 512] [--repeats 3]          # every model, ratio to fer_vgg
    .venv/bin/python bench/bench_train.py --settings [--images 1024] [--repeats 3]
    .venv/bin/python bench/bench_train.py --backends [--backend-path jax=DIR] [--backend-path torch=DIR]

The default mode times ``fit`` over the same random batch set for each model
(after one warm-up pass), prints images/s, the projected epoch time on
FER2013's 28,709 training images, and the ratio to ``fer_vgg`` measured in the
same run; then ``evaluate`` over 2,048 images in batches of 256, as ``fit``
validates, and the ratio of the two rates (``core.throughput`` uses both).

``--settings`` trains ``fer_vgg`` through the training code's own input
pipeline (``core.augment.make_training_batches``) under several settings:
precision (float32 vs mixed bfloat16; what ``--precision auto`` picks here
is marked), batch size, ``steps_per_execution``, the augmentation engine and
a centre crop (``--param crop=40``).
A dtype policy is global to a process, so every setting runs in its own
child process; the rounds are interleaved (setting A, B, C, then A, B, C
again ...) so that a machine whose load changes slows every setting alike.
It prints the median images/s of each and its ratio to the float32 baseline.
Images/s come from the median time between consecutive training steps:
timed whole, every 16-step epoch took at least about 5 s whatever the
setting (all read about 199 images/s), a floor that comes from the epoch's
start and end in Keras' batch feeder, not from the steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

FER_TRAINING_IMAGES = 28_709

# (label, precision, batch size, steps_per_execution, augmentation engine, fer_vgg centre crop);
# the first row is the baseline.
SETTINGS = [
    ("float32, batch 64, IDG (baseline)", "float32", 64, 1, "idg", 0),
    ("bfloat16, batch 64, IDG", "bfloat16", 64, 1, "idg", 0),
    ("bfloat16, batch 128, IDG", "bfloat16", 128, 1, "idg", 0),
    ("bfloat16, batch 64, IDG, steps_per_execution 8", "bfloat16", 64, 8, "idg", 0),
    ("bfloat16, batch 64, Keras layers", "bfloat16", 64, 1, "layers", 0),
    ("bfloat16, batch 64, no augmentation", "bfloat16", 64, 1, "none", 0),
    ("float32, batch 64, no augmentation", "float32", 64, 1, "none", 0),
    ("bfloat16, batch 64, IDG, centre crop 40", "bfloat16", 64, 1, "idg", 40),
    ("bfloat16, batch 64, Keras layers, centre crop 40", "bfloat16", 64, 1, "layers", 40),
    ("bfloat16, batch 64, no augmentation, centre crop 40", "bfloat16", 64, 1, "none", 40),
]


# Validation images per timed pass: fit validates in batches of 256 (core.distribute.validation_batch_size).
VALIDATION_IMAGES = 2048
VALIDATION_BATCH = 256


def time_model(name: str, images: int, batch_size: int, repeats: int) -> tuple[float, float, int]:
    """(training images/s, validation images/s, parameters) of one model, medians of ``repeats`` timed passes."""
    import keras

    from core import models

    model = models.build(name)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 48, 48, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 7, images), 7)
    x_val = rng.integers(0, 256, (VALIDATION_IMAGES, 48, 48, 1)).astype("float32")
    y_val = keras.utils.to_categorical(rng.integers(0, 7, VALIDATION_IMAGES), 7)
    model.fit(x[: batch_size * 2], y[: batch_size * 2], batch_size=batch_size, verbose=0)
    model.evaluate(x_val[:VALIDATION_BATCH * 2], y_val[:VALIDATION_BATCH * 2], batch_size=VALIDATION_BATCH, verbose=0)
    seconds, val_seconds = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, verbose=0)
        seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.evaluate(x_val, y_val, batch_size=VALIDATION_BATCH, verbose=0)
        val_seconds.append(time.perf_counter() - start)
    return images / statistics.median(seconds), VALIDATION_IMAGES / statistics.median(val_seconds), model.count_params()


def time_setting(precision: str, batch_size: int, steps_per_execution: int, engine: str, images: int,
                 crop: int = 0) -> dict:
    """Images/s of one epoch of fer_vgg over ``images`` faces, after a warm-up epoch (run in a child process)."""
    import keras

    from core.augment import AugmentConfig, make_training_batches
    from core.distribute import configure_precision
    from core.models import build

    policy = configure_precision(precision)
    keras.utils.set_random_seed(0)
    model = build("fer_vgg", crop=crop)
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (images, 48, 48)).astype(np.uint8)
    labels = keras.utils.to_categorical(rng.integers(0, 7, images), 7)
    batches = make_training_batches(faces, labels, AugmentConfig(engine=engine), batch_size, seed=0)

    class StepClock(keras.callbacks.Callback):
        """Time between consecutive batch ends: steady-state step time, without the epoch's start and end
        (Keras' batch feeder adds a few seconds per epoch there, which would swamp a short timed epoch)."""

        def __init__(self):
            super().__init__()
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    model.fit(batches.data, steps_per_epoch=batches.steps_per_epoch, epochs=1, verbose=0)  # warm-up: tracing
    clock = StepClock()
    model.fit(batches.data, steps_per_epoch=batches.steps_per_epoch, epochs=2, initial_epoch=1, verbose=0, callbacks=[clock])
    step = statistics.median(np.diff(clock.ends)) / steps_per_execution  # one callback call per executed chunk
    return {"policy": policy, "images_per_second": batch_size / step}


def compare_settings(images: int, repeats: int, only: list[str] | None = None) -> None:
    from core.distribute import cpu_has_native_bf16, resolve_precision

    labels = {row[0] for row in SETTINGS}

    def chosen(label: str) -> bool:  # a whole label picks that setting alone, other text every label holding it
        return any(label == text if text in labels else text in label for text in only)

    settings = [row for index, row in enumerate(SETTINGS) if index == 0 or not only or chosen(row[0])]

    auto = resolve_precision("auto", 0, cpu_has_native_bf16())
    rates: dict[str, list[float]] = {label: [] for label, *_ in settings}
    for round_number in range(repeats):
        for label, precision, batch_size, steps, engine, crop in settings:
            command = [sys.executable, __file__, "--one",
                       json.dumps([precision, batch_size, steps, engine, images, crop])]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rates[label].append(result["images_per_second"])
            print(f"round {round_number + 1}/{repeats}  {label:48s} {result['images_per_second']:7.1f} img/s", file=sys.stderr)
    baseline = statistics.median(rates[SETTINGS[0][0]])
    load = os.getloadavg()[0]
    print(f"fer_vgg, {os.cpu_count()} CPU cores, {images} images per epoch, median of {repeats} interleaved rounds, "
          f"load average {load:.1f}; --precision auto picks {auto} here")
    print(f"{'setting':50s} {'img/s':>7s} {'epoch (28,709)':>15s} {'vs float32':>11s}")
    for label, *_ in settings:
        rate = statistics.median(rates[label])
        print(f"{label:50s} {rate:7.0f} {FER_TRAINING_IMAGES / rate:14.0f}s {rate / baseline:10.2f}x")


BACKENDS = ("tensorflow", "jax", "torch")


def compare_backends(images: int, repeats: int, extra_paths: dict[str, str]) -> None:
    """fer_vgg's training speed under each Keras backend, float32 and bfloat16, the recipe's IDG augmentation.

    Each (backend, precision) runs in its own child with ``KERAS_BACKEND`` set, interleaved over the rounds; a
    backend that is not installed in this venv can be given a folder to import it from (``--backend-path
    jax=/tmp/jax-site``, made by ``pip install --target``), kept out of the other backends' children. The ratio is
    to TensorFlow float32 in the same run.
    """
    import importlib.util

    def environment(backend: str) -> dict[str, str]:
        paths = [extra_paths[backend]] if backend in extra_paths else []
        paths += [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        return dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=os.pathsep.join(paths))

    available = [backend for backend in BACKENDS
                 if backend in extra_paths or importlib.util.find_spec(backend) is not None]
    missing = [backend for backend in BACKENDS if backend not in available]
    settings = [(backend, precision) for backend in available for precision in ("float32", "bfloat16")]
    rates: dict[tuple[str, str], list[float]] = {setting: [] for setting in settings}
    for round_number in range(repeats):
        for backend, precision in settings:
            command = [sys.executable, __file__, "--one", json.dumps([precision, 64, 1, "idg", images, 0])]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=environment(backend))
            if done.returncode:
                raise SystemExit(f"{backend} {precision} failed:\n{done.stderr[-2000:]}")
            rate = json.loads(done.stdout.strip().splitlines()[-1])["images_per_second"]
            rates[(backend, precision)].append(rate)
            print(f"round {round_number + 1}/{repeats}  {backend:10s} {precision:8s} {rate:7.1f} img/s", file=sys.stderr)
    baseline = statistics.median(rates[("tensorflow", "float32")]) if ("tensorflow", "float32") in rates else None
    print(f"fer_vgg by Keras backend, {os.cpu_count()} CPU cores, batch 64, IDG, {images} images per epoch, median of "
          f"{repeats} interleaved rounds, load average {os.getloadavg()[0]:.1f}"
          + (f"; not installed: {', '.join(missing)}" if missing else ""))
    print(f"{'backend':12s} {'precision':10s} {'img/s':>7s} {'epoch (28,709)':>15s} {'vs TF float32':>14s}")
    for (backend, precision), values in rates.items():
        rate = statistics.median(values)
        ratio = f"{rate / baseline:13.2f}x" if baseline else f"{'—':>14s}"
        print(f"{backend:12s} {precision:10s} {rate:7.0f} {FER_TRAINING_IMAGES / rate:14.0f}s {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=None, help="images per timed epoch (default 512, 1024 with --settings)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--settings", action="store_true", help="compare precision, batch size, steps_per_execution, augmentation")
    parser.add_argument("--only", action="append", default=None, metavar="TEXT",
                        help="with --settings: only the setting labelled TEXT, or else those whose label contains "
                             "TEXT (and the float32 baseline); repeatable")
    parser.add_argument("--backends", action="store_true",
                        help="compare the Keras backends (TensorFlow, JAX, PyTorch) in float32 and bfloat16")
    parser.add_argument("--backend-path", action="append", default=[], metavar="BACKEND=DIR",
                        help="with --backends: import BACKEND from DIR (a pip --target folder); repeatable")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(time_setting(*json.loads(args.one))))
        return
    if args.settings:
        compare_settings(args.images or 1024, args.repeats, args.only)
        return
    if args.backends:
        paths = dict(item.split("=", 1) for item in args.backend_path)
        compare_backends(args.images or 1024, args.repeats, paths)
        return
    from core import models

    images = args.images or 512
    names = args.models or [spec.name for spec in models.list_models()]
    results = {name: time_model(name, images, args.batch_size, args.repeats) for name in names}
    baseline = results.get("fer_vgg", next(iter(results.values())))[0]
    print(f"{os.cpu_count()} CPU cores, batch {args.batch_size}, median of {args.repeats} x {images} images; "
          f"validation: {VALIDATION_IMAGES} images in batches of {VALIDATION_BATCH}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':15s} {'params':>11s} {'img/s':>8s} {'epoch (28,709)':>15s} {'speed vs fer_vgg':>17s} "
          f"{'val img/s':>10s} {'val vs train':>13s}")
    for name, (rate, val_rate, params) in results.items():
        print(f"{name:15s} {params:11,d} {rate:8.0f} {FER_TRAINING_IMAGES / rate:14.0f}s {rate / baseline:16.2f}x "
              f"{val_rate:10.0f} {val_rate / rate:12.1f}x")


if __name__ == "__main__":
    main()
