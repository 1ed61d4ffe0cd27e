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

    # The best bundled model alone and the best ensemble, read from the cards (models/*.json), not hard-coded.
    cards = {path.stem: json.loads(path.read_text()) for path in (Path(APP).parent / "models").glob("*.json")}
    best = max(cards, key=lambda name: cards[name]["evaluation"]["PublicTest"]["accuracy"])
    assert f"**{best}**, the best alone of the {len(cards)} bundled models, scores " \
           f"**{cards[best]['evaluation']['PublicTest']['accuracy']:.2%}** on FER2013's PublicTest" in text
    ensembles = [card["ensemble"] for card in cards.values() if "ensemble" in card]
    top = max(ensembles, key=lambda ensemble: max(entry["accuracy"] for key, entry in ensemble["evaluation"].items()
                                                  if key.startswith("PublicTest")))
    members = " + ".join(Path(name).stem for name in top["members"])
    assert f"averaged, **{members}** score" in text



def test_home_quotes_the_best_bundled_model_and_ensemble_from_their_cards_and_says_where_to_choose_them(
        monkeypatch, tmp_path, tiny_model_path):
    # Walk s8: Home quoted the default model (67.96%) and a pair (69.10%) while fer_studio_swa alone scored 69.24%
    # and a trio 70.55% with ten-crop; and it pointed to "Average with in the sidebar", which Home has not.
    import json

    def scores(single: float, ten_crop: float) -> dict:
        return {"PublicTest": {"accuracy": single, "n": 3589}, "PublicTest + ten-crop TTA": {"accuracy": ten_crop, "n": 3589}}

    folder = tmp_path / "models"
    folder.mkdir()
    cards = {"fer_studio_default": {"evaluation": scores(0.6796, 0.686)},
             "fer_studio_c": {"evaluation": scores(0.6712, 0.698),
                              "ensemble": {"members": ["fer_studio_c.keras", "fer_studio_default.keras"],
                                           "evaluation": scores(0.691, 0.7008)}},
             "fer_studio_swa": {"evaluation": scores(0.6924, 0.7035),
                                "ensemble": {"members": ["fer_studio_swa.keras", "fer_studio_c.keras"],
                                             "evaluation": scores(0.6952, 0.7055)}}}
    for name, card in cards.items():
        (folder / f"{name}.keras").write_bytes(tiny_model_path.read_bytes())
        (folder / f"{name}.json").write_text(json.dumps(card))
    monkeypatch.setattr("core.predict.BUNDLED_MODEL", folder / "fer_studio_default.keras")
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    text = "\n".join(markdown.value for markdown in app.markdown)
    assert ("**fer_studio_swa**, the best alone of the 3 bundled models, scores **69.24%** on FER2013's PublicTest "
            "(3,589 faces), 70.35% with ten-crop; averaged, **fer_studio_swa + fer_studio_c** score **70.55%** with "
            "ten-crop.") in text
    assert "67.96%" not in text and "second bundled model" not in text
    where = " ".join(caption.value for caption in app.caption)
    assert "**Average with (ensemble)** in the sidebar of the **Predict**, **Video** and **Live** pages" in where
    link = next(link for link in app.get("page_link") if link.proto.label == "See the best ensemble on an example photo")
    assert "model=bundled-fer_studio_swa" in link.proto.query_string and "ensemble=bundled-fer_studio_c" in link.proto.query_string
    assert "tta=crop10" in link.proto.query_string
    # Walk s10: the link opened an empty Predict page; it now lands on an example photo, predicted.
    assert "example=" in link.proto.query_string
    # Walk s19: the example buttons used the model last chosen on any page (a 25% run from Evaluation); they use
    # the model named above, alone.
    from dashboard.home_widgets import example_query_params

    # (here the default model, fer_studio_default, is not the best one)
    assert example_query_params("astronaut") == {"example": "astronaut", "ensemble": "", "model": "bundled-fer_studio_swa"}


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
    # Walk s19: "Not using the typed path" read as if another dataset were used instead.
    assert "Not using the typed path, and no dataset is loaded: " in sidebar


def test_home_says_which_data_folders_a_typed_path_may_lie_in(monkeypatch, tmp_path):
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FER_STUDIO_DATA_ROOTS", str(tmp_path / "datasets"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    text = "\n".join(markdown.value for markdown in app.markdown)
    assert f"`{tmp_path / 'datasets'}`" in text and "FER_STUDIO_DATA_ROOTS" in text


def test_the_loaded_data_line_says_when_the_copy_has_no_privatetest():
    # Walk s19: "32,298 faces: Training 28,709 · PublicTest 3,589" a few lines above "FER2013 (35,887 faces ...)".
    import numpy as np

    from core.dataset import FerDataset, LoadReport
    from dashboard.home_widgets import dataset_summary

    def dataset(splits: list[str]) -> FerDataset:
        return FerDataset(images=np.zeros((len(splits), 48, 48), np.uint8), labels=np.zeros(len(splits), np.int64),
                          splits=np.array(splits), ids=np.array([str(i) for i in range(len(splits))]),
                          report=LoadReport(source="x", kind="csv", loaded=len(splits)))

    assert dataset_summary(dataset(["Training", "PublicTest"])) == (
        "2 faces: Training 1 · PublicTest 1 (this copy has no PrivateTest split)")
    assert dataset_summary(dataset(["Training", "PublicTest", "PrivateTest"])) == (
        "3 faces: Training 1 · PublicTest 1 · PrivateTest 1")


def test_home_drops_the_parameters_of_other_pages_from_its_url(monkeypatch, tmp_path):
    # Walk s19: Back from Predict showed Home at /?ensemble=...&tta=crop10&example=astronaut.
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("core.data.default_data_dir", lambda: None)
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update({"ensemble": "bundled-fer_studio_c", "tta": "crop10", "example": "astronaut",
                             "fer_path_input": "/nope"})
    app.run()
    assert not app.exception
    assert set(app.query_params) == {"fer_path_input"}
