"""Where the dataset comes from: the sidebar picker and the cached loader pages call.

The source is, by priority: an uploaded CSV or zip, a path typed in the
sidebar, else ``core.data.default_data_dir()`` (``FER2013_DIR`` or
``../shared/fer2013``). The chosen path is kept in ``st.session_state`` so
every page sees the same data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import streamlit as st

from core.dataset import FerDataset
from dashboard.cache import cached_with_progress

SOURCE_KEY = "fer_source"
_PATH_INPUT_KEY = "fer_path_input"
_UPLOAD_KEY = "fer_upload"
_SAVED_UPLOADS_KEY = "fer_saved_uploads"

HOW_TO_GET_DATA = """\
**No FER2013 data yet.** FER Studio reads the FER2013 facial-expression dataset in either form:

* the Kaggle challenge file `fer2013.csv` (columns `emotion`, `pixels`, `Usage`), or
* the image-folder release: `train/<class>/*.jpg` and `test/<class>/*.jpg`.

Then do one of:

1. set `FER2013_DIR=/path/to/fer2013` before `streamlit run streamlit_app.py`,
2. type the folder or CSV path in the sidebar, or
3. upload `fer2013.csv` or a zip of the folders in the sidebar.
"""


def upload_dir() -> Path:
    """Folder that keeps uploaded datasets: ``uploads/`` in the core cache folder."""
    from core.cache import default_cache_dir

    return default_cache_dir() / "uploads"


def save_upload(name: str, data: bytes, folder: Path | None = None) -> Path:
    """Save uploaded bytes to ``<folder>/<sha256 prefix>/<name>`` once; return the file's path.

    The same content always lands in the same place, so a rerun or a second
    upload of the same file does not write it again.
    """
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = (folder or upload_dir()) / digest / Path(name).name
    if not (target.exists() and target.stat().st_size == len(data)):
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        partial.replace(target)
    return target


def default_source() -> str | None:
    """Return the configured default dataset path, or None when there is none."""
    from core.data import default_data_dir

    folder = default_data_dir()
    return None if folder is None else str(folder)


def _saved_upload_path(uploaded) -> str:
    """Save an ``UploadedFile`` once per upload (keyed by its file id) and return the path."""
    saved: dict[str, str] = st.session_state.setdefault(_SAVED_UPLOADS_KEY, {})
    if uploaded.file_id not in saved:
        saved[uploaded.file_id] = str(save_upload(uploaded.name, uploaded.getvalue()))
    return saved[uploaded.file_id]


def data_source_sidebar() -> str | None:
    """Draw the dataset picker in the sidebar and store the chosen path in session state.

    Returns:
        The chosen source path, or None when no dataset is configured.
    """
    with st.sidebar:
        st.subheader("Dataset")
        default = default_source()
        typed = st.text_input(
            "Folder or CSV path",
            key=_PATH_INPUT_KEY,
            placeholder=default or "/path/to/fer2013",
            help="The image-folder release (with train/ and test/), a class-folder set, fer2013.csv or a zip.",
        ).strip()
        uploaded = st.file_uploader("…or upload fer2013.csv or a zip", type=["csv", "zip"], key=_UPLOAD_KEY)
        if uploaded is not None:
            source, origin = _saved_upload_path(uploaded), f"upload `{uploaded.name}`"
        elif typed:
            source, origin = typed, "typed path"
        else:
            source, origin = default, "FER2013_DIR" if os.environ.get("FER2013_DIR") else "default folder"
        st.session_state[SOURCE_KEY] = source
        if source is None:
            st.caption("No dataset chosen yet.")
        else:
            st.caption(f"Using {origin}: `{source}`")
    return source


def current_source() -> str | None:
    """Return the source chosen in the sidebar, else the default one."""
    return st.session_state.get(SOURCE_KEY) or default_source()


def load_cached(source: str) -> FerDataset:
    """Load ``source`` once per process (``core.data`` keeps its own disk cache too).

    Raises:
        ValueError, FileNotFoundError: From ``core.data.load_fer2013``.
    """
    from core.data import load_fer2013

    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{source} does not exist; check the path or set FER2013_DIR to the dataset folder")
    # The modification time is part of the key so that replacing the data on disk reloads it.
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    return cached_with_progress(
        "dataset",
        key,
        lambda progress: load_fer2013(path, progress=progress),
        label=f"Loading {path.name}",
    )


def get_dataset() -> FerDataset | None:
    """Return the chosen dataset, or draw why there is none and return None.

    Call once per page: with no dataset configured it shows how to get
    FER2013; a load failure shows the loader's message as an error.
    """
    source = current_source()
    if source is None:
        st.info(HOW_TO_GET_DATA)
        return None
    try:
        return load_cached(source)
    except (ValueError, FileNotFoundError) as error:
        st.error(f"Could not load the dataset from `{source}`: {error}")
        return None


def dataset_key(dataset: FerDataset) -> str:
    """A string that identifies the dataset's content, for cache keys."""
    report = dataset.report
    return report.content_hash or f"{report.source}|{report.kind}|{len(dataset)}"
