"""Benchmark peak memory of loading a FER2013 CSV, against the file's size.

Run by hand from the repository root::

    .venv/bin/python bench/bench_csv_memory.py [--megabytes 64] [--compare-with /tmp/old-checkout]

Writes three synthetic files of about ``--megabytes`` MB into a temporary
folder:

* ``rows.csv``: well-formed FER2013 rows (about 9 KB each), the normal case;
* ``one-line.csv``: a header, two good rows and one huge line of pixel
  values between them (issue 16: one upload with its pixels on one line);
* ``one-line.zip``: ``one-line.csv`` deflated inside a zip (random digits, so
  it compresses about 2.5x and is not refused as a zip bomb).

Each file is loaded with ``core.data.load_fer2013(path, use_cache=False)`` in
a fresh Python process, which reports its peak resident memory above the
resident memory it had just before the load (``VmHWM`` of
``/proc/self/status`` after resetting it through ``/proc/self/clear_refs``,
Linux; else ``ru_maxrss``, which also counts the imports' peak), the
``tracemalloc`` peak (numpy's buffers included) and the wall time. Every
figure is printed with its ratio to the file's size (for the zip: to the
CSV inside it).

``--compare-with DIR`` runs the same loads with the code of another checkout
(for instance ``git archive <commit> | tar -x -C DIR``) and prints the ratio
of this checkout's peak to that one's, all in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]

# Runs in the child process: load once, report memory and time as JSON.
_CHILD = r"""
import json, resource, sys, time, tracemalloc
from core.data import load_fer2013
import core.csv_loader, numpy  # imported before the baseline is taken
def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))
try:  # reset the high-water mark, so that the import's transient peak does not count
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    high_water_reset = True
except OSError:
    high_water_reset = False
before = status_kib("VmRSS")
tracemalloc.start()
start = time.perf_counter()
try:
    dataset = load_fer2013(sys.argv[1], use_cache=False)
    outcome = {"loaded": len(dataset), "skipped": len(dataset.report.skipped)}
except (ValueError, MemoryError) as error:
    outcome = {"error": f"{type(error).__name__}: {str(error)[:80]}"}
seconds = time.perf_counter() - start
traced_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
peak = status_kib("VmHWM") if high_water_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
outcome.update(rss_peak_bytes=(peak - before) * 1024, traced_peak_bytes=traced_peak, seconds=seconds)
print(json.dumps(outcome))
"""


def write_rows_csv(path: Path, megabytes: float, rng: np.random.Generator) -> int:
    """Write well-formed rows until the file holds about ``megabytes`` MB; return its size."""
    rows_per_write = 256
    with open(path, "wb") as handle:
        handle.write(b"emotion,pixels,Usage\n")
        while handle.tell() < megabytes * 1e6:
            pixels = rng.integers(0, 256, (rows_per_write, 48 * 48))
            labels = rng.integers(0, 7, rows_per_write)
            lines = [f"{label},{' '.join(map(str, row.tolist()))},Training\n" for label, row in zip(labels, pixels)]
            handle.write("".join(lines).encode())
        return handle.tell()


def one_line_csv_bytes(megabytes: float, rng: np.random.Generator) -> bytes:
    """A header, a good row, one line of ``megabytes`` MB of pixel values, another good row."""
    digits = rng.integers(ord("0"), ord("9") + 1, int(megabytes * 1e6), dtype=np.uint8)
    digits[3::4] = ord(" ")
    good = " ".join(map(str, rng.integers(0, 256, 48 * 48).tolist()))
    return (
        f"emotion,pixels,Usage\n0,{good},Training\n1,".encode()
        + digits.tobytes()
        + f",Training\n2,{good},PublicTest\n".encode()
    )


def measure(code_root: Path, source: Path) -> dict:
    """Load ``source`` with the code under ``code_root`` in a fresh process; return its report."""
    environment = dict(os.environ, PYTHONPATH=str(code_root), TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(source)], cwd=code_root, env=environment,
        capture_output=True, text=True, timeout=1800,
    )
    if completed.returncode != 0:
        return {"error": (completed.stderr.strip().splitlines() or ["crashed"])[-1][:80], "rss_peak_bytes": None}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def describe(result: dict, size: int) -> str:
    if result.get("rss_peak_bytes") is None:
        return f"{'failed: ' + result['error']:<58}"
    rss, traced = result["rss_peak_bytes"], result["traced_peak_bytes"]
    outcome = result.get("error") or f"{result['loaded']} loaded, {result['skipped']} skipped"
    return (
        f"RSS +{rss / 1e6:7.1f} MB ({rss / size:5.2f}x)  traced {traced / 1e6:7.1f} MB ({traced / size:5.2f}x)  "
        f"{result['seconds']:6.2f} s  {outcome}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=64, help="size of each test file (default 64)")
    parser.add_argument("--compare-with", type=Path, default=None, help="another checkout to measure the same way")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-csv-memory-") as folder:
        folder = Path(folder)
        rows = folder / "rows.csv"
        rows_size = write_rows_csv(rows, args.megabytes, rng)
        one_line = folder / "one-line.csv"
        one_line.write_bytes(one_line_csv_bytes(args.megabytes, rng))
        one_line_size = one_line.stat().st_size
        zipped = folder / "one-line.zip"
        with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.write(one_line, "fer2013.csv")
        cases = [("rows.csv", rows, rows_size), ("one-line.csv", one_line, one_line_size),
                 ("one-line.zip", zipped, one_line_size)]
        print(f"load average {os.getloadavg()[0]:.1f}; peaks are above the process's memory just before the load")
        for name, path, size in cases:
            on_disk = path.stat().st_size / 1e6
            print(f"{name:<13} {size / 1e6:6.1f} MB of CSV ({on_disk:.1f} MB on disk)")
            started = time.perf_counter()
            current = measure(REPO_ROOT, path)
            print(f"  this checkout  {describe(current, size)}")
            if args.compare_with is not None:
                other = measure(args.compare_with.resolve(), path)
                print(f"  compared       {describe(other, size)}")
                if current.get("rss_peak_bytes") and other.get("rss_peak_bytes"):
                    print(f"  peak RSS ratio this/compared: {current['rss_peak_bytes'] / other['rss_peak_bytes']:.3f}, "
                          f"traced: {current['traced_peak_bytes'] / other['traced_peak_bytes']:.3f}")
            print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
