"""Compare runs and the bundled models: scores side by side, the settings that differ, curves, two confusion matrices.

The rows are the user's runs, then the bundled models (from their cards), so
a first-time user with no runs can compare the bundled models and later put
a run next to them. The table's recorded test accuracy comes from each run's
``evaluation.json`` (written whenever it is evaluated, here, on the
Evaluation page or with ``python -m core evaluate``) and from a bundled
model's card, each figure with how it was measured; one more column gives
every model's accuracy on the split and mode chosen for the confusion
matrices (from the prediction cache), so that rows compare. The chosen
models, split and mode are in the URL.
"""

import streamlit as st

from core.compare import compared_models, with_recorded_results
from dashboard import compare_widgets as compare
from dashboard import evaluation_widgets as widgets
from dashboard.charts import CHART_CONFIG
from dashboard.data_source import get_dataset
from dashboard.router import require_router
from dashboard.text import code
from dashboard.url_state import remember_choice, url_choices

require_router()

st.title("Compare runs")
entries = compared_models()
by_id = {entry.model_id: entry for entry in entries}
has_runs = any(entry.kind == "run" for entry in entries)

if not entries:
    st.info("No training runs yet, and no bundled model: start a run on the **Training** page or with "
            "`python -m core train`, then compare runs here.")
else:
    if not has_runs:
        st.info("No training runs yet: below are the bundled models. Start a run on the **Training** page or with "
                "`python -m core train` to compare it with them.")
    # Drawn now from what is recorded, redrawn below once the chosen models are evaluated, with a column measured
    # like the confusion matrices (one split, one mode), so the table and the captions agree.
    # A short line between the title and the table: the table's toolbar, always shown on a touch screen, lay over
    # the end of "Compare runs" on a phone (walk s22).
    st.caption("Every run and bundled model")
    table = st.empty()
    compare.compare_table_ui(table, entries)

    # Up to three runs; with fewer than two, the first run (if any) and the bundled models to reach two.
    run_ids = [model_id for model_id, entry in by_id.items() if entry.kind == "run"]
    default = run_ids[:3] if len(run_ids) >= 2 else list(by_id)[:2]
    url_choices("compare_runs", list(by_id), default=default, param="runs", noun="runs or models")
    chosen = st.multiselect("Runs and models to compare", list(by_id), key="compare_runs",
                            format_func=lambda model_id: by_id[model_id].name)
    # Always in the URL, as Training's ?run= is: the default is the newest runs, so a link without it would show
    # other runs once a new one starts (review s20).
    remember_choice(chosen, param="runs", default=[])
    names = {by_id[model_id].name: by_id[model_id] for model_id in chosen}

    st.subheader("Settings that differ")
    if len(chosen) < 2:
        st.caption("Pick two or more to see which settings differ.")
    else:
        differing = compare.settings_table({name: entry.config for name, entry in names.items()})
        if differing.empty:
            st.caption("The chosen runs and models have the same settings.")
        else:
            # A static table wraps long values (a list of teachers) where a data grid's cell cut them off.
            st.table(differing, hide_index=True, border="horizontal")

    st.subheader("Training and validation curves")
    curves = {name: entry.metrics for name, entry in names.items() if entry.metrics}
    if curves:
        st.plotly_chart(compare.compare_curves_figure(curves), key="compare_curves", config=CHART_CONFIG)
        st.caption("Solid: validation; dashed: training. One colour per run or model."
                   + (" A bundled model's card keeps its last training run's validation accuracy only."
                      if any(entry.kind == "bundled" for entry in names.values() if entry.metrics) else ""))
    else:
        st.caption("Pick runs with at least one finished epoch, or bundled models, to see their curves.")

    st.subheader("Confusion matrices")
    with_model = [model_id for model_id, entry in by_id.items() if entry.model_path is not None]
    if len(with_model) < 2:
        st.caption("Two runs or models with a saved model (best.keras) are needed to compare confusion matrices.")
    else:
        dataset = get_dataset()
        if dataset is not None:
            split, tta = compare.confusion_pair_ui(by_id, dataset, chosen)
            # Evaluating above recorded new test results in the runs' evaluation.json.
            compare.compare_table_ui(table, with_recorded_results(entries), measured=(dataset, split, tta))

            st.subheader("Ensemble of the chosen runs and models")
            members = {name: str(entry.model_path) for name, entry in names.items() if entry.model_path is not None}
            if len(members) < 2:
                # Say which pick lacks a model: with two picked, "pick two or more" alone read as a contradiction.
                without = [name for name, entry in names.items() if entry.model_path is None]
                st.caption("Pick two or more with a saved model above to score their ensemble (the average of their "
                           "probabilities)." + (f" No saved model (best.keras): {', '.join(map(code, without))}."
                                                if without else ""))
            elif widgets.ensemble_ui(members, dataset, split, tta, key="compare_ensemble") is not None:
                # Scoring the ensemble evaluated its members: the table shows their scores too (walk s12).
                compare.compare_table_ui(table, with_recorded_results(entries), measured=(dataset, split, tta))
