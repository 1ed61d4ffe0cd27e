"""Compare runs: scores side by side, the settings that differ, overlaid curves, two confusion matrices.

The table's recorded test accuracy comes from each run's ``evaluation.json``,
written whenever the run's model is evaluated (here, on the Evaluation page or
with ``python -m core evaluate``), each figure with how it was measured; one
more column gives every run's accuracy on the split and mode chosen for the
confusion matrices (from the prediction cache), so that rows compare. The
chosen runs, split and mode are in the URL.
"""

import streamlit as st

from core import runs
from core.diagnose import one_class_warning
from core.tta import TTA_LABELS, TTA_MODES
from dashboard import evaluation_widgets as widgets
from dashboard.data_source import get_dataset
from dashboard.router import require_router
from dashboard.training_widgets import format_accuracy
from dashboard.url_state import remember_choice, url_choice, url_choices

require_router()

st.title("Compare runs")
summaries = runs.list_runs()

if not summaries:
    st.info("No training runs yet: start one on the **Training** page or with `python -m core train`, "
            "then compare them here.")
else:
    # Drawn now from what is recorded, redrawn below once the chosen runs are evaluated, with a column measured
    # like the confusion matrices (one split, one mode), so the table and the captions agree.
    table = st.empty()
    widgets.compare_table_ui(table, summaries)

    by_id = {summary.run_id: summary for summary in summaries}
    url_choices("compare_runs", list(by_id), default=list(by_id)[:3], param="runs", noun="runs")
    chosen = st.multiselect("Runs to compare", list(by_id), key="compare_runs")
    remember_choice(chosen, param="runs", default=list(by_id)[:3])

    st.subheader("Settings that differ")
    if len(chosen) < 2:
        st.caption("Pick two or more runs to see which settings differ.")
    else:
        differing = widgets.settings_table({run_id: by_id[run_id].path for run_id in chosen})
        if differing.empty:
            st.caption("The chosen runs have the same settings.")
        else:
            st.dataframe(differing, hide_index=True, width="stretch",
                         column_config={"setting": st.column_config.TextColumn("setting", pinned=True)})

    st.subheader("Training and validation curves")
    curves = {run_id: runs.read_metrics(by_id[run_id].path) for run_id in chosen}
    curves = {run_id: metrics for run_id, metrics in curves.items() if metrics}
    if curves:
        st.plotly_chart(widgets.compare_curves_figure(curves), key="compare_curves")
        st.caption("Solid: validation; dashed: training. One colour per run.")
    else:
        st.caption("Pick runs with at least one finished epoch to see their curves.")

    st.subheader("Confusion matrices")
    with_model = [summary.run_id for summary in summaries if summary.has_model]
    if len(with_model) < 2:
        st.caption("Two runs with a saved model (best.keras) are needed to compare confusion matrices.")
    else:
        dataset = get_dataset()
        if dataset is not None:
            splits = widgets.evaluable_splits(dataset)
            first, second, where, mode = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
            url_choice("compare_first", with_model, with_model[0], param="first", noun="run")
            url_choice("compare_second", with_model, with_model[1], param="second", noun="run")
            url_choice("compare_split", splits, splits[0], param="split", noun="split")
            url_choice("compare_tta", TTA_MODES, "none", param="tta", noun="test-time augmentation")
            pair = (first.selectbox("First run", with_model, key="compare_first"),
                    second.selectbox("Second run", with_model, key="compare_second"))
            split = where.selectbox("Split", splits, key="compare_split")
            tta = mode.selectbox("Test-time augmentation", TTA_MODES, key="compare_tta", format_func=TTA_LABELS.get)
            for param, value, default in (("first", pair[0], with_model[0]), ("second", pair[1], with_model[1]),
                                          ("split", split, splits[0]), ("tta", tta, "none")):
                remember_choice(value, param=param, default=default)
            for position, (column, run_id) in enumerate(zip(st.columns(2), pair)):
                with column:
                    result = widgets.evaluation_ui(str(by_id[run_id].path / "best.keras"), dataset, split, tta,
                                                   key=f"compare_eval_{position}")
                    if result is not None:
                        st.caption(f"**{widgets.escape_markdown(run_id)}** on {split} ({widgets.tta_name(tta)}): accuracy "
                                   f"{format_accuracy(result.accuracy)}, macro-F1 {result.macro_f1:.3f}")
                        warning = one_class_warning(result.predictions)
                        if warning:
                            st.warning(warning, icon=":material/warning:")
                        st.plotly_chart(widgets.confusion_figure(result.confusion, normalize=True, clickable=False),
                                        key=f"compare_cm_{position}")
            widgets.compare_table_ui(table, summaries, measured=(dataset, split, tta))

            st.subheader("Ensemble of the chosen runs")
            members = {run_id: str(by_id[run_id].path / "best.keras") for run_id in chosen if by_id[run_id].has_model}
            if len(members) < 2:
                st.caption("Pick two or more runs with a saved model above to score their ensemble "
                           "(the average of their probabilities).")
            else:
                widgets.ensemble_ui(members, dataset, split, tta, key="compare_ensemble")
