"""Decoding image bytes into arrays: a robust path for uploads, a fast gray path for the loader.

:func:`decode_image` handles anything a user may upload (JPEG, PNG, WebP, BMP,
GIF, TIFF, PPM, ICO) with Pillow: EXIF orientation, transparency, 16-bit
data, truncated files and decompression bombs. :func:`decode_gray` is what the
dataset loader calls tens of thousands of times: small, plain JPEG/PNG files
go through OpenCV (about 5x faster than Pillow) and everything else falls
back to :func:`decode_image`.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.preprocess import to_gray

DEFAULT_MAX_PIXELS: int = 50_000_000
# Only a JPEG can be decoded at a fraction of its size; any other format is decoded whole before it can be
# shrunk. Above this many decoded bytes (24 megapixels at Pillow's 4 bytes per pixel), such an image must not be
# a decompression bomb: it is refused when it decodes to more than WHOLE_DECODE_MAX_RATIO times its file's size,
# the ratio zips are held to (probe s22: a 595 KB, 144-megapixel PNG took 1.26 GB and 5.8 s). A photo stored as
# PNG, TIFF or WebP decodes to 1-50 times its size, an 8K screenshot to about 75 times; a crafted file to about
# 1,000 times.
MAX_WHOLE_DECODE_BYTES: int = 96 * 1024**2
WHOLE_DECODE_MAX_RATIO: int = 100
# Bytes per pixel of an image as Pillow holds it once decoded: one for gray and 1-bit images, two for 16-bit gray,
# four for everything else (RGB is stored as four bytes, 32-bit and float images are four). A palette image is held
# in one byte but then converted to RGB(A), so it counts four (review s22: counting one byte per band let 100-megapixel 16-bit
# and float images of 200-700 KB through, at 430-815 MB each).
_DECODED_BYTES = {"1": 1, "L": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# The largest image file read from a path: a 150-megapixel PNG fits; /dev/zero does not.
MAX_IMAGE_FILE_BYTES: int = 256 * 1024**2

# File name extensions the folder loader treats as images.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm"}
)

# Pillow plugins we let identify a file. Formats without a magic number
# (TGA, DIB) are left out: random bytes could pass for them.
_PILLOW_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "PPM", "ICO")

# Above this size a file skips the OpenCV path, whose only size guard is
# OpenCV's own 1-gigapixel limit.
_FAST_PATH_MAX_BYTES = 1 << 20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless...), not DHT/JPG/DAC.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def read_image_file(path: str | os.PathLike, *, max_bytes: int = MAX_IMAGE_FILE_BYTES) -> bytes:
    """Read an image file's bytes, refusing anything that is not a plain file of bounded size.

    A FIFO, a device (``/dev/zero``), a socket or a folder is refused before
    it is opened (a FIFO would block forever, a device never end), and
    checked again on the opened descriptor; reading stops past
    ``max_bytes`` even if the file grows meanwhile.

    Raises:
        ValueError: Not a regular file, a broken link, or larger than ``max_bytes``.
        OSError: Missing, unreadable (permissions) or failing while read.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ValueError("a broken link: the file it points to does not exist") from None
        raise
    _require_regular(status, max_bytes)
    # O_NONBLOCK: should the path be swapped for a FIFO after the check, opening it does not wait.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        _require_regular(os.fstat(descriptor), max_bytes)
        chunks, total = [], 0
        while chunk := os.read(descriptor, min(16 * 1024**2, max_bytes + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise ValueError(f"larger than {max_bytes / 1024**2:,.0f} MiB, the most an image file may be; not read")
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _require_regular(status: os.stat_result, max_bytes: int) -> None:
    mode = status.st_mode
    if not stat.S_ISREG(mode):
        kind = (
            "a folder" if stat.S_ISDIR(mode)
            else "a FIFO, a named pipe" if stat.S_ISFIFO(mode)
            else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "a special file"
        )
        raise ValueError(f"not a regular file ({kind}); not read")
    if status.st_size > max_bytes:
        raise ValueError(
            f"{status.st_size / 1024**2:,.0f} MiB, larger than {max_bytes / 1024**2:,.0f} MiB, "
            "the most an image file may be; not read"
        )


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None,
                 max_whole_bytes: int = MAX_WHOLE_DECODE_BYTES) -> np.ndarray:
    """Decode an image file's bytes to an RGB or gray uint8 array.

    EXIF orientation is applied; transparency is composited on white;
    16-bit images are scaled to 8 bits; a GIF gives its first frame. A JPEG
    larger than ``max_pixels`` (or ``max_side``) is decoded at 1/2, 1/4 or
    1/8 scale by the JPEG decoder itself, so even a 10,000 x 10,000 photo
    needs only tens of megabytes.

    Args:
        data: The file's bytes.
        max_pixels: Largest image (width x height) accepted after any JPEG
            draft scaling.
        max_side: If given, the result is downsized (aspect kept) so that
            its longer side is at most this many pixels.
        max_whole_bytes: Decoded size above which an image that is decoded
            whole (any format but JPEG) is refused if it decodes to more than
            :data:`WHOLE_DECODE_MAX_RATIO` times the file's size.

    Returns:
        ``(H, W, 3)`` uint8 RGB, or ``(H, W)`` uint8 for gray images.

    Raises:
        ValueError: For a 0-byte file, a file that is not an image, a
            truncated or corrupt image, or an image above ``max_pixels``.
    """
    return _decode_with_pillow(data, max_pixels=max_pixels, max_side=max_side, max_whole_bytes=max_whole_bytes)[0]


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of an image file as displayed (EXIF rotation applied), read from its header only.

    What :func:`decode_image` returns may be smaller (``max_side``, JPEG draft
    scaling); this is the size a user's own tools show, which coordinates
    reported back to the user must refer to.

    Raises:
        ValueError: If the bytes are not an image Pillow can open.
    """
    Image.init()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
            width, height = image.size
            try:
                orientation = image.getexif().get(0x0112)
            except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
                orientation = None  # as decode_image: a malformed EXIF block only costs the orientation
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, struct.error) as error:
        raise ValueError(f"cannot read the image size: {error}") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def decode_gray(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None,
                max_whole_bytes: int = MAX_WHOLE_DECODE_BYTES) -> np.ndarray:
    """Decode an image file's bytes to a ``(H, W)`` uint8 gray array, as fast as possible.

    Small plain JPEG/PNG files are decoded by OpenCV; anything else (EXIF
    orientation, alpha, 16-bit, other formats, large files) by Pillow as in
    :func:`decode_image`.

    Raises:
        ValueError: As :func:`decode_image`.
    """
    return decode_gray_checked(data, max_pixels=max_pixels, max_side=max_side, max_whole_bytes=max_whole_bytes)[0]


def decode_gray_checked(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = None,
    max_whole_bytes: int = MAX_WHOLE_DECODE_BYTES,
) -> tuple[np.ndarray, bool]:
    """Decode to gray like :func:`decode_gray` and tell whether the file was stored as 8-bit gray.

    Returns:
        ``(gray, was_gray)``: the ``(H, W)`` uint8 image, and ``False`` when
        it had to be converted (colour, alpha, 16-bit, palette...).

    Raises:
        ValueError: As :func:`decode_image`.
    """
    fast = _decode_gray_with_opencv(data, max_pixels, max_side)  # small files only: at most 1 MiB
    if fast is not None:
        return fast
    image, mode = _decode_with_pillow(data, max_pixels=max_pixels, max_side=max_side, max_whole_bytes=max_whole_bytes)
    return to_gray(image), mode == "L"


def _decode_gray_with_opencv(data: bytes, max_pixels: int, max_side: int | None) -> tuple[np.ndarray, bool] | None:
    """Decode a small, plain, complete JPEG or PNG with OpenCV; ``None`` means "ask Pillow".

    OpenCV neither applies EXIF orientation with IMREAD_UNCHANGED nor reports
    a truncated JPEG (it fills the rest with gray), so files with EXIF, alpha,
    16-bit samples or a missing end marker are left to Pillow.
    """
    if len(data) > _FAST_PATH_MAX_BYTES:
        return None
    if data[:3] == b"\xff\xd8\xff":
        info = _read_jpeg_header(data)
        if info is None or info[2] or not _fits(info[0], info[1], max_pixels, max_side):
            return None
        if not data.rstrip(b"\x00")[-2:] == b"\xff\xd9":
            return None
    elif data[:8] == _PNG_SIGNATURE:
        if len(data) < 33 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        bit_depth, color_type = data[24], data[25]
        # Gray (0) or RGB (2) at 8 bits only: no palette, alpha or transparency chunk.
        if bit_depth != 8 or color_type not in (0, 2) or not _fits(width, height, max_pixels, max_side):
            return None
        if b"IEND" not in data[-16:] or b"tRNS" in data or b"eXIf" in data:
            return None
    else:
        return None
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if image is None or image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return image, True
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), False
    return None


def _fits(width: int, height: int, max_pixels: int, max_side: int | None) -> bool:
    return width * height <= max_pixels and (max_side is None or max(width, height) <= max_side)


def _read_jpeg_header(data: bytes) -> tuple[int, int, bool] | None:
    """Return ``(width, height, has_exif)`` from a JPEG's markers, or ``None`` if unreadable."""
    position, size, has_exif = 2, len(data), False
    while position + 4 <= size:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
            continue
        length = (data[position + 2] << 8) | data[position + 3]
        if marker == 0xE1 and data[position + 4 : position + 10] == b"Exif\x00\x00":
            has_exif = True
        if marker in _JPEG_SOF_MARKERS:
            if position + 9 > size:
                return None
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return (width, height, has_exif) if width and height else None
        position += 2 + length
    return None


def _decode_with_pillow(data: bytes, *, max_pixels: int, max_side: int | None,
                        max_whole_bytes: int = MAX_WHOLE_DECODE_BYTES) -> tuple[np.ndarray, str]:
    """Decode with Pillow; return the array and the file's original mode (``"L"``, ``"RGB"``...)."""
    if len(data) == 0:
        raise ValueError("0-byte file: the file is empty")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, got {max_side}")
    Image.init()  # registers every plugin, so that `formats` can name them all
    try:
        with warnings.catch_warnings():  # our own max_pixels check below is the limit that applies
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except UnidentifiedImageError:
        # The message describes the bytes without quoting them: the file may be
        # anything a link pointed at, and the message may reach a browser.
        raise ValueError(
            f"not an image file ({_describe_content(data)}); expected JPEG, PNG, WebP, BMP, GIF or TIFF"
        ) from None
    except Image.DecompressionBombError as error:
        # Pillow refuses above its own limit before we see the size: say it in our words, with our limit.
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow will open"
        raise ValueError(f"image too large: {size} (limit {max_pixels:,}); downscale it before loading") from None
    except (OSError, SyntaxError, ValueError, struct.error) as error:
        raise ValueError(f"truncated/corrupt image: {error}") from None
    mode = image.mode
    _shrink_jpeg_while_decoding(image, max_pixels, max_side)
    width, height = image.size
    if width * height > max_pixels:
        raise ValueError(
            f"image too large: {width} x {height} pixels (limit {max_pixels:,}); downscale it before loading"
        )
    decoded = width * height * _DECODED_BYTES.get(image.mode, 4)
    if image.format not in ("JPEG", "MPO") and decoded > max_whole_bytes and decoded > WHOLE_DECODE_MAX_RATIO * len(data):
        raise ValueError(
            f"image refused: {width} x {height} pixels in a {_kilobytes(len(data))} {image.format} file would take "
            f"{decoded / 1024**2:,.0f} MB to decode, {decoded / len(data):,.0f} times its size (a decompression "
            "bomb's shape; a photo takes a few times its size); save it as JPEG or downscale it"
        )
    try:
        with warnings.catch_warnings():  # Pillow warns again while loading; our limits above are what applies
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as error:
        raise ValueError(f"truncated/corrupt image: {error}") from None
    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error):
        pass  # A malformed EXIF block only costs the orientation, not the image.
    if max_side is not None and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _to_array(image), mode


def _kilobytes(size: int) -> str:
    return f"{size / 1024:,.0f} KB" if size < 10 * 1024**2 else f"{size / 1024**2:,.0f} MB"


def _describe_content(data: bytes) -> str:
    """Say what kind of bytes a non-image holds, without quoting any of them."""
    head = data[:512]
    if head.lstrip()[:1] in (b"<",) and b">" in head:
        kind = "markup text"
    elif all(byte in b"\t\n\r" or 32 <= byte < 127 for byte in head):
        kind = "plain text"
    else:
        kind = "unrecognised binary data"
    return f"{kind}, {len(data):,} bytes"


def _shrink_jpeg_while_decoding(image: Image.Image, max_pixels: int, max_side: int | None) -> None:
    """Ask the JPEG decoder for a 1/2, 1/4 or 1/8 scale when the full image is not needed."""
    if image.format not in ("JPEG", "MPO"):
        return
    width, height = image.size

    def scaled(scale: int) -> tuple[int, int]:
        return math.ceil(width / scale), math.ceil(height / scale)

    # The smallest scale that fits the pixel budget, and the largest that keeps
    # the longer side at or above max_side (thumbnail() finishes the job).
    budget_scale = next((s for s in (1, 2, 4, 8) if scaled(s)[0] * scaled(s)[1] <= max_pixels), 8)
    side_scale = 1
    if max_side is not None:
        side_scale = max(s for s in (1, 2, 4, 8) if s == 1 or max(scaled(s)) >= max_side)
    chosen = max(budget_scale, side_scale)
    if chosen > 1:
        # draft() picks the largest scale whose result is at least the requested size.
        image.draft(image.mode, (max(1, width // chosen), max(1, height // chosen)))


def _to_array(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to ``(H, W)`` gray or ``(H, W, 3)`` RGB uint8."""
    mode = image.mode
    if mode == "L":
        return np.array(image)
    if mode in ("1",):
        return np.array(image.convert("L"))
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        values = np.array(image).astype(np.int64)
        if values.max(initial=0) > 255:  # 16-bit data; 8-bit data stored as "I" is kept as is
            values = (np.clip(values, 0, 65535) + 128) // 257
        return np.clip(values, 0, 255).astype(np.uint8)
    if mode == "F":
        values = np.nan_to_num(np.array(image, dtype=np.float64))
        if values.max(initial=0) <= 1.0:
            values = values * 255.0
        return np.clip(values + 0.5, 0, 255).astype(np.uint8)
    if mode in ("LA", "La"):
        return _composite_on_white(np.array(image.convert("LA")))
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in image.info):
        return _composite_on_white(np.array(image.convert("RGBA")))
    if mode == "RGB":
        return np.array(image)
    return np.array(image.convert("RGB"))


def _composite_on_white(pixels: np.ndarray) -> np.ndarray:
    """Blend ``(H, W, C+1)`` colour+alpha pixels onto a white background."""
    # uint16 holds every step (color * alpha + 255 * (255 - alpha) + 127 <= 65,152): half uint32's memory, which
    # came to 16 bytes a pixel for RGBA.
    color = pixels[..., :-1].astype(np.uint16)
    alpha = pixels[..., -1:].astype(np.uint16)
    blended = (color * alpha + 255 * (255 - alpha) + 127) // 255
    blended = blended.astype(np.uint8)
    return blended[..., 0] if blended.shape[-1] == 1 else blended
