"""Zip members are read without trusting their declared sizes (security probe s9, finding 3)."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.zips import read_member

INFLATED = 64 * 1024**2  # what the member really holds
DECLARED = 4096  # what its headers say


def lying_zip(member: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip whose headers declare ``member`` as 4 KB while it inflates to 64 MiB of zeros (then ``extra`` members)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block, crc, parts = b"\0" * (4 * 1024**2), 0, []
    for _ in range(INFLATED // len(block)):
        parts.append(compressor.compress(block))
        crc = zlib.crc32(block, crc)
    data = b"".join(parts) + compressor.flush()
    name = member.encode()
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), DECLARED, len(name), 0) + name
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), DECLARED,
                          len(name), 0, 0, 0, 0, 0o100644 << 16, 0) + name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    lying = local + data + central + end
    if not extra:
        return lying
    # Append honest members by rewriting through zipfile (it copies the lying one's raw bytes as they are).
    out = io.BytesIO(lying)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as archive:
        for extra_name, payload in extra.items():
            archive.writestr(extra_name, payload)
    return out.getvalue()


def peak_bytes(function) -> tuple[object, int]:
    tracemalloc.start()
    try:
        try:
            result = function()
        except Exception as error:  # noqa: BLE001 - the outcome is checked by the caller
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_member_that_inflates_past_its_declared_size_is_refused_in_bounded_memory():
    archive = zipfile.ZipFile(io.BytesIO(lying_zip("face.jpg")))
    info = archive.getinfo("face.jpg")
    assert info.file_size == DECLARED and info.compress_size < 1024**2  # every ratio check on the headers passes
    outcome, peak = peak_bytes(lambda: read_member(archive, "face.jpg"))
    assert isinstance(outcome, zipfile.BadZipFile)
    assert peak < 2 * 1024**2, f"{peak / 1024**2:.1f} MiB held"
    # What read_member replaces: ZipFile.read inflates it all before cutting it to the declared size.
    outcome, peak = peak_bytes(lambda: archive.read("face.jpg"))
    assert isinstance(outcome, zipfile.BadZipFile) and peak > INFLATED / 2


def test_an_honest_member_reads_back_whole():
    buffer = io.BytesIO()
    payload = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/b.bin", payload)
        archive.writestr("empty.txt", b"")
    with zipfile.ZipFile(buffer) as archive:
        assert read_member(archive, "a/b.bin") == payload
        assert read_member(archive, archive.getinfo("empty.txt")) == b""


def test_the_batch_zip_reader_reports_the_lying_member_and_reads_the_next(tmp_path):
    from core.predict import iter_zip_images

    good = cv2.imencode(".png", np.full((48, 48), 128, np.uint8))[1].tobytes()
    data = lying_zip("a_bomb.jpg", {"b_face.png": good})
    items, peak = peak_bytes(lambda: list(iter_zip_images(data)))
    assert [name for name, _ in items] == ["a_bomb.jpg", "b_face.png"]
    assert isinstance(items[0][1], str) and "could not be read" in items[0][1]
    assert items[1][1] == good
    assert peak < 2 * 1024**2, f"{peak / 1024**2:.1f} MiB held"


def test_the_dataset_loader_skips_the_lying_member_as_a_reported_record(tmp_path, monkeypatch):
    from core.data import load_fer2013

    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    good = cv2.imencode(".png", np.full((48, 48), 128, np.uint8))[1].tobytes()
    path = Path(tmp_path / "faces.zip")
    path.write_bytes(lying_zip("happy/bomb.png", {"sad/face.png": good}))
    dataset, peak = peak_bytes(lambda: load_fer2013(path, use_cache=False))
    assert not isinstance(dataset, Exception), dataset
    assert dataset.labels.tolist() == [4]
    assert [record.where for record in dataset.report.skipped] == ["happy/bomb.png"]
    assert peak < 16 * 1024**2, f"{peak / 1024**2:.1f} MiB held"


@pytest.mark.parametrize("declared", [2 * 1024**2])
def test_a_model_card_member_declaring_megabytes_is_refused(tmp_path, declared):
    from core.model_io import read_model_meta

    path = tmp_path / "odd.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("fer_studio.json", b" " * declared)
    with pytest.raises(ValueError, match="declares 2,097,152 bytes"):
        read_model_meta(path)
