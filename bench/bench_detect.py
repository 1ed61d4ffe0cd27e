"""Benchmark the face detectors: recall, false positives, latency; and calibrate their FER2013 framing.

Run by hand from the repository root::

    .venv/bin/python bench/bench_detect.py [--repeats 15] [--no-calibrate]

Sets (``bench/photo_scenes.py``, built from images shipped with scikit-image):
"LFW" is 20 photos of 1280x720 with 100 LFW faces (60-220 px) among 100
non-face patches; "hard" is 20 more with the faces rotated up to +-25 degrees
and mirrored (40-200 px). A face counts as found when a box overlaps it with
IoU >= 0.3; any other box is a false positive. Latency is the median over
``--repeats`` runs on a 1280x720 photo with three faces, after two warm-up
runs, wall and process-CPU milliseconds, detectors interleaved.

Rows: the registered detectors as ``core.detect.detect_faces`` runs them, and
baselines measured in the same run: Haar with the ``fer`` package's settings
(full size, scaleFactor 1.1, minNeighbors 5, minSize 50), Haar with the
PyTorch seed's webcam settings (scaleFactor 1.3, minNeighbors 5), Haar with
OpenCV's profile cascade and its mirror added (NMS-merged), and the MTCNN
package's defaults (full size, eager TensorFlow).

Calibration: on 400 FER2013 training faces (upscaled 4x inside a border),
how large each detector's box is relative to the FER2013 crop; its inverse
is the framing padding ``core.detect`` uses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench import photo_scenes  # noqa: E402
from core.detect import detect_faces, list_detectors, non_max_suppression  # noqa: E402

Finder = Callable[[np.ndarray], list[tuple[int, int, int, int]]]


def registered(name: str) -> Finder:
    return lambda image: [face.xywh for face in detect_faces(image, name)]


def haar_baseline(scale_factor: float, min_neighbors: int, min_size: int) -> Finder:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def find(image: np.ndarray):
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        boxes = cascade.detectMultiScale(gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size))
        return [tuple(int(v) for v in box) for box in np.reshape(boxes, (-1, 4))]

    return find


def haar_with_profiles(max_side: int = 640) -> Finder:
    frontal = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    profile = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_profileface.xml")

    def find(image: np.ndarray):
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, max_side / max(gray.shape))
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        boxes, scores = [], []
        mirrored = np.ascontiguousarray(gray[:, ::-1])
        for cascade, source, flip in ((frontal, gray, False), (profile, gray, False), (profile, mirrored, True)):
            found, _, weights = cascade.detectMultiScale3(source, 1.1, 4, minSize=(20, 20), outputRejectLevels=True)
            for (x, y, w, h), weight in zip(np.reshape(found, (-1, 4)), np.ravel(weights)):
                boxes.append((gray.shape[1] - x - w if flip else x, y, w, h))
                scores.append(float(weight))
        keep = non_max_suppression(np.array(boxes).reshape(-1, 4), scores)
        return [tuple(int(round(v / scale)) for v in boxes[i]) for i in keep]

    return find


def mtcnn_package_defaults() -> Finder:
    from mtcnn import MTCNN

    detector = MTCNN()
    return lambda image: [tuple(face["box"]) for face in detector.detect_faces(image)]


def evaluate(find: Finder, scenes) -> tuple[float, int]:
    hits = false = total = 0
    for image, truth in scenes:
        found_hits, found_false = photo_scenes.match(find(image), truth)
        hits, false, total = hits + found_hits, false + found_false, total + len(truth)
    return hits / total, false


def time_interleaved(finders: dict[str, Finder], image: np.ndarray, repeats: int) -> dict[str, tuple[float, float]]:
    for find in finders.values():
        for _ in range(2):
            find(image)
    wall: dict[str, list[float]] = {name: [] for name in finders}
    cpu: dict[str, list[float]] = {name: [] for name in finders}
    for _ in range(repeats):
        for name, find in finders.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            find(image)
            wall[name].append((time.perf_counter() - start_wall) * 1000)
            cpu[name].append((time.process_time() - start_cpu) * 1000)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in finders}


def calibrate(count: int = 400) -> None:
    data = REPO_ROOT.parent / "shared" / "fer2013" / "train"
    files = sorted(data.glob("*/*.jpg"))
    if not files:
        print(f"\n(calibration skipped: no FER2013 images under {data})")
        return
    rng = np.random.default_rng(0)
    files = [files[i] for i in rng.choice(len(files), size=min(count, len(files)), replace=False)]
    scale, border = 4, 96
    print(f"\nFraming calibration on {len(files)} FER2013 training faces (box size / FER2013 crop side, median [IQR]):")
    for spec in list_detectors():
        sides, centers = [], []
        for file in files:
            face = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            big = cv2.resize(face, (48 * scale, 48 * scale), interpolation=cv2.INTER_CUBIC)
            padded = cv2.copyMakeBorder(big, border, border, border, border, cv2.BORDER_CONSTANT, value=int(face.mean()))
            found = detect_faces(padded, spec.name, max_side=None)
            if found:
                box = max(found, key=lambda f: f.score)
                sides.append(max(box.w, box.h) / (48 * scale))
                centers.append(((box.x + box.w / 2 - border) / (48 * scale), (box.y + box.h / 2 - border) / (48 * scale)))
        sides_array = np.array(sides)
        q1, median, q3 = np.percentile(sides_array, [25, 50, 75])
        cx, cy = np.median(np.array(centers), axis=0)
        print(f"  {spec.name:6s} found {len(sides)}/{len(files)}: max(w,h) = {median:.3f} [{q1:.3f}-{q3:.3f}] of the crop, "
              f"centre ({cx:.3f}, {cy:.3f}) -> padding {1 / median:.2f} (used: {spec.padding})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-calibrate", action="store_true")
    args = parser.parse_args()

    finders: dict[str, Finder] = {f"{spec.name} (core.detect)": registered(spec.name) for spec in list_detectors()}
    finders["Haar, fer package settings (1.1, 5, min 50, full size)"] = haar_baseline(1.1, 5, 50)
    finders["Haar, seed C webcam settings (1.3, 5, full size)"] = haar_baseline(1.3, 5, 30)
    finders["Haar + profile + mirrored profile (640 px)"] = haar_with_profiles()
    finders["MTCNN package defaults (full size, eager)"] = mtcnn_package_defaults()

    sets = {"LFW": photo_scenes.lfw_scenes(), "hard": photo_scenes.hard_scenes()}
    photo, truth = photo_scenes.three_face_photo()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; OpenCV threads {cv2.getNumThreads()}")
    timings = time_interleaved(finders, photo, args.repeats)
    baseline = "MTCNN package defaults (full size, eager)"
    print(f"\n{'detector':56s} {'LFW recall':>10s} {'FP':>4s} {'hard recall':>11s} {'FP':>4s} {'3-face':>6s} "
          f"{'wall ms':>8s} {'CPU ms':>7s} {'vs MTCNN pkg':>12s}")
    for name, find in finders.items():
        lfw_recall, lfw_false = evaluate(find, sets["LFW"])
        hard_recall, hard_false = evaluate(find, sets["hard"])
        hits, _ = photo_scenes.match(find(photo), truth)
        wall, cpu = timings[name]
        print(f"{name:56s} {lfw_recall:10.2f} {lfw_false:4d} {hard_recall:11.2f} {hard_false:4d} {hits:4d}/3 "
              f"{wall:8.1f} {cpu:7.1f} {timings[baseline][0] / wall:11.2f}x")
    if not args.no_calibrate:
        calibrate()


if __name__ == "__main__":
    main()
