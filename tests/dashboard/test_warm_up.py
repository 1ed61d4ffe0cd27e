"""The server's background warm-up (dashboard/warm_up.py): once, after a delay, off when asked."""

from __future__ import annotations

import sys
import time

import pytest

from dashboard import warm_up


@pytest.fixture
def fresh_warm_up(monkeypatch):
    """A process that has not warmed up yet, with the warm-up turned on and no delay."""
    monkeypatch.setattr(warm_up, "_thread", None)
    monkeypatch.setattr(warm_up, "WARM_UP_DELAY_S", 0.0)
    monkeypatch.setenv(warm_up.WARM_UP_VARIABLE, "1")


def test_the_warm_up_runs_once_and_leaves_the_default_model_in_the_pages_cache(fresh_warm_up, monkeypatch):
    from core.predict import default_model_path
    from dashboard import predict_widgets

    loads = []
    real_load = predict_widgets._load_model_cached

    def counting(path, stamp):
        loads.append(path)
        return real_load(path, stamp)

    monkeypatch.setattr(predict_widgets, "_load_model_cached", counting)
    thread = warm_up.warm_up_in_background()
    assert thread is not None and warm_up.warm_up_in_background() is thread  # one per process
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert "keras" in sys.modules
    assert loads == [str(default_model_path())]
    # The page's own load is now a cache hit: the model file is not read again.
    def no_second_load(path):
        raise AssertionError(f"{path} was loaded again: the warm-up left nothing in the page's cache")

    monkeypatch.setattr("core.model_io.load_model", no_second_load)
    loaded = real_load(str(default_model_path()), predict_widgets.model_stamp(str(default_model_path())))
    assert loaded.class_names


def test_the_warm_up_waits_before_it_starts_and_can_be_turned_off(fresh_warm_up, monkeypatch):
    monkeypatch.setattr(warm_up, "WARM_UP_DELAY_S", 0.5)
    started = []
    monkeypatch.setattr("core.predict.default_model_path", lambda: started.append(time.monotonic()))
    begin = time.monotonic()
    thread = warm_up.warm_up_in_background()
    thread.join(timeout=60)
    assert started and started[0] - begin >= 0.5  # the first page reaches the browser before the import competes
    monkeypatch.setattr(warm_up, "_thread", None)
    monkeypatch.setenv(warm_up.WARM_UP_VARIABLE, "0")
    assert warm_up.warm_up_in_background() is None and warm_up._thread is None


def test_a_failing_warm_up_is_silent(fresh_warm_up, monkeypatch):
    """What failed here fails on the page that needs it, which says so; the warm-up thread must not raise."""
    def broken():
        raise OSError("models folder unreadable")

    monkeypatch.setattr("core.predict.default_model_path", broken)
    errors = []
    monkeypatch.setattr("threading.excepthook", lambda args: errors.append(args))
    warm_up.warm_up_in_background().join(timeout=60)
    assert errors == []


# A page thread drawing plotly charts while the warm-up imports TensorFlow (which imports pandas), in a fresh
# interpreter so that pandas is not imported yet. Plotly reads pandas from sys.modules without waiting for an
# import under way; before the page thread imported it first, 11,924 of 13,536 figures failed here with
# "partially initialized module 'pandas' has no attribute 'Series'", as a Dataset page did in CI.
_PAGE_BESIDE_WARM_UP = """
import json, sys, time
import plotly.graph_objects as go
from dashboard import warm_up
warm_up.WARM_UP_DELAY_S = 0.0
assert "pandas" not in sys.modules
thread = warm_up.warm_up_in_background()
figures, errors = 0, []
while thread.is_alive():
    try:
        go.Figure(go.Bar(x=["angry", "happy"], y=[1, 2]))  # a list: plotly asks whether it is a pandas Series
        figures += 1
    except Exception as error:
        errors.append(repr(error))
    time.sleep(0.002)  # a page is not a busy loop: let the import get on
print(json.dumps({"figures": figures, "errors": errors[:3], "failed": len(errors), "keras": "keras" in sys.modules}))
"""


def test_pages_drawn_while_the_warm_up_imports_see_no_half_imported_module():
    import json
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, warm_up.WARM_UP_VARIABLE: "1", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", _PAGE_BESIDE_WARM_UP], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["keras"] and result["figures"] > 100, result  # the import and the page really overlapped
    assert result["failed"] == 0, result
