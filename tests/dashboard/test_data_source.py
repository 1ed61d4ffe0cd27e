"""Data source helpers: uploads saved once by content, cache keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.dataset import FerDataset, LoadReport
from dashboard.data_source import dataset_key, save_upload, upload_dir
from tests.dashboard.inert_markdown import shown_text


def test_save_upload_writes_once_per_content(tmp_path):
    first = save_upload("fer2013.csv", b"emotion,pixels,Usage\n", tmp_path)
    assert first.read_bytes() == b"emotion,pixels,Usage\n"
    assert first.parent.parent == tmp_path
    mtime = first.stat().st_mtime_ns
    assert save_upload("fer2013.csv", b"emotion,pixels,Usage\n", tmp_path) == first
    assert first.stat().st_mtime_ns == mtime  # not rewritten
    other = save_upload("fer2013.csv", b"different", tmp_path)
    assert other != first and other.name == "fer2013.csv"
    assert save_upload("../../evil.zip", b"x", tmp_path).parent.parent == tmp_path  # no path escape


def test_upload_dir_follows_the_core_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path))
    assert upload_dir() == tmp_path / "uploads"


def test_dataset_key_prefers_the_content_hash():
    def dataset(content_hash: str) -> FerDataset:
        return FerDataset(
            np.zeros((1, 48, 48), np.uint8),
            np.zeros(1, np.int64),
            np.array(["Training"]),
            np.array(["a"]),
            LoadReport("src", "csv", 1, content_hash=content_hash),
        )

    assert dataset_key(dataset("abc")) == "abc"
    assert dataset_key(dataset("")) == "src|csv|1"


def _sidebar_app() -> None:
    import streamlit as st

    from dashboard.data_source import data_source_sidebar, get_dataset

    data_source_sidebar()
    dataset = get_dataset()
    if dataset is not None:
        st.metric("Images", len(dataset))


def _tiny_csv() -> bytes:
    lines = ["emotion,pixels,Usage"]
    for row in range(6):
        pixels = " ".join(str((row * 40 + k) % 256) for k in range(48 * 48))
        lines.append(f"{row % 7},{pixels},{'Training' if row < 4 else 'PublicTest'}")
    return ("\n".join(lines) + "\n").encode()


def test_uploaded_csv_is_saved_under_the_cache_and_loaded(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    at = AppTest.from_function(_sidebar_app, default_timeout=60).run()
    assert "No FER2013 data yet" in at.info[0].value
    at.sidebar.get("file_uploader")[0].upload("fer2013.csv", _tiny_csv(), "text/csv").run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "6"
    saved = list((tmp_path / "uploads").glob("*/fer2013.csv"))
    assert len(saved) == 1 and saved[0].read_bytes() == _tiny_csv()
    assert "upload" in at.sidebar.caption[0].value


# ---------------------------------------------------------------- issue 16: typed paths and uploads


@pytest.fixture
def sidebar(monkeypatch, tmp_path):
    """The sidebar app with the cache (and uploads) under ``tmp_path/cache`` and one data root ``tmp_path/data``."""
    from streamlit.testing.v1 import AppTest

    _private_folders(monkeypatch, tmp_path)
    return AppTest.from_function(_sidebar_app, default_timeout=60).run()


def _private_folders(monkeypatch, tmp_path) -> None:
    """Cache (and uploads) under ``tmp_path/cache``, one data root ``tmp_path/data``, no default dataset."""
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    (tmp_path / "data").mkdir()


def _type_path(at, text: str):
    at.sidebar.text_input(key="fer_path_input").input(text).run()
    return at


def test_typed_paths_outside_the_data_roots_get_one_message_that_reveals_nothing(sidebar, tmp_path):
    # Issue 16 item 1: /etc listed folder names, a secrets.csv showed its header, any path told whether it existed.
    secret = tmp_path / "secrets.csv"
    secret.write_text("username,password\nadmin,hunter2\n")
    (tmp_path / "data" / "link.csv").symlink_to(secret)
    messages = set()
    for typed in ["/", "/etc", "/etc/passwd", "/no/such/folder", str(secret), str(tmp_path / "data" / "link.csv"),
                  str(tmp_path / "data" / ".." / "secrets.csv")]:
        at = _type_path(sidebar, typed)
        assert not at.exception and not at.metric
        (error,) = at.error
        messages.add(error.value)
    assert len(messages) == 1
    (message,) = messages
    assert not {"username", "hunter2", "passwd", "secrets", "exist"} & set(message.replace("`", " ").replace(".", " ").split())


def test_a_typed_path_inside_a_data_root_loads(sidebar, tmp_path):
    (tmp_path / "data" / "fer2013.csv").write_bytes(_tiny_csv())
    at = _type_path(sidebar, str(tmp_path / "data" / "fer2013.csv"))
    assert not at.exception and not at.error
    assert at.metric[0].value == "6"


def test_a_typed_path_that_cannot_be_loaded_is_not_said_to_be_in_use(sidebar, tmp_path, monkeypatch):
    # Walk s21: the sidebar said "Using typed path" beside "Could not load ... set FER2013_DIR" (set already).
    monkeypatch.setenv("FER2013_DIR", str(tmp_path / "data" / "fer2013.csv"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: tmp_path / "data" / "fer2013.csv")
    (tmp_path / "data" / "fer2013.csv").write_bytes(_tiny_csv())
    at = _type_path(sidebar, str(tmp_path / "data" / "nope"))
    assert not at.exception and not at.metric
    (error,) = at.error
    shown = shown_text(error.value)
    assert "nope” could not be loaded" in shown and shown.endswith("does not exist; check the path.")
    assert "FER2013_DIR" not in shown
    caption = " ".join(shown_text(caption.value) for caption in at.sidebar.caption)
    assert "Not using the typed path, and no dataset is loaded" in caption and "Clear the field to use FER2013_DIR" in caption
    assert "Using typed path" not in caption
    (tmp_path / "data" / "nope").mkdir()
    (tmp_path / "data" / "nope" / "fer2013.csv").write_bytes(_tiny_csv())
    at.sidebar.button(key="fer_retry_typed").click().run()  # the data is there now
    assert not at.exception and not at.error and at.metric[0].value == "6"
    at = _type_path(at, "")  # cleared: the default data
    assert not at.exception and not at.error and at.metric[0].value == "6"


def _uploads(tmp_path) -> list[Path]:
    return sorted((tmp_path / "cache" / "uploads").glob("*/*"))


def test_uploads_are_deleted_when_replaced_cleared_or_refused(sidebar, tmp_path):
    # Issue 16 item 3: 175 MB of uploads stayed after a short session, refused files included.
    uploader = lambda at: at.sidebar.get("file_uploader")[0]  # noqa: E731
    at = sidebar
    uploader(at).upload("fer2013.csv", _tiny_csv(), "text/csv").run()
    assert at.metric[0].value == "6"
    (first,) = _uploads(tmp_path)
    assert str(tmp_path) not in " ".join(caption.value for caption in at.sidebar.caption)  # no server path shown
    second_csv = _tiny_csv().replace(b"\n0,", b"\n1,", 1)
    uploader(at).upload("other.csv", second_csv, "text/csv").run()
    assert at.metric[0].value == "6"
    assert _uploads(tmp_path) == [next(iter(_uploads(tmp_path)))] and not first.exists()  # the replaced one is gone
    uploader(at).clear().run()
    assert _uploads(tmp_path) == []
    uploader(at).upload("bad.csv", b"name,value\nx,1\n", "text/csv").run()
    assert not at.exception and "not a FER2013 CSV" in at.error[0].value
    assert str(tmp_path) not in at.error[0].value
    assert _uploads(tmp_path) == []  # refused: deleted at once
    at.run()  # a rerun does not save it again
    assert _uploads(tmp_path) == [] and "not a FER2013 CSV" in at.error[0].value


def test_the_upload_folder_is_capped_least_recently_used_first(tmp_path):
    import os
    import time

    folder = tmp_path / "uploads"
    old = save_upload("a.csv", b"a" * 400, folder, cap_bytes=1000)
    newer = save_upload("b.csv", b"b" * 400, folder, cap_bytes=1000)
    os.utime(old.parent, (time.time() - 100, time.time() - 100))
    third = save_upload("c.csv", b"c" * 400, folder, cap_bytes=1000)  # 1200 > 1000: the oldest goes
    assert not old.exists() and newer.exists() and third.exists()
    with pytest.raises(ValueError, match="more than the upload folder may hold"):
        save_upload("huge.csv", b"h" * 2000, folder, cap_bytes=1000)
    os.utime(newer.parent, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    save_upload("d.csv", b"d", folder, cap_bytes=1000)  # an upload idle for two days is swept
    assert not newer.exists() and third.exists()


def test_an_upload_a_run_trains_on_is_kept_for_resume(tmp_path, monkeypatch):
    import json

    from dashboard.data_source import prune_uploads, release_upload

    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    folder = tmp_path / "uploads"
    trained_on = save_upload("fer2013.csv", b"a" * 400, folder, cap_bytes=1000)
    other = save_upload("other.csv", b"b" * 400, folder, cap_bytes=1000)
    run = tmp_path / "runs" / "20260101-000000-fer_vgg-abcd"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"data": str(trained_on)}, "created": 0}))
    release_upload(trained_on)
    release_upload(other)
    assert trained_on.exists() and not other.exists()
    assert prune_uploads(folder, cap_bytes=0, room=1) == [] and trained_on.exists()


# ---------------------------------------------------------------- security s9, finding 2: names are never markdown

HOSTILE_FOLDER = "[The dataset is outdated - download the fixed one](https:evil.example) ![p](https:evil.example?ds-pixel)"
HOSTILE_ZIP = "x` [Sign in](https:evil.example) ![p](https:evil.example?p) www.evil.example `.zip"  # a browser sends no /


def _dataset_zip(extra_folder: str) -> bytes:
    import io
    import zipfile

    import cv2

    from core.labels import CLASS_NAMES

    buffer = io.BytesIO()
    face = cv2.imencode(".png", np.full((48, 48), 128, np.uint8))[1].tobytes()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split_folder in ("train", "test"):
            for name in CLASS_NAMES:
                archive.writestr(f"{split_folder}/{name}/{split_folder}_{name}.png", face)
        archive.writestr(f"train/{extra_folder}/face.png", face)
    return buffer.getvalue()


def _dataset_app() -> None:
    from dashboard.data_source import data_source_sidebar, get_dataset
    from dashboard.dataset_view import split_metrics

    data_source_sidebar()
    dataset = get_dataset()
    if dataset is not None:
        split_metrics(dataset)


def test_an_uploaded_zip_and_its_folders_are_named_as_plain_text(sidebar, tmp_path):
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.inert_markdown import live_markup, shown_text

    at = AppTest.from_function(_dataset_app, default_timeout=60).run()
    at.sidebar.get("file_uploader")[0].upload(HOSTILE_ZIP, _dataset_zip(HOSTILE_FOLDER), "application/zip").run()
    assert not at.exception and not at.error
    (caption,) = at.sidebar.caption
    assert live_markup(caption.value) == [] and "Sign in" in shown_text(caption.value)
    ignored = [markdown.value for markdown in at.markdown if markdown.value.startswith("Ignored folders")]
    assert len(ignored) == 1 and live_markup(ignored[0]) == []
    assert r"\[The dataset is outdated \- download the fixed one\]\(https\:evil\.example\)" in ignored[0]
    assert f"“train/{HOSTILE_FOLDER[:60]}" in shown_text(ignored[0])  # cut short, with an ellipsis


def test_a_refused_upload_is_named_as_plain_text(sidebar):
    from tests.dashboard.inert_markdown import live_markup

    at = sidebar
    at.sidebar.get("file_uploader")[0].upload(HOSTILE_ZIP, b"PK\x03\x04 not a zip", "application/zip").run()
    assert not at.exception and len(at.error) == 1
    assert "Could not load the upload" in at.error[0].value and live_markup(at.error[0].value) == []
    assert all(live_markup(caption.value) == [] for caption in at.sidebar.caption)
    # Probe s11: the sidebar said "Using upload …" beside the page's "Could not load the upload …".
    assert not any(caption.value.startswith("Using") for caption in at.sidebar.caption)
    assert any(caption.value.startswith("Not using the upload") for caption in at.sidebar.caption)


def test_the_sidebar_shows_the_default_folder_as_the_browser_user_would_type_it(monkeypatch, tmp_path):
    # Probe s11: the placeholder and caption showed the server's absolute path ("/work/shared/fer2013").
    from streamlit.testing.v1 import AppTest

    from core.data_roots import _REPO_ROOT
    from dashboard.data_source import SHOWN_PATH_LIMIT
    from dashboard.text import quoted

    shared = (_REPO_ROOT.parent / "shared" / "fer2013").resolve()
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: shared)
    monkeypatch.setattr("dashboard.data_source.load_cached", lambda source, confined=False: None)
    at = AppTest.from_function(_sidebar_app, default_timeout=60).run()
    assert not at.exception
    assert at.sidebar.text_input(key="fer_path_input").placeholder == "../shared/fer2013"
    caption = at.sidebar.caption[0].value
    assert caption == f"Using default folder: {quoted('../shared/fer2013', SHOWN_PATH_LIMIT)}", caption
    assert str(_REPO_ROOT.parent) not in caption.replace("\\", "")


def _two_page_sidebar_app() -> None:
    import streamlit as st

    from dashboard.data_source import data_source_sidebar, get_dataset
    from dashboard.url_state import start_page

    page = st.session_state.get("page", "dataset")
    start_page(page)  # as the router does before every page
    if page != "dataset":
        st.markdown("predict: no dataset sidebar")  # Predict, Live and Video do not draw it
        return
    data_source_sidebar()
    dataset = get_dataset()
    if dataset is not None:
        st.metric("Images", len(dataset))


def test_an_upload_stays_in_use_after_a_page_without_the_dataset_sidebar(monkeypatch, tmp_path):
    # Review s20: after a visit to Predict the uploader came back empty (Streamlit drops an undrawn widget's file),
    # which read as a removal: the upload was deleted and every page fell back to the default data without a word.
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.inert_markdown import shown_text

    _private_folders(monkeypatch, tmp_path)
    at = AppTest.from_function(_two_page_sidebar_app, default_timeout=60).run()
    at.sidebar.get("file_uploader")[0].upload("fer2013.csv", _tiny_csv(), "text/csv").run()
    assert at.metric[0].value == "6"
    (saved,) = _uploads(tmp_path)
    at.session_state["page"] = "predict"
    at.run()
    at.session_state["page"] = "dataset"
    at.run()
    assert not at.exception
    assert at.metric[0].value == "6" and saved.exists()  # still the upload, still on disk
    captions = [shown_text(caption.value) for caption in at.sidebar.caption]
    assert any(caption.startswith("Using upload “fer2013.csv”, uploaded earlier in this session") for caption in captions)
    at.run()  # and on the next run of the same page
    assert at.metric[0].value == "6" and saved.exists()
    [stop] = [button for button in at.sidebar.button if button.label == "Stop using the upload"]
    stop.click().run()
    assert not saved.exists() and not at.metric  # no default data here: nothing loaded
    assert not [button for button in at.sidebar.button if button.label == "Stop using the upload"]
