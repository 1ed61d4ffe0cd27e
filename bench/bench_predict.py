"""Benchmark end-to-end photo prediction latency: JPEG bytes -> faces with seven probabilities.

Run by hand from the repository root::

    .venv/bin/python bench/bench_predict.py [--model PATH] [--repeats 21]

The photo is a 1280x720 JPEG with three faces (``bench/photo_scenes.py``).
Each row decodes it, detects, frames, crops and classifies every face; the
median of ``--repeats`` runs after three warm-up runs, wall and process-CPU
milliseconds, all rows interleaved so that machine load hits them alike.

Our rows run ``core.predict.predict_image`` (all faces, and their mirror
images with TTA, in one compiled ``model.predict_on_batch`` call). Baselines, measured in the same run:

* the ``fer`` package's pipeline rebuilt here (the package is not a
  dependency): Haar at full size with its settings (scaleFactor 1.1,
  minNeighbors 5, minSize 50), then ``model.predict`` on the faces;
* the same with the MTCNN package's defaults (full size, eager) as detector.

The model is ``--model``, else the bundled model, else an untrained fer_vgg
(the default architecture; latency does not depend on the weights). Also
printed: the classifier alone (eager ``model(x)``, ``model.predict``,
``predict_on_batch``) and
Grad-CAM for the three faces (what the Predict page adds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench import photo_scenes  # noqa: E402
from core.model_io import LoadedModel, load_model, reorder_to_fer  # noqa: E402
from core.predict import decode_photo, default_model_path, predict_image  # noqa: E402
from core.preprocess import prepare_face, to_model_input  # noqa: E402


def get_model(path: str | None) -> LoadedModel:
    chosen = path or default_model_path()
    if chosen is not None:
        return load_model(chosen)
    from core import model_io, models

    folder = tempfile.mkdtemp(prefix="bench-predict-")
    return load_model(model_io.export_model(models.build(models.DEFAULT_MODEL), Path(folder) / "untrained.keras"))


def fer_like_pipeline(loaded: LoadedModel, detect: Callable[[np.ndarray], list]) -> Callable[[bytes], int]:
    """Decode, detect, crop each box, ``model.predict`` on the faces (as the fer package does)."""

    def run(data: bytes) -> int:
        image = decode_photo(data)
        boxes = detect(image)
        if not boxes:
            return 0
        faces = np.stack([prepare_face(image[y:y + h, x:x + w]) for x, y, w, h in boxes])
        probabilities = loaded.model.predict(to_model_input(faces), verbose=0)
        reorder_to_fer(probabilities, loaded.class_names)
        return len(boxes)

    return run


def haar_fer_settings(image: np.ndarray) -> list:
    cascade = _haar()
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return [tuple(map(int, box)) for box in np.reshape(cascade.detectMultiScale(gray, 1.1, 5, minSize=(50, 50)), (-1, 4))]


_cascade = None


def _haar():
    global _cascade
    if _cascade is None:
        _cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    return _cascade


def mtcnn_defaults() -> Callable[[np.ndarray], list]:
    from mtcnn import MTCNN

    detector = MTCNN()
    return lambda image: [tuple(max(0, int(v)) for v in face["box"]) for face in detector.detect_faces(image)]


def ours(loaded: LoadedModel, **options) -> Callable[[bytes], int]:
    return lambda data: len(predict_image(decode_photo(data), loaded, **options).faces)


def time_interleaved(rows: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    for run in rows.values():
        for _ in range(3):
            run()
    wall: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, run in rows.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append((time.perf_counter() - start_wall) * 1000)
            cpu[name].append((time.process_time() - start_cpu) * 1000)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a .keras model (default: bundled, else untrained fer_vgg)")
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()

    loaded = get_model(args.model)
    photo, _ = photo_scenes.three_face_photo()
    data = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
    pipelines = {
        "ours: mtcnn (default)": ours(loaded, detector="mtcnn"),
        "ours: haar": ours(loaded, detector="haar"),
        "ours: mtcnn + flip TTA": ours(loaded, detector="mtcnn", tta="flip"),
        "ours: mtcnn + ten-crop TTA": ours(loaded, detector="mtcnn", tta="crop10"),
        "baseline: fer-style Haar (1.1, 5, min 50) + predict()": fer_like_pipeline(loaded, haar_fer_settings),
        "baseline: MTCNN package defaults + predict()": fer_like_pipeline(loaded, mtcnn_defaults()),
    }
    faces = {name: run(data) for name, run in pipelines.items()}
    print(f"model {loaded.model.name} from {loaded.path}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    timings = time_interleaved({name: (lambda run=run: run(data)) for name, run in pipelines.items()}, args.repeats)
    fer_wall = timings["baseline: fer-style Haar (1.1, 5, min 50) + predict()"][0]
    mtcnn_wall = timings["baseline: MTCNN package defaults + predict()"][0]
    print(f"\n1280x720 JPEG, 3 faces; median of {args.repeats} (ms)")
    print(f"{'pipeline':56s} {'faces':>5s} {'wall':>7s} {'CPU':>7s} {'speed-up vs fer-Haar':>21s} {'vs MTCNN pkg':>13s}")
    for name, (wall, cpu) in timings.items():
        print(f"{name:56s} {faces[name]:5d} {wall:7.1f} {cpu:7.1f} {fer_wall / wall:20.2f}x {mtcnn_wall / wall:12.2f}x")

    prediction = predict_image(decode_photo(data), loaded)
    batch = to_model_input(np.stack([face.face for face in prediction.faces]))
    from core.explain import grad_cam

    parts = time_interleaved({
        "classify 3 faces: model(x, training=False)": lambda: loaded.model(batch, training=False),
        "classify 3 faces: model.predict(x)": lambda: loaded.model.predict(batch, verbose=0),
        "classify 3 faces: model.predict_on_batch(x) (ours)": lambda: loaded.model.predict_on_batch(batch),
        "Grad-CAM for 3 faces": lambda: grad_cam(loaded, batch[..., 0].astype(np.uint8)),
        "decode the JPEG": lambda: decode_photo(data),
    }, args.repeats)
    print()
    for name, (wall, cpu) in parts.items():
        print(f"{name:56s} {'':5s} {wall:7.1f} {cpu:7.1f}")


if __name__ == "__main__":
    main()
