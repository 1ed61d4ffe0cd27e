"""Where the dataset comes from: the sidebar picker and the cached loader pages call.

The source is, by priority: an uploaded CSV or zip, a path typed in the
sidebar, else ``core.data.default_data_dir()`` (``FER2013_DIR`` or
``../shared/fer2013``). The chosen path is kept in ``st.session_state`` so
every page sees the same data.

A typed path is read by the server, so it must lie inside the data roots
of :mod:`core.data_roots`; any other path gets one neutral message that
says nothing about it. Uploads are saved under the cache folder only while
they are used: replacing or removing an upload deletes it, a refused
upload is deleted at once, uploads unused for a day are swept, and the
folder is kept under a size cap (``FER_STUDIO_UPLOAD_CAP_MB``, default
1024), least recently used first. An upload a training run was started on
is kept while that run exists, so that it can be resumed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import streamlit as st

from core.dataset import FerDataset
from dashboard.cache import cached_with_progress
from dashboard.text import literal, quoted
from dashboard.url_state import arrived

SOURCE_KEY = "fer_source"
_SOURCE_ERROR_KEY = "fer_source_error"
_SOURCE_CONFINED_KEY = "fer_source_confined"
_PATH_INPUT_KEY = "fer_path_input"
PATH_PARAM = _PATH_INPUT_KEY  # the typed path's URL parameter (the text box is bound to it)
_UPLOAD_KEY = "fer_upload"
_SESSION_UPLOAD_KEY = "fer_session_upload"
# The session's upload is in use though the uploader is empty: another page ran, and Streamlit dropped the widget's
# file (review s20: after a visit to Predict the upload was deleted and every page fell back to the default data).
_KEPT_UPLOAD_KEY = "fer_kept_upload"
_REFUSED_UPLOADS_KEY = "fer_refused_uploads"
# (typed text, message) of the last typed path that could not be loaded: the sidebar says so until it changes.
_TYPED_FAILURE_KEY = "fer_typed_failure"

UPLOAD_CAP_VARIABLE = "FER_STUDIO_UPLOAD_CAP_MB"
DEFAULT_UPLOAD_CAP_MB = 1024
# An upload nobody has used for this long belongs to a closed session: swept on the next upload.
UPLOAD_MAX_IDLE_S = 24 * 3600
SHOWN_PATH_LIMIT = 120  # characters of a dataset path quoted in the sidebar or an error

def data_folders_text() -> str:
    """The data roots a typed path may point into, as the browser sees them, in Markdown.

    Read from :func:`core.data_roots.data_roots` each time, so that ``FER_STUDIO_DATA_ROOTS``
    and ``FER2013_DIR`` show up: ``"`./data`, `../shared`, `~/.cache/fer-studio`, or one listed in ..."``.
    """
    from core.data_roots import DATA_ROOTS_VARIABLE, data_roots, display_root

    listed = ", ".join(f"`{display_root(root)}`" for root in data_roots())
    return f"{listed or 'none configured'}, or one listed in `{DATA_ROOTS_VARIABLE}`"


def how_to_get_data() -> str:
    """What the pages that need FER2013 say when none is loaded: its two forms and the three ways to load it."""
    return f"""\
**No FER2013 data yet.** FER Studio reads the FER2013 facial-expression dataset in either form:

* the Kaggle challenge file `fer2013.csv` (columns `emotion`, `pixels`, `Usage`), or
* the image-folder release: `train/<class>/*.jpg` and `test/<class>/*.jpg`.

Then do one of:

1. set `FER2013_DIR=/path/to/fer2013` before `streamlit run streamlit_app.py`,
2. type the folder or CSV path in the sidebar (it must lie inside a data folder: {data_folders_text()}), or
3. upload `fer2013.csv` or a zip of the folders in the sidebar.
"""


def upload_dir() -> Path:
    """Folder that keeps uploaded datasets: ``uploads/`` in the core cache folder."""
    from core.cache import default_cache_dir

    return default_cache_dir() / "uploads"


def upload_cap_bytes() -> int:
    """The most bytes the upload folder may hold: ``$FER_STUDIO_UPLOAD_CAP_MB`` MiB (default 1024)."""
    configured = os.environ.get(UPLOAD_CAP_VARIABLE, "").strip()
    try:
        megabytes = float(configured) if configured else DEFAULT_UPLOAD_CAP_MB
    except ValueError:
        megabytes = DEFAULT_UPLOAD_CAP_MB
    return int(max(megabytes, 0) * 1024**2)


def save_upload(name: str, data: bytes, folder: Path | None = None, *, cap_bytes: int | None = None) -> Path:
    """Save uploaded bytes to ``<folder>/<sha256 prefix>/<name>`` once; return the file's path.

    The same content always lands in the same place, so a rerun or a second
    upload of the same file does not write it again (it is marked as used).
    Before writing, uploads idle for :data:`UPLOAD_MAX_IDLE_S` are deleted,
    then the least recently used ones until the new file fits the cap.

    Raises:
        ValueError: If the file alone is larger than the cap.
    """
    folder = folder or upload_dir()
    cap = upload_cap_bytes() if cap_bytes is None else cap_bytes
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = folder / digest / (Path(name).name or "upload")
    if target.exists() and target.stat().st_size == len(data):
        _mark_used(target.parent)
        return target
    if len(data) > cap:
        raise ValueError(
            f"the upload is {len(data) / 1024**2:,.0f} MiB, more than the upload folder may hold "
            f"({cap / 1024**2:,.0f} MiB, {UPLOAD_CAP_VARIABLE})"
        )
    prune_uploads(folder, cap_bytes=cap, room=len(data), keep=target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.replace(target)
    _mark_used(target.parent)
    return target


def prune_uploads(
    folder: Path, *, cap_bytes: int, room: int = 0, keep: Path | None = None, max_idle_s: float = UPLOAD_MAX_IDLE_S
) -> list[Path]:
    """Delete idle uploads, then the least recently used, until ``room`` more bytes fit under the cap.

    Each upload is a folder ``<folder>/<digest>/``; its modification time is
    when it was last used. ``keep`` is never deleted. Returns the deleted folders.
    """
    entries = []
    try:
        children = list(folder.iterdir())
    except OSError:
        return []
    for child in children:
        try:
            if not child.is_dir() or child.is_symlink():
                continue
            size = sum(item.stat().st_size for item in child.iterdir() if item.is_file())
            entries.append((child.stat().st_mtime, size, child))
        except OSError:
            continue
    entries.sort()
    total = sum(size for _, size, _ in entries)
    deleted = []
    now = time.time()
    used_by_runs = uploads_used_by_runs() if entries else set()
    for last_used, size, child in entries:
        if (keep is not None and child == keep) or child.resolve() in used_by_runs:
            continue
        if now - last_used > max_idle_s or total + room > cap_bytes:
            _delete_upload_folder(child)
            total -= size
            deleted.append(child)
    return deleted


def release_upload(path: str | Path) -> None:
    """Delete an upload that is no longer used, and its parsed copy in the core cache.

    Another session holding the same content re-saves it from its own
    upload widget on its next run, so deleting is safe; an upload a
    training run was started on is kept, so that the run can be resumed.
    """
    _delete_upload_folder(Path(path).parent)


def uploads_used_by_runs(runs_dir: Path | None = None) -> set[Path]:
    """The upload folders that some run's ``config.json`` names as its data (kept for ``--resume``)."""
    import json

    from core.runs import default_runs_dir

    used: set[Path] = set()
    try:
        configs = list(Path(runs_dir or default_runs_dir()).glob("*/config.json"))
    except OSError:
        return used
    for config_path in configs:
        try:
            document = json.loads(config_path.read_text(encoding="utf-8"))
            data = (document.get("config") or document).get("data") if isinstance(document, dict) else None
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(data, str) and data:
            used.add(Path(data).expanduser().resolve().parent)
    return used


def _delete_upload_folder(folder: Path) -> None:
    from core.cache import default_cache_dir, remove_cache_entry

    if folder.resolve() in uploads_used_by_runs():
        return  # a run trains on it: deleting it would make the run impossible to resume
    try:
        files = [item for item in folder.iterdir() if item.is_file()]
    except OSError:
        return
    for item in files:
        remove_cache_entry(item.resolve(), default_cache_dir())
    shutil.rmtree(folder, ignore_errors=True)


def _mark_used(folder: Path) -> None:
    try:
        os.utime(folder)
    except OSError:
        pass


def shown_path(source: str) -> str:
    """``source`` as the browser user sees and types it: relative to FER Studio's folder or to ``~`` when it can be."""
    from core.data_roots import display_root

    return display_root(Path(source))


def default_source() -> str | None:
    """Return the configured default dataset path, or None when there is none."""
    from core.data import default_data_dir

    folder = default_data_dir()
    return None if folder is None else str(folder)


def _saved_upload_path(uploaded) -> str | None:
    """Save an ``UploadedFile`` while it is the session's upload; return its path (None: refused).

    The session's previous upload is deleted when another one replaces it.
    """
    refused: dict[str, str] = st.session_state.setdefault(_REFUSED_UPLOADS_KEY, {})
    if uploaded.file_id in refused:
        st.session_state[_SOURCE_ERROR_KEY] = refused[uploaded.file_id]
        return None
    previous = st.session_state.get(_SESSION_UPLOAD_KEY)
    if previous is not None and previous[0] != uploaded.file_id:
        release_upload(previous[1])
        st.session_state.pop(_SESSION_UPLOAD_KEY, None)
    try:
        # Re-saved when the file was swept meanwhile: the widget still holds the bytes.
        path = str(save_upload(uploaded.name, uploaded.getvalue()))
    except (ValueError, OSError) as error:
        message = f"Could not keep the upload {quoted(Path(uploaded.name).name)}: {literal(error, None)}"
        refused[uploaded.file_id] = message
        st.session_state[_SOURCE_ERROR_KEY] = message
        return None
    st.session_state[_SESSION_UPLOAD_KEY] = (uploaded.file_id, path)
    return path


def _drop_kept_upload() -> None:
    st.session_state.pop(_KEPT_UPLOAD_KEY, None)
    _release_session_upload()


def _release_session_upload() -> None:
    """The upload widget was cleared: delete the file it had saved."""
    previous = st.session_state.pop(_SESSION_UPLOAD_KEY, None)
    if previous is not None:
        release_upload(previous[1])


def data_source_sidebar() -> str | None:
    """Draw the dataset picker in the sidebar and store the chosen path in session state.

    Returns:
        The chosen source path, or None when no dataset is configured or
        the typed path is not allowed (the reason is shown by
        :func:`get_dataset`).
    """
    from core.data_roots import PathNotAllowedError, confine_to_data_roots

    with st.sidebar:
        st.subheader("Dataset")
        default = default_source()
        typed = st.text_input(
            "Folder or CSV path",
            key=_PATH_INPUT_KEY,
            bind="query-params",  # in the URL: a reload or a shared link keeps the typed path
            placeholder=shown_path(default) if default else "data/fer2013",
            help="The image-folder release (with train/ and test/), a class-folder set, fer2013.csv or a zip, "
            f"inside a data folder: {data_folders_text()}.",
        ).strip()
        uploaded = st.file_uploader("…or upload fer2013.csv or a zip", type=["csv", "zip"], key=_UPLOAD_KEY)
        st.session_state[_SOURCE_ERROR_KEY] = None
        st.session_state[_SOURCE_CONFINED_KEY] = False
        kept = st.session_state.get(_SESSION_UPLOAD_KEY)
        if uploaded is not None or typed or kept is None:
            st.session_state.pop(_KEPT_UPLOAD_KEY, None)
        elif arrived():
            st.session_state[_KEPT_UPLOAD_KEY] = True  # the empty box says nothing of what the user did
        if uploaded is not None:
            # The upload's name and the typed path (?fer_path_input= in a link) are shown as inert text (dashboard/text.py).
            source, origin = _saved_upload_path(uploaded), f"upload {quoted(Path(uploaded.name).name)}"
        elif st.session_state.get(_KEPT_UPLOAD_KEY):
            source, origin = kept[1], f"upload {quoted(Path(kept[1]).name)}"
        else:
            _release_session_upload()
            if typed:
                origin = "typed path"
                failure = st.session_state.get(_TYPED_FAILURE_KEY)
                try:
                    source = str(confine_to_data_roots(typed))
                    st.session_state[_SOURCE_CONFINED_KEY] = True
                except PathNotAllowedError as error:
                    source = None
                    st.session_state[_SOURCE_ERROR_KEY] = str(error)
                else:
                    if failure is not None and failure[0] == typed:  # it could not be loaded (get_dataset)
                        source = None
                        st.session_state[_SOURCE_ERROR_KEY] = failure[1]
            else:
                source, origin = default, "FER2013_DIR" if os.environ.get("FER2013_DIR") else "default folder"
        st.session_state[SOURCE_KEY] = source
        if st.session_state[_SOURCE_ERROR_KEY]:
            # Said here, where it was typed: not every page draws the dataset's message (Home, Predict do not).
            # No dataset is loaded then (no quiet fall back to FER2013_DIR): said so, as the pages show no data.
            fallback = "FER2013_DIR." if os.environ.get("FER2013_DIR") else "the default folder."
            fix = f" Clear the field to use {fallback}" if origin == "typed path" and default else ""
            st.caption(f"Not using the {origin}, and no dataset is loaded: {st.session_state[_SOURCE_ERROR_KEY]}{fix}")
            failure = st.session_state.get(_TYPED_FAILURE_KEY)
            if origin == "typed path" and failure is not None and failure[0] == typed:
                st.button("Try the typed path again", key="fer_retry_typed", icon=":material/refresh:",
                          on_click=lambda: st.session_state.pop(_TYPED_FAILURE_KEY, None),
                          help="Load it again (after copying the data there, for instance)")
        elif source is None:
            st.caption("No dataset chosen yet.")
        elif uploaded is not None:
            st.caption(f"Using {origin}.")  # the server's upload folder is nobody's business
        elif st.session_state.get(_KEPT_UPLOAD_KEY):
            st.caption(f"Using {origin}, uploaded earlier in this session (the box above empties when another page "
                       "is opened). Upload another file or type a path to replace it.")
            st.button("Stop using the upload", key="fer_drop_upload", on_click=_drop_kept_upload,
                      icon=":material/close:", help="Delete the uploaded file from the server and use the default data")
        else:
            st.caption(f"Using {origin}: {quoted(shown_path(source), SHOWN_PATH_LIMIT)}")
    return source


def source_refusal() -> str | None:
    """Why the typed path or the upload is not used (the message :func:`get_dataset` shows), or None."""
    return st.session_state.get(_SOURCE_ERROR_KEY) or None


def current_source() -> str | None:
    """Return the source chosen in the sidebar, else the default one (None after a refused path or upload)."""
    if st.session_state.get(_SOURCE_ERROR_KEY):
        return None
    return st.session_state.get(SOURCE_KEY) or default_source()


def load_cached(source: str, *, confined: bool = False) -> FerDataset:
    """Load ``source`` once per process (``core.data`` keeps its own disk cache too).

    Args:
        source: The dataset path.
        confined: The path was typed in the browser: it and every file read
            for it must lie inside the data roots.

    Raises:
        ValueError, FileNotFoundError: From ``core.data.load_fer2013``.
    """
    from core.data import load_fer2013
    from core.data_roots import confine_to_data_roots, data_roots

    roots = data_roots() if confined else None
    path = confine_to_data_roots(source, roots) if confined else Path(source).expanduser()
    if not path.exists():
        advice = "check the path" if confined else "check the path or set FER2013_DIR to the dataset folder"
        raise FileNotFoundError(f"{source} does not exist; {advice}")
    # The modification time is part of the key so that replacing the data on disk reloads it.
    key = (str(path.resolve()), path.stat().st_mtime_ns, confined)
    return cached_with_progress(
        "dataset",
        key,
        lambda progress: load_fer2013(path, progress=progress, allowed_roots=roots),
        label=f"Loading {quoted(path.name)}",
    )


def get_dataset() -> FerDataset | None:
    """Return the chosen dataset, or draw why there is none and return None.

    Call once per page: with no dataset configured it shows how to get
    FER2013; a refused path or upload, or a load failure, shows the message
    as an error. An upload that cannot be loaded is deleted at once.
    """
    refusal = st.session_state.get(_SOURCE_ERROR_KEY)
    if refusal:
        st.error(refusal)
        return None
    source = current_source()
    if source is None:
        st.info(how_to_get_data())
        return None
    upload = st.session_state.get(_SESSION_UPLOAD_KEY)
    try:
        return load_cached(source, confined=bool(st.session_state.get(_SOURCE_CONFINED_KEY)))
    except (ValueError, FileNotFoundError) as error:
        if upload is not None and upload[1] == source:
            # A refused upload is not kept: say why once, and do not save it again on the next run.
            name = Path(source).name
            message = f"Could not load the upload {quoted(name)}: {literal(str(error).replace(source, name), None)}"
            st.session_state.setdefault(_REFUSED_UPLOADS_KEY, {})[upload[0]] = message
            st.session_state[_SOURCE_ERROR_KEY] = message
            _release_session_upload()
            # Run again: the sidebar, drawn before this load, still says "Using upload …" (probe s11); on the next
            # run it says "Not using the upload …" and this page shows the message from the refusal above.
            st.rerun()
        elif st.session_state.get(_SOURCE_CONFINED_KEY):
            # A typed path: said in the sidebar, where it was typed, as a refused one is (walk s21: the sidebar kept
            # saying "Using typed path" beside this error, whose advice was to set FER2013_DIR, set already).
            shown = shown_path(source)
            reason = str(error).replace(source, shown).rstrip(". ")
            message = f"{quoted(shown, SHOWN_PATH_LIMIT)} could not be loaded: {literal(reason, None)}."
            st.session_state[_TYPED_FAILURE_KEY] = (str(st.session_state.get(_PATH_INPUT_KEY) or "").strip(), message)
            st.rerun()
        else:
            shown = shown_path(source)
            st.error(f"Could not load the dataset from {quoted(shown, SHOWN_PATH_LIMIT)}: "
                     f"{literal(str(error).replace(source, shown), None)}")
        return None


def dataset_key(dataset: FerDataset) -> str:
    """A string that identifies the dataset's content, for cache keys."""
    report = dataset.report
    return report.content_hash or f"{report.source}|{report.kind}|{len(dataset)}"
