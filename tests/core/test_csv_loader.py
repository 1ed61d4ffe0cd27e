"""Parsing FER2013 CSV bytes: every variant, every bad row reported with its line."""

from __future__ import annotations

import numpy as np
import pytest

import core.csv_loader as csv_loader
from core.csv_loader import parse_fer_csv


def face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def pixels_text(image: np.ndarray) -> str:
    return " ".join(str(value) for value in image.ravel().tolist())


def reasons_by_line(result) -> dict[str, str]:
    return {record.where: record.reason for record in result.skipped}


def test_challenge_csv_gives_images_labels_splits_and_line_ids():
    images = [face(i) for i in range(3)]
    text = "emotion,pixels,Usage\n"
    text += f"0,{pixels_text(images[0])},Training\n"
    text += f"3,{pixels_text(images[1])},PublicTest\n"
    text += f"6,{pixels_text(images[2])},PrivateTest\n"
    result = parse_fer_csv(text.encode())
    assert np.array_equal(result.images, np.stack(images))
    assert result.labels.tolist() == [0, 3, 6]
    assert result.labels.dtype == np.int64
    assert result.splits.tolist() == ["Training", "PublicTest", "PrivateTest"]
    assert result.ids.tolist() == ["line 2", "line 3", "line 4"]
    assert result.skipped == ()


def test_icml_variant_with_spaced_header_and_other_column_order():
    image = face(1)
    text = f"emotion, Usage, pixels\n4, Training,{pixels_text(image)}\n2,PublicTest, {pixels_text(image)}\n"
    result = parse_fer_csv(text.encode())
    assert result.labels.tolist() == [4, 2]
    assert result.splits.tolist() == ["Training", "PublicTest"]
    assert np.array_equal(result.images[1], image)


def test_competition_train_csv_without_usage_is_training():
    text = f"emotion,pixels\n5,{pixels_text(face(2))}\n"
    result = parse_fer_csv(text.encode())
    assert result.splits.tolist() == ["Training"]
    assert result.labels.tolist() == [5]


def test_quoted_fields_crlf_and_bom_are_read():
    image = face(3)
    text = (
        "\ufeff\"emotion\",\"pixels\",\"Usage\"\r\n"
        f"1,\"{pixels_text(image)}\",Training\r\n"
        f"\"2\",\"{pixels_text(image)}\",\"PublicTest\"\r\n"
    )
    result = parse_fer_csv(text.encode("utf-8"))
    assert result.labels.tolist() == [1, 2]
    assert np.array_equal(result.images[0], image)
    assert result.skipped == ()


def test_quoted_field_with_a_comma_goes_through_the_csv_module():
    text = f'emotion,pixels,Usage\n1,"{pixels_text(face(4))}","Train,ing"\n'
    result = parse_fer_csv(text.encode())
    assert reasons_by_line(result) == {"line 2": "unknown Usage 'Train,ing' (expected Training, PublicTest or PrivateTest)"}


def test_quoted_field_spanning_lines_keeps_later_line_numbers_right():
    first, second = pixels_text(face(5)), pixels_text(face(6))
    split_at = first.index(" ", 3000)
    multi_line = first[:split_at] + "\n" + first[split_at + 1 :]
    text = f'emotion,pixels,Usage\n0,{second},Training\n1,"{multi_line}",Training\n9,{second},Training\n2,{second},Training\n'
    result = parse_fer_csv(text.encode())
    assert result.labels.tolist() == [0, 1, 2]
    assert np.array_equal(result.images[1], face(5))
    assert result.ids.tolist() == ["line 2", "line 3", "line 6"]
    assert reasons_by_line(result) == {"line 5": "label 9 out of range 0..6"}


def test_every_bad_row_is_skipped_with_its_line_and_reason():
    good = pixels_text(face(7))
    values = face(7).ravel().tolist()
    rows = [
        f"0,{good},Training",  # line 2: good
        f"1,{' '.join(map(str, values[:-1]))},Training",  # 3
        f"1,{good.replace(' ', ' abc ', 1)},Training",  # 4: non-numeric (and one value too many)
        f"1,{' '.join(['300'] + list(map(str, values[1:])))},Training",  # 5
        f"9,{good},Training",  # 6
        f"x,{good},Training",  # 7
        f"2.5,{good},Training",  # 8
        "3,,Training",  # 9
        f"3,{good},Foo",  # 10
        f",{good},Training",  # 11
        f"1,{good} 7,Training",  # 12
        f"1,{' '.join(['-5'] + list(map(str, values[1:])))},Training",  # 13
        f"1,{' '.join(['1000'] + list(map(str, values[1:])))},Training",  # 14
        "3",  # 15
        f"1,{good},Training,extra",  # 16
        f"1,{good},",  # 17
        f"4,{good},PublicTest",  # 18: good
    ]
    result = parse_fer_csv(("emotion,pixels,Usage\n" + "\n".join(rows) + "\n").encode())
    assert result.ids.tolist() == ["line 2", "line 18"]
    assert result.labels.tolist() == [0, 4]
    assert reasons_by_line(result) == {
        "line 3": "2303 pixel values, expected 2304",
        "line 4": "non-numeric pixel value 'abc'",
        "line 5": "pixel value 300 > 255",
        "line 6": "label 9 out of range 0..6",
        "line 7": "label 'x' is not an integer",
        "line 8": "label '2.5' is not an integer",
        "line 9": "missing pixels field",
        "line 10": "unknown Usage 'Foo' (expected Training, PublicTest or PrivateTest)",
        "line 11": "missing emotion field",
        "line 12": "2305 pixel values, expected 2304",
        "line 13": "pixel value -5 < 0",
        "line 14": "pixel value 1000 > 255",
        "line 15": "missing pixels field",
        "line 16": "4 fields, expected 3 (an unquoted comma?)",
        "line 17": "missing Usage field",
    }
    # Skipped records come in file order.
    assert [int(r.where.split()[1]) for r in result.skipped] == sorted(int(r.where.split()[1]) for r in result.skipped)


def test_blank_lines_are_not_records_and_do_not_shift_line_numbers():
    good = pixels_text(face(8))
    text = f"emotion,pixels,Usage\n\n0,{good},Training\n   \n1,{good},Training\n\n"
    result = parse_fer_csv(text.encode())
    assert result.ids.tolist() == ["line 3", "line 5"]
    assert result.skipped == ()


def test_tabs_leading_zeros_and_integral_float_labels_are_accepted():
    values = face(9).ravel().tolist()
    tabbed = "\t".join(map(str, values))
    padded = " ".join(["0007"] + list(map(str, values[1:])))
    text = f"emotion,pixels,Usage\n3.0,{tabbed},Training\n1,{padded},Training\n"
    result = parse_fer_csv(text.encode())
    assert result.labels.tolist() == [3, 1]
    assert np.array_equal(result.images[0], face(9))
    assert result.images[1].ravel()[0] == 7
    assert result.skipped == ()


def test_headerless_file_uses_the_challenge_column_order():
    text = f"2,{pixels_text(face(10))},PrivateTest\n"
    result = parse_fer_csv(text.encode())
    assert result.labels.tolist() == [2]
    assert result.splits.tolist() == ["PrivateTest"]
    assert result.ids.tolist() == ["line 1"]


def test_usage_is_matched_case_insensitively():
    text = f"emotion,pixels,Usage\n2,{pixels_text(face(11))},publictest\n"
    assert parse_fer_csv(text.encode()).splits.tolist() == ["PublicTest"]


def test_rows_stay_aligned_across_chunks_with_bad_rows_scattered(monkeypatch):
    monkeypatch.setattr(csv_loader, "ROWS_PER_CHUNK", 3)
    rng = np.random.default_rng(0)
    lines, expected_images, expected_lines = ["emotion,pixels,Usage"], [], []
    for row in range(20):
        image = face(100 + row)
        text = pixels_text(image)
        if rng.random() < 0.3:
            text = text.replace(" ", " x ", 1)  # bad row
        else:
            expected_images.append(image)
            expected_lines.append(f"line {row + 2}")
        lines.append(f"{row % 7},{text},Training")
    result = parse_fer_csv(("\n".join(lines) + "\n").encode())
    assert result.ids.tolist() == expected_lines
    assert np.array_equal(result.images, np.stack(expected_images))
    assert len(result.skipped) == 20 - len(expected_lines)


def test_fast_tokenizer_agrees_with_the_plain_parser_on_random_damage():
    rng = np.random.default_rng(1)
    fields = []
    for row in range(40):
        tokens = [str(v) for v in face(200 + row).ravel().tolist()]
        damage = rng.integers(0, 8)
        position = int(rng.integers(0, len(tokens)))
        if damage == 1:
            tokens[position] = "256"
        elif damage == 2:
            tokens[position] = "12a"
        elif damage == 3:
            del tokens[position]
        elif damage == 4:
            tokens[position] = "0255"
        elif damage == 5:
            tokens[position] = "1" + tokens[position] + "0000"
        elif damage == 6:
            tokens[position] = ""  # a double space
        fields.append(" ".join(tokens).encode())
    values, good = csv_loader._tokenize_pixels(fields)
    expected_good = []
    expected_values = []
    for field in fields:
        outcome = csv_loader._parse_pixels_slowly(field, 3)
        # The fast path may leave a valid but unusual row (leading zeros, double
        # space) to the plain parser, but must never accept a row it rejects.
        if not isinstance(outcome, str) and b"0255" not in field and b"  " not in field:
            expected_good.append(True)
            expected_values.append(outcome)
        else:
            expected_good.append(False)
    assert good.tolist() == expected_good
    assert np.array_equal(values, np.stack(expected_values))


def test_header_without_emotion_or_pixels_is_refused_with_what_is_expected():
    with pytest.raises(ValueError, match="emotion, pixels"):
        parse_fer_csv(b"a,b,c\n1,2,3\n")


def test_unlabeled_test_csv_is_refused_saying_it_has_no_labels():
    with pytest.raises(ValueError, match="no labels"):
        parse_fer_csv(f"pixels\n{pixels_text(face(12))}\n".encode())


def test_empty_file_is_refused():
    with pytest.raises(ValueError, match="empty"):
        parse_fer_csv(b"")
    with pytest.raises(ValueError, match="empty"):
        parse_fer_csv(b"\n\n")


def test_header_only_file_gives_no_rows():
    result = parse_fer_csv(b"emotion,pixels,Usage\n")
    assert len(result.images) == 0 and result.skipped == ()


def test_an_unbalanced_quote_does_not_swallow_the_lines_after_it():
    # Issue 16 item 4: `3,"` at line 52 of a 201-row file lost lines 53-67 without a word.
    rows = [f"{k % 7},{pixels_text(face(k % 5))},Training" for k in range(200)]
    rows[50] = '3,"'  # line 52 (the header is line 1)
    rows[120] = f'4,"{pixels_text(face(1))},Training'  # line 122: a quote opened, never closed
    result = parse_fer_csv(("emotion,pixels,Usage\n" + "\n".join(rows) + "\n").encode())
    reasons = reasons_by_line(result)
    loaded = [int(identifier.split()[1]) for identifier in result.ids]
    assert sorted(loaded + [int(where.split()[1]) for where in reasons]) == list(range(2, 202))
    assert set(reasons) == {"line 52", "line 122"}
    assert "quote" in reasons["line 52"] and "quote" in reasons["line 122"]
    assert len(result.images) == 198 and 53 in loaded and 123 in loaded


def test_a_quoted_field_opened_and_closed_lines_later_is_one_bad_record_not_many_lost():
    good = pixels_text(face(3))
    text = f'emotion,pixels,Usage\n0,{good},Training\n5,"oops\n1,{good},Training\n2,{good},Training"\n3,{good},Training\n'
    result = parse_fer_csv(text.encode())
    # Lines 3-5 do not make one valid record, so line 3 is reported and lines 4 and 5 are read on their own.
    assert result.ids.tolist() == ["line 2", "line 4", "line 6"]
    assert set(reasons_by_line(result)) == {"line 3", "line 5"}


def test_a_huge_line_is_skipped_by_its_length_in_bounded_memory():
    # Issue 16 item 2: a 50 MB line cost 788 MB; it must be skipped unread, with memory far below the file size.
    import tracemalloc

    good = pixels_text(face(2))
    huge = b"1," + b"7 " * 20_000_000 + b",Training"  # 40 MB on one line
    data = f"emotion,pixels,Usage\n0,{good},Training\n".encode() + huge + f"\n1,{good},PublicTest\n".encode()
    tracemalloc.start()
    try:
        result = parse_fer_csv(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.ids.tolist() == ["line 2", "line 4"]
    (reason,) = reasons_by_line(result).values()
    assert "40,000,011 bytes" in reason and "longer than any FER2013 row" in reason
    # A few read blocks, whatever the line's length (the old parser needed about 16x the line).
    assert peak < min(4 * csv_loader.READ_BLOCK_BYTES, 0.5 * len(data)), f"peak {peak / 1e6:.0f} MB"


def test_stream_parse_matches_the_bytes_parse_across_block_boundaries(monkeypatch):
    import io

    monkeypatch.setattr(csv_loader, "READ_BLOCK_BYTES", 1000)  # many lines cut by block ends
    rows = [f"{k % 7},{pixels_text(face(k))},{('Training', 'PublicTest')[k % 2]}" for k in range(12)]
    rows[4] = "9," + rows[4][2:]
    data = ("emotion,pixels,Usage\r\n" + "\r\n".join(rows) + "\r\n").encode()
    blocks = []
    streamed = csv_loader.parse_fer_csv_stream(io.BytesIO(data), size=len(data), on_block=blocks.append)
    assert b"".join(blocks) == data
    assert streamed.ids.tolist() == [f"line {k + 2}" for k in range(12) if k != 4]
    assert np.array_equal(streamed.images[0], face(0)) and np.array_equal(streamed.images[-1], face(11))
    assert reasons_by_line(streamed) == {"line 6": "label 9 out of range 0..6"}
    utf16 = parse_fer_csv(data.decode().encode("utf-16"))
    assert utf16.ids.tolist() == streamed.ids.tolist() and np.array_equal(utf16.images, streamed.images)


def test_two_stray_quotes_on_adjacent_lines_do_not_merge_them():
    # Found by the fuzz test: `0",...` then `"0,...` made an even quote count over two lines,
    # and the csv module read only the first of them.
    good = pixels_text(face(4))
    text = f'emotion,pixels,Usage\n1,{good},Training\n0",{good},Training\n"0,{good},Training\n2,{good},Training\n'
    result = parse_fer_csv(text.encode())
    loaded = [int(identifier.split()[1]) for identifier in result.ids]
    skipped = [int(where.split()[1]) for where in reasons_by_line(result)]
    assert sorted(loaded + skipped) == [2, 3, 4, 5]
