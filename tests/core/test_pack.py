"""Packed datasets: one .npz that trains on a machine without the image folders or TensorFlow."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.data import load_fer2013
from core.pack import load_packed, pack_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_pack_round_trip_keeps_every_row_and_the_source_hash(tiny_fer_folder, tmp_path):
    dataset = load_fer2013(tiny_fer_folder, use_cache=False)
    path = pack_dataset(dataset, tmp_path / "fer.npz")
    packed = load_fer2013(path)
    assert np.array_equal(packed.images, dataset.images) and packed.images.dtype == np.uint8
    assert np.array_equal(packed.labels, dataset.labels)
    assert packed.splits.tolist() == dataset.splits.tolist() and packed.ids.tolist() == dataset.ids.tolist()
    assert packed.report.content_hash == dataset.report.content_hash
    assert packed.report.kind == f"packed:{dataset.report.kind}" and packed.report.loaded == len(dataset)
    with zipfile.ZipFile(path) as archive:  # stored without pickles, bzip2-compressed
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_BZIP2}


def test_a_part_of_the_source_gets_its_own_hash(tiny_fer_folder, tmp_path):
    dataset = load_fer2013(tiny_fer_folder, use_cache=False)
    training = load_packed(pack_dataset(dataset, tmp_path / "train.npz", splits=["Training"]))
    assert training.split_names == ["Training"] and len(training) == int((dataset.splits == "Training").sum())
    assert training.report.content_hash != dataset.report.content_hash
    with pytest.raises(ValueError, match="split PrivateTest is not in this dataset"):
        pack_dataset(dataset, tmp_path / "x.npz", splits=["PrivateTest"])
    with pytest.raises(ValueError, match=r"\.npz"):
        pack_dataset(dataset, tmp_path / "x.zip")


def test_other_or_damaged_npz_files_are_refused(tmp_path, tiny_fer_folder):
    other = tmp_path / "other.npz"
    np.savez(other, images=np.zeros((2, 48, 48), np.uint8))
    with pytest.raises(ValueError, match="not a packed FER Studio dataset"):
        load_fer2013(other)
    good = pack_dataset(load_fer2013(tiny_fer_folder, use_cache=False), tmp_path / "good.npz")
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="damaged.npz is not a readable .npz archive .*truncated"):
        load_fer2013(damaged)
    # Before: numpy's own message for any non-zip bytes, advising to load them with allow_pickle.
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="text.npz is not a readable .npz archive") as error:
        load_fer2013(text)
    assert "allow_pickle" not in str(error.value)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, images=np.zeros((2, 48, 48), np.uint8), labels=np.zeros(2, np.int64), splits=np.array(["Training"] * 2),
             ids=np.array([{"a": 1}, {"b": 2}], dtype=object), header=np.array("{}"))
    with pytest.raises(ValueError, match="pickled.npz holds pickled Python objects") as error:
        load_fer2013(pickled)
    assert "allow_pickle" not in str(error.value)
    corrupt = tmp_path / "corrupt.npz"
    data = bytearray(good.read_bytes())
    data[200:4000] = bytes(3800)  # inside the first member's compressed stream
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt.npz is a damaged packed dataset"):
        load_fer2013(corrupt)
    with pytest.raises(FileNotFoundError):
        load_packed(tmp_path / "missing.npz")


def test_cli_pack_writes_a_file_other_commands_read(tiny_fer_folder, tmp_path):
    env = {**os.environ, "FER_STUDIO_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "packed.npz"
    done = subprocess.run([sys.executable, "-m", "core", "pack", "--data", str(tiny_fer_folder), "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and "MiB" in done.stdout
    done = subprocess.run([sys.executable, "-m", "core", "inspect", "--data", str(out), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["report"]["kind"].startswith("packed:")


JAX_SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path

    class NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tensorflow":
                raise ImportError("tensorflow is blocked in this test")
    sys.meta_path.insert(0, NoTensorFlow())
    sys.path.insert(0, {tests!r})
    from test_train import tiny_config, write_fer_csv
    from core.augment import AugmentConfig
    from core.data import load_fer2013
    from core.pack import pack_dataset
    from core.train import prepare_run, run_training

    folder = Path({folder!r})
    packed = pack_dataset(load_fer2013(write_fer_csv(folder / "fer2013.csv", per_class=12), use_cache=False), folder / "fer.npz")
    config = tiny_config(packed, augment=AugmentConfig(engine="layers"))
    status = run_training(prepare_run(config, folder / "runs"), echo=lambda line: None)
    print(json.dumps({{"state": status.state, "message": status.message, "tensorflow": "tensorflow" in sys.modules}}))
""")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (requirements-dev.txt has it)")
def test_jax_trains_from_a_pack_without_tensorflow(tmp_path):
    script = JAX_SCRIPT.format(tests=str(ROOT / "tests" / "core"), folder=str(tmp_path))
    env = {**os.environ, "KERAS_BACKEND": "jax", "FER_STUDIO_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["state"] == "finished", report["message"]
    assert not report["tensorflow"]
