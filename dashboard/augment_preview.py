"""Augmentation settings and a live preview of what they do to a face.

:func:`augment_config_ui` draws the controls and returns an
:class:`~core.augment.AugmentConfig`; :func:`render_augment_preview` shows a
face next to a grid of augmented versions. The grid is seeded, so it only
changes when a setting changes. Nothing here needs a dataset: any face array
works.
"""

from __future__ import annotations

import json
import math

import numpy as np
import streamlit as st

from core.augment import AUGMENT_PRESETS, ENGINES, AugmentConfig, augment_batch
from core.preprocess import prepare_face
from dashboard.images import upscale
from dashboard.text import escape_markdown

ENGINE_LABELS = {
    "idg": "ImageDataGenerator",
    "layers": "Keras layers",
    "none": "none",
}
CUSTOM = "custom"
TILE_PIXELS = 96  # each 48x48 face shown at twice its size, pixels kept sharp
GAP_PIXELS = 4


def preset_name(config: AugmentConfig) -> str:
    """The preset that equals ``config``, or ``"custom"``."""
    return next((name for name, preset in AUGMENT_PRESETS.items() if preset == config), CUSTOM)


def augment_config_ui(key: str, default: AugmentConfig) -> AugmentConfig:
    """Draw a preset picker, the engine choice and one control per setting.

    The controls keep their values in ``st.session_state`` under
    ``f"{key}_<field>"``; ``default`` fills them the first time only. Picking
    a preset sets every control; moving a control shows the preset as
    "custom". Place it outside an ``st.form`` so a preview follows the sliders.

    Args:
        key: Unique prefix for the widget keys.
        default: Initial settings.

    Returns:
        The settings as drawn (validated by the control ranges).
    """
    state = st.session_state
    for name, value in default.to_dict().items():
        state.setdefault(f"{key}_{name}", value)
    current = _config_from_state(key)
    state[f"{key}_preset"] = preset_name(current)  # follows the controls

    st.selectbox(
        "Preset",
        [*AUGMENT_PRESETS, CUSTOM],
        key=f"{key}_preset", persist_state="session",
        on_change=_apply_preset,
        args=(key,),
        help="seed_notebook: shifts 0.1, flip, zoom 0.2 (the Keras notebook seed); "
        "default: shifts 0.1, flip, zoom 0.1, rotation 10; fast: default run by Keras layers.",
    )
    engine = st.selectbox(
        "Engine",
        ENGINES,
        key=f"{key}_engine", persist_state="session",
        format_func=ENGINE_LABELS.__getitem__,
        help="ImageDataGenerator is what the tutorial seeds use (the default); the Keras layers "
        "apply the same ranges faster and run under any Keras backend.",
    )
    off = engine == "none"
    st.checkbox("Horizontal flip", key=f"{key}_horizontal_flip", persist_state="session", disabled=off, help="Mirror half of the faces.")
    st.slider("Width shift", 0.0, 0.5, step=0.01, key=f"{key}_width_shift", persist_state="session", disabled=off,
              help="Largest sideways shift, as a fraction of the width (IDG width_shift_range).")
    st.slider("Height shift", 0.0, 0.5, step=0.01, key=f"{key}_height_shift", persist_state="session", disabled=off,
              help="Largest vertical shift, as a fraction of the height (IDG height_shift_range).")
    st.slider("Zoom", 0.0, 0.5, step=0.01, key=f"{key}_zoom", persist_state="session", disabled=off,
              help="Each axis is scaled by a factor in [1 - zoom, 1 + zoom] (IDG zoom_range).")
    st.slider("Rotation", 0.0, 180.0, step=1.0, format="%.0f°", key=f"{key}_rotation", persist_state="session", disabled=off,
              help="Largest rotation either way (IDG rotation_range).")
    st.slider("Brightness", 0.0, 0.9, step=0.05, key=f"{key}_brightness", persist_state="session", disabled=off,
              help="0 is off; else pixels are multiplied by a factor in [1 - b, 1 + b] (IDG brightness_range).")
    st.slider("Random erasing", 0.0, 1.0, step=0.05, key=f"{key}_erasing", persist_state="session", disabled=off,
              help="Chance that a face gets a random rectangle (2-33% of it) filled with noise, after the "
              "other transformations (the published FER2013 VGG recipe uses 0.5). 0 is off.")
    return _config_from_state(key)


def render_augment_preview(face: np.ndarray, config: AugmentConfig, n: int = 16, seed: int = 0) -> None:
    """Draw ``face`` and a grid of ``n`` augmented versions of it.

    Faces are enlarged by repeating pixels so a 48x48 face stays sharp. The
    same face, settings and seed always give the same grid. Problems (a bad
    setting, an empty image) show as ``st.error``.

    Args:
        face: A face crop in any size: gray ``(H, W)``, RGB or RGBA, uint8 or float in [0, 1].
        config: The settings to preview.
        n: Number of augmented versions.
        seed: Random seed of the grid.
    """
    try:
        config.validate()
        face = prepare_face(np.asarray(face))
    except ValueError as error:
        st.error(f"Cannot preview the augmentation: {escape_markdown(str(error))}")
        return
    original, grid = st.columns([1, 4])
    original.image(upscale(face, TILE_PIXELS), caption="original", width=TILE_PIXELS)
    if config.is_identity:
        grid.info("No augmentation: training sees every face unchanged.")
        return
    augmented = _augmented_copies(face, json.dumps(config.to_dict(), sort_keys=True), int(n), int(seed))
    grid.image(
        mosaic(augmented),
        caption=f"{n} random versions ({ENGINE_LABELS[config.engine]}, seed {seed})",
    )


def mosaic(faces: np.ndarray, tile: int = TILE_PIXELS, gap: int = GAP_PIXELS) -> np.ndarray:
    """Tile ``(N, H, W)`` uint8 faces into one near-square uint8 image with white gaps.

    Each face is enlarged by nearest neighbour to ``tile`` pixels wide.
    """
    count = len(faces)
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    big = [upscale(face, tile) for face in faces]
    height, width = big[0].shape if big else (tile, tile)
    canvas = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), 255, np.uint8)
    for position, image in enumerate(big):
        row, column = divmod(position, columns)
        top, left = row * (height + gap), column * (width + gap)
        canvas[top : top + height, left : left + width] = image
    return canvas


@st.cache_data(max_entries=64, show_spinner="Augmenting the preview…")
def _augmented_copies(face: np.ndarray, config_json: str, n: int, seed: int) -> np.ndarray:
    config = AugmentConfig.from_dict(json.loads(config_json))
    return augment_batch(np.repeat(face[None], n, axis=0), config, seed=seed)


def _config_from_state(key: str) -> AugmentConfig:
    state = st.session_state
    return AugmentConfig(
        engine=state[f"{key}_engine"],
        width_shift=float(state[f"{key}_width_shift"]),
        height_shift=float(state[f"{key}_height_shift"]),
        horizontal_flip=bool(state[f"{key}_horizontal_flip"]),
        zoom=float(state[f"{key}_zoom"]),
        rotation=float(state[f"{key}_rotation"]),
        brightness=float(state[f"{key}_brightness"]),
        erasing=float(state[f"{key}_erasing"]),
    )


def _apply_preset(key: str) -> None:
    name = st.session_state[f"{key}_preset"]
    if name in AUGMENT_PRESETS:
        for field, value in AUGMENT_PRESETS[name].to_dict().items():
            st.session_state[f"{key}_{field}"] = value
