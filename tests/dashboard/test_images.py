"""Image-grid helpers: crisp upscaling, coloured borders, captions."""

from __future__ import annotations

import numpy as np

from dashboard.images import CORRECT_COLOR, WRONG_COLOR, face_caption, framed, stretch_contrast, upscale


def test_upscale_repeats_pixels_without_blending():
    image = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    big = upscale(image, 5)  # factor 3: the smallest integer reaching 5 px
    assert big.shape == (6, 6)
    assert set(np.unique(big).tolist()) == {0, 255}
    assert (big[:3, :3] == 0).all() and (big[:3, 3:] == 255).all()
    assert upscale(image, 2) is image


def test_framed_draws_a_border_and_keeps_the_inside():
    image = np.full((48, 48), 100, dtype=np.uint8)
    rgb = framed(image, CORRECT_COLOR, width=3)
    assert rgb.shape == (48, 48, 3)
    assert tuple(rgb[0, 0]) == CORRECT_COLOR and tuple(rgb[47, 20]) == CORRECT_COLOR
    assert tuple(rgb[24, 24]) == (100, 100, 100)
    assert tuple(framed(image, WRONG_COLOR)[1, 1]) == WRONG_COLOR
    assert (framed(image) == 100).all()
    assert (image == 100).all()  # input untouched


def test_stretch_contrast_spreads_gray_levels():
    image = np.array([[100, 110], [120, 130]], dtype=np.uint8)
    assert stretch_contrast(image).tolist() == [[0, 85], [170, 255]]
    flat = np.full((2, 2), 7, dtype=np.uint8)
    assert (stretch_contrast(flat) == 7).all()


def test_face_caption_uses_fer2013_class_names():
    assert face_caption(6, "Training_1.jpg", "Training") == "neutral · Training_1.jpg (Training)"
    assert face_caption(4) == "sad"


def test_a_caption_keeps_its_lines_and_each_line_stays_inert():
    from dashboard.images import CAPTION_LIMIT, caption_markdown
    from dashboard.text import literal

    assert caption_markdown("neutral 93%\ntrue: happy") == literal("neutral 93%") + "  \n" + literal("true: happy")
    # A file name from the user's data cannot turn into markup on either line, and each line is cut on its own.
    shown = caption_markdown("**bold** [x](http://e.x)\n" + "9" * 100).split("  \n")
    assert len(shown) == 2 and "**" not in shown[0].replace("\\*", "") and len(shown[1]) <= CAPTION_LIMIT
