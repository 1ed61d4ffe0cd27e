"""The augmentation controls and preview, driven through Streamlit's AppTest."""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from core.augment import AUGMENT_PRESETS, AugmentConfig
from dashboard.augment_preview import mosaic, preset_name


def preview_app(default_json: str) -> None:
    import numpy as np
    import streamlit as st

    from core.augment import AugmentConfig
    from dashboard.augment_preview import augment_config_ui, render_augment_preview

    config = augment_config_ui("aug", AugmentConfig.from_dict(__import__("json").loads(default_json)))
    st.session_state["returned"] = config
    face = np.tile(np.linspace(0, 255, 48).astype(np.uint8), (48, 1))
    render_augment_preview(face, config, n=4, seed=0)


def run_app(default: AugmentConfig) -> AppTest:
    import json

    app = AppTest.from_function(preview_app, args=(json.dumps(default.to_dict()),), default_timeout=120)
    return app.run()


def test_controls_start_from_the_default_and_return_what_is_drawn():
    app = run_app(AugmentConfig(rotation=20.0))
    assert not app.exception
    assert app.session_state["returned"] == AugmentConfig(rotation=20.0)
    app.slider(key="aug_zoom").set_value(0.3).run()
    assert app.session_state["returned"].zoom == 0.3
    assert app.selectbox(key="aug_preset").value == "custom"


def test_preset_sets_every_control():
    app = run_app(AugmentConfig())
    assert app.selectbox(key="aug_preset").value == "default"
    app.selectbox(key="aug_preset").set_value("seed_notebook").run()
    assert app.session_state["returned"] == AUGMENT_PRESETS["seed_notebook"]
    assert app.slider(key="aug_zoom").value == 0.2


def test_preview_shows_original_and_grid_and_none_shows_a_note():
    app = run_app(AugmentConfig())
    assert not app.exception and not app.error
    app.selectbox(key="aug_engine").set_value("none").run()
    assert any("No augmentation" in info.value for info in app.info)
    assert app.slider(key="aug_zoom").disabled


def test_preview_reports_a_bad_face():
    def app_script():
        import numpy as np

        from core.augment import AugmentConfig
        from dashboard.augment_preview import render_augment_preview

        render_augment_preview(np.zeros((0, 0), np.uint8), AugmentConfig())

    app = AppTest.from_function(app_script).run()
    assert not app.exception and "Cannot preview" in app.error[0].value


def test_mosaic_tiles_faces_sharply():
    faces = np.stack([np.full((48, 48), value, np.uint8) for value in (10, 20, 30, 40, 50)])
    image = mosaic(faces, tile=96, gap=4)
    assert image.shape == (2 * 96 + 4, 3 * 96 + 2 * 4)  # 3 columns, 2 rows
    assert image[0, 0] == 10 and image[95, 95] == 10 and image[0, 100] == 20 and image[100, 0] == 40
    assert image[96, 0] == 255  # white gap


def test_preset_name_matches_presets_only():
    assert preset_name(AUGMENT_PRESETS["seed_notebook"]) == "seed_notebook"
    assert preset_name(AugmentConfig(zoom=0.33)) == "custom"


def test_random_erasing_slider_reaches_the_config():
    app = run_app(AugmentConfig())
    assert app.slider(key="aug_erasing").value == 0.0
    app.slider(key="aug_erasing").set_value(0.5).run()
    assert not app.exception
    assert app.session_state["returned"].erasing == 0.5
    assert app.selectbox(key="aug_preset").value == "custom"
