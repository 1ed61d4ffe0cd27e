"""Image-grid helpers: crisp upscaling of 48x48 faces, captions, right/wrong borders.

The pure functions (:func:`upscale`, :func:`framed`) return arrays and are
reused by the evaluation and prediction pages; :func:`image_grid` draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from core.labels import CLASS_NAMES
from dashboard.text import literal

CAPTION_LIMIT = 60
CORRECT_COLOR = (46, 160, 67)  # green
WRONG_COLOR = (218, 54, 51)  # red


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """Enlarge an image by nearest neighbour to at least ``size`` pixels wide.

    Browsers smooth small images when they scale them up; repeating pixels
    here keeps a 48x48 face sharp at any display size.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` uint8.
        size: Target width in pixels; the factor is the smallest integer that reaches it.

    Returns:
        The enlarged uint8 array (the input itself when no enlargement is needed).
    """
    factor = max(1, -(-size // image.shape[1]))
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def framed(image: np.ndarray, color: tuple[int, int, int] | None = None, width: int = 4) -> np.ndarray:
    """Return an RGB copy of ``image`` with a coloured border drawn inside its edge.

    Args:
        image: ``(H, W)`` gray or ``(H, W, 3)`` RGB uint8.
        color: RGB border colour; None for no border (still returns RGB).
        width: Border thickness in pixels.
    """
    rgb = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image.copy()
    if color is not None and width > 0:
        rgb[:width, :] = color
        rgb[-width:, :] = color
        rgb[:, :width] = color
        rgb[:, -width:] = color
    return rgb


def stretch_contrast(image: np.ndarray) -> np.ndarray:
    """Spread an image's gray levels over 0..255 (a flat image stays as it is).

    Mean faces are blurry mid-gray; stretching makes their differences visible.
    """
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return image
    return np.rint((image.astype(np.float32) - low) * (255.0 / (high - low))).astype(np.uint8)


def face_caption(label: int | None = None, identifier: str | None = None, split: str | None = None) -> str:
    """Caption such as ``happy · Training_12.jpg (Training)``; parts left out when None."""
    parts = []
    if label is not None:
        parts.append(CLASS_NAMES[int(label)])
    if identifier is not None:
        parts.append(str(identifier))
    text = " · ".join(parts)
    return f"{text} ({split})" if split else text


def caption_markdown(caption: str) -> str:
    """``caption`` as inert markdown, each of its lines escaped and cut to :data:`CAPTION_LIMIT`, kept as lines."""
    return "  \n".join(literal(line, CAPTION_LIMIT) for line in str(caption).split("\n"))


def image_grid(
    images: Sequence[np.ndarray] | np.ndarray,
    captions: Sequence[str] | None = None,
    *,
    size: int = 96,
    correct: Sequence[bool] | None = None,
) -> None:
    """Draw faces side by side, wrapping to the page width.

    Args:
        images: 2-D uint8 faces (any size; 48x48 usually).
        captions: One caption per image, or None; plain text (shown as written, each
            line cut to :data:`CAPTION_LIMIT` characters). A ``"\\n"`` starts a new line:
            under an 80-96 px face, "neutral (93%) · happy" wrapped word by word
            into three lines (walk s15), two chosen lines read at a glance.
        size: Displayed width of each image in pixels.
        correct: Optional right/wrong flag per image: green border when True,
            red when False (predictions).
    """
    if len(images) == 0:
        st.caption("No images to show.")
        return
    tiles = []
    for position, image in enumerate(images):
        big = upscale(np.asarray(image), size)
        if correct is not None:
            border = max(2, big.shape[1] // 24)
            big = framed(big, CORRECT_COLOR if correct[position] else WRONG_COLOR, border)
        tiles.append(big)
    # Captions are markdown, and ids are file names from the user's data (zip members included): inert text.
    shown = [caption_markdown(caption) for caption in captions] if captions is not None else None
    st.image(tiles, caption=shown, width=size)
