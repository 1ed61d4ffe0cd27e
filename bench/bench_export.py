"""Benchmark the light predictor (ONNX + onnxruntime, no TensorFlow) against the full install, in one run.

Run by hand from the repository root, with a venv made from requirements-predict.txt only::

    python3 -m venv /tmp/light-venv && /tmp/light-venv/bin/pip install -r requirements-predict.txt
    .venv/bin/python bench/bench_export.py --light-venv /tmp/light-venv [--full-venv .venv] [--model PATH]

Measured, all in this run:

* installed size of each venv (``du`` of the whole folder, apparent bytes);
* cold start, process start to first prediction: ``python -m core predict --no-detect`` on one
  face, the ONNX export in the light venv against the ``.keras`` model in the full venv (wall
  time of the whole process, median of ``--repeats``, runs interleaved);
* per-face classification latency: onnxruntime ``session.run`` against Keras
  ``predict_on_batch`` on batches of 1 and 32 faces (median ms per face);
* top-1 agreement and max probability difference between ONNX and Keras on PublicTest
  (all 3,589 faces when the dataset is at hand, else synthetic faces).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from core.data import default_data_dir  # noqa: E402
from core.export import export_model, load_parity_set  # noqa: E402
from core.light import load_onnx_model  # noqa: E402
from core.model_io import load_model  # noqa: E402
from core.predict import default_model_path  # noqa: E402
from core.preprocess import to_model_input  # noqa: E402


def folder_bytes(folder: Path) -> int:
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def cold_start(python: Path, model: Path, face: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([str(python), "-m", "core", "predict", "--model", str(model), "--no-detect", str(face)],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{python} failed: {done.stderr[-2000:]}")
    return elapsed


def per_face_ms(predict, x: np.ndarray, repeats: int) -> float:
    predict(x)  # warm-up (Keras compiles predict_on_batch on the first call)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000 / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--light-venv", type=Path, required=True, help="venv made from requirements-predict.txt")
    parser.add_argument("--full-venv", type=Path, default=REPO_ROOT / ".venv", help="venv made from requirements.txt")
    parser.add_argument("--model", type=Path, default=default_model_path(), help=".keras model (default: bundled)")
    parser.add_argument("--data", default=default_data_dir(), help="FER2013 source for PublicTest agreement")
    parser.add_argument("--repeats", type=int, default=5, help="cold starts per side")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        exported = export_model(args.model, "onnx", out=folder / "model.onnx", data=args.data)
        parity = exported.parity
        faces = load_parity_set(args.data).faces
        face_path = folder / "face.png"
        import cv2

        cv2.imwrite(str(face_path), faces[0])
        light_python, full_python = args.light_venv / "bin" / "python", args.full_venv / "bin" / "python"
        light_runs, full_runs = [], []
        for _ in range(args.repeats):  # interleaved so that machine load hits both alike
            light_runs.append(cold_start(light_python, exported.artifact, face_path))
            full_runs.append(cold_start(full_python, args.model, face_path))

        keras_model = load_model(args.model).model
        session = load_onnx_model(exported.artifact).model
        latency = {}
        for batch in (1, 32):
            x = to_model_input(faces[:batch])
            latency[batch] = (per_face_ms(session.predict_on_batch, x, 51), per_face_ms(keras_model.predict_on_batch, x, 51))
        onnx_all = session.predict(to_model_input(faces))
        keras_all = np.concatenate([keras_model.predict_on_batch(to_model_input(faces[i:i + 256])) for i in range(0, len(faces), 256)])

    light_size, full_size = folder_bytes(args.light_venv), folder_bytes(args.full_venv)
    light_cold, full_cold = statistics.median(light_runs), statistics.median(full_runs)
    print(f"model: {args.model} -> ONNX {exported.card['size_bytes'] / 1e6:.1f} MB")
    print(f"{'':34}{'light (onnxruntime)':>22}{'full (TensorFlow)':>20}{'ratio':>10}")
    print(f"{'installed size':34}{light_size / 2**20:>19.0f} MB{full_size / 2**20:>17.0f} MB{full_size / light_size:>9.1f}x")
    print(f"{'cold start to first prediction':34}{light_cold:>20.2f} s{full_cold:>18.2f} s{full_cold / light_cold:>9.1f}x"
          f"   (median of {args.repeats}; light {min(light_runs):.2f}-{max(light_runs):.2f}, full {min(full_runs):.2f}-{max(full_runs):.2f})")
    for batch, (onnx_ms, keras_ms) in latency.items():
        print(f"{f'per-face latency, batch {batch}':34}{onnx_ms:>19.3f} ms{keras_ms:>17.3f} ms{keras_ms / onnx_ms:>9.1f}x")
    agreement = float(np.mean(onnx_all.argmax(1) == keras_all.argmax(1)))
    print(f"top-1 agreement ONNX vs Keras: {agreement:.2%} of {len(faces)} faces ({parity.source}); "
          f"max |difference| {np.abs(onnx_all - keras_all).max():.2e}; accuracy Keras {parity.keras_accuracy}, "
          f"ONNX {parity.export_accuracy}")


if __name__ == "__main__":
    main()
