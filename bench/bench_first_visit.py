"""Benchmark a first-time user's first prediction page: with and without the server's background warm-up.

Run by hand from the repository root (needs Debian's ``chromium``)::

    .venv/bin/python bench/bench_first_visit.py [--repeats 3] [--read-s 10 20] [--page /predict]

Each trial starts a fresh Streamlit server (``streamlit run streamlit_app.py``
on a free port), opens the Home page in headless Chromium and waits until its
script run has ended, waits ``--read-s`` seconds (the user reading Home),
then opens ``--page`` and waits again. Times are from ``page.goto`` to the
app's ``data-test-script-state`` reading ``notRunning``, as the browser tests
wait. The rows differ only in ``FER_STUDIO_WARM_UP`` (``dashboard/warm_up.py``:
TensorFlow, the default model and detector loaded in a thread 3 s after the
first page); trials alternate between them. Medians are printed, with ratios
against no warm-up measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("FER_STUDIO_CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def trial(warm_up: bool, read_s: float, target: str) -> tuple[float, float]:
    """Seconds to draw Home, then ``target`` ``read_s`` seconds later, on a fresh server."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "FER_STUDIO_WARM_UP": "1" if warm_up else "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
                               "--server.port", str(port)], cwd=REPO_ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})

            def load(path: str) -> float:
                start = time.monotonic()
                page.goto(f"http://127.0.0.1:{port}{path}")
                page.wait_for_timeout(300)  # the run starts
                page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=300_000)
                return time.monotonic() - start

            home = load("/")
            time.sleep(read_s)
            target_s = load(target)
            browser.close()
        return home, target_s
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--read-s", type=float, nargs="+", default=[10.0, 20.0],
                        help="seconds between Home drawn and opening the page")
    parser.add_argument("--page", default="/predict")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; page {args.page}", flush=True)

    results: dict[tuple[float, bool], list[tuple[float, float]]] = {}
    for repeat in range(args.repeats):
        for read_s in args.read_s:
            for warm_up in (False, True):
                home, target = trial(warm_up, read_s, args.page)
                results.setdefault((read_s, warm_up), []).append((home, target))
                print(f"  read {read_s:g} s, warm-up {'on' if warm_up else 'off'}: Home {home:.1f} s, "
                      f"{args.page} {target:.1f} s", flush=True)

    print(f"\n| read Home for | warm-up | Home (s) | {args.page} (s) | {args.page} speed-up |")
    print("|---:|---|---:|---:|---:|")
    for read_s in args.read_s:
        cold = statistics.median(target for _, target in results[(read_s, False)])
        for warm_up in (False, True):
            times = results[(read_s, warm_up)]
            home = statistics.median(value for value, _ in times)
            target = statistics.median(value for _, value in times)
            print(f"| {read_s:g} s | {'on' if warm_up else 'off'} | {home:.1f} | {target:.1f} | {cold / target:.2f}x |")


if __name__ == "__main__":
    main()
