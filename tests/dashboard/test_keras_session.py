"""Streamlit no longer clears Keras' session (and collects all garbage) after every script run."""

from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


def page_with_a_model_call() -> None:
    import numpy as np
    import streamlit as st

    from dashboard.router import require_router

    require_router()
    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    st.write(float(np.sum(np.ones(3))))


def test_script_runs_keep_the_keras_session_and_matplotlib_figures_are_still_closed(monkeypatch):
    import keras
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: calls.append(1))
    app = AppTest.from_function(page_with_a_model_call, default_timeout=60)
    app.run()
    plt.figure()
    app.run()
    app.run()
    assert not app.exception and app.session_state["runs"] == 3
    assert calls == []  # Streamlit called it after each of the three runs before
    assert plt.get_fignums() == []  # the other half of Streamlit's cleanup still happens


def test_the_server_config_turns_off_the_garbage_collection_after_each_run():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
