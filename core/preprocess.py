"""The one preprocessing path shared by loading, training, evaluation and prediction.

A face becomes a 48x48 uint8 grayscale array; a batch of those becomes the
model input by :func:`to_model_input`. Scaling to [0, 1] happens inside every
model (a ``Rescaling`` layer), so a saved model carries its own normalisation.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.labels import IMAGE_SIZE


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Bring pixel values to uint8: uint16 scaled down by 257, floats read as [0, 1], other ints clipped."""
    if image.dtype == np.uint16:
        return (image // 257).astype(np.uint8)
    if image.dtype.kind == "f":
        return np.clip(np.nan_to_num(image) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.dtype != np.uint8:
        return np.clip(image, 0, 255).astype(np.uint8)
    return image


def to_gray(image: np.ndarray) -> np.ndarray:
    """Convert an image to 2-D uint8 grayscale.

    Args:
        image: ``(H, W)`` gray, ``(H, W, 1)``, ``(H, W, 3)`` RGB or
            ``(H, W, 4)`` RGBA; uint8, uint16 (scaled down by 257) or float
            in [0, 1].

    Returns:
        ``(H, W)`` uint8.

    Raises:
        ValueError: For any other shape or an empty image.
    """
    if image.size == 0:
        raise ValueError("the image is empty (0 pixels)")
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY)
    raise ValueError(f"expected a gray, RGB or RGBA image, got an array of shape {image.shape}")


def prepare_face(image: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Turn a face crop of any size and colour into the model's ``(size, size)`` uint8 face.

    Shrinking uses area averaging (no aliasing), enlarging uses bilinear
    interpolation; the aspect ratio is not preserved, so callers pass square crops.
    """
    gray = to_gray(image)
    if gray.shape == (size, size):
        return gray
    shrink = gray.shape[0] >= size and gray.shape[1] >= size
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interpolation)


def to_model_input(faces: np.ndarray) -> np.ndarray:
    """Turn ``(N, 48, 48)`` uint8 faces into the ``(N, 48, 48, 1)`` float32 model input.

    Raises:
        ValueError: If ``faces`` is not a stack of 2-D images.
    """
    faces = np.asarray(faces)
    if faces.ndim == 2:
        faces = faces[None]
    if faces.ndim != 3:
        raise ValueError(f"expected faces of shape (N, H, W), got {faces.shape}")
    return faces.astype(np.float32)[..., None]
