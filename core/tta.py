"""Test-time augmentation: the views of a face whose predictions are averaged.

Three modes, named the same everywhere (CLI ``--tta``, pages, caches, cards):

- ``none``: the face as is.
- ``flip``: the face and its mirror image (2 views).
- ``crop10``: ten-crop, after the test-time half of the published FER2013 VGG
  recipe (Khaireddin & Chen 2021, four corner crops and the centre crop, each
  mirrored). That recipe trains on 40x40 crops; our models take the whole
  48x48 face, so the five views here are the whole face (the "centre crop" at
  the model's own size) and its four 44x44 corner crops resized back to 48x48
  (a 1.09x zoom on a shifted window, inside what training augmentation shows
  the model: zoom 0.1, shifts 0.1), each with its mirror image.

  Measured with the first bundled model on its 2,872-image validation slice
  of Training (not on a test split): single pass 65.36%, flip 65.32%, the
  recipe's corners + 44x44 centre crop 66.02%, corners + whole face (this)
  66.75%, corners + centre + whole face (12 views) 66.68%.

  A model trained on a centre window (``fer_vgg`` with ``crop``: the
  recipe's training half) gets the recipe's own ten-crop instead: the centre
  window and the four corner windows of that size, each mirrored, unscaled.
  A corner view is the face shifted so that the corner lands under the
  model's centre window (the rows and columns that wrap around fall outside it).

Models see raw 0..255 pixels (normalisation is inside the model), so views
are made on the ``(N, H, W, 1)`` float32 input of
:func:`core.preprocess.to_model_input`.
"""

from __future__ import annotations

import numpy as np

TTA_MODES: tuple[str, ...] = ("none", "flip", "crop10")
TTA_LABELS: dict[str, str] = {
    "none": "none",
    "flip": "flip (2 views)",
    "crop10": "ten-crop (10 views)",
}
TTA_SHORT: dict[str, str] = {"none": "no", "flip": "flip", "crop10": "ten-crop"}
# How many views each mode averages. The modes nest: each one's views begin with all the views of the modes
# before it in TTA_MODES (the face; then its mirror image; then the corners), so a mode's average can be built
# from a smaller mode's average and the views that mode lacks (core.evaluate reuses cached predictions so).
VIEW_COUNTS: dict[str, int] = {"none": 1, "flip": 2, "crop10": 10}
# Side of the corner and centre crops of ten-crop, for 48x48 faces.
CROP_FRACTION = 44 / 48


def normalize_tta(tta: str | bool | None) -> str:
    """Return the mode name for ``tta``; ``True`` means ``flip`` and ``False``/``None`` ``none``.

    Raises:
        ValueError: For an unknown mode name.
    """
    if tta is None or tta is False:
        return "none"
    if tta is True:
        return "flip"
    mode = str(tta).strip().lower()
    if mode not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {tta!r}; choose one of {', '.join(TTA_MODES)}")
    return mode


def _crop_resize(x: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    import cv2

    height, width = x.shape[1:3]
    window = x[:, top:top + size, left:left + size, 0]
    # cv2.resize works on one image at a time; a (size, size, N) stack counts as N channels,
    # but OpenCV caps channels at 512, so resize in chunks.
    out = np.empty((len(x), height, width), dtype=np.float32)
    for start in range(0, len(x), 512):
        chunk = np.ascontiguousarray(window[start:start + 512].transpose(1, 2, 0))
        resized = cv2.resize(chunk, (width, height), interpolation=cv2.INTER_LINEAR)
        out[start:start + 512] = resized.reshape(height, width, -1).transpose(2, 0, 1)
    return out[..., None]


def make_views(x: np.ndarray, tta: str | bool | None, window: tuple[int, int] | None = None) -> list[np.ndarray]:
    """The views of a batch of model inputs.

    Args:
        x: ``(N, H, W, 1)`` float32 model input.
        tta: A mode of :data:`TTA_MODES` (or a bool, see :func:`normalize_tta`).
        window: ``(height, width)`` of the centre window the model looks at
            (``core.models.centre_crop_of``), or None for the whole input;
            ten-crop then takes its corner views at that size.

    Returns:
        1, 2 or 10 arrays (``none``, ``flip``, ``crop10``) shaped like ``x``.

    Raises:
        ValueError: For an unknown mode or an ``x`` that is not ``(N, H, W, 1)``.
    """
    mode = normalize_tta(tta)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"expected model input of shape (N, H, W, 1), got {x.shape}")
    if mode == "none":
        return [x]
    height, width = x.shape[1:3]
    cropped = window is not None and (window[0] < height or window[1] < width)
    top, left = ((height - window[0]) // 2, (width - window[1]) // 2) if cropped else (0, 0)

    def mirror(view: np.ndarray) -> np.ndarray:
        # The mirror image of what the model sees: mirror its window (for an odd border, mirroring the
        # whole face would move the window by a pixel).
        return _mirror_window(view, left, window[1]) if cropped else view[:, :, ::-1]

    views = [x, mirror(x)]
    if mode == "flip":
        return views
    if cropped:
        # Shift each corner window under the model's centre window: np.roll's wrapped rows and columns
        # land in the border the model never sees.
        bottom, right = height - window[0] - top, width - window[1] - left
        for shift in ((top, left), (top, -right), (-bottom, left), (-bottom, -right)):
            corner = np.roll(x, shift, axis=(1, 2))
            views.extend([corner, mirror(corner)])
        return views
    size = max(1, round(min(height, width) * CROP_FRACTION))
    bottom, right = height - size, width - size
    for top, left in ((0, 0), (0, right), (bottom, 0), (bottom, right)):
        crop = _crop_resize(x, top, left, size)
        views.extend([crop, crop[:, :, ::-1]])
    return views


def _mirror_window(x: np.ndarray, left: int, width: int) -> np.ndarray:
    """``x`` with columns ``left:left + width`` mirrored in place: the mirror image of what a centre window sees."""
    mirrored = x.copy()
    mirrored[:, :, left:left + width] = x[:, :, left:left + width][:, :, ::-1]
    return mirrored
