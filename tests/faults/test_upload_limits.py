"""Uploads that must be refused with a message, in a real browser: too large, or a zip escaping its folder.

The app runs with ``--server.maxUploadSize 1`` (MB), so a 1.5 MB photo is
over the limit while the 0.4 MB test photo is not.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.browser import harness

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def small_limit_app(tmp_path_factory, request):
    """The app with a 1 MB upload limit and one finished run to predict with."""
    harness.require_chromium()
    from core import model_io, models

    workdir = tmp_path_factory.mktemp("small-upload-limit")
    model_path = model_io.export_model(models.build("mini_xception"), workdir / "tiny.keras", meta={"model": "mini_xception"})
    server = harness.start_streamlit(workdir / "app", extra_args=("--server.maxUploadSize", "1"))
    harness.make_finished_run(server.runs_dir, model_path)
    browser = harness.launch_chromium()
    request.config.add_cleanup(harness.stop_shared_playwright)
    yield server, browser
    browser.close()
    server.stop()


@pytest.fixture
def page(small_limit_app):
    page = harness.new_page(small_limit_app[1])
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("upload-photos")
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    noise = np.random.default_rng(0).integers(0, 256, (720, 720, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "huge.png")  # incompressible: ~1.5 MB
    assert (folder / "huge.png").stat().st_size > 1.2 * 1024**2
    assert (folder / "astronaut.png").stat().st_size < 0.8 * 1024**2
    return folder


def _evil_zip(path: Path, marker: str, good_members: dict[str, bytes]) -> Path:
    """A zip whose first member climbs out of any folder it is extracted to."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"../../{marker}.png", good_members[next(iter(good_members))])
        for name, payload in good_members.items():
            archive.writestr(name, payload)
    path.write_bytes(buffer.getvalue())
    return path


def _files_named(marker: str, roots: list[Path]) -> list[Path]:
    found = []
    for root in roots:
        if root.is_dir():
            found += [path for path in root.rglob(f"*{marker}*")]
    return found


def _face_png() -> bytes:
    import cv2
    from skimage import data

    ok, buffer = cv2.imencode(".png", cv2.resize(data.astronaut()[60:260, 130:330], (48, 48))[:, :, 0])
    assert ok
    return buffer.tobytes()


def test_an_oversized_photo_is_refused_with_a_message_and_the_page_lives_on(small_limit_app, page, photos):
    server, _ = small_limit_app
    harness.goto_page(page, server, "predict", "Predict")
    uploader = harness.file_uploader(page, "Photo")
    uploader.set_input_files(str(photos / "huge.png"))
    box = page.locator("[data-testid='stFileUploader']").filter(has=page.get_by_text("Photo", exact=True))
    box.get_by_text(re.compile(r"File must be 1(\.0)?\s?MB or smaller")).wait_for()
    harness.wait_for_app(page)
    harness.save_screenshot(page, "fault_upload_too_large")
    harness.assert_no_exception(page)
    assert page.locator("[data-testid='stImageCaption']").count() == 0  # nothing was predicted

    uploader.set_input_files(str(photos / "astronaut.png"))
    page.locator("[data-testid='stImageCaption']", has_text="astronaut.png").wait_for()
    harness.wait_for_app(page)
    assert re.search(r"[1-9]\d* faces?\b", page.locator("[data-testid='stImageCaption']").first.inner_text())
    harness.assert_no_exception(page)


def test_a_batch_zip_with_a_parent_path_member_is_refused(small_limit_app, page, tmp_path):
    server, _ = small_limit_app
    marker = f"escaped_{uuid.uuid4().hex[:12]}"
    archive = _evil_zip(tmp_path / "photos.zip", marker, {"faces/ok.png": _face_png()})
    harness.goto_page(page, server, "predict", "Predict")
    page.get_by_role("tab", name="Batch").click()
    harness.file_uploader(page, "Photos, or zips of photos").set_input_files(str(archive))
    summary = page.locator("[data-testid='stMarkdownContainer']", has_text=re.compile(r"1 file, 0 faces"))
    summary.wait_for()
    harness.wait_for_app(page)
    harness.save_screenshot(page, "fault_batch_zip_traversal")
    assert "1 skipped" in summary.inner_text()
    # The reason is in the table's last column; the CSV download carries the same table.
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Download CSV")).click()
    import pandas as pd

    table = pd.read_csv(download.value.path())
    assert list(table["file"]) == ["photos.zip"]
    assert re.search(r"unsafe zip.*\.\./\.\./escaped_", table["note"][0]), table["note"][0]
    harness.assert_no_exception(page)
    assert not _files_named(marker, [tmp_path.parent, server.cache_dir.parent, harness.REPO_ROOT.parent / "shared"])


def test_a_dataset_zip_with_a_parent_path_member_is_refused_and_nothing_escapes(small_limit_app, page, tmp_path):
    server, _ = small_limit_app
    marker = f"escaped_{uuid.uuid4().hex[:12]}"
    face = _face_png()
    archive = _evil_zip(tmp_path / "fer_upload.zip", marker,
                        {"train/happy/Training_1.png": face, "test/happy/PublicTest_1.png": face})
    harness.open_app(page, server)
    with harness.expect_rerun(page):
        harness.file_uploader(page, "…or upload fer2013.csv or a zip").set_input_files(str(archive))
    error = page.locator("[data-testid='stAlertContentError']").filter(has_text="unsafe zip")
    error.wait_for()
    harness.wait_for_app(page)
    harness.save_screenshot(page, "fault_dataset_zip_traversal")
    assert "../../" in error.inner_text() and len(error.inner_text()) < 600
    harness.assert_no_exception(page)

    uploads = server.cache_dir / "uploads"
    saved = [path for path in uploads.rglob("*") if path.is_file()]
    assert saved == [], saved  # never extracted, and deleted once refused (issue 16 item 3)
    assert not _files_named(marker, [tmp_path.parent, server.cache_dir.parent.parent, harness.REPO_ROOT])
