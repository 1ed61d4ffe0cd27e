"""The progress cache: computes once per key, shares one computation, never caches failures."""

from __future__ import annotations

import threading
import time

import pytest

from dashboard.cache import cached_with_progress


def test_value_is_computed_once_per_key():
    calls = []

    def compute(progress):
        progress(0.5, "half way")
        calls.append(1)
        return len(calls)

    assert cached_with_progress("test-once", "a", compute, label="x") == 1
    assert cached_with_progress("test-once", "a", compute, label="x") == 1
    assert cached_with_progress("test-once", "b", compute, label="x") == 2


def test_failures_are_raised_and_not_cached():
    attempts = []

    def compute(progress):
        attempts.append(1)
        raise ValueError("broken file")

    for _ in range(2):
        with pytest.raises(ValueError, match="broken file"):
            cached_with_progress("test-fail", "k", compute, label="x")
    assert len(attempts) == 2


def test_concurrent_callers_share_one_slow_computation():
    calls, results = [], []

    def compute(progress):
        calls.append(1)
        time.sleep(0.5)
        return "done"

    threads = [
        threading.Thread(target=lambda: results.append(cached_with_progress("test-share", "k", compute, label="x")))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["done"] * 3 and len(calls) == 1


def test_least_recently_used_value_is_dropped():
    calls = []

    def compute(progress):
        calls.append(1)
        return len(calls)

    for key in ("a", "b", "a", "c", "a", "b"):
        cached_with_progress("test-lru", key, compute, label="x", max_entries=2)
    assert len(calls) == 4  # a, b, c computed; b recomputed after c pushed it out
