"""An in-process cache for slow computations that shows a progress bar on a miss.

``st.cache_data``/``st.cache_resource`` replay every element a cached function
drew, so a progress bar drawn inside one would flash again on each hit. Here
the bar lives outside the cached value: ``st.cache_resource`` holds only the
store, and the bar is drawn only while something is computed.

The computation runs in a worker thread, not in the script run: when the user
clicks something (or reloads the page) while the dataset is loading, the
script run is interrupted but the load goes on, and the next run waits for
the same load instead of starting over.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

import streamlit as st

from dashboard.text import literal

T = TypeVar("T")
ProgressCallback = Callable[[float, str], None]


class _Pending:
    """One computation in a worker thread: its latest progress and its outcome."""

    def __init__(self) -> None:
        self.fraction = 0.0
        self.message = "starting"
        self.value: object = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def report(self, fraction: float, message: str) -> None:
        self.fraction = min(max(float(fraction), 0.0), 1.0)
        self.message = message


class _Store:
    """Most recently used values of one namespace, shared by all sessions."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[Hashable, object] = OrderedDict()
        self.pending: dict[Hashable, _Pending] = {}
        self.lock = threading.Lock()


@st.cache_resource(show_spinner=False)
def _stores() -> dict[str, _Store]:
    return {}


def _store(namespace: str, max_entries: int) -> _Store:
    stores = _stores()
    return stores.setdefault(namespace, _Store(max_entries))


def _run(store: _Store, key: Hashable, pending: _Pending, compute: Callable[[ProgressCallback], object]) -> None:
    try:
        pending.value = compute(pending.report)
    except Exception as error:  # handed to the waiting script run, which re-raises it
        pending.error = error
    with store.lock:
        store.pending.pop(key, None)
        if pending.error is None:
            store.entries[key] = pending.value
            while len(store.entries) > store.max_entries:
                store.entries.popitem(last=False)
    pending.done.set()


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
        compute: Called on a miss, in a worker thread, with a
            ``progress(fraction, message)`` callback; it must not draw anything.
        label: Shown above the progress bar while computing (markdown: escape names in it).
        max_entries: Values kept per namespace, least recently used dropped first.

    Returns:
        The cached or freshly computed value. An exception raised by
        ``compute`` is re-raised here and nothing is cached.
    """
    store = _store(namespace, max_entries)
    with store.lock:
        if key in store.entries:
            store.entries.move_to_end(key)
            return store.entries[key]  # type: ignore[return-value]
        pending = store.pending.get(key)
        if pending is None:
            # One computation per key: a second session, or the next run after
            # an interrupted one, waits for this one instead of starting again.
            pending = store.pending[key] = _Pending()
            threading.Thread(
                target=_run, args=(store, key, pending, compute), name=f"cache-{namespace}", daemon=True
            ).start()
    if not pending.done.wait(0.2):  # no bar flashing by for quick computations
        bar = st.progress(pending.fraction, text=label)
        while not pending.done.wait(0.25):
            # The message may quote a file of the dataset (an upload's zip members included): inert text.
            bar.progress(pending.fraction, text=f"{label}: {literal(pending.message, 120)}")
        bar.empty()
    if pending.error is not None:
        raise pending.error
    return pending.value  # type: ignore[return-value]
