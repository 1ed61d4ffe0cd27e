"""Benchmark the augmentation engines: ImageDataGenerator vs Keras layers.

Run by hand from the repository root::

    .venv/bin/python bench/bench_augment.py            # batch production only
    .venv/bin/python bench/bench_augment.py --fit      # plus end-to-end model.fit

Part 1 times what ``model.fit`` pulls from :func:`core.augment.make_training_batches`
(``data[i]`` for every batch of an epoch) for each engine, on the same faces
(real FER2013 training faces from ``../shared/fer2013`` when present, else random
pixels), for batch sizes 64 and 128. Each cell is the median of 3 epochs, the
engines interleaved, after one warm-up batch (Keras start-up and compilation
are not counted). Images per wall-second and per process-CPU-second (less
sensitive to other jobs on the machine) are both shown, with the
``layers/idg`` ratios measured in the same run.

Part 2 (``--fit``) times one epoch of ``model.fit`` on a small CNN (six 3x3
convolutions) for: no augmentation, IDG, the layers engine, and the layers
placed inside the model instead (the alternative design), showing how much of
the augmentation cost a real training step hides.

Numbers on a shared machine move with its load; the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from core.augment import AugmentConfig, make_augmentation_layers, make_training_batches  # noqa: E402

FER2013 = REPO_ROOT.parent / "shared" / "fer2013"


def load_faces(count: int) -> tuple[np.ndarray, str]:
    """``count`` training faces spread over all classes, or random pixels if the data is absent."""
    files = sorted((FER2013 / "train").glob("*/*.jpg"))
    if len(files) < count:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (count, 48, 48), dtype=np.uint8), "random pixels (FER2013 not found)"
    import cv2

    step = len(files) // count
    faces = np.stack([cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in files[::step][:count]])
    return faces, f"{count} FER2013 training faces from {FER2013}"


def time_epoch(data) -> tuple[float, float]:
    """Wall and process-CPU seconds to pull every batch of one epoch."""
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(len(data)):
        data[index]
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    data.on_epoch_end()
    return elapsed


def bench_batches(faces: np.ndarray, labels: np.ndarray, config: AugmentConfig, runs: int) -> None:
    engines = ("none", "idg", "layers")
    print(f"\nbatch production (median of {runs} epochs of {len(faces)} faces; engines interleaved)")
    print(f"config {config.to_dict()}")
    print(f"{'batch':>5} | {'engine':>6} | {'images/s':>9} | {'images/CPU-s':>12}")
    print("-" * 44)
    ratios = {}
    for batch_size in (64, 128):
        datasets = {}
        for engine in engines:
            engine_config = AugmentConfig.from_dict({**config.to_dict(), "engine": engine})
            datasets[engine] = make_training_batches(faces, labels, engine_config, batch_size, seed=0).data
            datasets[engine][0]  # warm-up: imports, tracing
        times: dict[str, list[tuple[float, float]]] = {engine: [] for engine in engines}
        for _ in range(runs):  # round-robin, so that all engines see the same machine load
            for engine in engines:
                times[engine].append(time_epoch(datasets[engine]))
        speed = {}
        for engine in engines:
            wall = len(faces) / statistics.median(t[0] for t in times[engine])
            cpu = len(faces) / statistics.median(t[1] for t in times[engine])
            speed[engine] = (wall, cpu)
            print(f"{batch_size:>5} | {engine:>6} | {wall:>9.0f} | {cpu:>12.0f}")
        ratios[batch_size] = tuple(speed["layers"][k] / speed["idg"][k] for k in (0, 1))
    print("\nlayers/idg speed ratio (measured above):")
    for batch_size, (wall, cpu) in ratios.items():
        print(f"  batch {batch_size:>3}: {wall:.2f}x images/s, {cpu:.2f}x images per CPU-second")


def small_cnn(augmentation=None):
    import keras

    inputs = keras.Input((48, 48, 1))
    hidden = augmentation(inputs) if augmentation is not None else inputs
    hidden = keras.layers.Rescaling(1 / 255)(hidden)
    for filters in (32, 64, 128):
        hidden = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(hidden)
        hidden = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(hidden)
        hidden = keras.layers.MaxPooling2D()(hidden)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def bench_fit(faces: np.ndarray, labels: np.ndarray, config: AugmentConfig, runs: int, batch_size: int) -> None:
    variants = {
        "no augmentation": ("none", False),
        "idg": ("idg", False),
        "layers (PyDataset, shipped)": ("layers", False),
        "layers inside the model": ("none", True),
    }
    print(
        f"\nmodel.fit on a small CNN, images/s (median of {runs} epochs of {len(faces)} faces, "
        f"batch {batch_size}; variants interleaved)"
    )
    setups = {}
    for name, (engine, in_model) in variants.items():
        engine_config = AugmentConfig.from_dict({**config.to_dict(), "engine": engine})
        data = make_training_batches(faces, labels, engine_config, batch_size, seed=0).data
        model = small_cnn(make_augmentation_layers(config, seed=0) if in_model else None)
        model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)  # warm-up: tracing
        setups[name] = (model, data)
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):  # round-robin, so that all variants see the same machine load
        for name, (model, data) in setups.items():
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            speeds[name].append(len(faces) / (time.perf_counter() - start))
    baseline = statistics.median(speeds["no augmentation"])
    for name in variants:
        speed = statistics.median(speeds[name])
        print(f"  {name:30s} {speed:8.0f}   ({speed / baseline:.2f}x no augmentation)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048, help="faces per epoch for batch production")
    parser.add_argument("--runs", type=int, default=3, help="timed epochs per cell (median reported)")
    parser.add_argument("--fit", action="store_true", help="also time model.fit end to end")
    parser.add_argument("--fit-images", type=int, default=640, help="faces per epoch for --fit")
    args = parser.parse_args()

    faces, source = load_faces(args.images)
    labels = np.arange(len(faces)) % 7
    config = AugmentConfig()  # the default: shifts 0.1, flip, zoom 0.1, rotation 10
    import keras

    print(f"faces: {source}")
    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    bench_batches(faces, labels, config, args.runs)
    if args.fit:
        bench_fit(faces[: args.fit_images], labels[: args.fit_images], config, args.runs, 64)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
