"""An in-process cache for slow computations that shows a progress bar on a miss.

``st.cache_data``/``st.cache_resource`` replay every element a cached function
drew, so a progress bar drawn inside one would flash again on each hit. Here
the bar lives outside the cached value: ``st.cache_resource`` holds only the
store, and the bar is drawn only while something is computed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import streamlit as st

T = TypeVar("T")
ProgressCallback = Callable[[float, str], None]


class _Store:
    """Most recently used values of one namespace, shared by all sessions."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[Hashable, object] = OrderedDict()
        self.lock = threading.Lock()


@st.cache_resource(show_spinner=False)
def _stores() -> dict[str, _Store]:
    return {}


def cached_with_progress(
    namespace: str,
    key: Hashable,
    compute: Callable[[ProgressCallback], T],
    *,
    label: str,
    max_entries: int = 2,
) -> T:
    """Return ``compute(progress)`` for ``key``, computing it once per process.

    Args:
        namespace: Separates unrelated caches (``"dataset"``, ``"quality"``).
        key: Identifies the value within the namespace (a path, a content hash...).
        compute: Called on a miss with a ``progress(fraction, message)`` callback.
        label: Shown above the progress bar while computing.
        max_entries: Values kept per namespace, least recently used dropped first.

    Returns:
        The cached or freshly computed value. Exceptions from ``compute``
        propagate and nothing is cached.
    """
    stores = _stores()
    store = stores.setdefault(namespace, _Store(max_entries))
    # One computation at a time per namespace: a second session waits for the
    # first load instead of loading the same data again in parallel.
    with store.lock:
        if key in store.entries:
            store.entries.move_to_end(key)
            return store.entries[key]  # type: ignore[return-value]
        bar = st.progress(0.0, text=label)

        def progress(fraction: float, message: str) -> None:
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"{label}: {message}")

        try:
            value = compute(progress)
        finally:
            bar.empty()
        store.entries[key] = value
        while len(store.entries) > store.max_entries:
            store.entries.popitem(last=False)
        return value
