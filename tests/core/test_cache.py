"""The on-disk dataset cache: round trip, invalidation, and damage that must never crash a load."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.cache import default_cache_dir, fingerprint_files, read_cache, write_cache
from core.dataset import FerDataset, LoadReport, SkippedRecord


def small_dataset() -> FerDataset:
    report = LoadReport(
        source="x.csv",
        kind="csv",
        loaded=3,
        skipped=(SkippedRecord("line 9", "label 9 out of range 0..6"),),
        converted=1,
        ignored_folders=("contempt",),
        content_hash="ab" * 32,
    )
    return FerDataset(
        images=np.arange(3 * 48 * 48, dtype=np.uint8).reshape(3, 48, 48),
        labels=np.array([0, 3, 6], np.int64),
        splits=np.array(["Training", "PublicTest", "PrivateTest"]),
        ids=np.array(["line 2", "line 3", "line 4"]),
        report=report,
    )


def test_round_trip_keeps_arrays_and_the_whole_report(tmp_path):
    dataset = small_dataset()
    assert write_cache(Path("/data/x.csv"), "fp1", dataset, tmp_path)
    loaded = read_cache(Path("/data/x.csv"), "fp1", tmp_path)
    assert loaded is not None
    for name in ("images", "labels", "splits", "ids"):
        assert np.array_equal(getattr(loaded, name), getattr(dataset, name))
    assert loaded.images.dtype == np.uint8 and loaded.labels.dtype == np.int64
    assert loaded.report == dataset.report
    assert list(tmp_path.glob("*.tmp")) == []
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".npz"]


def test_other_fingerprint_or_other_source_misses(tmp_path):
    write_cache(Path("/data/x.csv"), "fp1", small_dataset(), tmp_path)
    assert read_cache(Path("/data/x.csv"), "fp2", tmp_path) is None
    assert read_cache(Path("/data/y.csv"), "fp1", tmp_path) is None


def test_missing_cache_dir_misses(tmp_path):
    assert read_cache(Path("/data/x.csv"), "fp1", tmp_path / "nothing-here") is None


def test_corrupt_files_are_a_miss_not_a_crash(tmp_path):
    write_cache(Path("/data/x.csv"), "fp1", small_dataset(), tmp_path)
    npz = next(tmp_path.glob("*.npz"))
    npz.write_bytes(npz.read_bytes()[:1000])
    assert read_cache(Path("/data/x.csv"), "fp1", tmp_path) is None
    write_cache(Path("/data/x.csv"), "fp1", small_dataset(), tmp_path)
    next(tmp_path.glob("*.json")).write_text("{not json")
    assert read_cache(Path("/data/x.csv"), "fp1", tmp_path) is None
    next(tmp_path.glob("*.json")).write_text('{"format": 1, "fingerprint": "fp1"}')
    assert read_cache(Path("/data/x.csv"), "fp1", tmp_path) is None


def test_arrays_from_another_write_are_rejected(tmp_path):
    write_cache(Path("/data/x.csv"), "fp1", small_dataset(), tmp_path)
    json_text = next(tmp_path.glob("*.json")).read_text()
    write_cache(Path("/data/x.csv"), "fp2", small_dataset(), tmp_path)
    next(tmp_path.glob("*.json")).write_text(json_text)  # json of write 1, npz of write 2
    assert read_cache(Path("/data/x.csv"), "fp1", tmp_path) is None


def test_unwritable_cache_dir_is_not_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    assert write_cache(Path("/data/x.csv"), "fp1", small_dataset(), blocker / "cache") is False


def test_fingerprint_changes_with_size_time_name_or_salt():
    base = fingerprint_files([("a.jpg", 10, 1)], salt="1")
    assert base == fingerprint_files([("a.jpg", 10, 1)], salt="1")
    assert base != fingerprint_files([("a.jpg", 11, 1)], salt="1")
    assert base != fingerprint_files([("a.jpg", 10, 2)], salt="1")
    assert base != fingerprint_files([("b.jpg", 10, 1)], salt="1")
    assert base != fingerprint_files([("a.jpg", 10, 1), ("b.jpg", 1, 1)], salt="1")
    assert base != fingerprint_files([("a.jpg", 10, 1)], salt="2")


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("FER_STUDIO_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "fer-studio"
