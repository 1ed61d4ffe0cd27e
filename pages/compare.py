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

from core.compare import compared_models
from core.diagnose import one_class_warning
from core.tta import TTA_LABELS, TTA_MODES
from dashboard import compare_widgets as compare
from dashboard import evaluation_widgets as widgets
from dashboard.data_source import get_dataset
from dashboard.router import require_router
from dashboard.training_widgets import format_accuracy
from dashboard.url_state import remember_choice, url_choice, url_choices

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
    table = st.empty()
    compare.compare_table_ui(table, entries)

    # Up to three runs; with fewer than two, the first run (if any) and the bundled models to reach two.
    run_ids = [model_id for model_id, entry in by_id.items() if entry.kind == "run"]
    default = run_ids[:3] if len(run_ids) >= 2 else list(by_id)[:2]
    url_choices("compare_runs", list(by_id), default=default, param="runs", noun="runs or models")
    chosen = st.multiselect("Runs and models to compare", list(by_id), key="compare_runs",
                            format_func=lambda model_id: by_id[model_id].name)
    remember_choice(chosen, param="runs", default=default)
    names = {by_id[model_id].name: by_id[model_id] for model_id in chosen}

    st.subheader("Settings that differ")
    if len(chosen) < 2:
        st.caption("Pick two or more to see which settings differ.")
    else:
        differing = compare.settings_table({name: entry.config for name, entry in names.items()})
        if differing.empty:
            st.caption("The chosen runs and models have the same settings.")
        else:
            st.dataframe(differing, hide_index=True, width="stretch",
                         column_config={"setting": st.column_config.TextColumn("setting", pinned=True)})

    st.subheader("Training and validation curves")
    curves = {name: entry.metrics for name, entry in names.items() if entry.metrics}
    if curves:
        st.plotly_chart(compare.compare_curves_figure(curves), key="compare_curves")
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
            splits = widgets.evaluable_splits(dataset)
            first, second, where, mode = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
            url_choice("compare_first", with_model, with_model[0], param="first", noun="run or model")
            url_choice("compare_second", with_model, with_model[1], param="second", noun="run or model")
            url_choice("compare_split", splits, splits[0], param="split", noun="split")
            url_choice("compare_tta", TTA_MODES, "none", param="tta", noun="test-time augmentation")
            pair = (first.selectbox("First", with_model, key="compare_first", format_func=lambda i: by_id[i].name),
                    second.selectbox("Second", with_model, key="compare_second", format_func=lambda i: by_id[i].name))
            split = where.selectbox("Split", splits, key="compare_split")
            tta = mode.selectbox("Test-time augmentation", TTA_MODES, key="compare_tta", format_func=TTA_LABELS.get)
            for param, value, default_value in (("first", pair[0], with_model[0]), ("second", pair[1], with_model[1]),
                                                ("split", split, splits[0]), ("tta", tta, "none")):
                remember_choice(value, param=param, default=default_value)
            for position, (column, model_id) in enumerate(zip(st.columns(2), pair)):
                with column:
                    entry = by_id[model_id]
                    result = widgets.evaluation_ui(str(entry.model_path), dataset, split, tta, key=f"compare_eval_{position}")
                    if result is not None:
                        st.caption(f"**{widgets.escape_markdown(entry.name)}** on {split} ({widgets.tta_name(tta)}): "
                                   f"accuracy {format_accuracy(result.accuracy)}, macro-F1 {result.macro_f1:.3f}")
                        warning = one_class_warning(result.predictions)
                        if warning:
                            st.warning(warning, icon=":material/warning:")
                        st.plotly_chart(widgets.confusion_figure(result.confusion, normalize=True, clickable=False),
                                        key=f"compare_cm_{position}")
            # Read again: evaluating above recorded new test results in the runs' evaluation.json.
            compare.compare_table_ui(table, compared_models(), measured=(dataset, split, tta))

            st.subheader("Ensemble of the chosen runs and models")
            members = {name: str(entry.model_path) for name, entry in names.items() if entry.model_path is not None}
            if len(members) < 2:
                st.caption("Pick two or more with a saved model above to score their ensemble "
                           "(the average of their probabilities).")
            else:
                widgets.ensemble_ui(members, dataset, split, tta, key="compare_ensemble")
