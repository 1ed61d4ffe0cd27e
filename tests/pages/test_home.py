"""The Home page: the two ways to start, with and without FER2013."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def test_without_data_home_says_where_to_get_fer2013_and_the_three_ways(monkeypatch, tmp_path):
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception and not app.error
    assert app.title[0].value == "FER Studio"
    text = "\n".join(markdown.value for markdown in app.markdown)
    assert "kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge" in text
    assert "kaggle.com/datasets/msambare/fer2013" in text
    assert "FER2013_DIR=" in text and "type the folder" in text and "upload `fer2013.csv`" in text
    import json

    card = json.loads((Path(APP).parent / "models" / "fer_studio_default.json").read_text())
    accuracy = card["evaluation"]["PublicTest"]["accuracy"]
    assert f"{accuracy:.2%} on FER2013's PublicTest" in text  # read from the bundled model's card



def test_a_second_bundled_model_with_an_ensemble_score_is_named_on_home(monkeypatch, tmp_path, tiny_model_path):
    import json

    folder = tmp_path / "models"
    folder.mkdir()
    for name, card in (("fer_studio_default", {"evaluation": {"PublicTest": {"accuracy": 0.6796, "n": 3589}}}),
                       ("fer_studio_b", {"evaluation": {"PublicTest": {"accuracy": 0.68, "n": 3589}},
                                         "ensemble": {"members": ["fer_studio_b.keras", "fer_studio_default.keras"],
                                                      "evaluation": {"PublicTest": {"accuracy": 0.7012, "n": 3589}}}})):
        (folder / f"{name}.keras").write_bytes(tiny_model_path.read_bytes())
        (folder / f"{name}.json").write_text(json.dumps(card))
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", folder / "fer_studio_default.keras")
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    text = "\n".join(markdown.value for markdown in app.markdown)
    assert "67.96% on FER2013's PublicTest" in text
    assert "70.12% when averaged with the second bundled model (fer_studio_b.keras)" in text


def test_a_refused_typed_path_says_why_on_home_and_in_the_sidebar(monkeypatch, tmp_path):
    # Walk s8 bug 1: the sidebar said "see the message on the page" but Home showed none.
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.sidebar.text_input(key="fer_path_input").input("/nope/fer2013").run()
    assert not app.exception
    assert app.title[0].value == "FER Studio"
    (error,) = app.error
    assert "Paths typed here must lie inside a data folder" in error.value and "data" in error.value
    sidebar = " ".join(caption.value for caption in app.sidebar.caption)
    assert "Paths typed here must lie inside a data folder" in sidebar and "see the message on the page" not in sidebar


def test_home_says_which_data_folders_a_typed_path_may_lie_in(monkeypatch, tmp_path):
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "datasets"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    text = "\n".join(markdown.value for markdown in app.markdown)
    assert f"`{tmp_path / 'datasets'}`" in text and "FER_STUDIO_DATA_ROOTS" in text
