"""``python -m core export`` and the light predictor (``predict --model x.onnx``) with TensorFlow and Keras blocked."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.__main__ import main
from core.labels import CLASS_NAMES

ROOT = Path(__file__).resolve().parents[2]
PERMUTED = ("neutral", "happy", "angry", "surprise", "fear", "sad", "disgust")

BLOCKED = textwrap.dedent("""
    import json, sys

    class NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax"):
                raise ImportError(f"{{name}} is blocked in this test")
    sys.meta_path.insert(0, NoTensorFlow())
    sys.path.insert(0, {root!r})
    from core.__main__ import main
    code = main({argv!r})
    heavy = sorted(name for name in ("tensorflow", "keras", "streamlit", "pandas") if name in sys.modules)
    print("MODULES " + json.dumps(heavy), file=sys.stderr)
    sys.exit(code)
""")


def run_blocked(argv: list[str]) -> subprocess.CompletedProcess:
    script = BLOCKED.format(root=str(ROOT), argv=argv)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def permuted_onnx(tmp_path_factory, oracle_model_factory_module) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    source = oracle_model_factory_module(folder / "permuted.keras", output_names=PERMUTED)
    assert main(["export", "--model", str(source), "--format", "onnx", "--synthetic"]) == 0
    return folder / "permuted.onnx"


@pytest.fixture(scope="module")
def oracle_model_factory_module():
    from tests.conftest import _build_oracle_model
    from core import model_io

    def make(path, output_names=CLASS_NAMES):
        return model_io.save_model(_build_oracle_model(tuple(output_names)), path, class_names=tuple(output_names))

    return make


def test_export_command_writes_artifact_and_card_and_prints_parity(permuted_onnx, capsys):
    assert permuted_onnx.is_file() and Path(str(permuted_onnx) + ".json").is_file()
    card = json.loads(Path(str(permuted_onnx) + ".json").read_text())
    assert card["class_names"] == list(PERMUTED) and card["parity"]["passed"]


def test_export_command_summary_and_errors(tmp_path, oracle_model_factory_module, capsys):
    source = oracle_model_factory_module(tmp_path / "m.keras")
    assert main(["export", "--model", str(source), "--format", "litert", "--synthetic", "--out", str(tmp_path / "x.tflite")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["artifact"] == str(tmp_path / "x.tflite") and summary["parity"]["passed"]
    assert summary["parity"]["faces"] == 64 and summary["parity"]["max_abs_difference"] < 1e-4
    (tmp_path / "bad.keras").write_bytes(b"\x00" * 100)
    assert main(["export", "--model", str(tmp_path / "bad.keras"), "--format", "onnx", "--synthetic"]) == 2
    assert "not a Keras model" in capsys.readouterr().err
    assert main(["export", "--model", str(source), "--format", "saved_model", "--quantize", "dynamic", "--synthetic"]) == 2
    assert "SavedModel keeps float32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--model", str(source), "--format", "coreml"])


def test_light_predictor_runs_with_tensorflow_and_keras_blocked(permuted_onnx, tmp_path):
    # Oracle faces: class k lights row k; the weights' column order is PERMUTED, known only from the card.
    paths = []
    for index, name in enumerate(CLASS_NAMES):
        face = np.zeros((48, 48), np.uint8)
        face[index, [0, 47]] = 255
        paths.append(tmp_path / f"{index}_{name}.png")
        cv2.imwrite(str(paths[-1]), face)
    done = run_blocked(["predict", "--model", str(permuted_onnx), "--no-detect", "--json", *map(str, paths)])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [entry["faces"][0]["emotion"] for entry in report["images"]] == list(CLASS_NAMES)
    assert report["detector"] is None
    assert 'MODULES ["keras"' not in done.stderr and "MODULES []" in done.stderr


def test_light_predictor_detects_faces_with_haar_and_explains_mtcnn(permuted_onnx, tmp_path, three_face_photo):
    photo, _ = three_face_photo
    cv2.imwrite(str(tmp_path / "three.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    done = run_blocked(["predict", "--model", str(permuted_onnx), "--json", str(tmp_path / "three.jpg")])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["detector"] == "haar" and len(report["images"][0]["faces"]) == 3
    done = run_blocked(["predict", "--model", str(permuted_onnx), "--detector", "mtcnn", str(tmp_path / "three.jpg")])
    assert done.returncode == 2 and "mtcnn detector needs TensorFlow" in done.stderr
    # Walk s9: without --model the light install advised "--detector haar", which then ended in a keras traceback.
    for extra in ([], ["--detector", "haar"]):
        done = run_blocked(["predict", *extra, str(tmp_path / "three.jpg")])
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "the default model is a .keras file; this install (requirements-predict.txt, without Keras" in done.stderr
        assert "pass --model with the .onnx file" in done.stderr and "models/fer_studio_swa.onnx" in done.stderr
    # Review s21: a .tflite was called "a .keras file", and a missing model got the same advice.
    tflite = tmp_path / "exports" / "m.tflite"
    tflite.parent.mkdir()
    tflite.write_bytes(b"TFL3")
    done = run_blocked(["predict", "--model", str(tflite), str(tmp_path / "three.jpg")])
    assert done.returncode == 2 and "m.tflite is not an ONNX file (.tflite)" in done.stderr, done.stderr
    assert f"pass --model with the .onnx file ({tflite.with_suffix('.onnx')})" in done.stderr
    assert "--format onnx --model <the .keras model>`" in done.stderr  # no made-up .keras path
    done = run_blocked(["predict", "--model", str(tmp_path / "gone.keras"), str(tmp_path / "three.jpg")])
    assert done.returncode == 2 and "no model file at" in done.stderr and "gone.keras" in done.stderr


def test_export_and_pack_keep_an_existing_output_unless_overwrite_is_given(tmp_path, oracle_model_factory_module, capsys):
    # Security probe s9 finding 7: export --out precious.onnx and pack --out data.npz replaced unrelated files.
    model = oracle_model_factory_module(tmp_path / "oracle.keras")
    precious = tmp_path / "precious.onnx"
    precious.write_text("someone's file")
    assert main(["export", "--model", str(model), "--format", "onnx", "--synthetic", "--out", str(precious)]) == 2
    assert f"{precious} exists (a file); pass --overwrite" in capsys.readouterr().err
    assert precious.read_text() == "someone's file"
    card = tmp_path / "other.onnx.json"
    card.write_text("{}")  # the card beside the artifact would be replaced too
    assert main(["export", "--model", str(model), "--format", "onnx", "--synthetic", "--out", str(tmp_path / "other.onnx")]) == 2
    assert "other.onnx.json exists" in capsys.readouterr().err and card.read_text() == "{}"
    # Review s21: a SavedModel --out beside a bundled model's card replaced that card under --overwrite.
    own_card = tmp_path / "oracle.json"
    own_card.write_text('{"name": "oracle"}')
    (tmp_path / "oracle").mkdir()
    (tmp_path / "oracle" / "saved_model.pb").write_bytes(b"")
    for overwrite in ([], ["--overwrite"]):
        assert main(["export", "--model", str(model), "--format", "saved_model", "--synthetic",
                     "--out", str(tmp_path / "oracle"), *overwrite]) == 2
        error = capsys.readouterr().err
        assert "oracle.json exists and is not an export's card" in error and "--overwrite" not in error
    assert own_card.read_text() == '{"name": "oracle"}'
    pack = tmp_path / "data.npz"
    pack.write_text("not a pack")
    assert main(["pack", "--data", str(tmp_path / "nowhere"), "--out", str(pack)]) == 2  # refused before loading
    assert f"{pack} exists (a file); pass --overwrite" in capsys.readouterr().err and pack.read_text() == "not a pack"
    # Probe s18: --overwrite with a folder at the output path failed on an internal temporary name.
    folder = tmp_path / "folder.npz"
    (folder / "inside").mkdir(parents=True)
    for overwrite in ([], ["--overwrite"]):
        assert main(["pack", "--data", str(tmp_path / "nowhere"), "--out", str(folder), *overwrite]) == 2
        error = capsys.readouterr().err
        assert f"{folder} is a folder: the output is a file, and --overwrite replaces files only" in error
        assert ".folder" not in error and (folder / "inside").is_dir()
    # Probe s19: outputs inside the data folder became records of the dataset (14 "skipped" in every later load).
    data = tmp_path / "faces"
    (data / "happy").mkdir(parents=True)
    assert main(["pack", "--data", str(data), "--out", str(data / "happy" / "inside.npz")]) == 2
    assert "--out " in (error := capsys.readouterr().err) and "lies inside the data folder" in error
    assert main(["train", "--data", str(data), "--out", str(data / "happy")]) == 2
    assert "lies inside the data folder" in capsys.readouterr().err and list((data / "happy").iterdir()) == []
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(notes)]) == 2
    assert f"{notes} is a file: give a folder" in capsys.readouterr().err


def test_a_full_disk_during_export_is_named_as_such_not_blamed_on_the_model(tmp_path, oracle_model_factory_module,
                                                                             capsys, monkeypatch):
    # Probe s19: "this model cannot be expressed as onnx: OSError: [Errno 28] No space left on device".
    import errno

    import keras

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "export", full)
    model = oracle_model_factory_module(tmp_path / "oracle.keras")
    out = tmp_path / "out"
    assert main(["export", "--model", str(model), "--format", "onnx", "--synthetic", "--out", str(out / "m.onnx")]) == 2
    error = capsys.readouterr().err
    assert f"cannot write the export to {out}: No space left on device" in error and "cannot be expressed" not in error
    assert list(out.iterdir()) == []  # its work folder is gone too


def test_a_killed_export_leaves_no_work_folder(tmp_path, oracle_model_factory_module, monkeypatch):
    """Review s21: SIGTERM during an export left its hidden work folder (the partial artifact) beside the output."""
    import os
    import signal

    from core import export as export_module

    model = oracle_model_factory_module(tmp_path / "oracle.keras")
    out = tmp_path / "out"

    def killed_while_converting(*args, **kwargs):
        assert [path.name for path in out.iterdir() if path.name.startswith(".")]  # the work folder is there
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(export_module, "_write_float_artifact", killed_while_converting)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        main(["export", "--model", str(model), "--format", "onnx", "--synthetic", "--out", str(out)])
    assert stopped.value.code == 143 and signal.getsignal(signal.SIGTERM) is previous
    assert list(out.iterdir()) == []
