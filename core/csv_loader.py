"""Fast parsing of FER2013's CSV files (``fer2013.csv``, ``icml_face_data.csv``, ``train.csv``).

The file is read as a stream of 1 MiB blocks, so memory stays bounded
whatever its size or shape: a line longer than any FER2013 row
(:data:`MAX_ROW_BYTES`) is measured while it is read past and reported,
never split or held. Records are split with plain ``bytes.find`` (36k
lines, cheap in Python); the 82 million pixel values are parsed by a
vectorised numpy tokenizer over chunks of pixel fields joined by newlines.
The tokenizer is conservative: a row it cannot vouch for (wrong count, odd
character, 4-digit token) is re-read by a plain Python parser that either
accepts it (tabs, leading zeros) or says exactly what is wrong with it.
Every physical line is loaded, reported or blank.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from core.dataset import SkippedRecord
from core.labels import IMAGE_SIZE, NUM_CLASSES, PRIVATE_TEST, PUBLIC_TEST, TRAINING

PIXELS_PER_IMAGE: int = IMAGE_SIZE * IMAGE_SIZE
ROWS_PER_CHUNK: int = 256
# A FER2013 row is about 9 KB (2,304 values of 1-3 digits); this leaves room for
# tabs, leading zeros and quotes. A longer line is skipped by its length alone.
MAX_ROW_BYTES: int = 64 * 1024
READ_BLOCK_BYTES: int = 1024 * 1024  # a zip member read this way needs about 4.5x it

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
    """Parse a FER2013 CSV file's bytes (see :func:`parse_fer_csv_stream`).

    Raises:
        ValueError: If the file is empty or its header lacks the emotion or
            pixels column.
    """
    return parse_fer_csv_stream(io.BytesIO(data), size=len(data), progress=progress)


def parse_fer_csv_stream(
    stream: BinaryIO,
    *,
    size: int | None = None,
    progress: Callable[[float], None] | None = None,
    on_block: Callable[[bytes], None] | None = None,
) -> CsvParseResult:
    """Parse a FER2013 CSV read from a binary stream, in bounded memory.

    The stream is read in blocks of :data:`READ_BLOCK_BYTES`; only the
    current block, one line and 256 rows' pixel fields are held besides the
    result, so memory does not grow with the file (a 290 MB ``fer2013.csv``
    needs about its 83 MB of images). A line longer than
    :data:`MAX_ROW_BYTES` is measured, not kept, and reported.

    Columns are matched by their stripped, lower-case header names, in any
    order. A file without a Usage column (``train.csv``) gives split
    ``Training``. Quoted fields, CRLF line ends, a UTF-8 BOM and UTF-16 files
    are handled. Every physical line is loaded, reported, or blank: a quote
    that is not closed costs its own line only.

    Args:
        stream: The file, opened in binary mode (a file, a zip member...).
        size: The stream's length in bytes if known, for progress.
        progress: Called with a fraction in [0, 1] now and then.
        on_block: Called with every raw block as read (before any decoding),
            e.g. to hash the file while it is parsed.

    Returns:
        The parsed rows and the skipped ones.

    Raises:
        ValueError: If the file is empty or its header lacks the emotion or
            pixels column.
        OSError: If the stream cannot be read.
    """
    report_progress = progress or (lambda fraction: None)
    lines = _PhysicalLines(stream, size, on_block, report_progress)
    header_number, header_line, header = _read_header(lines)
    columns = _match_columns(header)
    if columns is None:
        if _looks_like_data_row(header):
            # A header-less file: assume the challenge's column order; its first line is a record.
            columns = _Columns(len(header), 0, 1, 2 if len(header) >= 3 else None)
            lines.push_back([(header_number, header_line, len(header_line))])
        else:
            # The header is described, never quoted: the file may be anything a
            # path pointed at, and the message may reach a browser.
            test_hint = " (the competition's test.csv has no labels)" if _column_names(header) == {"pixels"} else ""
            raise ValueError(
                f"not a FER2013 CSV: {_ACCEPTED_LAYOUTS}; its first line has {len(header)} "
                f"field{'s' if len(header) != 1 else ''} but no emotion and pixels columns{test_hint}"
            )

    rows = _RowCollector(columns.count)
    for line_number, outcome in _iter_records(lines, columns):
        if isinstance(outcome, str):
            rows.problems.append((line_number, outcome))
            continue
        checked = _check_row(outcome, columns)
        if isinstance(checked, str):
            rows.problems.append((line_number, checked))
        else:
            rows.add(line_number, checked[0], checked[1], outcome[columns.pixels])
    rows.flush()
    report_progress(1.0)
    return rows.result()


class _RowCollector:
    """Rows that passed the field checks, their pixels parsed ``ROWS_PER_CHUNK`` at a time."""

    def __init__(self, column_count: int) -> None:
        self.column_count = column_count
        self.pending: list[tuple[int, int, str, bytes | memoryview]] = []
        self.image_blocks: list[np.ndarray] = []
        self.line_numbers: list[int] = []
        self.labels: list[int] = []
        self.splits: list[str] = []
        self.problems: list[tuple[int, str]] = []

    def add(self, line_number: int, label: int, split: str, pixels: bytes | memoryview) -> None:
        self.pending.append((line_number, label, split, pixels))
        if len(self.pending) >= ROWS_PER_CHUNK:
            self.flush()

    def flush(self) -> None:
        """Parse the pending pixel fields: the fast tokenizer first, the plain parser for rows it refused."""
        if not self.pending:
            return
        chunk = [pixels for _, _, _, pixels in self.pending]
        values, good = _tokenize_pixels(chunk)
        images = np.empty((len(chunk), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        images[good] = values
        for offset in np.flatnonzero(~good).tolist():
            outcome = _parse_pixels_slowly(chunk[offset], self.column_count)
            if isinstance(outcome, str):
                self.problems.append((self.pending[offset][0], outcome))
            else:
                images[offset] = outcome
                good[offset] = True
        self.image_blocks.append(images if good.all() else images[good])
        for keep, (line_number, label, split, _) in zip(good.tolist(), self.pending):
            if keep:
                self.line_numbers.append(line_number)
                self.labels.append(label)
                self.splits.append(split)
        self.pending = []

    def result(self) -> CsvParseResult:
        images = (
            np.concatenate(self.image_blocks)
            if len(self.image_blocks) > 1
            else (self.image_blocks[0] if self.image_blocks else np.empty((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8))
        )
        self.image_blocks = []
        self.problems.sort()
        return CsvParseResult(
            images=images,
            labels=np.asarray(self.labels, np.int64),
            splits=np.asarray(self.splits, dtype=str) if self.splits else np.asarray([], dtype=str),
            ids=np.asarray([f"line {line}" for line in self.line_numbers], dtype=str),
            skipped=tuple(SkippedRecord(f"line {line}", reason) for line, reason in self.problems),
        )


def _column_names(header: list[str]) -> set[str]:
    """Return the header's names, stripped and lower-cased."""
    return {name.strip().strip('"').strip().lower() for name in header}


class _PhysicalLines:
    """The physical lines of a byte stream, read block by block: ``(line number, line, length)``.

    ``line`` is the line's bytes without its ``\\n``, or ``None`` for a line
    longer than :data:`MAX_ROW_BYTES`, which is measured while it is read
    past and never held. Encoding is normalised on the way: a UTF-16 file is
    decoded incrementally to UTF-8, a UTF-8 BOM dropped, and old-Mac CR line
    ends turned into LF.
    """

    def __init__(
        self,
        stream: BinaryIO,
        size: int | None,
        on_block: Callable[[bytes], None] | None,
        progress: Callable[[float], None],
    ) -> None:
        self.stream = stream
        self.size = size
        self.on_block = on_block
        self.progress = progress
        self.bytes_read = 0
        self.pushed: list[tuple[int, bytes | None, int]] = []
        self._lines = self._generate()

    def __iter__(self) -> "_PhysicalLines":
        return self

    def __next__(self) -> tuple[int, bytes | None, int]:
        if self.pushed:
            return self.pushed.pop()
        return next(self._lines)

    def push_back(self, lines: list[tuple[int, bytes | None, int]]) -> None:
        """Return lines (in file order) to be yielded again before the rest of the stream."""
        self.pushed.extend(reversed(lines))

    def _raw_blocks(self) -> Iterator[bytes]:
        while True:
            block = self.stream.read(READ_BLOCK_BYTES)
            if not block:
                return
            self.bytes_read += len(block)
            if self.on_block is not None:
                self.on_block(block)
            if self.size:
                self.progress(min(self.bytes_read / self.size, 1.0))
            yield block

    def _text_blocks(self) -> Iterator[bytes]:
        """UTF-8 blocks without BOM and with LF line ends."""
        raw = self._raw_blocks()
        first = next(raw, b"")
        while len(first) < 4 and first:  # enough bytes to see a BOM
            more = next(raw, b"")
            if not more:
                break
            first += more
        blocks: Iterator[bytes] = itertools.chain([first], raw)
        if first[:2] in (b"\xff\xfe", b"\xfe\xff"):
            blocks = _decode_utf16(blocks)
            first = next(blocks, b"")
            blocks = itertools.chain([first], blocks)
        if first[:3] == b"\xef\xbb\xbf":
            blocks = itertools.chain([first[3:]], itertools.islice(blocks, 1, None))
        if first.find(b"\n", 0, 1_000_000) < 0 and first.find(b"\r", 0, 1_000_000) >= 0:
            blocks = (block.replace(b"\r", b"\n") for block in blocks)
        return blocks

    def _generate(self) -> Iterator[tuple[int, bytes | None, int]]:
        line_number = 0
        carry = b""
        overlong = -1  # length so far of a line being read past, or -1
        for block in self._text_blocks():
            position = 0
            while True:
                end = block.find(b"\n", position)
                if end < 0:
                    break
                line_number += 1
                if overlong >= 0:
                    yield line_number, None, overlong + end - position
                    overlong = -1
                elif carry:
                    line = carry + block[position:end]
                    carry = b""
                    yield (line_number, None, len(line)) if len(line) > MAX_ROW_BYTES else (line_number, line, len(line))
                elif end - position > MAX_ROW_BYTES:
                    yield line_number, None, end - position
                else:
                    yield line_number, block[position:end], end - position
                position = end + 1
            rest = len(block) - position
            if overlong >= 0:
                overlong += rest
            elif len(carry) + rest > MAX_ROW_BYTES:
                overlong, carry = len(carry) + rest, b""
            elif rest:
                carry += block[position:]
        if overlong >= 0:
            yield line_number + 1, None, overlong
        elif carry:
            yield line_number + 1, carry, len(carry)


def _decode_utf16(blocks: Iterator[bytes]) -> Iterator[bytes]:
    decoder = codecs.getincrementaldecoder("utf-16")(errors="replace")
    for block in blocks:
        text = decoder.decode(block)
        if text:
            yield text.encode("utf-8")
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail.encode("utf-8")


def _read_header(lines: _PhysicalLines) -> tuple[int, bytes, list[str]]:
    """Return the first non-blank line: its number, its bytes and its fields."""
    for line_number, line, length in lines:
        if line is None:
            raise ValueError(
                f"not a FER2013 CSV: its first line is {length:,} bytes long, longer than any FER2013 row; "
                f"{_ACCEPTED_LAYOUTS}"
            )
        text = line.decode("utf-8", errors="replace").strip()
        if text:
            try:
                return line_number, line, next(csv.reader([text]))
            except csv.Error:
                return line_number, line, text.split(",")
    raise ValueError(f"the CSV file is empty; {_ACCEPTED_LAYOUTS}")


def _match_columns(header: list[str]) -> _Columns | None:
    names = [name.strip().strip('"').strip().lower() for name in header]
    if "emotion" not in names or "pixels" not in names:
        return None
    usage = names.index("usage") if "usage" in names else None
    return _Columns(len(names), names.index("emotion"), names.index("pixels"), usage)


def _looks_like_data_row(fields: list[str]) -> bool:
    return len(fields) >= 2 and fields[0].strip().isdigit() and fields[1].count(" ") > 100


def _content_end(line: bytes) -> int:
    """Where a line's content ends: trailing CR, spaces and empty trailing fields ("...,Training,") are not content."""
    return len(line.rstrip(b"\r\t ,"))


def _iter_records(lines: _PhysicalLines, columns: _Columns) -> Iterator[tuple[int, list[bytes | memoryview] | str]]:
    """Yield ``(line number, fields or the reason it was skipped)`` for each non-blank line.

    Unquoted lines (the normal case) are split with ``find``/``rfind`` from
    both ends, so only the newline search runs through the long pixel field,
    and fields are zero-copy memoryviews; a stray comma inside the pixel
    field is caught when its values are parsed. A line with an odd number of
    quotes may open a quoted field that spans lines: the following lines are
    joined while the whole stays within :data:`MAX_ROW_BYTES`, and kept as one
    record only if that record is valid. Otherwise the line is reported and
    the lines after it are read on their own, so an unbalanced quote costs
    one line, never the rest of the file.
    """
    before, after = columns.pixels, columns.count - 1 - columns.pixels
    for line_number, line, length in lines:
        if line is None:
            yield line_number, (
                f"a row of {length:,} bytes, longer than any FER2013 row (limit {MAX_ROW_BYTES:,} bytes); not parsed"
            )
            continue
        stop = _content_end(line)
        if stop == 0:
            continue
        quotes = line.count(b'"', 0, stop)
        if quotes == 0:
            yield line_number, _split_plain_line(line, stop, before, after)
        elif quotes % 2 == 0:
            yield line_number, _split_quoted_line(line[:stop])
        else:
            yield line_number, _join_quoted_record(lines, line, columns)


def _join_quoted_record(lines: _PhysicalLines, first: bytes, columns: _Columns) -> list[bytes | memoryview] | str:
    """Join the lines after one with an unclosed quote; return the record's fields, or why the line is skipped.

    Lines looked at but not used are pushed back onto ``lines``.
    """
    taken: list[tuple[int, bytes | None, int]] = []
    joined = first
    quotes = first.count(b'"')
    while quotes % 2 == 1 and len(joined) <= MAX_ROW_BYTES:
        following = next(lines, None)
        if following is None:
            break
        taken.append(following)
        if following[1] is None:
            break
        joined += b"\n" + following[1]
        quotes += following[1].count(b'"')
    if quotes % 2 == 0 and len(joined) <= MAX_ROW_BYTES:
        fields = _read_one_record(joined[: _content_end(joined)])
        if fields is not None and _is_valid_record(fields, columns):
            return fields
    lines.push_back(taken)
    return "unbalanced quote: a quoted field opened on this line is not closed on it"


def _read_one_record(text: bytes) -> list[bytes] | None:
    """The fields of ``text`` if the csv module reads it as exactly one record (its line breaks quoted), else ``None``."""
    try:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8", errors="replace"), newline="")))
    except csv.Error:
        return None
    return [field.encode("utf-8") for field in rows[0]] if len(rows) == 1 else None


def _is_valid_record(fields: list[bytes | memoryview], columns: _Columns) -> bool:
    return not isinstance(_check_row(fields, columns), str) and not isinstance(
        _parse_pixels_slowly(fields[columns.pixels], columns.count), str
    )


def _split_plain_line(line: bytes, stop: int, before: int, after: int) -> list[bytes | memoryview]:
    """Split an unquoted line: ``before`` fields from the left, ``after`` from the right, pixels between."""
    view = memoryview(line)
    head: list[bytes | memoryview] = []
    cursor = 0
    for _ in range(before):
        comma = line.find(b",", cursor, stop)
        if comma < 0:
            return [view[:stop]] if cursor == 0 else line[:stop].split(b",")
        head.append(view[cursor:comma])
        cursor = comma + 1
    tail: list[bytes | memoryview] = []
    end = stop
    for _ in range(after):
        comma = line.rfind(b",", cursor, end)
        if comma < 0:
            # Fewer fields than columns: a plain split lets the row check name the missing one.
            return line[:stop].split(b",")
        tail.append(view[comma + 1 : end])
        end = comma
    head.append(view[cursor:end])
    head.extend(reversed(tail))
    return head


def _split_quoted_line(line: bytes) -> list[bytes | memoryview] | str:
    """Split one record with quoted fields; fast when quotes only wrap whole fields. A ``str`` says why it cannot be read."""
    parts = line.split(b",")
    if all(b'"' not in part or (len(part) >= 2 and part.count(b'"') == 2 and part[:1] == part[-1:] == b'"') for part in parts):
        return [part[1:-1] if part[:1] == b'"' else part for part in parts]
    try:
        row = next(csv.reader(io.StringIO(line.decode("utf-8", errors="replace"), newline="")))
    except (csv.Error, StopIteration) as error:
        return f"unreadable CSV record: {error}"
    return [field.encode("utf-8") for field in row]


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
