"""How long training will take: images per second per model, measured on this machine when possible.

The figure comes from the finished epochs of earlier runs of the same model
in the runs folder (``config.json`` says how many training images an epoch
had, ``metrics.csv`` how long each epoch took, validation included). A model
never trained here falls back to ``bench/bench_train.py``'s figures from
this project's 2-core CPU (see docs/benchmarks.md), which are only a rough
guide on other hardware.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from core import runs

# bench/bench_train.py --images 512 --repeats 3, batch 64, on this project's quiet 2-core CPU (docs/benchmarks.md).
BENCH_IMAGES_PER_SECOND: dict[str, float] = {
    "fer_vgg": 214.0, "article_cnn": 54.0, "notebook_cnn": 50.0, "face_cnn": 100.0, "vgg_small": 99.0,
    "resnet18": 247.0, "mini_xception": 887.0,
}
FER2013_TRAINING_IMAGES = 28709


@dataclass(frozen=True)
class Throughput:
    """Training images per second of one model, and where the figure comes from.

    Attributes:
        images_per_second: Training images per second, validation time included when measured.
        source: A short phrase for the user, e.g. ``"12 epochs of 2 runs on this machine"``.
        measured_here: ``True`` when it comes from this machine's runs.
    """

    images_per_second: float
    source: str
    measured_here: bool


def measured_throughput(model: str, runs_dir: Path | None = None) -> Throughput | None:
    """Median training throughput of ``model`` over the finished epochs of this machine's runs.

    The first epoch of each run is left out when the run has more (it includes
    graph building). Returns ``None`` when no run of that model finished an epoch.
    """
    rates, run_count = [], 0
    for summary in runs.list_runs(runs_dir):
        if summary.model != model or not summary.epochs_done:
            continue
        resolved = runs.read_config(summary.path).get("resolved", {})
        images = resolved.get("train_images")
        times = [float(row["epoch_time"]) for row in runs.read_metrics(summary.path)
                 if row.get("epoch_time") not in (None, "") and float(row["epoch_time"]) > 0]
        if not images or not times:
            continue
        times = times[1:] or times
        rates += [int(images) / seconds for seconds in times]
        run_count += 1
    if not rates:
        return None
    return Throughput(statistics.median(rates), f"{len(rates)} epoch(s) of {run_count} run(s) on this machine", True)


def model_throughput(model: str, runs_dir: Path | None = None) -> Throughput | None:
    """This machine's measured throughput of ``model``, else the benchmark figure, else ``None``."""
    measured = measured_throughput(model, runs_dir)
    if measured is not None:
        return measured
    if model in BENCH_IMAGES_PER_SECOND:
        return Throughput(BENCH_IMAGES_PER_SECOND[model], "bench/bench_train.py on a 2-core CPU", False)
    return None


def training_images(max_train_images: int | None, validation: str, val_fraction: float,
                    available: int = FER2013_TRAINING_IMAGES) -> int:
    """Images one epoch trains on: the Training split (or its subset) less the validation slice, if any."""
    images = min(available, max_train_images) if max_train_images else available
    return round(images * (1 - val_fraction)) if validation == "split" else images


def estimate_seconds(throughput: Throughput, images_per_epoch: int, epochs: int) -> float:
    """Seconds for ``epochs`` epochs of ``images_per_epoch`` images.

    Raises:
        ValueError: If the throughput is not positive.
    """
    if throughput.images_per_second <= 0:
        raise ValueError("throughput must be positive")
    return epochs * images_per_epoch / throughput.images_per_second
