"""Validation accuracy of every registered model for the same compute budget on this machine.

Run by hand: ``.venv/bin/python bench/bench_budget.py --data ../shared/fer2013 [--budget 4]``.

The budget is counted in epochs of the ``fer_vgg`` default: each model's
training throughput is measured first (as ``bench_train.py`` does, same run),
and a model that trains ``r`` times as fast as ``fer_vgg`` gets
``round(budget * r)`` epochs (at least 1). Every model then trains with the
same recipe (the bundled model's: Adam 1e-3 with cosine decay over its own
epochs, batch 64, label smoothing 0.1, ImageDataGenerator augmentation, seed 0)
through ``core.train``, the code the page and the CLI run, and is scored on the
10% stratified validation slice of Training. PublicTest is not looked at: this
is how the default is chosen, so it must not see a test split.

``--recipes`` also trains ``fer_vgg`` for the same budget with other recipes
(by default the published VGG recipe's SGD with Nesterov momentum 0.9, learning
rate 0.01, under cosine decay and under plateau decay), so the recipe of the
default is chosen by measurement too.

Prints, per model or recipe: epochs given, measured training seconds, best
validation accuracy and its epoch, and the accuracy difference to ``fer_vgg``
with the bundled recipe. A summary line is printed as each run ends, so an
interrupted benchmark still leaves its finished rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BASELINE = "fer_vgg"

# Recipes other than the bundled one (Adam 1e-3, cosine), as TrainConfig overrides.
# The plateau settings are Khaireddin & Chen's (2021) VGG recipe: factor 0.75, patience 5.
RECIPES = {
    "sgd-nesterov-cosine": {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
    "sgd-nesterov-plateau": {"optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": True,
                             "lr_schedule": "plateau", "plateau_factor": 0.75, "plateau_patience": 5},
}


def allocate_epochs(speeds: dict[str, float], budget: float) -> dict[str, int]:
    """Epochs per model so each gets about ``budget`` ``fer_vgg`` epochs of compute (``speeds`` relative to fer_vgg)."""
    return {name: max(1, round(budget * speed)) for name, speed in speeds.items()}


def train_one(name: str, epochs: int, data: str, runs_dir: Path, seed: int, max_train_images: int | None,
              recipe: dict | None = None) -> dict:
    from core import runs
    from core.augment import AugmentConfig
    from core.train import prepare_run, run_training
    from core.train_config import TrainConfig

    config = TrainConfig(data=data, model=name, epochs=epochs, label_smoothing=0.1, seed=seed,
                         augment=AugmentConfig(), max_train_images=max_train_images, **(recipe or {}))
    run_dir = prepare_run(config, runs_dir)
    status = run_training(run_dir, echo=lambda line: print(f"  [{name}] {line}", flush=True))
    if status.state != "finished":
        raise RuntimeError(f"{name}: {status.state}: {status.message}")
    rows = runs.read_metrics(run_dir)
    best = max(rows, key=lambda row: row["val_accuracy"])
    return {"epochs": epochs, "seconds": sum(row["epoch_time"] for row in rows),
            "best": best["val_accuracy"], "best_epoch": best["epoch"], "last": rows[-1]["val_accuracy"],
            "run": run_dir.name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013 folder or CSV")
    parser.add_argument("--budget", type=float, default=4.0, help="compute budget, in fer_vgg epochs (default 4)")
    parser.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES),
                        help=f"other recipes to train {BASELINE} with (default: all; none with a bare --recipes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default=None, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--max-train-images", type=int, default=None, help="train on a subset (a quick check of this script)")
    parser.add_argument("--speed-images", type=int, default=256, help="images per throughput measurement")
    args = parser.parse_args()

    from bench_train import time_model

    from core import models

    names = args.models or [spec.name for spec in models.list_models()]
    if BASELINE not in names:
        names = [BASELINE, *names]
    rates = {name: time_model(name, args.speed_images, 64, 2)[0] for name in names}
    speeds = {name: rate / rates[BASELINE] for name, rate in rates.items()}
    epochs = allocate_epochs(speeds, args.budget)
    print(f"{os.cpu_count()} CPU cores; budget {args.budget:g} {BASELINE} epochs")
    for name in names:
        print(f"  {name:15s} speed {speeds[name]:.2f}x -> {epochs[name]} epochs", flush=True)

    runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="bench-budget-"))
    jobs = [(name, name, None) for name in names]
    jobs += [(f"{BASELINE} {recipe}", BASELINE, RECIPES[recipe]) for recipe in args.recipes]
    for label, _, _ in jobs[len(names):]:
        speeds[label], epochs[label] = speeds[BASELINE], epochs[BASELINE]
    results = {}
    for label, name, recipe in jobs:
        results[label] = row = train_one(name, epochs[label], args.data, runs_dir, args.seed, args.max_train_images, recipe)
        print(f"done {label}: {row['epochs']} epochs, {row['seconds']:.0f} s, best val {row['best']:.2%} "
              f"at epoch {row['best_epoch']}, last {row['last']:.2%}", flush=True)

    base = results[BASELINE]["best"]
    print(f"\nsame budget ({args.budget:g} {BASELINE} epochs), the bundled recipe unless one is named; best validation accuracy on the Training slice")
    print(f"{'model':32s} {'speed':>6s} {'epochs':>6s} {'train s':>8s} {'best val':>9s} {'at ep':>6s} {'last val':>9s} {'vs fer_vgg':>11s}")
    for name in sorted(results, key=lambda n: -results[n]["best"]):
        row = results[name]
        print(f"{name:32s} {speeds[name]:5.2f}x {row['epochs']:6d} {row['seconds']:8.0f} {row['best']:9.2%} "
              f"{row['best_epoch']:6d} {row['last']:9.2%} {100 * (row['best'] - base):+10.2f}pt")
    print(f"run folders: {runs_dir}")


if __name__ == "__main__":
    main()
