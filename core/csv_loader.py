"""Fast parsing of FER2013's CSV files (``fer2013.csv``, ``icml_face_data.csv``, ``train.csv``).

Records are split with plain ``bytes.find`` (36k lines, cheap in Python);
the 82 million pixel values are parsed by a vectorised numpy tokenizer over
chunks of pixel fields joined by newlines. The tokenizer is conservative:
a row it cannot vouch for (wrong count, odd character, 4-digit token) is
re-read by a plain Python parser that either accepts it (tabs, leading
zeros) or says exactly what is wrong with it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from core.dataset import SkippedRecord
from core.labels import IMAGE_SIZE, NUM_CLASSES, PRIVATE_TEST, PUBLIC_TEST, TRAINING

PIXELS_PER_IMAGE: int = IMAGE_SIZE * IMAGE_SIZE
ROWS_PER_CHUNK: int = 256

_USAGE_NAMES: dict[str, str] = {name.lower(): name for name in (TRAINING, PUBLIC_TEST, PRIVATE_TEST)}
_ACCEPTED_LAYOUTS = (
    "expected a FER2013 CSV with columns emotion, pixels and optionally Usage "
    "(fer2013.csv, icml_face_data.csv or the competition's train.csv)"
)

# Bytes after subtracting ord("0") (uint8 wraparound): what a separator looks like.
_SPACE_AFTER_SHIFT = (ord(" ") - ord("0")) % 256
_NEWLINE_AFTER_SHIFT = (ord("\n") - ord("0")) % 256


@dataclass(frozen=True)
class CsvParseResult:
    """Rows parsed from a FER2013 CSV, aligned by position.

    Attributes:
        images: ``(N, 48, 48)`` uint8.
        labels: ``(N,)`` int64.
        splits: ``(N,)`` str (``Training`` when the file has no Usage column).
        ids: ``(N,)`` str, ``"line 17"`` (1-based file line, header = line 1).
        skipped: Rows that were not loaded, in file order.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    ids: np.ndarray
    skipped: tuple[SkippedRecord, ...]


@dataclass(frozen=True)
class _Columns:
    count: int
    emotion: int
    pixels: int
    usage: int | None


def parse_fer_csv(data: bytes | bytearray, *, progress: Callable[[float], None] | None = None) -> CsvParseResult:
    """Parse a FER2013 CSV file's bytes.

    Columns are matched by their stripped, lower-case header names, in any
    order. A file without a Usage column (``train.csv``) gives split
    ``Training``. Quoted fields, CRLF line ends, a UTF-8 BOM and UTF-16 files
    are handled. Every bad row is skipped and listed with its line number.

    Args:
        data: The whole file.
        progress: Called with a fraction in [0, 1] now and then.

    Returns:
        The parsed rows and the skipped ones.

    Raises:
        ValueError: If the file is empty or its header lacks the emotion or
            pixels column.
    """
    report_progress = progress or (lambda fraction: None)
    data = _normalise_encoding(data)
    header_line, header, body_start = _read_header(data)
    columns = _match_columns(header)
    if columns is None:
        if _looks_like_data_row(header):
            # A header-less file: assume the challenge's column order.
            columns = _Columns(len(header), 0, 1, 2 if len(header) >= 3 else None)
            body_start, header_line = _line_start(data, header_line), header_line - 1
        else:
            # The header is described, never quoted: the file may be anything a
            # path pointed at, and the message may reach a browser.
            test_hint = " (the competition's test.csv has no labels)" if _column_names(header) == {"pixels"} else ""
            raise ValueError(
                f"not a FER2013 CSV: {_ACCEPTED_LAYOUTS}; its first line has {len(header)} "
                f"field{'s' if len(header) != 1 else ''}, none of them both emotion and pixels{test_hint}"
            )

    line_numbers: list[int] = []
    labels: list[int] = []
    splits: list[str] = []
    pixel_fields: list[bytes | memoryview] = []
    problems: list[tuple[int, str]] = []
    for line_number, fields in _iter_records(data, body_start, header_line, columns):
        outcome = _check_row(fields, columns)
        if isinstance(outcome, str):
            problems.append((line_number, outcome))
            continue
        line_numbers.append(line_number)
        labels.append(outcome[0])
        splits.append(outcome[1])
        pixel_fields.append(fields[columns.pixels])
    report_progress(0.15)

    images = np.empty((len(pixel_fields), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    parsed = np.zeros(len(pixel_fields), bool)
    for start in range(0, len(pixel_fields), ROWS_PER_CHUNK):
        chunk = pixel_fields[start : start + ROWS_PER_CHUNK]
        values, good = _tokenize_pixels(chunk)
        if len(values) == len(chunk):
            images[start : start + len(chunk)] = values
        else:
            images[start : start + len(chunk)][good] = values
        parsed[start : start + len(chunk)] = good
        for offset in np.flatnonzero(~good).tolist():
            outcome = _parse_pixels_slowly(chunk[offset], columns.count)
            if isinstance(outcome, str):
                problems.append((line_numbers[start + offset], outcome))
            else:
                images[start + offset] = outcome
                parsed[start + offset] = True
        if start // ROWS_PER_CHUNK % 16 == 0:
            report_progress(0.15 + 0.85 * (start + len(chunk)) / len(pixel_fields))
    report_progress(1.0)

    keep = np.flatnonzero(parsed)
    problems.sort()
    return CsvParseResult(
        images=images[keep] if len(keep) < len(images) else images,
        labels=np.asarray(labels, np.int64)[keep],
        splits=np.asarray(splits, dtype=str)[keep] if splits else np.asarray([], dtype=str),
        ids=np.asarray([f"line {line_numbers[i]}" for i in keep.tolist()], dtype=str),
        skipped=tuple(SkippedRecord(f"line {line}", reason) for line, reason in problems),
    )


def _column_names(header: list[str]) -> set[str]:
    """Return the header's names, stripped and lower-cased."""
    return {name.strip().strip('"').strip().lower() for name in header}


def _normalise_encoding(data: bytes | bytearray) -> bytes | bytearray:
    """Strip a UTF-8 BOM, turn UTF-16 into UTF-8 and old-Mac CR line ends into LF."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        data = bytes(data).decode("utf-16", errors="replace").encode("utf-8")
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    if b"\n" not in data[:1_000_000] and b"\r" in data[:1_000_000]:
        data = data.replace(b"\r", b"\n")
    if re.search(rb"\S", data) is None:
        raise ValueError(f"the CSV file is empty; {_ACCEPTED_LAYOUTS}")
    return data


def _read_header(data: bytes | bytearray) -> tuple[int, list[str], int]:
    """Return the header's line number, its fields, and where the next line starts."""
    position, line_number = 0, 0
    while position < len(data):
        end = data.find(b"\n", position)
        end = len(data) if end < 0 else end
        line_number += 1
        text = bytes(data[position:end]).decode("utf-8", errors="replace").strip()
        if text:
            return line_number, next(csv.reader([text])), end + 1
        position = end + 1
    raise ValueError(f"the CSV file is empty; {_ACCEPTED_LAYOUTS}")


def _line_start(data: bytes | bytearray, line_number: int) -> int:
    position = 0
    for _ in range(line_number - 1):
        position = data.find(b"\n", position) + 1
    return position


def _match_columns(header: list[str]) -> _Columns | None:
    names = [name.strip().strip('"').strip().lower() for name in header]
    if "emotion" not in names or "pixels" not in names:
        return None
    usage = names.index("usage") if "usage" in names else None
    return _Columns(len(names), names.index("emotion"), names.index("pixels"), usage)


def _looks_like_data_row(fields: list[str]) -> bool:
    return len(fields) >= 2 and fields[0].strip().isdigit() and fields[1].count(" ") > 100


def _iter_records(
    data: bytes | bytearray, start: int, line_number: int, columns: _Columns
) -> Iterator[tuple[int, list[bytes | memoryview]]]:
    """Yield ``(line number, fields)`` for each non-blank record after the header.

    Unquoted lines (the normal case) are split with ``find``/``rfind`` from
    both ends, so only the newline search runs through the long pixel field,
    and fields are zero-copy memoryviews; a stray comma inside the pixel
    field is caught when its values are parsed. A line with quotes is split
    by the csv module; a quoted field spanning lines sends the rest of the
    file there.
    """
    view = memoryview(data)
    size = len(data)
    has_quotes = data.find(b'"', start) >= 0
    before, after = columns.pixels, columns.count - 1 - columns.pixels
    position = start
    while position < size:
        end = data.find(b"\n", position)
        end = size if end < 0 else end
        line_number += 1
        stop = end
        # Trailing CR, spaces and empty trailing fields ("...,Training,") are not content.
        while stop > position and data[stop - 1] in b"\r\t ,":
            stop -= 1
        if stop > position:
            if not has_quotes or data.find(b'"', position, stop) < 0:
                yield line_number, _split_plain_line(data, view, position, stop, before, after)
            elif data.count(b'"', position, stop) % 2 == 0:
                yield line_number, _split_quoted_line(bytes(data[position:stop]))
            else:
                yield from _iter_records_with_csv_module(data, position, line_number)
                return
        position = end + 1


def _split_plain_line(
    data: bytes | bytearray, view: memoryview, start: int, stop: int, before: int, after: int
) -> list[bytes | memoryview]:
    """Split an unquoted line: ``before`` fields from the left, ``after`` from the right, pixels between."""
    head: list[bytes | memoryview] = []
    cursor = start
    for _ in range(before):
        comma = data.find(b",", cursor, stop)
        if comma < 0:
            return [view[start:stop]] if start == cursor else bytes(data[start:stop]).split(b",")
        head.append(view[cursor:comma])
        cursor = comma + 1
    tail: list[bytes | memoryview] = []
    end = stop
    for _ in range(after):
        comma = data.rfind(b",", cursor, end)
        if comma < 0:
            # Fewer fields than columns: a plain split lets the row check name the missing one.
            return bytes(data[start:stop]).split(b",")
        tail.append(view[comma + 1 : end])
        end = comma
    head.append(view[cursor:end])
    head.extend(reversed(tail))
    return head


def _split_quoted_line(line: bytes) -> list[bytes | memoryview]:
    """Split one line with quoted fields; fast when quotes only wrap whole fields."""
    parts = line.split(b",")
    if all(b'"' not in part or (len(part) >= 2 and part.count(b'"') == 2 and part[:1] == part[-1:] == b'"') for part in parts):
        return [part[1:-1] if part[:1] == b'"' else part for part in parts]
    row = next(csv.reader([line.decode("utf-8", errors="replace")]))
    return [field.encode("utf-8") for field in row]


def _iter_records_with_csv_module(
    data: bytes | bytearray, position: int, line_number: int
) -> Iterator[tuple[int, list[bytes | memoryview]]]:
    """Exact (slower) path for files whose quoted fields contain line breaks."""
    text = bytes(data[position:]).decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    first_line = line_number - 1
    while True:
        lines_before = reader.line_num
        record_line = first_line + lines_before + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # The reader starts afresh on the next line, so one bad record costs one record.
            yield record_line, [f"__csv_error__{error}".encode()]
            if reader.line_num == lines_before:
                return
            continue
        if row and any(field.strip() for field in row):
            yield record_line, [field.encode("utf-8") for field in row]


def _check_row(fields: list[bytes | memoryview], columns: _Columns) -> tuple[int, str] | str:
    """Validate everything but the pixel values; return ``(label, split)`` or a reason."""
    outcome = _check_fields(fields, columns)
    if isinstance(outcome, str) and columns.pixels < len(fields):
        # A stray comma shifts the fields; say so rather than blame the shifted value.
        commas = bytes(fields[columns.pixels]).count(b",")
        if commas:
            return f"{columns.count + commas} fields, expected {columns.count} (an unquoted comma?)"
    return outcome


def _check_fields(fields: list[bytes | memoryview], columns: _Columns) -> tuple[int, str] | str:
    if len(fields) == 1 and bytes(fields[0]).startswith(b"__csv_error__"):
        return "unreadable CSV record: " + bytes(fields[0])[13:].decode()
    if len(fields) > columns.count and any(bytes(field).strip() for field in fields[columns.count :]):
        return f"{len(fields)} fields, expected {columns.count} (an unquoted comma?)"
    label_field = _field_text(fields, columns.emotion)
    if not label_field:
        return "missing emotion field"
    label = _parse_label(label_field)
    if label is None:
        return f"label {label_field[:20]!r} is not an integer"
    if not 0 <= label < NUM_CLASSES:
        return f"label {label} out of range 0..{NUM_CLASSES - 1}"
    if columns.pixels >= len(fields) or len(fields[columns.pixels]) == 0:
        return "missing pixels field"
    split = TRAINING
    if columns.usage is not None:
        usage_field = _field_text(fields, columns.usage)
        if not usage_field:
            return "missing Usage field"
        split = _USAGE_NAMES.get(usage_field.lower().replace(" ", ""))
        if split is None:
            return f"unknown Usage {usage_field[:30]!r} (expected Training, PublicTest or PrivateTest)"
    return label, split


def _field_text(fields: list[bytes | memoryview], index: int) -> str:
    if index >= len(fields):
        return ""
    return bytes(fields[index]).decode("utf-8", errors="replace").strip().strip('"').strip()


def _parse_label(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def _tokenize_pixels(fields: list[bytes | memoryview]) -> tuple[np.ndarray, np.ndarray]:
    """Parse rows of space-separated pixel values at numpy speed.

    Returns:
        ``(values, good)``: ``(good.sum(), 48, 48)`` uint8 for the rows that
        are exactly 2304 values of 1-3 digits <= 255 separated by single
        spaces, and the ``(len(fields),)`` bool mask of those rows. Other
        rows are left to :func:`_parse_pixels_slowly`.
    """
    row_count = len(fields)
    # Three newlines in front so that every token's three preceding bytes
    # exist, and one after the last row: "\n\n\n" f1 "\n" f2 ... fn "\n".
    raw = np.frombuffer(b"\n".join([b"\n\n", *fields, b""]), np.uint8)
    shifted = raw - np.uint8(ord("0"))  # digits become 0..9, everything else >= 10
    body = shifted[3:]
    # Each token ends at a separator: a space, or the newline that ends its row.
    is_separator = body >= 10
    separators = np.flatnonzero(is_separator)
    lengths = np.fromiter((len(field) for field in fields), np.int64, row_count)
    row_ends = np.cumsum(lengths + 1) - 1
    last_token = np.searchsorted(separators, row_ends)
    token_counts = np.diff(last_token, prepend=-1)

    # shifted[2:], [1:], [:] hold the 1st, 2nd and 3rd byte before body[i].
    ones = shifted[2:].take(separators)
    tens = shifted[1:].take(separators)
    hundreds = shifted.take(separators)
    has_ones = ones < 10  # False: an empty token (two separators in a row)
    has_tens = (tens < 10) & has_ones
    has_hundreds = (hundreds < 10) & has_tens
    np.multiply(tens, has_tens, out=tens)
    np.multiply(hundreds, has_hundreds, out=hundreds)
    two_digits = ones + tens * np.uint8(10)  # 0..99 where has_ones, fits uint8
    values = hundreds.astype(np.uint16)
    values *= np.uint16(100)
    values += two_digits
    bad_token = ~has_ones | (values > 255)

    good = token_counts == PIXELS_PER_IMAGE
    bad_rows = [np.searchsorted(last_token, np.flatnonzero(bad_token))]
    # Rarely needed checks, first done on counts: a separator other than a
    # space or a row's newline, or a token longer than three digits (its
    # leading digits are then not among the ones, tens and hundreds).
    if np.count_nonzero(body == _SPACE_AFTER_SHIFT) + row_count != len(separators):
        odd = np.flatnonzero(is_separator & (body != _SPACE_AFTER_SHIFT) & (body != _NEWLINE_AFTER_SHIFT))
        bad_rows.append(np.searchsorted(row_ends, odd))
    digits_seen = np.count_nonzero(has_ones) + np.count_nonzero(has_tens) + np.count_nonzero(has_hundreds)
    if digits_seen != len(body) - len(separators):
        is_digit = ~is_separator
        long_runs = is_digit[:-3] & is_digit[1:-2] & is_digit[2:-1] & is_digit[3:]
        bad_rows.append(np.searchsorted(row_ends, np.flatnonzero(long_runs)))
    for rows in bad_rows:
        good[rows] = False
    if not good.all():
        values = values[np.repeat(good, token_counts)]
    return values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), good


def _parse_pixels_slowly(field: bytes | memoryview, column_count: int) -> np.ndarray | str:
    """Parse one pixel field in plain Python; return the ``(48, 48)`` image or what is wrong."""
    text = bytes(field).decode("utf-8", errors="replace")
    if "," in text:
        return f"{column_count + text.count(',')} fields, expected {column_count} (an unquoted comma?)"
    tokens = text.split()
    if not tokens:
        return "missing pixels field"
    values = []
    for token in tokens:
        if token.isascii() and token.isdigit():
            value = int(token)
            if value > 255:
                return f"pixel value {value} > 255"
            values.append(value)
            continue
        try:
            value = int(token)
        except ValueError:
            return f"non-numeric pixel value {token[:20]!r}"
        return f"pixel value {value} < 0" if value < 0 else f"non-numeric pixel value {token[:20]!r}"
    if len(values) != PIXELS_PER_IMAGE:
        return f"{len(values)} pixel values, expected {PIXELS_PER_IMAGE}"
    return np.asarray(values, np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
