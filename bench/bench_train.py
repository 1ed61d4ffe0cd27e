"""Training speed of every registered model on this machine.

Run by hand: ``.venv/bin/python bench/bench_train.py [--images 512] [--repeats 3]``.
Times ``fit`` over the same random batch set for each model (after one warm-up
pass), prints images/s, the projected epoch time on FER2013's 28,709 training
images, and the ratio to the ``fer_vgg`` default measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

FER_TRAINING_IMAGES = 28_709


def time_model(name: str, images: int, batch_size: int, repeats: int) -> tuple[float, int]:
    import keras

    from core import models

    model = models.build(name)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 48, 48, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 7, images), 7)
    model.fit(x[: batch_size * 2], y[: batch_size * 2], batch_size=batch_size, verbose=0)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, verbose=0)
        seconds.append(time.perf_counter() - start)
    return images / statistics.median(seconds), model.count_params()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=None)
    args = parser.parse_args()
    from core import models

    names = args.models or [spec.name for spec in models.list_models()]
    results = {name: time_model(name, args.images, args.batch_size, args.repeats) for name in names}
    baseline = results.get("fer_vgg", next(iter(results.values())))[0]
    print(f"{os.cpu_count()} CPU cores, batch {args.batch_size}, median of {args.repeats} x {args.images} images")
    print(f"{'model':15s} {'params':>11s} {'img/s':>8s} {'epoch (28,709)':>15s} {'speed vs fer_vgg':>17s}")
    for name, (rate, params) in results.items():
        print(f"{name:15s} {params:11,d} {rate:8.0f} {FER_TRAINING_IMAGES / rate:14.0f}s {rate / baseline:16.2f}x")


if __name__ == "__main__":
    main()
