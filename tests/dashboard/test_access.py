"""The optional password gate: with FER_STUDIO_PASSWORD set, nothing of the app draws before it is given."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.access import PasswordThrottle, password_matches, password_throttle, reset_password_throttle

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


@pytest.fixture(autouse=True)
def fresh_throttle():
    reset_password_throttle()  # the throttle is one per server process; each test starts a new "server"
    yield
    reset_password_throttle()


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


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_throttle_lets_a_few_guesses_through_then_doubles_the_wait():
    clock = _Clock()
    throttle = PasswordThrottle(free_failures=3, free_failures_all=100, base_delay=2, max_delay=60, clock=clock)
    for _ in range(3):
        assert throttle.wait_seconds("10.0.0.7") == 0
        throttle.record_failure("10.0.0.7")
    assert throttle.wait_seconds("10.0.0.7") == 0  # three wrong guesses are free
    waits = []
    for _ in range(7):
        throttle.record_failure("10.0.0.7")
        waits.append(throttle.wait_seconds("10.0.0.7"))
        clock.now += waits[-1]
    assert waits == [2, 4, 8, 16, 32, 60, 60]
    assert throttle.wait_seconds("10.0.0.8") == 0  # another address is not held up by this one


def test_the_throttle_forgets_after_a_while_and_after_the_right_password():
    clock = _Clock()
    throttle = PasswordThrottle(free_failures=1, free_failures_all=100, base_delay=5, forget_after=600, clock=clock)
    throttle.record_failure("a")
    throttle.record_failure("a")
    assert throttle.wait_seconds("a") == 5
    clock.now += 3
    assert throttle.wait_seconds("a") == 2
    clock.now += 600
    throttle.record_failure("a")  # counted from zero again: the earlier two are forgotten
    assert throttle.wait_seconds("a") == 0
    throttle.record_failure("a")
    assert throttle.wait_seconds("a") == 5
    throttle.record_success("a")
    assert throttle.wait_seconds("a") == 0


def test_many_addresses_do_not_multiply_the_guessing_rate():
    clock = _Clock()
    throttle = PasswordThrottle(free_failures=5, free_failures_all=10, base_delay=2, clock=clock)
    for number in range(11):  # one guess each from eleven addresses
        throttle.record_failure(f"10.0.0.{number}")
    assert throttle.wait_seconds("10.0.0.99") == 2  # a twelfth address waits too


def test_the_throttle_remembers_a_bounded_number_of_addresses():
    clock = _Clock()
    throttle = PasswordThrottle(free_failures=0, free_failures_all=10**9, base_delay=2, clock=clock)
    throttle.MAX_CLIENTS = 100
    for number in range(250):
        clock.now += 0.001
        throttle.record_failure(f"2001:db8::{number:x}")
    assert len(throttle._failures) <= 101
    assert throttle.wait_seconds("2001:db8::f9") > 0  # the latest addresses are still held up
    assert throttle.wait_seconds("2001:db8::0") == 0  # the oldest were let go first


def test_a_new_session_does_not_get_fresh_guesses(monkeypatch):
    # Security probe s9: wrong passwords were not limited at all, and a new tab is a new session.
    monkeypatch.setenv("FER_STUDIO_PASSWORD", "correct horse")
    clock = _Clock()  # the server's throttle on a clock of the test's: a slow machine's reruns do not use up the wait
    monkeypatch.setattr(password_throttle(), "_clock", clock)
    for guess in range(5):
        at = AppTest.from_function(_gated_app, default_timeout=60).run()  # a new tab for every guess
        at.text_input(key="fer_access_password").input(f"guess {guess}")
        at.button[0].click().run()
        assert at.error[0].value == "Wrong password."
    at = AppTest.from_function(_gated_app, default_timeout=60).run()
    at.text_input(key="fer_access_password").input("guess 5")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password. Try again in 2 s."
    at = AppTest.from_function(_gated_app, default_timeout=60).run()
    at.text_input(key="fer_access_password").input("correct horse")
    at.button[0].click().run()  # even the right password waits its turn
    assert at.error[0].value == "Too many wrong passwords. Try again in 2 s."
    assert not [m for m in at.markdown if m.value == "the app"]
    clock.now += password_throttle().wait_seconds("localhost") + 0.05
    at.button[0].click().run()
    assert not at.error and [m.value for m in at.markdown] == ["the app"]
    assert password_throttle().wait_seconds("localhost") == 0  # the right password clears this address


def test_clearing_streamlits_caches_does_not_forget_wrong_guesses():
    # Any browser, signed in or not, can ask the server to clear its caches (it empties st.cache_resource).
    import streamlit as st

    for _ in range(6):
        password_throttle().record_failure("10.0.0.7")
    st.cache_resource.clear()
    st.cache_data.clear()
    assert password_throttle().wait_seconds("10.0.0.7") > 0


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
