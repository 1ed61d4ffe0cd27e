"""Benchmark the data-quality scan on FER2013: band-bucket pHash search vs brute force.

Run by hand from the repository root::

    .venv/bin/python bench/bench_quality.py [--data ../shared/fer2013] [--repeats 3]

Loads the data with ``load_fer2013`` (its disk cache makes repeats cheap), then:

1. times ``scan_quality`` (blank check, exact grouping, pHash, band search,
   grouping) at near thresholds 0, 4 and 8;
2. times the baseline: every pair of distinct hashes compared by brute force
   (N^2/2 Hamming distances, vectorised in row blocks) at threshold 4, checks
   it finds the very same pairs, and prints the ratio.

Every cell is the median of ``--repeats`` runs, wall and process CPU seconds
(CPU moves less with other jobs on a shared machine); the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data import default_data_dir, load_fer2013  # noqa: E402
from core.quality import compute_phash, find_near_pairs, hamming_distance, scan_quality  # noqa: E402


def timed(function, repeats: int):
    """Return ``(result, median wall s, median CPU s)`` over ``repeats`` calls."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, statistics.median(walls), statistics.median(cpus)


def brute_force_pairs(hashes: np.ndarray, threshold: int, block: int = 512) -> set[tuple[int, int]]:
    """Every pair within ``threshold`` bits, by comparing each row block with all later rows."""
    found: set[tuple[int, int]] = set()
    for start in range(0, len(hashes), block):
        rows = hashes[start : start + block]
        distance = hamming_distance(rows[:, None], hashes[None, :])
        for i, j in zip(*np.nonzero(distance <= threshold), strict=True):
            if start + i < j:
                found.add((int(start + i), int(j)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(default_data_dir() or "../shared/fer2013"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    dataset = load_fer2013(args.data)
    print(f"data: {args.data}: {len(dataset):,} images; load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<44} {'wall s':>8} {'cpu s':>8}")
    for threshold in (0, 4, 8):
        report, wall, cpu = timed(
            lambda t=threshold: scan_quality(
                dataset.images, dataset.labels, dataset.splits, dataset.ids, near_threshold=t
            ),
            args.repeats,
        )
        print(f"{f'scan_quality, near_threshold={threshold}':<44} {wall:8.2f} {cpu:8.2f}")
        print(
            f"    {len(report.groups):,} groups, {report.exact_pairs:,} exact + {report.near_pairs:,} near pairs, "
            f"leaked {report.leaked}, {len(report.blank)} blank"
        )

    distinct = np.unique(dataset.images.reshape(len(dataset), -1), axis=0).reshape(-1, 48, 48)
    hashes, wall_hash, cpu_hash = timed(lambda: compute_phash(distinct), args.repeats)
    print(f"{f'compute_phash, {len(distinct):,} distinct images':<44} {wall_hash:8.2f} {cpu_hash:8.2f}")
    (first, second, _, _), wall_band, cpu_band = timed(lambda: find_near_pairs(hashes, 4), args.repeats)
    print(f"{'find_near_pairs (band buckets), threshold 4':<44} {wall_band:8.2f} {cpu_band:8.2f}")
    brute, wall_brute, cpu_brute = timed(lambda: brute_force_pairs(hashes, 4), 1)
    print(f"{'baseline: brute force N^2/2, threshold 4':<44} {wall_brute:8.2f} {cpu_brute:8.2f}")
    same = brute == set(zip(first.tolist(), second.tolist(), strict=True))
    print(f"band search is {wall_brute / wall_band:.0f}x faster (wall), {cpu_brute / cpu_band:.0f}x (cpu); same pairs: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
