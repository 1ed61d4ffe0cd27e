"""Benchmark loading FER2013: the seeds' CSV parsing vs ``load_fer2013``, cold vs cached.

Run by hand from the repository root::

    .venv/bin/python bench/bench_load.py [--data ../shared/fer2013] [--repeats 3]

1. Builds a full-size ``fer2013.csv`` (35,887 rows, like the real file) in a
   temporary folder from the image folders: every Training and PublicTest
   image, then PublicTest rows again, relabelled PrivateTest, until the row
   count matches the challenge file.
2. Times, side by side, the seeds' way of parsing it (``pd.read_csv``, then
   ``df.pixels.str.split(" ")``, then ``np.array(list, dtype=np.uint8)``)
   and ``load_fer2013(csv, use_cache=False)``, and prints the ratio.
3. Times a cold load (empty cache: parse and write the cache) and a cached
   load of the image folders and of the CSV.

Every cell is the median of ``--repeats`` runs, wall seconds and process
CPU seconds (the latter moves less with other jobs on a shared machine).
The OS file cache is warm after the first read in every case: "cold" means
"not in our cache". The load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from core.data import default_data_dir, load_fer2013  # noqa: E402
from core.labels import PRIVATE_TEST, PUBLIC_TEST  # noqa: E402

CHALLENGE_ROWS = 35_887


def format_pixel_rows(images: np.ndarray, rows_per_chunk: int = 1024) -> list[bytes]:
    """``(N, 48, 48)`` uint8 -> N space-separated decimal strings, vectorised in chunks."""
    rows: list[bytes] = []
    for first in range(0, len(images), rows_per_chunk):
        values = images[first : first + rows_per_chunk].reshape(-1, 48 * 48).astype(np.int32)
        digits = 1 + (values >= 10).astype(np.int32) + (values >= 100)
        widths = (digits + 1).ravel()  # each token plus the space after it
        ends = np.cumsum(widths)
        starts = ends - widths
        out = np.full(int(ends[-1]), ord(" "), np.uint8)
        flat, count = values.ravel(), digits.ravel()
        out[starts + count - 1] = 48 + flat % 10
        two = count >= 2
        out[(starts + count - 2)[two]] = 48 + (flat[two] // 10) % 10
        three = count == 3
        out[starts[three]] = 48 + flat[three] // 100
        buffer = out.tobytes()
        row_ends = ends.reshape(len(values), -1)[:, -1].tolist()
        row_starts = [0] + row_ends[:-1]
        rows.extend(buffer[start : end - 1] for start, end in zip(row_starts, row_ends))
    return rows


def build_challenge_csv(folder: Path, target: Path) -> int:
    """Write a 35,887-row ``fer2013.csv`` from the image folders; return its row count."""
    dataset = load_fer2013(folder, use_cache=False)
    order = [index for split in dataset.split_names for index in np.flatnonzero(dataset.splits == split)]
    labels, splits, images = dataset.labels[order], dataset.splits[order].tolist(), dataset.images[order]
    public = np.flatnonzero(dataset.splits[order] == PUBLIC_TEST)
    padding = np.resize(public, max(0, CHALLENGE_ROWS - len(order))) if len(public) else np.array([], int)
    labels = np.concatenate([labels, labels[padding]])
    splits = splits + [PRIVATE_TEST] * len(padding)
    images = np.concatenate([images, images[padding]])
    rows = format_pixel_rows(images)
    with open(target, "wb") as handle:
        handle.write(b"emotion,pixels,Usage\n")
        for label, pixels, split in zip(labels.tolist(), rows, splits):
            handle.write(b"%d,%s,%s\n" % (label, pixels, split.encode()))
    return len(rows)


def parse_like_the_seeds(csv_path: Path) -> np.ndarray:
    """The tutorials' way: pandas, str.split, then a list -> uint8 array."""
    import pandas as pd

    frame = pd.read_csv(csv_path)
    pixels = frame.pixels.str.split(" ")
    return np.array(pixels.tolist(), dtype=np.uint8).reshape(-1, 48, 48)


def measure(function: Callable[[], object], repeats: int, before: Callable[[], None] | None = None) -> tuple[float, float, object]:
    """Median wall and CPU seconds over ``repeats`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        if before is not None:
            before()
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="FER2013 image folders")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.data is None or not Path(args.data).is_dir():
        print("error: no image folders found: pass --data PATH or set FER2013_DIR", file=sys.stderr)
        return 2
    print(f"data: {args.data}   repeats: {args.repeats}   load average: {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        scratch_path = Path(scratch)
        csv_path = scratch_path / "fer2013.csv"
        started = time.perf_counter()
        row_count = build_challenge_csv(Path(args.data), csv_path)
        print(f"built {csv_path.name}: {row_count:,} rows, {csv_path.stat().st_size / 1e6:.0f} MB "
              f"in {time.perf_counter() - started:.1f} s")

        seed_wall, seed_cpu, seed_images = measure(lambda: parse_like_the_seeds(csv_path), args.repeats)
        ours_wall, ours_cpu, ours = measure(lambda: load_fer2013(csv_path, use_cache=False), args.repeats)
        if not np.array_equal(seed_images, ours.images):
            print("error: load_fer2013 and the seed parser disagree on the pixels", file=sys.stderr)
            return 1
        rows.append(("CSV: seeds (pandas + str.split + np.array)", seed_wall, seed_cpu, "1.0x"))
        rows.append((
            "CSV: load_fer2013(use_cache=False)",
            ours_wall,
            ours_cpu,
            f"{seed_wall / ours_wall:.1f}x faster (wall), {seed_cpu / ours_cpu:.1f}x (cpu)",
        ))

        for name, source in (("image folders", Path(args.data)), ("CSV", csv_path)):
            cache_dirs = iter(scratch_path / f"cache-{name}-{i}" for i in range(args.repeats))
            current = {}

            def fresh_cache() -> None:
                current["dir"] = next(cache_dirs)

            cold_wall, cold_cpu, _ = measure(lambda: load_fer2013(source, cache_dir=current["dir"]), args.repeats, fresh_cache)
            warm_wall, warm_cpu, _ = measure(lambda: load_fer2013(source, cache_dir=current["dir"]), args.repeats)
            rows.append((f"{name}: cold (parse + write cache)", cold_wall, cold_cpu, ""))
            rows.append((f"{name}: cached", warm_wall, warm_cpu, f"{cold_wall / warm_wall:.1f}x faster than cold (wall)"))

    width = max(len(label) for label, *_ in rows)
    print(f"\n{'load':<{width}}  {'wall s':>8}  {'cpu s':>8}  ratio")
    for label, wall, cpu, ratio in rows:
        print(f"{label:<{width}}  {wall:8.3f}  {cpu:8.3f}  {ratio}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
