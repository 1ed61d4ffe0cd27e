"""Decoding image bytes: every format an upload may be, and every way a file can be broken."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from core.images import decode_gray, decode_gray_checked, decode_image, image_size


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_gray_48x48_jpeg_decodes_like_opencv_and_counts_as_gray():
    data = cv2.imencode(".jpg", noise((48, 48)))[1].tobytes()
    gray, was_gray = decode_gray_checked(data)
    assert was_gray
    assert gray.dtype == np.uint8 and gray.shape == (48, 48)
    assert np.array_equal(gray, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE))


def test_gray_png_is_lossless():
    image = noise((30, 20))
    data = cv2.imencode(".png", image)[1].tobytes()
    assert np.array_equal(decode_gray(data), image)
    assert np.array_equal(decode_image(data), image)


def test_colour_png_gives_rgb_in_rgb_order_and_is_flagged_as_converted():
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[..., 0] = 200  # red
    data = encode(Image.fromarray(rgb), "PNG")
    decoded = decode_image(data)
    assert decoded.shape == (10, 12, 3) and decoded[0, 0].tolist() == [200, 0, 0]
    gray, was_gray = decode_gray_checked(data)
    assert gray.shape == (10, 12) and not was_gray


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF", "GIF", "PPM"])
def test_other_formats_decode(fmt):
    image = Image.fromarray(noise((16, 24, 3)))
    decoded = decode_image(encode(image, fmt))
    assert decoded.shape[:2] == (16, 24) and decoded.dtype == np.uint8


def test_gif_gives_its_first_frame():
    frames = [Image.new("L", (8, 8), 10), Image.new("L", (8, 8), 240)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_gray(data).mean() < 50


def test_transparent_pixels_are_composited_on_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (0, 0, 0, 255)  # opaque black
    decoded = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert decoded.shape == (4, 4, 3)
    assert decoded[0, 0].tolist() == [0, 0, 0]
    assert decoded[1, 1].tolist() == [255, 255, 255]
    gray_alpha = Image.fromarray(np.zeros((3, 3, 2), np.uint8), "LA")
    assert decode_image(encode(gray_alpha, "PNG")).tolist() == [[255] * 3] * 3


def test_16_bit_png_is_scaled_to_8_bits():
    values = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    data = cv2.imencode(".png", values)[1].tobytes()
    decoded = decode_gray(data)
    assert decoded.dtype == np.uint8
    assert decoded.max() == round(63000 / 257)
    assert not decode_gray_checked(data)[1]


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise
    data = encode(Image.fromarray(noise((20, 40))), "JPEG", exif=exif.tobytes())
    assert decode_image(data).shape == (40, 20)
    assert decode_gray(data).shape == (40, 20)
    assert image_size(data) == (20, 40)  # (width, height) as displayed, like the decoded array
    assert image_size(encode(Image.fromarray(noise((20, 40))), "PNG")) == (40, 20)
    with pytest.raises(ValueError, match="cannot read the image size"):
        image_size(b"not an image")


def test_empty_file_says_so():
    with pytest.raises(ValueError, match="0-byte file"):
        decode_gray(b"")


def test_text_file_is_not_an_image():
    with pytest.raises(ValueError, match="not an image file"):
        decode_gray(b"just some notes, saved as happy.jpg\n")


@pytest.mark.parametrize("fmt", [".jpg", ".png"])
def test_truncated_file_is_reported_not_padded_with_gray(fmt):
    data = cv2.imencode(fmt, noise((48, 48)))[1].tobytes()
    with pytest.raises(ValueError, match="truncated/corrupt"):
        decode_gray(data[: len(data) // 2])


def test_corrupt_jpeg_body_is_reported():
    data = bytearray(cv2.imencode(".jpg", noise((48, 48)))[1].tobytes())
    data[200:] = b"\x00" * (len(data) - 200)
    with pytest.raises(ValueError, match="truncated/corrupt"):
        decode_gray(bytes(data))


def test_image_above_the_pixel_budget_is_refused():
    data = encode(Image.fromarray(noise((100, 100))), "PNG")
    with pytest.raises(ValueError, match="too large"):
        decode_image(data, max_pixels=5_000)
    with pytest.raises(ValueError, match="too large"):
        decode_gray(data, max_pixels=5_000)


def test_large_jpeg_is_shrunk_by_the_decoder_instead_of_refused():
    data = encode(Image.fromarray(noise((400, 600, 3))), "JPEG")
    decoded = decode_image(data, max_pixels=20_000)
    assert decoded.shape[0] * decoded.shape[1] <= 20_000
    assert decoded.shape[:2] == (100, 150)


def test_max_side_downsizes_keeping_the_aspect_ratio():
    data = encode(Image.fromarray(noise((400, 600, 3))), "JPEG")
    assert decode_image(data, max_side=100).shape == (67, 100, 3)
    png = encode(Image.fromarray(noise((30, 90))), "PNG")
    assert decode_image(png, max_side=45).shape == (15, 45)
    assert decode_image(png, max_side=1000).shape == (30, 90)


def test_decompression_bomb_becomes_a_value_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    data = encode(Image.fromarray(noise((100, 100))), "PNG")
    # Pillow's own limit says it in the same words as ours, with our limit (probe s9: two limits, two texts).
    with pytest.raises(ValueError, match=r"^image too large: 10,000 pixels \(limit 5,000\); downscale it before loading$"):
        decode_image(data, max_pixels=5_000)


def test_an_image_decoded_whole_that_would_take_far_more_than_its_size_is_refused_before_decoding():
    # Probe s22: a 595 KB, 144-megapixel RGBA PNG took 1.26 GB and 5.8 s; only JPEGs shrink while decoding.
    flat = encode(Image.new("RGBA", (1200, 1000), "white"), "PNG")
    with pytest.raises(ValueError, match=r"^image refused: 1200 x 1000 pixels in a \d+ KB PNG file would take 5 MB "
                                         r"to decode, [\d,]+ times its size \(a decompression bomb's shape"):
        decode_image(flat, max_whole_bytes=1024**2)
    with pytest.raises(ValueError, match="decompression bomb"):
        decode_gray(flat, max_whole_bytes=1024**2)
    # A photo's content decodes to a few times its size: accepted, however large.
    photo = encode(Image.fromarray(noise((1000, 1200, 3))), "PNG")
    assert decode_image(photo, max_whole_bytes=1024**2, max_side=600).shape == (500, 600, 3)
    # Under the budget even a flat image is decoded, and a JPEG is never refused this way (it shrinks as it decodes).
    assert decode_image(flat).shape == (1000, 1200, 3)
    jpeg = encode(Image.new("RGB", (1200, 1000), "white"), "JPEG")
    assert decode_image(jpeg, max_whole_bytes=1024**2, max_side=600).shape == (500, 600, 3)


@pytest.mark.parametrize("mode, fmt, options", [
    ("I;16", "PNG", {}), ("F", "TIFF", {"compression": "tiff_adobe_deflate"}), ("I", "TIFF", {"compression": "tiff_adobe_deflate"}),
    ("P", "PNG", {}), ("1", "PNG", {}), ("LA", "PNG", {})], ids=["16-bit", "float", "32-bit", "palette", "1-bit", "gray+alpha"])
def test_the_bomb_rule_counts_what_each_mode_takes_once_decoded(mode, fmt, options):
    # Review s22: one byte per band let 100-megapixel 16-bit and float files of 200-700 KB through (430-815 MB).
    flat = encode(Image.new(mode, (1200, 1000)), fmt, **options)
    bytes_per_pixel = {"I;16": 2, "1": 1}.get(mode, 4)
    budget = 1200 * 1000 * bytes_per_pixel - 1  # just under what the image takes: refused, being flat
    with pytest.raises(ValueError, match="decompression bomb"):
        decode_image(flat, max_whole_bytes=budget)
    assert decode_image(flat, max_whole_bytes=budget + 1).shape[:2] == (1000, 1200)


def test_decode_gray_with_max_side_shrinks_large_photos():
    jpeg = encode(Image.fromarray(noise((400, 600, 3))), "JPEG")
    assert decode_gray(jpeg, max_side=100).shape == (67, 100)
    small = cv2.imencode(".jpg", noise((48, 48)))[1].tobytes()
    assert decode_gray(small, max_side=100).shape == (48, 48)
