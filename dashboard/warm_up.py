"""Load TensorFlow, the default model and the default face detector in the background, once per server.

The pages that predict (Predict, Live, Evaluation, Compare, Training's
model tools) import TensorFlow the first time one of them runs: a first
visit to Predict took 15.7 s on the 2-core machine, most of it importing
TensorFlow (about 8 s), then loading the model and building MTCNN. The
Home page needs none of it. So once a page has been drawn, the server does
this work in a thread (:func:`warm_up_in_background`), while the user reads
that page; a page that needs TensorFlow sooner waits for the same import
(Python lets one thread import a module and the others wait for it), so
nothing is done twice.

It starts only after a script run got past the password form, so a visitor
who has not signed in costs nothing. ``FER_STUDIO_WARM_UP=0`` turns it off.

Importing in a thread beside the pages is safe for an ``import`` statement,
which waits for a module another thread is still importing, but not for a
library that looks a module up in ``sys.modules`` to learn whether it is in
use: plotly, scikit-learn and scikit-plot do so for pandas and pyarrow, and
TensorFlow's import brings in pandas. A Dataset page drawn while the warm-up
was inside that import met a half-made pandas ("partially initialized module
'pandas' has no attribute 'Series'", seen in CI). So the thread of the page
that starts the warm-up imports those modules first (:data:`SHARED_MODULES`,
about 0.5 s, after its page was sent).
"""

from __future__ import annotations

import threading

WARM_UP_VARIABLE = "FER_STUDIO_WARM_UP"
# Seconds between the first drawn page and the warm-up: the import holds Python's GIL most of the time, and
# started at once it delayed the first page reaching the browser by 4-5 s (the server thread that sends it
# waits for the GIL too).
WARM_UP_DELAY_S: float = 3.0

# Modules that libraries the pages use read from sys.modules without importing them (and so without waiting for an
# import under way): plotly's validators (pandas, PIL.Image), scikit-learn's and scikit-plot's dataframe checks
# (pandas, pyarrow). They are imported in the page's thread before the warm-up thread starts.
SHARED_MODULES = ("pandas", "pyarrow", "PIL.Image")

_lock = threading.Lock()
_thread: threading.Thread | None = None


def warm_up_enabled() -> bool:
    """``FER_STUDIO_WARM_UP`` unset, or anything but 0/false/no/off."""
    from core.runs import switched_on

    return switched_on(WARM_UP_VARIABLE)


def warm_up_in_background() -> threading.Thread | None:
    """Start the warm-up thread once per process (later calls return the same thread); ``None`` when turned off."""
    global _thread
    if not warm_up_enabled():
        return None
    with _lock:
        if _thread is None:
            _import_shared_modules()
            _thread = threading.Thread(target=_warm_up, name="fer-studio-warm-up", daemon=True)
            _thread.start()
    return _thread


def _import_shared_modules() -> None:
    """Import :data:`SHARED_MODULES` in this thread (one that is not installed is left out)."""
    import importlib

    for name in SHARED_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _warm_up() -> None:
    """Import Keras (TensorFlow), load the default bundled model into the pages' cache, build the default detector."""
    import time

    time.sleep(WARM_UP_DELAY_S)
    try:
        import importlib

        import numpy as np

        importlib.import_module("keras")  # most of the time: TensorFlow

        from core.detect import DEFAULT_DETECTOR, detect_faces
        from core.predict import default_model_path
        from dashboard.predict_widgets import preload_model

        path = default_model_path()
        if path is not None:
            preload_model(str(path))
        detect_faces(np.zeros((64, 64, 3), np.uint8), DEFAULT_DETECTOR)
    except Exception:  # noqa: BLE001 - a page that needs what failed here meets the error itself and reports it
        pass
