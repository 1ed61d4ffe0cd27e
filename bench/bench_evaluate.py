"""Benchmark batch classification, the inner loop of every evaluation: faces -> probabilities.

Run by hand from the repository root::

    .venv/bin/python bench/bench_evaluate.py [--model PATH] [--faces 1000] [--repeats 3] [--modes none crop10]

Times ``core.model_io.predict_probabilities`` (what the Evaluation page,
``python -m core evaluate``, distillation teachers and the Compare page
run), which feeds the model batch by batch with ``predict_on_batch``,
against the baseline it replaced: Keras' ``model.predict`` on each view
(the whole face, its mirror image, the ten crops), in the same run, rows
interleaved so that machine load hits them alike. The faces are the first
``--faces`` of PublicTest from ``../shared/fer2013`` when it is there, else
random faces (the time does not depend on them). Prints the median wall time
per row, the ratio to the baseline, faces per second, and the largest
difference between the two rows' probabilities (they must agree).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from core.model_io import load_model, model_window, predict_probabilities, reorder_to_fer  # noqa: E402
from core.predict import default_model_path  # noqa: E402
from core.preprocess import to_model_input  # noqa: E402
from core.tta import make_views  # noqa: E402


def load_faces(count: int) -> tuple[np.ndarray, str]:
    """``(count, 48, 48)`` uint8 faces: PublicTest's first ones, else random; and where they came from."""
    data = REPO_ROOT.parent / "shared" / "fer2013"
    if data.is_dir():
        from core.data import load_fer2013

        dataset = load_fer2013(data).subset("PublicTest")
        return dataset.images[:count], f"PublicTest ({min(count, len(dataset.images))} faces)"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(count, 48, 48), dtype=np.uint8), f"random ({count} faces)"


def baseline(loaded, faces: np.ndarray, mode: str, batch_size: int) -> np.ndarray:
    """The old path: the same views, each through ``model.predict``."""
    views = make_views(to_model_input(faces), mode, window=model_window(loaded))
    probabilities = sum(np.asarray(loaded.model.predict(view, batch_size=batch_size, verbose=0), np.float32)
                        for view in views) / len(views)
    return reorder_to_fer(probabilities, loaded.class_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a .keras model (default: the bundled default)")
    parser.add_argument("--faces", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--modes", nargs="+", default=["none", "crop10"], choices=["none", "flip", "crop10"])
    args = parser.parse_args()

    path = args.model or default_model_path()
    loaded = load_model(path)
    faces, source = load_faces(args.faces)
    print(f"model {Path(path).name}, faces: {source}, batch {args.batch_size}, median of {args.repeats} "
          f"(after one warm-up of each row), {os.cpu_count()} CPUs")
    rows = {}
    for mode in args.modes:
        rows[f"{mode}: model.predict per view (baseline)"] = (mode, lambda m=mode: baseline(loaded, faces, m, args.batch_size))
        rows[f"{mode}: predict_probabilities (predict_on_batch)"] = (
            mode, lambda m=mode: predict_probabilities(loaded, faces, tta=m, batch_size=args.batch_size))
    outputs = {name: run() for name, (_, run) in rows.items()}  # warm-up: compiles each path once
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, (_, run) in rows.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"{'row':<52} {'median s':>9} {'faces/s':>8} {'vs baseline':>12}")
    for mode in args.modes:
        names = [name for name, (row_mode, _) in rows.items() if row_mode == mode]
        base = statistics.median(times[names[0]])
        for name in names:
            median = statistics.median(times[name])
            print(f"{name:<52} {median:>9.2f} {len(faces) / median:>8.0f} {base / median:>11.2f}x")
        difference = float(np.abs(outputs[names[0]] - outputs[names[1]]).max())
        print(f"{mode}: largest difference between the two rows' probabilities: {difference:.2e}")


if __name__ == "__main__":
    main()
