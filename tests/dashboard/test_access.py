"""The optional password gate: with FER_STUDIO_PASSWORD set, nothing of the app draws before it is given."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.access import password_matches

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))


def _dataset_picker_drawn(at: AppTest) -> bool:
    return any(widget.key == "fer_path_input" for widget in at.sidebar.text_input)


def test_without_a_password_the_app_opens(no_data, monkeypatch):
    monkeypatch.delenv("FER_STUDIO_PASSWORD", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert _dataset_picker_drawn(at) and "No FER2013 data yet" in at.info[0].value


def test_with_a_password_the_app_draws_nothing_but_the_form(no_data, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_PASSWORD", "correct horse")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert not _dataset_picker_drawn(at) and not at.info and not at.get("file_uploader") and not at.get("plotly_chart")
    assert [widget.key for widget in at.text_input] == ["fer_access_password"]


def test_the_page_menu_is_hidden_until_the_password_is_given(no_data, monkeypatch):
    # Security probe s9, finding 9: the password page listed every page in the sidebar (Home, Dataset, ... Video).
    import streamlit as st

    positions = []
    navigation = st.navigation

    def recording_navigation(pages, *, position="sidebar", expanded=False):
        positions.append(position)
        return navigation(pages, position=position, expanded=expanded)

    monkeypatch.setattr(st, "navigation", recording_navigation)
    monkeypatch.setenv("FER_STUDIO_PASSWORD", "correct horse")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert positions == ["hidden"] and not at.sidebar.children
    # (AppTest does not submit this form through st.navigation; the form itself is tested below with from_function.)
    at.session_state["fer_access_unlocked"] = True  # what the right password sets
    at.run()
    assert not at.exception and positions[-1] == "sidebar" and _dataset_picker_drawn(at)
    monkeypatch.delenv("FER_STUDIO_PASSWORD")
    AppTest.from_file(APP, default_timeout=60).run()
    assert positions[-1] == "sidebar"  # no password: the menu as always


def _gated_app() -> None:
    import streamlit as st

    from dashboard.access import require_password

    require_password()
    st.markdown("the app")


def test_the_right_password_opens_the_session_and_a_wrong_one_does_not(monkeypatch):
    monkeypatch.setenv("FER_STUDIO_PASSWORD", "correct horse")
    at = AppTest.from_function(_gated_app, default_timeout=60).run()
    assert not [m for m in at.markdown if m.value == "the app"]
    at.text_input(key="fer_access_password").input("correct hors")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password." and not [m for m in at.markdown if m.value == "the app"]
    at.text_input(key="fer_access_password").input("correct horse")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown] == ["the app"]
    at.run()  # stays open for the rest of the session
    assert [m.value for m in at.markdown] == ["the app"] and not at.text_input


def test_the_password_can_come_from_streamlit_secrets(no_data, monkeypatch):
    import streamlit as st

    monkeypatch.delenv("FER_STUDIO_PASSWORD", raising=False)
    monkeypatch.setattr(st.secrets.__class__, "get", lambda self, key, default=None: "from-secrets"
                        if key == "FER_STUDIO_PASSWORD" else default)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not _dataset_picker_drawn(at)


def test_comparison_is_exact():
    assert password_matches("é-pass", "é-pass")
    assert not password_matches("é-pass", "é-pasS") and not password_matches("", "x")


def test_the_server_listens_on_localhost_only_by_default():
    import tomllib

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"


@pytest.mark.parametrize("url, blocked", [
    ("http://localhost:8501/live", False), ("http://127.0.0.1:8501/live", False), ("http://[::1]:8501/", False),
    ("http://studio.localhost:8501/", False), ("https://192.168.1.20:8501/live", False), (None, False), ("", False),
    ("http://192.168.1.20:8501/live", True), ("http://studio.lan:8501/predict", True),
])
def test_the_camera_pages_say_when_plain_http_keeps_the_browser_from_the_camera(url, blocked):
    # Walk s9: over a LAN on http the Live component said only "navigator.mediaDevices is undefined".
    from dashboard.access import camera_blocked_reason

    reason = camera_blocked_reason(url)
    assert (reason is not None) is blocked
    if blocked:
        assert "browsers open the camera only on https:// pages" in reason and "--server.sslCertFile" in reason
