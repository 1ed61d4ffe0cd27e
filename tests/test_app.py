"""The app shell: the router renders with and without data, and `streamlit run` serves a health check."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "streamlit_app.py")
TIMEOUT_S = 60


@pytest.fixture
def no_dataset(monkeypatch, tmp_path):
    """No FER2013_DIR and no ../shared/fer2013: the app has nothing to load."""
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)


@pytest.fixture
def tiny_dataset_env(monkeypatch, tmp_path, tiny_fer_folder):
    monkeypatch.setenv("FER2013_DIR", str(tiny_fer_folder))
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path))  # typed paths must lie inside a data root
    return tiny_fer_folder


def test_app_without_data_explains_how_to_get_fer2013(no_dataset):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert any("No FER2013 data yet" in info.value for info in at.info)
    assert at.sidebar.text_input[0].label == "Folder or CSV path"


def test_app_opens_on_home_with_the_two_ways_to_start(tiny_dataset_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "FER Studio"
    assert [button.label for button in at.button] == ["One face", "Three faces", "Grayscale"]  # the example photos
    assert "FER2013 is loaded from `fer2013`: 35 faces: Training 21 · PublicTest 14" in at.success[0].value


def test_app_with_tiny_dataset_shows_the_dataset_page(tiny_dataset_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.switch_page("pages/dataset.py").run()
    assert not at.exception
    assert at.title[0].value == "Dataset"
    assert [metric.value for metric in at.metric][:3] == ["35", "21", "14"]
    assert not at.error


def test_typing_a_missing_path_in_the_sidebar_shows_an_error(tiny_dataset_env, tmp_path):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.switch_page("pages/dataset.py").run()
    at.sidebar.text_input(key="fer_path_input").input(str(tmp_path / "nowhere")).run()
    assert not at.exception
    assert "does not exist" in at.error[0].value
    assert "typed path" in at.sidebar.caption[0].value
    assert at.title[0].value == "Dataset"  # the rerun went through the router


def test_typed_path_wins_over_the_default(tiny_dataset_env, tmp_path, monkeypatch):
    monkeypatch.setenv("FER2013_DIR", str(tmp_path / "not-there"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["fer_path_input"] = str(tiny_dataset_env)
    at.run()
    at.switch_page("pages/dataset.py").run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "35"


def test_router_switches_to_the_quality_page_and_keeps_the_sidebar(tiny_dataset_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    at.switch_page("pages/quality.py").run()
    assert not at.exception
    assert at.title[0].value == "Data quality"
    assert at.sidebar.text_input(key="fer_path_input").label == "Folder or CSV path"
    assert metric_value(at, "Blank images") == "0"


def metric_value(at: AppTest, label: str) -> str:
    return next(metric.value for metric in at.metric if metric.label == label)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_streamlit_run_answers_the_health_check(tmp_path):
    port = _free_port()
    env = {**os.environ, "FER_STUDIO_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "streamlit", "run", APP, "--server.headless", "true", "--server.port", str(port)]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200, f"no health check answer; exit code {process.poll()}"
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
