"""Paths typed in the dashboard are confined to the data roots; refusals reveal nothing about the path."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.data import load_fer2013
from core.data_roots import PathNotAllowedError, confine_to_data_roots, data_roots, is_inside_roots


def test_default_roots_are_data_shared_cache_and_fer2013_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("FER_STUDIO_DATA_ROOTS", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FER2013_DIR", str(tmp_path / "elsewhere" / "fer2013"))
    monkeypatch.chdir(tmp_path)
    roots = data_roots()
    repo = Path(__file__).resolve().parents[2]
    assert (tmp_path / "data").resolve() in roots
    assert (repo / "data").resolve() in roots
    assert (repo.parent / "shared").resolve() in roots
    assert (tmp_path / "cache").resolve() in roots
    assert (tmp_path / "elsewhere" / "fer2013").resolve() in roots
    assert Path("/") not in roots and Path("/etc") not in roots


def test_the_environment_variable_replaces_the_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b")]))
    assert data_roots() == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]


def test_every_path_outside_the_roots_gets_the_same_message(tmp_path):
    root = tmp_path / "data"
    (root / "fer2013").mkdir(parents=True)
    secret = tmp_path / "secrets.csv"
    secret.write_text("user,password\nroot,hunter2\n")
    (root / "link-out").symlink_to(tmp_path)
    (root / "secret.csv").symlink_to(secret)
    roots = [root.resolve()]
    assert confine_to_data_roots(str(root / "fer2013"), roots) == (root / "fer2013").resolve()
    assert confine_to_data_roots(str(root / "not-yet-there.csv"), roots) == (root / "not-yet-there.csv").resolve()
    messages = set()
    for typed in ["/", "/etc", "/etc/passwd", "/no/such/path", str(secret), str(root / "link-out"),
                  str(root / "secret.csv"), str(root / ".." / "secrets.csv"), "", "a\x00b", "~"]:
        with pytest.raises(PathNotAllowedError) as caught:
            confine_to_data_roots(typed, roots)
        messages.add(str(caught.value))
    assert len(messages) == 1
    (message,) = messages
    assert "secrets" not in message and "passwd" not in message and "hunter2" not in message
    assert str(root.resolve()) in message  # says where data may live


def test_load_refuses_a_source_outside_the_roots_before_looking_at_it(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(PathNotAllowedError):
        load_fer2013("/", allowed_roots=[root], use_cache=False)  # no walk of the whole disk
    with pytest.raises(PathNotAllowedError):
        load_fer2013(tmp_path / "missing.csv", allowed_roots=[root], use_cache=False)  # no existence leak


def test_links_inside_a_folder_that_lead_outside_are_reported_not_read(tmp_path):
    root = tmp_path / "data"
    happy = root / "faces" / "happy"
    happy.mkdir(parents=True)
    for index in range(2):
        cv2.imwrite(str(happy / f"{index}.png"), np.full((48, 48), 40 * index, np.uint8))
    outside = tmp_path / "private"
    outside.mkdir()
    cv2.imwrite(str(outside / "holiday.png"), np.full((48, 48), 200, np.uint8))
    (happy / "holiday.png").symlink_to(outside / "holiday.png")
    (root / "faces" / "sad").symlink_to(outside, target_is_directory=True)
    dataset = load_fer2013(root / "faces", allowed_roots=[root], use_cache=False)
    assert len(dataset) == 2
    reasons = {record.where: record.reason for record in dataset.report.skipped}
    assert reasons == {"happy/holiday.png": "a link to outside the data folders; not read",
                       "sad": "a link to outside the data folders; not read"}
    assert is_inside_roots(happy / "0.png", [root.resolve()]) and not is_inside_roots(happy / "holiday.png", [root.resolve()])


def test_error_texts_never_quote_file_contents(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    faces = tmp_path / "faces" / "happy"
    faces.mkdir(parents=True)
    cv2.imwrite(str(faces / "ok.png"), np.zeros((48, 48), np.uint8))
    (faces / "face.jpg").symlink_to(passwd)  # not confined here: the CLI reads what its user can read
    dataset = load_fer2013(tmp_path / "faces", use_cache=False)
    (record,) = dataset.report.skipped
    assert "root" not in record.reason and "not an image file" in record.reason
    secrets = tmp_path / "secrets.csv"
    secrets.write_text("username,password,api_key\nadmin,hunter2,abc\n")
    with pytest.raises(ValueError) as caught:
        load_fer2013(secrets, use_cache=False)
    assert not {"username", "password", "api_key", "hunter2"} & set(str(caught.value).replace(",", " ").replace("'", " ").split())


def test_other_sessions_uploads_are_never_reached_by_a_typed_path(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FER_STUDIO_CACHE", str(cache))
    monkeypatch.delenv("FER_STUDIO_DATA_ROOTS", raising=False)
    upload = cache / "uploads" / "0123456789abcdef" / "fer2013.csv"
    upload.parent.mkdir(parents=True)
    pixels = " ".join(["7"] * 48 * 48)
    upload.write_text(f"emotion,pixels,Usage\n3,{pixels},Training\n")
    roots = data_roots()
    assert cache.resolve() in roots
    with pytest.raises(PathNotAllowedError):
        confine_to_data_roots(str(upload), roots)
    with pytest.raises(PathNotAllowedError):
        confine_to_data_roots(str(cache / "uploads"), roots)
    with pytest.raises(ValueError) as caught:  # the cache folder itself: its uploads are not listed
        load_fer2013(cache, allowed_roots=roots, use_cache=False)
    assert "0123456789abcdef" not in str(caught.value) and "uploads" not in str(caught.value).split("found")[-1]


def test_a_relative_typed_path_is_taken_from_the_checkout(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    repo = Path(__file__).resolve().parents[2]
    roots = [(repo / "data").resolve(), (repo.parent / "shared").resolve()]
    assert confine_to_data_roots("data/fer2013.csv", roots) == (repo / "data" / "fer2013.csv").resolve()
    assert confine_to_data_roots("../shared/fer2013", roots) == (repo.parent / "shared" / "fer2013").resolve()
    with pytest.raises(PathNotAllowedError):
        confine_to_data_roots("../../etc", roots)
