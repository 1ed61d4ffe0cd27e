"""The model menu of the Evaluation and Predict pages: the bundled model and finished runs, by a stable id.

The id (``bundled``, or the run id) is what goes into the URL (``?model=``);
the label says what the model is, with its best validation accuracy in the
app's one accuracy format.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.text import escape_markdown
from dashboard.url_state import LIST_SEPARATOR, remember_choice, url_choice, url_choices

BUNDLED_ID = "bundled"
# The model (and the models averaged with it) last chosen on any page: a page whose menu has not been drawn in
# this session yet starts from it, so Predict, Evaluation, Video and Live share one choice (walk s10: a model
# chosen on Predict was back to the default on Live, Video and Evaluation). Not widget keys: Streamlit drops
# those of a page that is not drawn.
SHARED_MODEL_KEY = "fer_shared_model"
SHARED_ENSEMBLE_KEY = "fer_shared_ensemble"
# The id of an ensemble member that became the model chosen above, and so left the ensemble (named under its menu).
LEFT_ENSEMBLE_KEY = "fer_left_ensemble"
MODEL_HELP = ("The models bundled with FER Studio, with their single-pass accuracy on FER2013's PublicTest (\"test\": "
              "held out from their training; the caption under the menu gives every mode), then your finished runs: each run's best "
              "epoch and, when it trained with weight averaging, its averaged model, with their validation accuracy.")


def model_menu() -> dict[str, tuple[str, str]]:
    """``{id: (label, model path)}``: the bundled models first (``bundled``, ``bundled-<name>``), then finished or
    stopped runs with a ``best.keras`` (id: the run id), each followed by its weight-averaged model
    (``<run id>-averaged``) when it has one."""
    from core.averaging import AVERAGED_MODEL, averaged_record
    from core.predict import available_models, default_model_path
    from core.runs import list_runs

    bundled = default_model_path()
    accuracies = {summary.run_id: summary.best_val_accuracy for summary in list_runs()}
    menu = {}
    for label, path in available_models():
        path = Path(path)
        if bundled is not None and path == bundled:
            menu[BUNDLED_ID] = (bundled_label(path), str(path))
            continue
        if bundled is not None and path.parent == bundled.parent:  # another bundled model (an ensemble member)
            menu[f"{BUNDLED_ID}-{path.stem}"] = (bundled_label(path), str(path))
            continue
        # The run id already names the model (<date>-<time>-<model>-<suffix>), so the label does not repeat it.
        run_id = path.parent.name
        if path.name == AVERAGED_MODEL:
            record = averaged_record(path.parent)  # available_models listed it, so it is readable
            first, last = record["epochs"]
            menu[f"{run_id}-averaged"] = (f"Run {run_id} · averaged epochs {first}-{last} · "
                                          f"val {record['val_accuracy']:.2%}", str(path))
            continue
        accuracy = accuracies.get(run_id)
        menu[run_id] = (f"Run {run_id}" + (f" · val {accuracy:.2%}" if accuracy is not None else ""), str(path))
    return menu


def model_name(path: str | Path) -> str:
    """A model's short name for captions: ``fer_studio_swa`` (bundled), ``<run id>`` (a run's best epoch) or
    ``<run id> averaged`` (its weight-averaged model); any other file, its stem."""
    from core.averaging import AVERAGED_MODEL

    path = Path(path)
    if path.name == "best.keras":
        return path.parent.name
    if path.name == AVERAGED_MODEL:
        return f"{path.parent.name} averaged"
    return path.stem


def bundled_label(path: Path) -> str:
    """``fer_studio_swa · test 69.24% · bundled``: its name, its card's held-out single-pass score, where it is from.

    Short, because the closed menu in the sidebar shows about 30 characters
    and its open list no more than the sidebar's width (walk s10: with the
    ten-crop score too, both cut it); the caption under the menu writes out
    every score. "test" is PublicTest, held out from training (the menu's
    help says so), unlike a run's "val". Without a card, just the name.
    """
    from core.bundle import card_scores
    from dashboard.training_widgets import format_accuracy

    scores = card_scores(path)
    label = path.stem
    if "none" in scores:
        label += f" · test {format_accuracy(scores['none'])}"
    return label + " · bundled"


def canonical_bundled_ids(param: str) -> None:
    """Rewrite ``bundled-<default model's stem>`` in ``?param=`` as ``bundled``, the id the default model has.

    A link made while another bundled model was the default names the
    present default by its stem (``?model=bundled-fer_studio_swa``); it still
    chooses that model.
    """
    from core.predict import default_model_path

    raw, default = st.query_params.get(param), default_model_path()
    if raw is None or default is None:
        return
    tokens = [BUNDLED_ID if token == f"{BUNDLED_ID}-{default.stem}" else token for token in raw.split(LIST_SEPARATOR)]
    if LIST_SEPARATOR.join(tokens) != raw:
        st.query_params[param] = LIST_SEPARATOR.join(tokens)


def model_select_ui(key: str, *, param: str = "model", help: str | None = MODEL_HELP) -> str | None:
    """Pick a model (its id in ``?param=``); return its path, or ``None`` with an explanation when there is none."""
    from core.predict import bundled_model_name

    canonical_bundled_ids(param)
    menu = model_menu()
    if not menu:
        st.info("No model yet: train one on the **Training** page (or `python -m core train`) and wait for it to "
                f"finish, or put the bundled model at `{bundled_model_name()}`.")
        return None
    if key not in st.session_state and st.session_state.get(SHARED_MODEL_KEY) in menu:
        st.session_state[key] = st.session_state[SHARED_MODEL_KEY]  # a link's ?model= still wins, below
    url_choice(key, list(menu), next(iter(menu)), param=param, noun="model",
               describe=lambda model_id: escape_markdown(menu[model_id][0]))
    chosen = st.selectbox("Model", list(menu), key=key, format_func=lambda model_id: menu[model_id][0], help=help)
    remember_choice(chosen, param=param, default=next(iter(menu)))
    st.session_state[SHARED_MODEL_KEY] = chosen
    # A narrow sidebar cuts the label short: the chosen model, and a bundled one's held-out scores, are written out.
    st.caption(selected_model_caption(chosen, menu))
    # Walk s19: a 2-epoch run inspected on Evaluation became the choice here too, and only Evaluation warned.
    warning = guessing_level_model_warning(chosen, menu)
    if warning:
        st.warning(warning, icon=":material/warning:")
    return menu[chosen][1]


def guessing_level_model_warning(model_id: str, menu: dict[str, tuple[str, str]]) -> str | None:
    """A run's model whose validation accuracy is at guessing level gets a warning; bundled models never do."""
    from core.diagnose import guessing_level_warning
    from core.runs import read_config, summarize_run

    if model_id.split("-")[0] == BUNDLED_ID:
        return None
    run_dir = Path(menu[model_id][1]).parent
    accuracy = summarize_run(run_dir).best_val_accuracy
    if model_id.endswith("-averaged"):
        from core.averaging import averaged_record

        accuracy = (averaged_record(run_dir) or {}).get("val_accuracy", accuracy)
    warning = guessing_level_warning(accuracy, (read_config(run_dir).get("resolved") or {}).get("val_class_counts"))
    return f"This model is not yet usable. {warning}" if warning else None


def selected_model_caption(model_id: str, menu: dict[str, tuple[str, str]]) -> str:
    """``**fer_studio_swa.keras** (bundled) · PublicTest (held out): 69.04% single pass · …``, or a run's whole label."""
    label, path = menu[model_id]
    if model_id.split("-")[0] != BUNDLED_ID:
        return escape_markdown(label)
    scores = bundled_scores_caption(Path(path))
    return f"**{escape_markdown(Path(path).name)}** (bundled)" + (f" · {scores}" if scores else "")


def bundled_scores_caption(path: Path) -> str | None:
    """``PublicTest (held out): 69.04% single pass · 69.96% flip · 70.35% ten-crop``, from the model's card."""
    from core.bundle import card_scores
    from core.tta import TTA_SHORT
    from dashboard.training_widgets import format_accuracy

    scores = card_scores(path)
    if not scores:
        return None
    names = {"none": "single pass", **{mode: short for mode, short in TTA_SHORT.items() if mode != "none"}}
    return "PublicTest (held out): " + " · ".join(f"{format_accuracy(value)} {names[mode]}" for mode, value in scores.items())


def ensemble_select_ui(key: str, model_path: str, *, param: str = "ensemble") -> tuple[str, ...]:
    """Other models to average with ``model_path`` (an ensemble); their paths, in menu order (empty: none).

    Their ids are in the URL (``?ensemble=bundled-fer_studio_c,bundled-fer_studio_distilled``); an id that is not
    in the menu (a deleted run, or the model chosen above) is left out with a warning naming it.
    """
    canonical_bundled_ids(param)
    full_menu = model_menu()
    menu = {model_id: entry for model_id, entry in full_menu.items() if entry[1] != str(model_path)}
    chosen_id = next((model_id for model_id in full_menu if model_id not in menu), None)
    # Walk s19: fer_studio_c, a member of Predict's ensemble, chosen as the model on another page (or above) left
    # the ensemble without a word; the menu says so until another model is chosen above.
    before = st.session_state.get(key, st.session_state.get(SHARED_ENSEMBLE_KEY, []))
    if chosen_id is not None and chosen_id in before:
        st.session_state[LEFT_ENSEMBLE_KEY] = chosen_id
    if key not in st.session_state and SHARED_ENSEMBLE_KEY in st.session_state:
        st.session_state[key] = [model_id for model_id in st.session_state[SHARED_ENSEMBLE_KEY] if model_id in menu]
    url_choices(key, list(menu), (), param=param, noun="model to average with")
    if st.session_state.get(LEFT_ENSEMBLE_KEY) not in (None, chosen_id):
        del st.session_state[LEFT_ENSEMBLE_KEY]
    if not menu:
        remember_choice([], param=param, default=[])
        return ()
    chosen = st.multiselect("Average with (ensemble)", list(menu), key=key, format_func=lambda model_id: menu[model_id][0],
                            placeholder="No other model",
                            help="The faces are classified by every model chosen here and the one above; "
                                 "their probabilities are averaged. Usually more accurate, and slower by the number of models.")
    remember_choice(chosen, param=param, default=[])
    st.session_state[SHARED_ENSEMBLE_KEY] = list(chosen)
    if st.session_state.get(LEFT_ENSEMBLE_KEY) == chosen_id and chosen_id is not None:
        st.caption(left_ensemble_note(full_menu[chosen_id][1]))
    return tuple(menu[model_id][1] for model_id in chosen)


def left_ensemble_note(path: str | Path) -> str:
    """What the ensemble menu says when the model chosen above was one of its members."""
    name = escape_markdown(model_name(path))
    return f"**{name}** left this list: it is the model chosen above now (each model is counted once)."
