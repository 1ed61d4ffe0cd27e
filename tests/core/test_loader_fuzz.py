"""Fuzzing ``core.data.load_fer2013`` with Hypothesis: bad CSV rows and bad image files never crash it.

The contract checked: a source with at least one usable record loads, and
every record is either loaded or listed in ``report.skipped`` (loaded +
skipped == records); a wholly unusable source raises ``ValueError`` (never
another exception). Example counts stay modest so the file runs in seconds.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.data import load_fer2013
from core.labels import CLASS_NAMES

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
USAGES = ("Training", "PublicTest", "PrivateTest")
# Characters the CSV loader treats as "nothing on this line" (trailing CR, spaces, empty fields).
BLANK = " \t\r,"


def _good_row(label: int, usage: str, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, 48 * 48)
    return f"{label},{' '.join(map(str, pixels))},{usage}".encode()


good_rows = st.builds(_good_row, st.integers(0, 6), st.sampled_from(USAGES), st.integers(0, 2**16))
# Bad rows on one line, without quotes: every line is one record, so the count is exact.
one_line_bytes = st.binary(max_size=300).map(lambda raw: raw.replace(b"\n", b" ").replace(b'"', b"'"))
one_line_text = st.text(max_size=300).map(lambda text: text.replace("\n", " ").replace('"', "'").encode("utf-8", "surrogatepass"))
# Rows that look almost right: a bad label, too few/many pixels, an unknown usage, a value over 255.
near_miss_rows = st.one_of(
    st.builds(lambda label: f"{label},{' '.join(['7'] * 2304)},Training".encode(),
              st.one_of(st.integers(-5, -1), st.integers(7, 99), st.just("happy"), st.just("1.5"))),
    st.builds(lambda count: f"3,{' '.join(['7'] * count)},Training".encode(), st.integers(0, 2400).filter(lambda n: n != 2304)),
    st.builds(lambda usage: f"3,{' '.join(['7'] * 2304)},{usage}".encode(), st.text(min_size=1, max_size=12).filter(
        lambda text: text.strip(BLANK) and text.replace(" ", "").lower() not in {u.lower() for u in USAGES}
        and not set('"\n\r') & set(text))),
    st.builds(lambda value: ("3," + " ".join(["7"] * 2303 + [str(value)]) + ",Training").encode(), st.integers(256, 99999)),
)
bad_rows = st.one_of(one_line_bytes, one_line_text, near_miss_rows)


def _is_record(line: bytes) -> bool:
    return bool(line.decode("latin-1").strip(BLANK))


def _load_csv(rows: list[bytes]):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fer2013.csv"
        path.write_bytes(b"emotion,pixels,Usage\n" + b"\n".join(rows) + b"\n")
        return load_fer2013(path, use_cache=False)


@FUZZ
@given(st.lists(st.tuples(st.booleans(), good_rows, bad_rows), min_size=1, max_size=12), st.data())
def test_every_csv_row_is_loaded_or_reported(mixed, data):
    rows = [good if is_good else bad for is_good, good, bad in mixed]
    good_lines = {line for line, (is_good, _, _) in enumerate(mixed, start=2) if is_good}
    if not good_lines:  # at least one usable row: that case is the next test's
        rows.append(data.draw(good_rows))
        good_lines.add(len(rows) + 1)
    records = [line for line, row in enumerate(rows, start=2) if _is_record(row)]

    dataset = _load_csv(rows)

    report = dataset.report
    skipped_lines = [int(re.fullmatch(r"line (\d+)", record.where).group(1)) for record in report.skipped]
    loaded_lines = [int(re.fullmatch(r"line (\d+)", identifier).group(1)) for identifier in dataset.ids]
    assert report.loaded == len(dataset) == len(loaded_lines)
    assert report.loaded + len(report.skipped) == len(records), (report.skipped, records)
    assert sorted(loaded_lines + skipped_lines) == records
    assert good_lines <= set(loaded_lines), "a valid row was not loaded"
    assert all(record.reason.strip() for record in report.skipped)
    assert dataset.images.shape == (len(dataset), 48, 48) and dataset.images.dtype == np.uint8


@FUZZ
@given(st.lists(bad_rows, min_size=0, max_size=8))
def test_a_csv_of_only_bad_rows_raises_value_error_naming_the_problem(rows):
    with pytest.raises(ValueError, match=r"no usable rows|empty|not a FER2013 CSV"):
        _load_csv(rows)


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_as_a_csv_load_or_raise_value_error(payload):
    # Anything at all after the header, quotes and line breaks included.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fer2013.csv"
        path.write_bytes(b"emotion,pixels,Usage\n" + payload)
        try:
            dataset = load_fer2013(path, use_cache=False)
        except ValueError as error:
            assert str(error)
            return
    lines = payload.count(b"\n") + 1
    assert 1 <= dataset.report.loaded + len(dataset.report.skipped) <= lines


# ---------------------------------------------------------------- image files


def _encoded(kind: str, seed: int) -> bytes:
    """A real image file: gray or colour, 48x48 or another size."""
    rng = np.random.default_rng(seed)
    height, width = [(48, 48), (1, 1), (97, 31), (300, 200)][seed % 4]
    pixels = rng.integers(0, 256, (height, width) if seed % 2 else (height, width, 3), dtype=np.uint8)
    ok, buffer = cv2.imencode(f".{kind}", pixels)
    assert ok
    return buffer.tobytes()


real_images = st.builds(_encoded, st.sampled_from(["jpg", "png", "bmp"]), st.integers(0, 1000))
damaged_images = st.builds(lambda data, cut: data[: max(1, int(len(data) * cut))],
                           real_images, st.floats(0.0, 0.9))
image_payloads = st.one_of(real_images, damaged_images, st.binary(max_size=600),
                           st.just(b""), st.just(b"not an image at all\n" * 10))
file_entries = st.tuples(st.sampled_from(CLASS_NAMES), st.sampled_from(["jpg", "png", "jpeg", "txt"]), image_payloads)


@FUZZ
@given(st.lists(file_entries, min_size=1, max_size=15), real_images, st.sampled_from(CLASS_NAMES))
def test_every_image_file_is_loaded_or_reported(entries, good_image, good_class):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "fer2013"
        files = [("train", good_class, "png", good_image)] + [("train", name, ext, data) for name, ext, data in entries]
        for number, (split, name, ext, data) in enumerate(files):
            target = root / split / name / f"Training_{number}.{ext}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (root / "test" / "happy").mkdir(parents=True, exist_ok=True)
        (root / "test" / "happy" / "PublicTest_0.png").write_bytes(good_image)

        dataset = load_fer2013(root, use_cache=False)

    report = dataset.report
    assert report.loaded + len(report.skipped) == len(files) + 1, report.skipped
    assert report.loaded >= 2, "the two valid images were not both loaded"
    assert {record.where for record in report.skipped} <= {f"{s}/{n}/Training_{i}.{e}" for i, (s, n, e, _) in enumerate(files)}
    assert all(record.reason.strip() for record in report.skipped)
    assert dataset.images.shape == (report.loaded, 48, 48) and dataset.images.dtype == np.uint8


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(CLASS_NAMES), st.binary(max_size=400)), min_size=1, max_size=8))
def test_a_folder_of_only_broken_images_raises_value_error(entries):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "faces"
        for number, (name, data) in enumerate(entries):
            (root / name).mkdir(parents=True, exist_ok=True)
            (root / name / f"{number}.jpg").write_bytes(data)
        try:
            dataset = load_fer2013(root, use_cache=False)
        except ValueError as error:
            assert "no image could be loaded" in str(error)
            return
    # Random bytes that happen to decode are loaded; everything is still accounted for.
    assert dataset.report.loaded + len(dataset.report.skipped) == len(entries)


@FUZZ
@given(st.lists(st.tuples(good_rows, st.booleans(), st.integers(0, 10_000)), min_size=2, max_size=10))
def test_stray_quotes_never_hide_the_lines_after_them(mixed):
    # Issue 16 item 4: a quote that opens a field and never closes it used to swallow the following lines.
    rows, quoted_lines = [], set()
    for line, (row, add_quote, position) in enumerate(mixed, start=2):
        if add_quote:
            cut = position % (len(row) + 1)
            row = row[:cut] + b'"' + row[cut:]
            quoted_lines.add(line)
        rows.append(row)
    if len(quoted_lines) == len(rows):
        return  # nothing usable: the next test's case
    dataset = _load_csv(rows)
    loaded = {int(identifier.split()[1]) for identifier in dataset.ids}
    skipped = {int(record.where.split()[1]) for record in dataset.report.skipped}
    assert loaded | skipped == set(range(2, len(rows) + 2)) and not loaded & skipped
    assert set(range(2, len(rows) + 2)) - quoted_lines <= loaded
