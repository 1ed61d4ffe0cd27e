"""Benchmark the Live page end to end: Chromium's fake camera -> WebRTC -> the server's analysis -> back.

Run by hand from the repository root (Debian's chromium and the dev requirements)::

    .venv/bin/python bench/bench_live.py [--seconds 20] [--model PATH]

The camera plays two FER2013 PublicTest faces drifting over a 640x480 frame at
30 frames/s (the same clip as tests/browser/test_live_page.py). The page runs
with its defaults (Haar, detection on every frame, vote smoothing) and the
bundled model. After a warm-up, the Live panel is read once a second:

* ``fps shown``: the frames/s the panel displays (frames analysed per second
  over the last 30);
* ``frames counted``: the panel's frame counter, its increase per second;
* ``analysis ms``: the panel's median time per frame inside the server.

For comparison, the same frames go through ``core.video.FrameAnalyzer`` in
this process (no browser, no WebRTC): the cost of the analysis alone. The
camera's own rate (30) is the ceiling: frames that arrive while one is being
analysed are skipped (``async_processing``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from tests.browser import harness  # noqa: E402
from tests.browser.test_live_page import (  # noqa: E402
    FRAMES,
    drifting_faces_frames,
    fer_faces_found_by_haar,
    write_y4m_frames,
)


def camera_frames() -> list[np.ndarray]:
    faces = fer_faces_found_by_haar()
    if len(faces) < 2:
        raise SystemExit("needs ../shared/fer2013 (two PublicTest faces the Haar cascade finds)")
    return drifting_faces_frames(faces)


def panel_numbers(page) -> dict[str, float]:
    metrics = page.locator("[data-testid='stMetric']")
    values: dict[str, float] = {}
    for index in range(metrics.count()):
        label, _, value = metrics.nth(index).inner_text().partition("\n")
        try:
            values[label.strip()] = float(value.strip() or 0)
        except ValueError:
            pass
    caption = page.get_by_text(re.compile(r"ms per frame"))
    if caption.count():
        match = re.search(r"(\d+) ms per frame", caption.first.inner_text())
        if match:
            values["ms"] = float(match.group(1))
    return values


def in_process_ms(frames: list[np.ndarray], model_path: str | None) -> float:
    from core.model_io import load_model
    from core.predict import default_model_path
    from core.video import FrameAnalyzer, StreamSettings

    analyzer = FrameAnalyzer(load_model(model_path or default_model_path()), StreamSettings())
    for frame in frames[:5]:
        analyzer.process(frame)
    costs = [analyzer.process(frame).seconds for frame in frames * 2]
    return 1000 * statistics.median(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="seconds of stream measured after the warm-up")
    parser.add_argument("--warm-up", type=int, default=8, help="seconds of stream before measuring")
    parser.add_argument("--model", default=None, help="a .keras model for the in-process row (default: the bundled model)")
    args = parser.parse_args()
    harness.require_chromium()
    frames = camera_frames()
    workdir = Path(tempfile.mkdtemp(prefix="bench-live-"))
    video = workdir / "camera.y4m"
    write_y4m_frames(video, frames)
    print(f"load average {os.getloadavg()[0]:.1f}; camera: {FRAMES} frames 640x480 at 30 frames/s, looped")

    server = harness.start_streamlit(workdir / "app", env={"FER_STUDIO_WEBRTC_LOOPBACK": "1"})
    browser = harness.launch_chromium([*harness.FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={video}",
                                       "--allow-loopback-in-peer-connection"])
    samples: list[dict[str, float]] = []
    try:
        page = harness.new_page(browser, permissions=["camera"])
        harness.goto_page(page, server, "live", "Live")
        component = page.frame_locator("iframe[title*='streamlit_webrtc']")
        component.get_by_role("button", name=re.compile("start", re.I)).click()
        page.get_by_text(re.compile(r"Now: #\d+ \w+")).first.wait_for(timeout=180_000)
        page.wait_for_timeout(args.warm_up * 1000)
        start = time.monotonic()
        for _ in range(args.seconds + 1):
            samples.append({**panel_numbers(page), "t": time.monotonic() - start})
            page.wait_for_timeout(1000)
        harness.assert_no_exception(page)
    finally:
        browser.close()
        server.stop()
    shown = [sample.get("fps", 0.0) for sample in samples[1:]]
    counted = (samples[-1]["Frames"] - samples[0]["Frames"]) / (samples[-1]["t"] - samples[0]["t"])
    server_ms = [sample["ms"] for sample in samples if "ms" in sample]
    alone_ms = in_process_ms(frames, args.model)
    print(f"load average now {os.getloadavg()[0]:.1f}")
    print(f"  {'measure':44s} {'value':>8s}")
    print(f"  {'fps shown on the page (median of ' + str(len(shown)) + ' reads)':44s} {statistics.median(shown):8.1f}")
    print(f"  {'frames analysed per second (counter)':44s} {counted:8.1f}")
    print(f"  {'analysis ms per frame in the server (median)':44s} {statistics.median(server_ms):8.1f}")
    print(f"  {'analysis ms per frame, same frames, no browser':44s} {alone_ms:8.1f}")
    print(f"  {'camera rate (the ceiling)':44s} {30.0:8.1f}")


if __name__ == "__main__":
    main()
