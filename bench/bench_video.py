"""Benchmark video analysis: frames/s, accuracy with smoothing, id switches, against the `fer` package.

Run by hand from the repository root (the `fer` peer in its own venv, see ../shared/PEERS.md)::

    .venv/bin/python bench/bench_video.py [--faces 40] [--fer-python ~/fer-peer/bin/python] [--model PATH]

The video is 640x480 at 25 fps, composed from FER2013 PublicTest faces
(``bench/video_scenes.py``): two faces at a time, each a "person" moving and
changing size for 40 frames, then 20 empty frames before the next pair;
labels and boxes are known per frame.

All pipelines see the same frames in lockstep: the video is processed in
chunks of ``--chunk`` frames and every configuration analyses each chunk in
turn, so machine load (a training job, other users) hits them alike. Each
configuration reads the file with its own decoder, so times include decoding
(PyAV for ours, in the look-ahead threads as ``analyze_video`` does;
``cv2.VideoCapture`` for fer) and analysis, not writing an annotated video.

Rows:

* ``core.video`` with Haar or MTCNN, detection on every frame (``--every 1``)
  or every 3rd frame (the tracker carries the boxes in between), decoding and
  detecting ahead in two threads (one for MTCNN) as ``analyze_video`` does;
  and Haar ``--every 1`` in one thread, to show what that overlap buys;
* ``predict_image per frame``: today's photo pipeline called on each frame
  (Haar; measured on every 4th chunk only, it is the slowest);
* ``fer``: the real ``fer`` package in its own venv, ``FER()`` defaults
  (Haar 1.1/5/min 50 at full size, the quantized TFLite mini-Xception), one
  ``detect_emotions`` call per frame, run as a worker process.

Accuracy is per face per frame: a true face counts as right when a reported
box overlaps it (IoU >= 0.3) and its shown emotion is the label; a missed face
counts as wrong. "Single image" is the same model on the same faces' 48x48
originals. None/vote/ema come from the same pass (smoothing happens after the
model). False boxes are reported boxes that match no true face (IoU < 0.3);
"on bg" counts those that are not even mostly over or around a true face
(half of the smaller box), i.e. boxes on the background; an id switch
is a true face whose matched face id changes from one frame to the next.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from bench.video_scenes import compose_frames, load_fer_faces, write_video  # noqa: E402
from core.labels import CLASS_NAMES  # noqa: E402
from core.model_io import load_model, predict_probabilities  # noqa: E402
from core.predict import default_model_path, predict_image  # noqa: E402
from core.preprocess import prepare_face  # noqa: E402
from core.smoothing import EmotionSmoother  # noqa: E402
from core.tracking import box_iou, box_overlap_of_smaller  # noqa: E402
from core.video import FrameAnalyzer, StreamSettings, process_ahead  # noqa: E402
from core.video_io import VideoReader  # noqa: E402

FER_WORKER = r'''
import json, sys, time, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import cv2
from fer.fer import FER
LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
detector = FER()  # defaults: Haar cascade, quantized TFLite model
capture = cv2.VideoCapture(sys.argv[1])
import numpy as np
detector.detect_emotions(np.zeros((480, 640, 3), np.uint8))
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    count = int(json.loads(line)["frames"])
    start = time.perf_counter()
    results = []
    for _ in range(count):
        ok, frame = capture.read()
        if not ok:
            break
        faces = detector.detect_emotions(frame)
        results.append([[*map(int, face["box"]), LABELS.index(max(face["emotions"], key=face["emotions"].get))] for face in faces])
    print(json.dumps({"elapsed": time.perf_counter() - start, "results": results}), flush=True)
'''


class OursConfig:
    """One ``core.video`` configuration reading the file with its own ``VideoReader``, as ``analyze_video`` does:
    decoding and detection ahead in other threads (or, with ``ahead=False``, all in the calling thread)."""

    def __init__(self, name: str, loaded, settings: StreamSettings, video: Path, ahead: bool = True) -> None:
        self.name, self.analyzer, self.ahead = name, FrameAnalyzer(loaded, settings), ahead
        self.reader = VideoReader(video)
        self.frames_left = iter(self.reader)
        self.elapsed, self.frames, self.records = 0.0, 0, []

    def run(self, count: int) -> None:
        start = time.perf_counter()
        frames = itertools.islice(self.frames_left, count)
        if self.ahead:
            results = [result for _, result in process_ahead(self.analyzer, frames)]
        else:
            results = [self.analyzer.process(frame.image, frame.time_s, frame.index) for frame in frames]
        self.elapsed += time.perf_counter() - start
        for result in results:
            self.records.append([(face.face_id, face.box, face.probabilities, face.emotion) for face in result.faces])
        self.frames += len(results)

    def close(self) -> None:
        self.reader.close()


class PredictImageConfig:
    """Today's photo pipeline on every frame (no tracking, no smoothing), decoding its own frames."""

    def __init__(self, loaded, video: Path) -> None:
        self.name, self.loaded = "predict_image per frame (haar)", loaded
        self.reader = VideoReader(video)
        self.frames_left = iter(self.reader)
        self.elapsed, self.frames = 0.0, 0

    def run(self, count: int, measure: bool) -> None:
        start = time.perf_counter()
        for frame in itertools.islice(self.frames_left, count):
            if measure:
                predict_image(frame.image, self.loaded, detector="haar")
                self.frames += 1
        if measure:
            self.elapsed += time.perf_counter() - start

    def close(self) -> None:
        self.reader.close()


class FerWorker:
    """The `fer` package in its own interpreter, reading the same file chunk by chunk."""

    def __init__(self, python: str, video: Path) -> None:
        self.name = "fer (Haar + TFLite, its defaults)"
        script = Path(tempfile.mkdtemp(prefix="fer-worker-")) / "worker.py"
        script.write_text(FER_WORKER)
        self.process = subprocess.Popen([python, str(script), str(video)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        reply = self.process.stdout.readline()
        if not reply:
            raise RuntimeError(f"the fer worker did not start ({python}); see ../shared/PEERS.md")
        self.elapsed, self.frames, self.records = 0.0, 0, []

    def run(self, count: int) -> None:
        self.process.stdin.write(json.dumps({"frames": count}) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        self.elapsed += reply["elapsed"]
        self.frames += len(reply["results"])
        self.records.extend([[(None, tuple(face[:4]), None, CLASS_NAMES[face[4]]) for face in faces] for faces in reply["results"]])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def score(records, truths, single_right: dict[int, bool]) -> dict:
    """Accuracy (shown / none / vote / ema), coverage, false boxes and id switches of one configuration."""
    smoothers = {mode: defaultdict(lambda mode=mode: EmotionSmoother(mode, 10)) for mode in ("none", "vote", "ema")}
    right = defaultdict(int)
    total = found = false_boxes = misframed = boxes = switches = 0
    single_found = 0
    last_id: dict[int, int] = {}
    for faces, truth in zip(records, truths):
        labels_by_mode = {}
        for face_id, box, probabilities, emotion in faces:
            if probabilities is not None:
                labels_by_mode[face_id] = {mode: smoothers[mode][face_id].update(probabilities) for mode in smoothers}
        used = set()
        boxes += len(faces)
        for true_face in truth:
            total += 1
            overlaps = [(box_iou(face[1], true_face.box), index) for index, face in enumerate(faces) if index not in used]
            best, index = max(overlaps, default=(0.0, -1))
            if best < 0.3:
                continue
            used.add(index)
            found += 1
            single_found += single_right[true_face.face]
            face_id, _, _, emotion = faces[index]
            label = CLASS_NAMES[true_face.label]
            right["shown"] += emotion == label
            if face_id is not None:
                for mode, shown in labels_by_mode[face_id].items():
                    right[mode] += shown == label
                if true_face.face in last_id and last_id[true_face.face] != face_id:
                    switches += 1
                last_id[true_face.face] = face_id
        for index, face in enumerate(faces):
            if index in used:
                continue
            false_boxes += 1
            # A box mostly over or around a true face is that face badly framed; the rest are on the background.
            if any(box_overlap_of_smaller(face[1], true_face.box) >= 0.5 for true_face in truth):
                misframed += 1
    result = {"coverage": found / total, "false_boxes": false_boxes, "misframed": misframed, "boxes": boxes,
              "id_switches": switches,
              "single_on_found": single_found / max(found, 1)}
    for mode, count in right.items():
        result[f"acc_{mode}_found"] = count / max(found, 1)
        result[f"acc_{mode}_all"] = count / total
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=40, help="PublicTest faces in the video (two per segment)")
    parser.add_argument("--chunk", type=int, default=50, help="frames per lockstep chunk")
    parser.add_argument("--model", default=None, help="a .keras model (default: the bundled model)")
    parser.add_argument("--fer-python", default=str(Path.home() / "fer-peer" / "bin" / "python"))
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "fer2013"))
    args = parser.parse_args()

    loaded = load_model(args.model or default_model_path())
    faces, labels = load_fer_faces(args.data, args.faces)
    single = predict_probabilities(loaded, np.stack(faces)).argmax(axis=1)
    single_right = {index: bool(single[index] == labels[index]) for index in range(len(faces))}
    folder = Path(tempfile.mkdtemp(prefix="bench-video-"))
    video = folder / "two_faces.mp4"
    truths = write_video(video, compose_frames(faces, labels))
    print(f"video: {len(truths)} frames 640x480 @ 25 fps, {len(faces)} PublicTest faces, two at a time "
          f"({sum(len(t) for t in truths)} face-frames); load average {os.getloadavg()[0]:.1f}")

    configs = [OursConfig(f"core.video {detector} --every {every}", loaded, StreamSettings(detector=detector, every=every), video)
               for detector in ("haar", "mtcnn") for every in (1, 3)]
    configs.append(OursConfig("core.video haar --every 1, one thread", loaded, StreamSettings(detector="haar"), video,
                              ahead=False))
    baseline = PredictImageConfig(loaded, video)
    fer = None
    if Path(args.fer_python).exists():
        fer = FerWorker(args.fer_python, video)
    else:
        print(f"(fer row skipped: no {args.fer_python}; see ../shared/PEERS.md)")
    # Warm-up: compile the model and the detectors on a few frames outside the timing.
    with VideoReader(video) as reader:
        warm = [frame for frame, _ in zip(reader, range(5))]
    for config in configs:
        FrameAnalyzer(loaded, config.analyzer.settings).process(warm[0].image)
    predict_image(warm[0].image, loaded, detector="haar")

    for chunk_index, first in enumerate(range(0, len(truths), args.chunk)):
        count = min(args.chunk, len(truths) - first)
        # Every configuration takes its turn on this chunk, starting with a different one each time.
        for config in configs[chunk_index % len(configs):] + configs[:chunk_index % len(configs)]:
            config.run(count)
        baseline.run(count, measure=chunk_index % 4 == 0)  # the slowest: measured on every 4th chunk only
        if fer is not None:
            fer.run(count)
        print(f"\r  {first + count}/{len(truths)} frames", end="", file=sys.stderr, flush=True)
    for config in (*configs, baseline):
        config.close()
    if fer is not None:
        fer.close()

    rows = []
    for config in [*configs, baseline, *([fer] if fer else [])]:
        rows.append((config, config.frames / config.elapsed))
    fer_fps = next((fps for config, fps in rows if config is fer), None)
    print(f"\nSpeed (frames/s, decoding + analysis, {len(truths)} frames; lockstep chunks of {args.chunk}; "
          f"load average now {os.getloadavg()[0]:.1f}):")
    print(f"  {'pipeline':42s} {'frames/s':>9s} {'vs fer':>7s}")
    for config, fps in rows:
        ratio = f"{fps / fer_fps:6.2f}x" if fer_fps else "   n/a"
        print(f"  {config.name:42s} {fps:9.1f} {ratio}")

    print("\nAccuracy per face per frame (missed faces count as wrong in 'all'):")
    print(f"  {'pipeline':42s} {'found':>6s} {'false':>6s} {'on bg':>6s} {'ids':>4s} {'single':>7s} {'none':>7s} {'vote':>7s} "
          f"{'ema':>7s} {'vote/all':>8s}")
    single_all = statistics.mean(single_right.values())
    for config in [*configs, *([fer] if fer else [])]:
        result = score(config.records, truths, single_right)
        if config is fer:
            print(f"  {config.name:42s} {result['coverage']:6.1%} {result['false_boxes']:6d} "
                  f"{result['false_boxes'] - result['misframed']:6d} {'-':>4s} "
                  f"{result['single_on_found']:7.1%} {result['acc_shown_found']:7.1%} {'-':>7s} {'-':>7s} "
                  f"{result['acc_shown_all']:8.1%}")
        else:
            print(f"  {config.name:42s} {result['coverage']:6.1%} {result['false_boxes']:6d} "
                  f"{result['false_boxes'] - result['misframed']:6d} {result['id_switches']:4d} "
                  f"{result['single_on_found']:7.1%} {result['acc_none_found']:7.1%} {result['acc_vote_found']:7.1%} "
                  f"{result['acc_ema_found']:7.1%} {result['acc_vote_all']:8.1%}")
    # Where per-frame accuracy goes: the same frames cropped at the true (pasted) face box, no detector.
    right_true_box = 0
    with VideoReader(video) as reader:
        for frame, truth in zip(reader, truths):
            if not truth:
                continue
            crops = [prepare_face(frame.image[y:y + h, x:x + w]) for x, y, w, h in (face.box for face in truth)]
            predicted = predict_probabilities(loaded, np.stack(crops)).argmax(axis=1)
            right_true_box += sum(int(p == face.label) for p, face in zip(predicted, truth))
    face_frames = sum(len(truth) for truth in truths)
    print(f"\nThe same frames cropped at the true face boxes (no detector, no smoothing): "
          f"{right_true_box / face_frames:.1%} ({face_frames} face-frames); the gap to 'single' is the video "
          f"(resampling, H.264), the gap from here to 'none' is the detector's framing.")
    print(f"\n'single' = our model on the 48x48 originals of the faces found, weighted like the frames "
          f"(all {len(faces)} faces: {single_all:.1%}); 'fer' classifies with its own model, so its 'none' "
          f"column is its shown label; ids = id switches.")


if __name__ == "__main__":
    main()
