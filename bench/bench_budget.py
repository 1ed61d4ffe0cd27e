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
with the bundled recipe. Each run trains in its own worker process
(``python -m core train --run-dir``, as the dashboard starts it) and a summary
line is printed as it ends. With ``--runs-dir``, the measured speeds are kept
in ``speeds.json`` and a second call reuses them and every finished run, so an
interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import os
import subprocess
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


def finished_run(runs_dir: Path, config_dict: dict) -> Path | None:
    """A finished run in ``runs_dir`` with exactly this config (so an interrupted benchmark picks up where it was)."""
    from core import runs

    for run_dir in sorted(runs_dir.iterdir()) if runs_dir.exists() else []:
        if (run_dir.is_dir() and runs.read_config(run_dir).get("config") == config_dict
                and runs.read_status(run_dir).state == "finished"):
            return run_dir
    return None


def train_one(name: str, epochs: int, data: str, runs_dir: Path, seed: int, max_train_images: int | None,
              recipe: dict | None = None) -> dict:
    """Train one model in its own worker process (``python -m core train --run-dir``, as the page does)."""
    from core import runs
    from core.augment import AugmentConfig
    from core.train import prepare_run
    from core.train_config import TrainConfig

    config = TrainConfig(data=data, model=name, epochs=epochs, label_smoothing=0.1, seed=seed,
                         augment=AugmentConfig(), max_train_images=max_train_images, **(recipe or {}))
    run_dir = finished_run(runs_dir, config.to_dict())
    if run_dir is not None:
        print(f"  [{name}] reusing the finished run {run_dir.name}", flush=True)
    else:
        # One process per run, like the dashboard's worker: a crash (TensorFlow once segfaulted here on
        # the fourth model trained in one process) costs that run only, and memory starts clean.
        run_dir = prepare_run(config, runs_dir)
        worker = subprocess.Popen([sys.executable, "-m", "core", "train", "--run-dir", str(run_dir)], cwd=str(runs.REPO_ROOT))
        code = worker.wait()
        runs.record_worker_exit(run_dir, worker.pid, code)
        status = runs.read_status(run_dir)
        if status.state != "finished":
            raise RuntimeError(f"{name}: worker exit code {code}, run {status.state}: {status.message} ({run_dir})")
    rows = runs.read_metrics(run_dir)
    best = max(rows, key=lambda row: row["val_accuracy"])
    return {"epochs": epochs, "seconds": sum(row["epoch_time"] for row in rows),
            "best": best["val_accuracy"], "best_epoch": best["epoch"], "last": rows[-1]["val_accuracy"],
            "run": run_dir.name}


def measure_speeds(names: list[str], images: int, runs_dir: Path) -> dict[str, float]:
    """Training speed of each model relative to fer_vgg, measured once per runs folder and kept in ``speeds.json``."""
    import json

    from bench_train import time_model

    saved = runs_dir / "speeds.json"
    speeds = json.loads(saved.read_text()) if saved.exists() else {}
    missing = [name for name in names if name not in speeds]
    if missing:
        if speeds:
            raise SystemExit(f"{saved} lacks {missing}: use another --runs-dir, or delete it to measure every model again")
        rates = {name: time_model(name, images, 64, 2)[0] for name in names}
        speeds = {name: rate / rates[BASELINE] for name, rate in rates.items()}
        runs_dir.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(speeds, indent=1))
    else:
        print(f"speeds measured earlier, read from {saved}")
    return {name: speeds[name] for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013 folder or CSV")
    parser.add_argument("--budget", type=float, default=4.0, help="compute budget, in fer_vgg epochs (default 4)")
    parser.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES),
                        help=f"other recipes to train {BASELINE} with (default: all; none with a bare --recipes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", default=None, help="keep the run folders and the measured speeds here; run again with the same folder to reuse finished runs (default: a temporary folder)")
    parser.add_argument("--max-train-images", type=int, default=None, help="train on a subset (a quick check of this script)")
    parser.add_argument("--speed-images", type=int, default=256, help="images per throughput measurement")
    args = parser.parse_args()

    from core import models

    names = args.models or [spec.name for spec in models.list_models()]
    if BASELINE not in names:
        names = [BASELINE, *names]
    runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="bench-budget-"))
    speeds = measure_speeds(names, args.speed_images, runs_dir)
    epochs = allocate_epochs(speeds, args.budget)
    print(f"{os.cpu_count()} CPU cores; budget {args.budget:g} {BASELINE} epochs")
    for name in names:
        print(f"  {name:15s} speed {speeds[name]:.2f}x -> {epochs[name]} epochs", flush=True)

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
