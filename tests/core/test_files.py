"""Files written through a temporary file and a rename get the mode of any new file, not tempfile's owner-only 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from core import files, runs


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_ordinary_mode_follows_the_umask(umask):
    assert files.ordinary_mode() == 0o666 & ~umask


def test_run_files_models_caches_and_packs_get_the_ordinary_mode(umask, tmp_path, oracle_model_factory,
                                                                  oracle_dataset_factory):
    # Walk s12: bundle output, best.keras and evaluation.json were 0600 under umask 022.
    from core.cache import write_cache
    from core.evaluate import write_cached_predictions
    from core.pack import pack_dataset

    expected = 0o666 & ~umask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert mode(plain) == expected  # what the user's own files get

    runs.write_json_atomic(tmp_path / "status.json", {"state": "finished"})
    model = oracle_model_factory(tmp_path / "best.keras")
    write_cached_predictions(tmp_path / "predictions.npz", model, np.array(["a"]), np.zeros((1, 7)))
    dataset = oracle_dataset_factory({"Training": 7, "PublicTest": 7})
    assert write_cache(tmp_path / "source.csv", "fingerprint", dataset, tmp_path / "cache")
    pack_dataset(dataset, tmp_path / "data.npz")
    written = [tmp_path / "status.json", model, tmp_path / "predictions.npz", tmp_path / "data.npz",
               *sorted((tmp_path / "cache").iterdir())]
    assert {path.name: mode(path) for path in written} == {path.name: expected for path in written}


def test_only_old_temporaries_of_that_output_are_removed(tmp_path):
    import time

    from core.files import STALE_TEMPORARY_S, remove_stale_temporaries, temporary_file, temporary_folder

    # Probe s19: a SIGKILLed video or export left hidden temporaries beside its outputs that nothing removed.
    old = time.time() - STALE_TEMPORARY_S - 60
    stale_file = tmp_path / ".faces-fer-tmp-abc123_z.csv"
    stale_folder = tmp_path / ".m.tflite-export-fer-tmp-k2j4h5g6"
    running = tmp_path / ".faces-fer-tmp-qwertyui.csv"  # a writer still at work: written a moment ago
    other = tmp_path / ".faces-fer-tmp-notes.csv"  # not 8 random characters
    # Review s20: the user's own hidden files beside the output, named like the first version's temporaries.
    users = [tmp_path / ".faces-20241231.csv", tmp_path / ".faces-backup01.csv", tmp_path / "faces.csv"]
    for path in (stale_file, running, other, *users):
        path.write_text("x")
    stale_folder.mkdir()
    (stale_folder / "model.tflite").write_bytes(b"x" * 100)
    for path in (stale_file, stale_folder, stale_folder / "model.tflite", other, *users):
        os.utime(path, (old, old))
    removed = remove_stale_temporaries(tmp_path, "faces", ".csv")
    assert removed == [stale_file] and not stale_file.exists()
    assert remove_stale_temporaries(tmp_path, "m.tflite-export") == [stale_folder] and not stale_folder.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".faces-20241231.csv", ".faces-backup01.csv", ".faces-fer-tmp-notes.csv", ".faces-fer-tmp-qwertyui.csv", "faces.csv"]
    assert remove_stale_temporaries(tmp_path / "missing", "faces") == []
    # What the project makes matches what it removes, and a new one sweeps first.
    made = temporary_file(tmp_path, "faces", ".csv")
    assert made.name.startswith(".faces-fer-tmp-") and made.suffix == ".csv"
    os.utime(made, (old, old))
    again = temporary_file(tmp_path, "faces", ".csv")
    assert not made.exists() and again.exists()
    work = temporary_folder(tmp_path, "m.onnx-export")
    assert work.is_dir() and work.name.startswith(".m.onnx-export-fer-tmp-")


def test_a_folder_written_in_below_its_top_is_not_stale(tmp_path):
    import time

    from core.files import STALE_TEMPORARY_S, remove_stale_temporaries

    # Review s20: an export's work folder keeps its top folder's time while a converter writes in a subfolder; a
    # second export 15 minutes into a slow first one removed the first one's live folder.
    old = time.time() - STALE_TEMPORARY_S - 60
    live = tmp_path / ".m.onnx-export-fer-tmp-abcdefgh"
    (live / "saved_model").mkdir(parents=True)
    (live / "saved_model" / "variables.data").write_bytes(b"being written")
    os.utime(live, (old, old))
    os.utime(live / "saved_model", (old, old))
    assert remove_stale_temporaries(tmp_path, "m.onnx-export") == [] and live.exists()
    os.utime(live / "saved_model" / "variables.data", (old, old))
    assert remove_stale_temporaries(tmp_path, "m.onnx-export") == [live] and not live.exists()
