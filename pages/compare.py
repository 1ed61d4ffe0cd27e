"""Compare runs: settings and scores side by side, validation curves, two confusion matrices.

Test accuracy comes from each run's ``evaluation.json``, written whenever the
run's model is evaluated (here, on the Evaluation page or with
``python -m core evaluate``).
"""

import streamlit as st

from core import runs
from dashboard import evaluation_widgets as widgets
from dashboard.data_source import get_dataset
from dashboard.router import require_router

require_router()

st.title("Compare runs")
summaries = runs.list_runs()

if not summaries:
    st.info(f"No training runs yet in `{runs.default_runs_dir()}`: start one on the **Training** page "
            "or with `python -m core train`, then compare them here.")
else:
    st.dataframe(widgets.compare_table(summaries), hide_index=True,
                 column_config={"lr": st.column_config.NumberColumn(format="%.0e")})

    st.subheader("Validation curves")
    by_id = {summary.run_id: summary for summary in summaries}
    chosen = st.multiselect("Runs", list(by_id), default=list(by_id)[:3], key="compare_runs")
    curves = {run_id: runs.read_metrics(by_id[run_id].path) for run_id in chosen}
    curves = {run_id: metrics for run_id, metrics in curves.items() if metrics}
    if curves:
        st.plotly_chart(widgets.compare_curves_figure(curves), key="compare_curves")
    else:
        st.caption("Pick runs with at least one finished epoch to see their curves.")

    st.subheader("Confusion matrices")
    with_model = [summary.run_id for summary in summaries if summary.has_model]
    if len(with_model) < 2:
        st.caption("Two runs with a saved model (best.keras) are needed to compare confusion matrices.")
    else:
        dataset = get_dataset()
        if dataset is not None:
            first, second, where = st.columns([2, 2, 1], vertical_alignment="bottom")
            pair = (first.selectbox("First run", with_model, index=0, key="compare_first"),
                    second.selectbox("Second run", with_model, index=1, key="compare_second"))
            split = where.selectbox("Split", widgets.evaluable_splits(dataset), key="compare_split")
            for position, (column, run_id) in enumerate(zip(st.columns(2), pair)):
                with column:
                    result = widgets.evaluation_ui(str(by_id[run_id].path / "best.keras"), dataset, split, False)
                    if result is not None:
                        st.caption(f"**{run_id}**: accuracy {result.accuracy:.2%}, macro-F1 {result.macro_f1:.3f}")
                        st.plotly_chart(widgets.confusion_figure(result.confusion, normalize=True, clickable=False),
                                        key=f"compare_cm_{position}")
