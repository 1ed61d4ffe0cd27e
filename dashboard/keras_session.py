"""Keep Keras' state between Streamlit script runs instead of clearing it after every one.

After every script run (each click, and each run of a self-refreshing
fragment: the Live panel every second, the Training panel, the Video
progress), Streamlit calls ``keras.backend.clear_session()`` once Keras is
imported (``script_runner._clean_problem_modules``), and with the default
``runner.postScriptGC`` a full ``gc.collect(2)``. With TensorFlow loaded,
``clear_session`` clears TensorFlow's kernel cache (the next model call
rebuilds its kernels) and runs its own full garbage collection: about half a
second with the GIL held, during which the Live page's WebRTC thread cannot
analyse a frame. Measured on this 2-core machine: a frame loop ran at 44.2
frames/s alone and 28.0 frames/s while that cleanup ran once a second.

FER Studio needs neither: models live in ``st.cache_resource`` for the life
of the server and training runs in worker processes. So
:func:`keep_keras_session` replaces Streamlit's cleanup with its other half
(closing matplotlib figures), and ``.streamlit/config.toml`` sets
``runner.postScriptGC = false``; Python's own garbage collector still runs.
"""

from __future__ import annotations

import sys


def _close_matplotlib_figures() -> None:
    """What Streamlit's cleanup does besides clearing Keras: close pyplot's figures, if pyplot is loaded."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        try:
            pyplot.close("all")
        except Exception:  # noqa: BLE001 - as Streamlit: a failed close must not break the app
            pass


_close_matplotlib_figures.fer_studio = True  # type: ignore[attr-defined]


def keep_keras_session() -> None:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every script run (idempotent)."""
    from streamlit.runtime.scriptrunner import script_runner

    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is not None and not getattr(current, "fer_studio", False):
        script_runner._clean_problem_modules = _close_matplotlib_figures
