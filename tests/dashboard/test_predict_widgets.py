"""How Predict's batch mode opens its uploads (the page tests drive the rest)."""

from __future__ import annotations

import inspect

import cv2
import numpy as np

from dashboard.predict_widgets import expand_uploads
from tests.core.test_predict import make_zip


def photo(value: int) -> bytes:
    # Noise, so that the photo does not compress (as real photos do not) and no ratio check is involved.
    pixels = np.random.default_rng(value).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def test_a_batch_is_counted_first_and_its_zips_are_read_one_member_at_a_time():
    files = [("a.jpg", photo(0)), ("photos.zip", make_zip({"x.png": photo(1), "y.png": photo(2)})), ("bad.zip", b"PK no")]
    count, items = expand_uploads(files)
    assert count == 4
    assert inspect.isgenerator(items)  # nothing of the zips is inflated before it is predicted
    listed = list(items)
    assert [name for name, _ in listed] == ["a.jpg", "photos.zip/x.png", "photos.zip/y.png", "bad.zip"]
    assert listed[1][1] == photo(1) and listed[3][1].startswith("not a readable zip")


def test_the_zips_of_one_batch_share_one_size_limit():
    # Probe s11: the limit was per zip, so three zips held three times as much.
    members = {f"{i}.png": photo(i) for i in range(3)}
    size = sum(len(payload) for payload in members.values())
    files = [("first.zip", make_zip(members)), ("second.zip", make_zip(members)), ("third.zip", make_zip(members))]
    count, items = expand_uploads(files, max_total_bytes=2 * size)
    listed = list(items)
    assert count == 7  # 3 + 3 images, and the third zip as one refused row
    assert [name for name, _ in listed][-1] == "third.zip"
    assert "more than" in listed[-1][1] and "another batch" in listed[-1][1]
    assert all(isinstance(payload, bytes) for _, payload in listed[:-1])
