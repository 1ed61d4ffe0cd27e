"""Training: start a run in the background, watch it live, compare past runs.

All run state lives in the run folders (``core.runs``); the session only keeps
which run is selected (also in the URL, ``?run=<id>``), so a reload or a second
tab shows the same run. Augmentation sliders sit outside the form: widgets in
an ``st.form`` do not rerun the page until submit, and the preview must follow
the sliders as they move. The model picker is outside too, so that choosing a
model refills the form with its origin's recipe.
"""

import numpy as np
import streamlit as st

from core import jobs, runs
from core.augment import AugmentConfig
from core.data_roots import data_roots
from core.labels import PUBLIC_TEST, TRAINING
from core.train_config import TrainConfig
from dashboard import training_widgets as widgets
from dashboard.augment_preview import augment_config_ui, render_augment_preview
from dashboard.data_source import get_dataset
from dashboard.router import require_router

require_router()

RUN_KEY = "run"
FORM_OPEN_KEY = "train_new_run"

st.title("Training")
summaries = runs.list_runs()
if st.session_state.pop("train_started", False):
    st.session_state[FORM_OPEN_KEY] = False  # fold the form so the new run is in view

# The form loads the dataset and the preview imports Keras: run them only while the expander is open,
# so watching a run never waits for either.
new_run = st.expander("Start a new run", expanded=not summaries, icon=":material/model_training:",
                      key=FORM_OPEN_KEY, on_change="rerun")
can_start = True  # with the form folded, its dataset is not loaded: opening it says whether one can start
if new_run.open:
    with new_run:
        dataset = get_dataset()
        training_rows = np.flatnonzero(dataset.splits == TRAINING) if dataset is not None else []
        can_start = dataset is not None and bool(len(training_rows))
        if dataset is None:
            st.info("Load a dataset to start a run. Past runs below can be inspected without one.")
        elif not len(training_rows):
            st.warning("This dataset has no Training split, which training needs; load FER2013's Training images.")
        else:
            spec = widgets.model_select_ui()
            st.markdown("**Augmentation** of the training batches (the preview follows the sliders)")
            sliders, preview = st.columns([1, 2])
            with sliders:
                augment = augment_config_ui("train_augment", AugmentConfig())
            fields = widgets.training_form_ui(spec, data_hash=dataset.report.content_hash,
                                              public_test_images=int((dataset.splits == PUBLIC_TEST).sum()),
                                              class_counts=np.bincount(dataset.labels[training_rows]).tolist())
            if fields is not None:
                try:
                    config = TrainConfig(data=widgets.dataset_path(dataset), model=spec.name, augment=augment,
                                         **fields).validate()
                    run_dir = jobs.start_training_job(config, data_roots=data_roots())
                except (ValueError, FileNotFoundError) as error:
                    st.error(f"Cannot start: {widgets.escape_markdown(str(error))}")
                else:
                    st.session_state[RUN_KEY] = run_dir.name
                    st.session_state["train_started"] = True
                    st.rerun()
            with preview:  # drawn last: the first preview imports Keras, the form must not wait for it
                render_augment_preview(dataset.images[training_rows[0]], augment, n=16, seed=0)

st.subheader("Run")
summary = widgets.run_select_ui(summaries, key=RUN_KEY)
if summary is None:
    st.info(widgets.no_runs_message(can_start))
else:
    widgets.run_files_warning_ui(summary.path)
    widgets.run_quality_warning_ui(summary)
    widgets.run_panel(summary.path)
    widgets.run_downloads_ui(summary.path)
    widgets.run_details_ui(summary.path)
    st.subheader("All runs")
    widgets.runs_table_panel(summaries)
