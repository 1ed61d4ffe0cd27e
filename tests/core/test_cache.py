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


def test_json_of_the_wrong_shape_is_a_miss_and_the_next_write_repairs_it(tmp_path):
    # Valid JSON that is not an object (or whose report is not one) used to raise AttributeError on every load.
    for text in ("null", "[1, 2]", '"text"', "3", '{"format": 1, "fingerprint": "fp1", "report": [1]}',
                 '{"format": 1, "fingerprint": "fp1", "report": {"source": "x", "kind": "csv", "loaded": 3, "skipped": [7]}}'):
        write_cache(Path("/data/x.csv"), "fp1", small_dataset(), tmp_path)
        next(tmp_path.glob("*.json")).write_text(text)
        assert read_cache(Path("/data/x.csv"), "fp1", tmp_path) is None, text
        assert write_cache(Path("/data/x.csv"), "fp1", small_dataset(), tmp_path)
        assert read_cache(Path("/data/x.csv"), "fp1", tmp_path) is not None


def test_same_size_edit_with_the_time_restored_is_not_served_stale(tmp_path):
    import os

    from core.data import load_fer2013

    def csv_with_label(label: int) -> bytes:
        pixels = " ".join(str(k % 256) for k in range(48 * 48))
        return f"emotion,pixels,Usage\n{label},{pixels},Training\n".encode()

    source = tmp_path / "fer2013.csv"
    source.write_bytes(csv_with_label(3))
    before = source.stat()
    assert load_fer2013(source, cache_dir=tmp_path / "cache").labels.tolist() == [3]
    source.write_bytes(csv_with_label(5))  # same size
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size and source.stat().st_mtime_ns == before.st_mtime_ns
    assert load_fer2013(source, cache_dir=tmp_path / "cache").labels.tolist() == [5]


def test_remove_cache_entry_deletes_both_files(tmp_path):
    from core.cache import remove_cache_entry

    write_cache(Path("/data/x.csv"), "fp1", small_dataset(), tmp_path)
    write_cache(Path("/data/y.csv"), "fp1", small_dataset(), tmp_path)
    assert remove_cache_entry(Path("/data/x.csv"), tmp_path) == 2
    assert read_cache(Path("/data/x.csv"), "fp1", tmp_path) is None
    assert read_cache(Path("/data/y.csv"), "fp1", tmp_path) is not None
    assert remove_cache_entry(Path("/data/x.csv"), tmp_path) == 0
