"""Benchmark how soon a Video-page analysis starts: a cold worker against the standby worker the page keeps warm.

Run by hand from the repository root::

    .venv/bin/python bench/bench_video_start.py [--repeats 3] [--pick-s 20] [--faces 6] [--model PATH]

Each trial is one ``core.video_jobs.start_video_job`` call, as the Video page
makes for an upload, in a fresh jobs folder, timed until the worker reports
its first analysed frame and until the job is done. Rows, interleaved trial
by trial so machine load hits them alike:

* ``cold worker``: no standby (``FER_STUDIO_VIDEO_STANDBY=0``), the worker
  starts with the upload and imports TensorFlow first (what every upload did
  before the standby);
* ``standby, upload at once``: the page opened (``warm_standby``) and the
  upload arrived in the same instant, so the standby is still importing;
* ``standby, upload after N s``: the user took ``--pick-s`` seconds to pick
  the file, and the standby was ready.

The video is 640x480 at 25 fps composed from FER2013 PublicTest faces
(``bench/video_scenes.py``), analysed with the page's defaults (``--detector``
to try another detector). Each trial
waits until the previous worker has exited. Medians are printed, and ratios
against the cold worker measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from core import video_jobs  # noqa: E402
from core.predict import default_model_path  # noqa: E402
from core.video import StreamSettings  # noqa: E402
from video_scenes import compose_frames, load_fer_faces, write_video  # noqa: E402


def trial(data: bytes, model: str, root: Path, standby: bool, pick_s: float, settings: StreamSettings) -> tuple[float, float]:
    """Seconds from the upload to the first analysed frame, and to the finished job."""
    os.environ[video_jobs.STANDBY_VARIABLE] = "1" if standby else "0"
    if standby:
        video_jobs.warm_standby([model], root=root, detector=settings.detector)  # the page opens
        time.sleep(pick_s)  # the user picks a file
    start = time.monotonic()
    job = video_jobs.start_video_job(data, "clip.mp4", settings, [model], root=root)
    first = None
    while True:
        state = video_jobs.read_video_job(job.folder)
        if first is None and state.frames_done:
            first = time.monotonic() - start
        if not state.active:
            break
        time.sleep(0.02)
    total = time.monotonic() - start
    if state.state != "done":
        raise SystemExit(f"the job failed: {state.message}")
    pid = video_jobs.runs.read_json(job.folder / "status.json")["pid"]
    while video_jobs._worker_alive(pid, job.folder):  # the next trial starts on an idle machine
        time.sleep(0.1)
    return first if first is not None else total, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pick-s", type=float, default=20.0, help="seconds between opening the page and the upload")
    parser.add_argument("--faces", type=int, default=6, help="PublicTest faces in the video (two per 60-frame segment)")
    parser.add_argument("--model", default=None, help="a .keras model (default: the bundled model)")
    parser.add_argument("--detector", default=StreamSettings().detector, help="face detector (default: the page's)")
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "fer2013"))
    args = parser.parse_args()

    model = str(args.model or default_model_path())
    faces, labels = load_fer_faces(args.data, args.faces)
    folder = Path(tempfile.mkdtemp(prefix="bench-video-start-"))
    truths = write_video(folder / "clip.mp4", compose_frames(faces, labels))
    data = (folder / "clip.mp4").read_bytes()
    settings = StreamSettings(detector=args.detector)
    print(f"video: {len(truths)} frames 640x480 @ 25 fps ({len(data) / 1024:.0f} KB), model {Path(model).name}, "
          f"detector {args.detector}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")

    rows = {"cold worker": (False, 0.0), "standby, upload at once": (True, 0.0),
            f"standby, upload after {args.pick_s:g} s": (True, args.pick_s)}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    for repeat in range(args.repeats):
        for index, (name, (standby, pick_s)) in enumerate(rows.items()):
            root = folder / f"jobs-{repeat}-{index}"
            results[name].append(trial(data, model, root, standby, pick_s, settings))
            print(f"  {name}: first frame {results[name][-1][0]:.2f} s, done {results[name][-1][1]:.2f} s", flush=True)

    cold_first = statistics.median(first for first, _ in results["cold worker"])
    cold_total = statistics.median(total for _, total in results["cold worker"])
    print(f"\n| worker ({args.repeats} trials, medians) | first frame (s) | done (s) | first frame, speed-up vs cold | done, speed-up vs cold |")
    print("|---|---:|---:|---:|---:|")
    for name, times in results.items():
        first = statistics.median(value for value, _ in times)
        total = statistics.median(value for _, value in times)
        print(f"| {name} | {first:.2f} | {total:.2f} | {cold_first / first:.2f}x | {cold_total / total:.2f}x |")


if __name__ == "__main__":
    main()
