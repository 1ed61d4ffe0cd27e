"""Benchmark end-to-end photo prediction latency: JPEG bytes -> faces with seven probabilities.

Run by hand from the repository root::

    .venv/bin/python bench/bench_predict.py [--model PATH] [--repeats 21]
    .venv/bin/python bench/bench_predict.py --bundled [--repeats 21]

``--bundled`` times the default pipeline (MTCNN, single pass, and ten-crop)
with each bundled model and with the ensemble the cards report best, against
``fer_studio_fast`` in the same run: what choosing a model costs per photo.

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


def compare_bundled(data: bytes, repeats: int) -> None:
    """Each bundled model and the best ensemble on the cards, end to end and classifier alone, vs fer_studio_fast."""
    from core.ensemble import load_models
    from core.model_io import predict_probabilities
    from core.predict import bundled_models
    from dashboard.home_widgets import best_bundled_ensemble

    choices = {path.stem: load_models([path]) for path in bundled_models()}
    ensemble = best_bundled_ensemble()
    if ensemble is not None:
        choices[" + ".join(path.stem for path in ensemble.members)] = load_models(list(ensemble.members))
    baseline = "fer_studio_fast" if "fer_studio_fast" in choices else next(iter(choices))
    faces = np.stack([face.face for face in predict_image(decode_photo(data), choices[baseline]).faces])
    rows = {}
    for name, model in choices.items():
        rows[(name, "photo")] = lambda model=model: predict_image(decode_photo(data), model)
        rows[(name, "photo, ten-crop")] = lambda model=model: predict_image(decode_photo(data), model, tta="crop10")
        rows[(name, "classify")] = lambda model=model: predict_probabilities(model, faces)
    print(f"bundled models; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"1280x720 JPEG, {len(faces)} faces, MTCNN; median of {repeats} (ms)")
    timings = time_interleaved(rows, repeats)
    print(f"{'model':60s} {'photo':>7s} {'ratio':>6s} {'ten-crop':>9s} {'ratio':>6s} {'classify':>9s} {'ratio':>6s}")
    for name in choices:
        cells = []
        for kind in ("photo", "photo, ten-crop", "classify"):
            wall, base = timings[(name, kind)][0], timings[(baseline, kind)][0]
            cells.append(f"{wall:{9 if kind != 'photo' else 7}.1f} {wall / base:5.2f}x")
        print(f"{name:60s} " + " ".join(cells))
    print(f"(ratios against {baseline}, measured in the same run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a .keras model (default: bundled, else untrained fer_vgg)")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--bundled", action="store_true",
                        help="compare the bundled models and the cards' best ensemble against fer_studio_fast instead")
    args = parser.parse_args()

    photo, _ = photo_scenes.three_face_photo()
    data = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()
    if args.bundled:
        compare_bundled(data, args.repeats)
        return
    loaded = get_model(args.model)
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
