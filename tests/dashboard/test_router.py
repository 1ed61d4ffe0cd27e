import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from dashboard.router import require_router


class Rerun(Exception):
    pass


def test_a_page_started_in_v1_pages_mode_reruns_through_the_router(monkeypatch):
    def fake_rerun():
        raise Rerun

    monkeypatch.setattr(st, "rerun", fake_rerun)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    with pytest.raises(Rerun):
        require_router()
    assert PagesManager.uses_pages_directory is False
    require_router()  # already routed: nothing happens


def test_every_page_asks_for_the_router():
    from pathlib import Path

    pages = sorted(Path(__file__).resolve().parents[2].joinpath("pages").glob("*.py"))
    assert pages
    for page in pages:
        assert "require_router()" in page.read_text(), page.name
