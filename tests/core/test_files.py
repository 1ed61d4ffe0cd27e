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
